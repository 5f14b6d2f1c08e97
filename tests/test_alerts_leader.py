"""The leader election the alert evaluator shares with the scheduler (``LeaderRole``): one of several evaluators
on one database evaluates; when its session ends another takes over within about ``follower_poll``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agiflow_lab.alerts.evaluator import AlertEvaluator
from agiflow_lab.alerts.models import RuleCreate
from agiflow_lab.config import Settings
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.platform import Platform
from tests.support.polling import until


async def test_one_evaluator_leads_and_another_takes_over_when_it_stops(db: Database, tmp_path: Path) -> None:
    platform = Platform.build(Settings(data_dir=tmp_path, owner="olivia"), db, db.url)
    await platform.projects.ensure("p", "p", "olivia")
    roles = [AlertEvaluator(db, platform.alerts, interval=0.2, follower_poll=0.1) for _ in range(3)]
    for role in roles:
        role.start()
    try:

        async def one_leader() -> AlertEvaluator | None:
            leaders = [r for r in roles if r.leader]
            assert len(leaders) <= 1, "two evaluators lead at once"
            return leaders[0] if leaders else None

        first = await until(one_leader, "an evaluator to lead", timeout=10)
        body = RuleCreate(name="w", metric="live_workers", comparison="<", threshold=1)
        await platform.alerts.create_rule(Actor("olivia"), "p", body)  # NOTIFY: the leader evaluates at once

        async def evaluated() -> datetime | None:
            return (await platform.alerts.rule("p", "w")).evaluated_at

        before = await until(evaluated, "the new rule to be evaluated", timeout=10)
        assert (await platform.alerts.rule("p", "w")).state == "firing"  # no worker here
        await first.stop()
        roles.remove(first)
        second = await until(one_leader, "another evaluator to take over", timeout=10)
        assert second is not first

        async def evaluated_again() -> bool:
            at = await evaluated()
            return at is not None and at > before and at <= datetime.now(UTC)

        await until(evaluated_again, "the new leader to evaluate", timeout=10)
        assert len((await platform.alerts.incidents("p", rule="w", cursor=None, limit=10)).items) == 1  # still one
    finally:
        for role in roles:
            await role.stop()

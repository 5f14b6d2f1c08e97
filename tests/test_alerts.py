"""Evaluating alert rules, as a function of a given ``now``: pending, firing after ``for``, resolving once, silences.

A fresh migrated database per test and the real services, no server and no clock: every evaluation is
``evaluate(now)`` with a ``now`` the test chooses. What a rule notifies is what it wrote to the outbox (one
message per channel, in the transaction that changed its state); nothing relays it here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agiflow_lab.alerts.evaluate import breaches, step
from agiflow_lab.alerts.models import RuleCreate, SilenceCreate
from agiflow_lab.config import Settings
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.notifications.models import ChannelCreate
from agiflow_lab.platform import Platform

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
OLIVIA = Actor("olivia")


@pytest.fixture
async def platform(db: Database, tmp_path: Path) -> AsyncIterator[Platform]:
    platform = Platform.build(Settings(data_dir=tmp_path, owner="olivia"), db, db.url)
    await platform.projects.ensure("p", "p", "olivia")
    await platform.notifications.create_channel(OLIVIA, "p", ChannelCreate(name="inbox", kind="in_app"))
    yield platform


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def failed_job(platform: Platform, finished: datetime) -> None:
    async with platform.db.transaction() as conn:
        await conn.execute(
            """INSERT INTO control.jobs (id, project_id, notebook, state, submitted_by, timeout_seconds, finished_at)
               VALUES (%s, (SELECT id FROM control.projects WHERE slug = 'p'), 'builtin:fail', 'failed', 'olivia',
                       60, %s)""",
            (str(uuid.uuid4()), finished),
        )


async def rule(platform: Platform, **fields: Any) -> None:
    body = {"name": "failures", "metric": "job_failures", "comparison": ">=", "threshold": 1, "window_seconds": 60,
            **fields}  # fmt: skip
    await platform.alerts.create_rule(OLIVIA, "p", RuleCreate.model_validate(body))


async def sent(platform: Platform) -> list[str]:
    """The events announced so far, in order (the outbox, as nothing relays it in these tests)."""
    async with platform.db.connection() as conn:
        cur = await conn.execute("SELECT payload FROM control.bus_outbox WHERE topic = 'notifications' ORDER BY id")
        return [r["payload"]["event"]["event"] for r in await cur.fetchall()]


async def state(platform: Platform) -> str:
    return (await platform.alerts.rule("p", "failures")).state


def test_the_state_machine_fires_after_for_and_resolves_once() -> None:
    assert step("ok", None, True, at(0), 30).state == "pending"
    assert step("pending", at(0), True, at(29), 30).change is None
    fired = step("pending", at(0), True, at(30), 30)
    assert (fired.state, fired.change) == ("firing", "fire")
    assert step("firing", at(0), True, at(90), 30).change is None
    resolved = step("firing", at(0), False, at(91), 30)
    assert (resolved.state, resolved.change) == ("resolved", "resolve")
    assert step("resolved", None, False, at(92), 30) == step("ok", None, False, at(92), 30)
    assert step("pending", at(0), False, at(10), 30).state == "ok"
    assert step("ok", None, True, at(0), 0).change == "fire"
    assert breaches(2, ">", 1) and breaches(1, ">=", 1) and breaches(0, "<", 1) and breaches(1, "<=", 1)
    assert not breaches(None, "<", 1)


async def test_pending_fires_only_after_for_then_resolves_once_the_window_passes(platform: Platform) -> None:
    await rule(platform, for_seconds=30)
    await failed_job(platform, at(0))
    await platform.alerts.evaluate(at(1))
    assert await state(platform) == "pending" and await sent(platform) == []
    await platform.alerts.evaluate(at(20))
    assert await state(platform) == "pending" and await sent(platform) == []
    await platform.alerts.evaluate(at(31))
    assert await state(platform) == "firing" and await sent(platform) == ["alert.firing"]
    for t in (40, 50, 59):  # still in the window: firing, and said once
        await platform.alerts.evaluate(at(t))
    assert await sent(platform) == ["alert.firing"]
    await platform.alerts.evaluate(at(61))  # the failure left the 60 s window
    assert await state(platform) == "resolved" and await sent(platform) == ["alert.firing", "alert.resolved"]
    await platform.alerts.evaluate(at(70))
    assert await state(platform) == "ok" and await sent(platform) == ["alert.firing", "alert.resolved"]
    incidents = (await platform.alerts.incidents("p", rule=None, cursor=None, limit=10)).items
    assert [(i.state, i.started_at, i.resolved_at, i.start_value, i.end_value) for i in incidents] == [
        ("resolved", at(31), at(61), 1.0, 0.0)
    ]


async def test_a_breach_that_clears_before_for_never_fires(platform: Platform) -> None:
    await rule(platform, for_seconds=30, window_seconds=10)
    await failed_job(platform, at(0))
    await platform.alerts.evaluate(at(1))
    assert await state(platform) == "pending"
    await platform.alerts.evaluate(at(15))
    assert await state(platform) == "ok"
    assert await sent(platform) == []
    assert (await platform.alerts.incidents("p", rule=None, cursor=None, limit=10)).items == []


async def test_a_silence_holds_back_both_notifications_of_an_incident(platform: Platform) -> None:
    await rule(platform)
    await platform.alerts.create_silence(OLIVIA, "p", SilenceCreate(rule="failures", ends_at=at(45)))
    await failed_job(platform, at(0))
    await platform.alerts.evaluate(at(1))
    assert await state(platform) == "firing"
    await platform.alerts.evaluate(at(61))  # resolves after the silence ended: its firing was never said
    assert await state(platform) == "resolved"
    assert await sent(platform) == []
    [incident] = (await platform.alerts.incidents("p", rule="failures", cursor=None, limit=10)).items
    assert incident.notified is False and incident.resolved_at == at(61)
    await failed_job(platform, at(100))  # the silence is over: the next incident is said
    await platform.alerts.evaluate(at(101))
    assert await sent(platform) == ["alert.firing"]


async def test_a_project_wide_silence_covers_every_rule(platform: Platform) -> None:
    await rule(platform)
    await platform.alerts.create_silence(OLIVIA, "p", SilenceCreate(ends_at=at(3600)))
    await failed_job(platform, at(0))
    await platform.alerts.evaluate(at(1))
    assert await state(platform) == "firing" and await sent(platform) == []


async def test_a_disabled_channel_gets_nothing_and_every_enabled_one_gets_its_own_message(platform: Platform) -> None:
    await platform.notifications.create_channel(OLIVIA, "p", ChannelCreate(name="off", kind="in_app", enabled=False))
    await platform.notifications.create_channel(OLIVIA, "p", ChannelCreate.model_validate(
        {"name": "hook", "kind": "webhook", "webhook": {"url": "http://127.0.0.1:9/x"}}))  # fmt: skip
    await rule(platform)
    await failed_job(platform, at(0))
    await platform.alerts.evaluate(at(1))
    async with platform.db.connection() as conn:
        cur = await conn.execute("SELECT key, payload FROM control.bus_outbox WHERE topic = 'notifications'")
        rows = await cur.fetchall()
    channels = {c.id: c.name for c in await platform.notifications.channels("p")}
    assert sorted(channels[r["payload"]["channel_id"]] for r in rows) == ["hook", "inbox"]
    assert len({r["key"] for r in rows}) == 2  # one key per channel: a slow receiver holds back no other


async def test_metrics_read_what_the_platform_keeps(platform: Platform) -> None:
    for metric in ("error_rate", "latency_p95_ms", "cost_per_day", "eval_pass_rate", "queue_lag_seconds",
                   "live_workers"):  # fmt: skip
        await platform.alerts.create_rule(OLIVIA, "p", RuleCreate.model_validate(
            {"name": metric, "metric": metric, "comparison": ">", "threshold": 0.5}))  # fmt: skip
    await platform.alerts.create_rule(OLIVIA, "p", RuleCreate.model_validate(
        {"name": "score", "metric": "score_mean", "score_name": "helpful", "comparison": "<", "threshold": 0.5}))  # fmt: skip
    await platform.alerts.evaluate(at(0))
    rules = {r.name: r for r in await platform.alerts.rules("p")}
    assert all(r.evaluated_at == at(0) and r.state == "ok" for r in rules.values())
    assert rules["error_rate"].last_value is None and rules["score"].last_value is None  # no data: no breach
    assert rules["queue_lag_seconds"].last_value == 0.0 and rules["live_workers"].last_value == 0.0


async def test_a_supervised_worker_that_dies_with_running_jobs_is_announced_once(platform: Platform) -> None:
    async with platform.db.transaction() as conn:
        await conn.execute(
            """INSERT INTO control.workers (id, hostname, pid, topics, concurrency) VALUES ('w1', 'box', 42, '{jobs}', 2),
                      ('w2', 'box', 43, '{jobs}', 2)"""
        )
        for worker in ("w1", "w1", "w2"):
            await conn.execute(
                """INSERT INTO control.jobs (id, project_id, notebook, state, submitted_by, timeout_seconds, worker_id)
                   VALUES (%s, (SELECT id FROM control.projects WHERE slug = 'p'), 'builtin:hello', 'running',
                           'olivia', 60, %s)""",
                (str(uuid.uuid4()), worker),
            )
        await conn.execute("UPDATE control.workers SET stopped_at = now() WHERE id = 'w2'")  # said it stopped
    await platform.jobs.worker_exited("w1")
    await platform.jobs.worker_exited("w1")  # the same exit reported again
    await platform.jobs.worker_exited("w2")
    assert await sent(platform) == ["worker.lost"]
    async with platform.db.connection() as conn:
        cur = await conn.execute("SELECT payload FROM control.bus_outbox WHERE topic = 'notifications'")
        [row] = await cur.fetchall()
    assert row["payload"]["event"]["title"] == "Worker box:42 was lost" and row["payload"]["event"]["data"]["jobs"] == 2

"""Firing schedules, as a function of a given ``now``: which ticks fire after downtime, overlap, pause, run-now.

A fresh migrated database per test and the real services; no server and no clock: every pass is
``fire_due(now)`` with a ``now`` the test chooses, so an hour of downtime costs nothing to test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agiflow_lab.config import Settings
from agiflow_lab.core.actor import Actor
from agiflow_lab.datasets.models import DatasetCreate
from agiflow_lab.db.database import Database
from agiflow_lab.platform import Platform
from agiflow_lab.prompts.models import PromptCreate
from agiflow_lab.schedules.models import ScheduleCreate, ScheduleFields
from agiflow_lab.schedules.service import ScheduleService

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # every schedule here starts at T0: ticks are T0 + k minutes
OLIVIA = Actor("olivia")


@pytest.fixture
async def platform(db: Database, tmp_path: Path) -> AsyncIterator[Platform]:
    platform = Platform.build(Settings(data_dir=tmp_path, owner="olivia"), db, db.url)
    await platform.projects.ensure("p", "p", "olivia")
    yield platform


@pytest.fixture
def schedules(platform: Platform) -> ScheduleService:
    return platform.schedules


async def every_minute(schedules: ScheduleService, name: str = "nightly", **fields: Any) -> str:
    given = {"name": name, "interval_seconds": 60, "start_at": T0, "job": {"notebook": "builtin:hello"}, **fields}
    body = ScheduleCreate.model_validate({k: v for k, v in given.items() if v is not None})
    created = await schedules.create(OLIVIA, "p", body, now=T0 - timedelta(hours=1))
    assert created.next_fire_at == T0
    return created.id


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def firings(schedules: ScheduleService, name: str = "nightly") -> list[tuple[datetime, str]]:
    """(tick, outcome) of every firing, oldest first."""
    page = await schedules.firings("p", name, outcome=None, cursor=None, limit=200)
    return [(f.tick, f.outcome) for f in reversed(page.items)]


async def job_keys(platform: Platform) -> list[str]:
    async with platform.db.connection() as conn:
        cur = await conn.execute("SELECT idempotency_key FROM control.jobs ORDER BY created_at")
        return [r["idempotency_key"] for r in await cur.fetchall()]


async def test_each_tick_fires_once_with_its_tick_as_the_jobs_idempotency_key(
    schedules: ScheduleService, platform: Platform
) -> None:
    schedule_id = await every_minute(schedules)
    assert await schedules.fire_due(at(0) + timedelta(seconds=1)) == 1
    assert await schedules.fire_due(at(0) + timedelta(seconds=2)) == 0  # the same tick: nothing new
    assert await schedules.fire_due(at(0.5)) == 0  # nothing due before the next tick
    # Two passes at once (two replicas that both believe they lead): one firing, one job.
    written = await asyncio.gather(*(schedules.fire_due(at(1)) for _ in range(4)))
    assert sum(written) == 1
    assert await firings(schedules) == [(at(0), "started"), (at(1), "started")]
    assert await job_keys(platform) == [f"schedule:{schedule_id}:{at(k).isoformat()}" for k in (0, 1)]
    page = await schedules.firings("p", "nightly", outcome=None, cursor=None, limit=200)
    assert all(f.job_id and f.job_state == "queued" and f.run_id is None for f in page.items)
    job = await platform.jobs.get("p", page.items[0].job_id or "")
    assert job.submitted_by == f"schedule:{schedule_id}" and job.notebook == "builtin:hello"

    schedule = await schedules.get("p", "nightly")
    assert schedule.next_fire_at == at(2) and schedule.last_firing and schedule.last_firing.tick == at(1)


@pytest.mark.parametrize(
    ("missed", "fired", "not_fired"),
    [
        ("skip", [10], 10),  # ticks 0-9 were missed (over a minute late); tick 10 is on time
        ("run_once", [9, 10], 9),  # the latest missed tick once, and the on-time one
        ("catch_up", [7, 8, 9, 10], 7),  # max_catch_up=3 missed ticks, oldest first, and the on-time one
    ],
)
async def test_ticks_missed_while_every_server_was_down_follow_the_policy(
    schedules: ScheduleService, platform: Platform, missed: str, fired: list[int], not_fired: int
) -> None:
    await every_minute(schedules, missed=missed, max_catch_up=3)
    # Down from before T0 until 10.5 minutes later: the 60 s grace makes tick 10 (30 s ago) on time.
    assert await schedules.fire_due(at(10.5)) == len(fired)
    assert await firings(schedules) == [(at(k), "started") for k in fired]
    assert len(await job_keys(platform)) == len(fired)
    schedule = await schedules.get("p", "nightly")
    assert schedule.missed_ticks == not_fired
    assert schedule.next_fire_at == at(11)
    assert schedule.next_fire_times == [at(k) for k in range(11, 16)]
    assert await schedules.fire_due(at(10.9)) == 0  # and none of them later


async def test_a_late_pass_within_the_grace_fires_every_tick(schedules: ScheduleService) -> None:
    """A leader that died and was replaced within the grace: nothing counts as missed, whatever the policy."""
    await every_minute(schedules, missed="skip", misfire_grace_seconds=300)
    assert await schedules.fire_due(at(3) + timedelta(seconds=5)) == 4
    assert await firings(schedules) == [(at(k), "started") for k in range(4)]
    assert (await schedules.get("p", "nightly")).missed_ticks == 0


async def test_a_cron_schedule_fires_in_its_time_zone_across_daylight_saving(schedules: ScheduleService) -> None:
    body = ScheduleCreate.model_validate({"name": "berlin", "cron": "0 3 * * *", "timezone": "Europe/Berlin",
                                          "job": {"notebook": "builtin:hello"}})  # fmt: skip
    # Clocks in Berlin go forward on 31 March 2030: 03:00 is 02:00 UTC before, 01:00 UTC after.
    created = await schedules.create(OLIVIA, "p", body, now=datetime(2030, 3, 29, 12, tzinfo=UTC))
    assert created.next_fire_times[:3] == [datetime(2030, 3, 30, 2, tzinfo=UTC), datetime(2030, 3, 31, 1, tzinfo=UTC),
                                           datetime(2030, 4, 1, 1, tzinfo=UTC)]  # fmt: skip
    # The server was down across both: the 30 March tick was missed (run_once fires it), 31 March's is on time.
    assert await schedules.fire_due(datetime(2030, 3, 31, 1, 0, 30, tzinfo=UTC)) == 2
    assert [t for t, _ in await firings(schedules, "berlin")] == [datetime(2030, 3, 30, 2, tzinfo=UTC),
                                                                   datetime(2030, 3, 31, 1, tzinfo=UTC)]  # fmt: skip
    assert (await schedules.get("p", "berlin")).next_fire_at == datetime(2030, 4, 1, 1, tzinfo=UTC)


async def test_overlap_skip_records_a_skipped_firing_while_the_previous_job_runs(
    schedules: ScheduleService, platform: Platform
) -> None:
    await every_minute(schedules, overlap="skip")
    await schedules.fire_due(at(0))
    await schedules.fire_due(at(1))
    page = await schedules.firings("p", "nightly", outcome=None, cursor=None, limit=10)
    skipped, started = page.items
    assert (skipped.tick, skipped.outcome, skipped.job_id) == (at(1), "skipped", None)
    assert skipped.reason == "the previous firing is still running"
    await platform.jobs.cancel(OLIVIA, "p", started.job_id or "")  # the previous one ends
    await schedules.fire_due(at(2))
    assert await firings(schedules) == [(at(0), "started"), (at(1), "skipped"), (at(2), "started")]
    assert len(await job_keys(platform)) == 2


async def test_overlap_queue_starts_one_queued_firing_when_the_previous_one_ends(
    schedules: ScheduleService, platform: Platform
) -> None:
    schedule_id = await every_minute(schedules, overlap="queue")
    await schedules.fire_due(at(0))
    await schedules.fire_due(at(1))  # queued behind tick 0
    await schedules.fire_due(at(2))  # one waits already: skipped
    assert await firings(schedules) == [(at(0), "started"), (at(1), "queued"), (at(2), "skipped")]
    assert await schedules.seconds_until_due(at(2)) <= 2.0  # the scheduler looks again soon

    assert await schedules.fire_due(at(2.5)) == 0  # tick 0's job still runs: the queued one waits
    first = (await schedules.firings("p", "nightly", outcome="started", cursor=None, limit=1)).items[0]
    await platform.jobs.cancel(OLIVIA, "p", first.job_id or "")
    assert await schedules.fire_due(at(2.6)) == 1
    assert await firings(schedules) == [(at(0), "started"), (at(1), "started"), (at(2), "skipped")]
    assert await job_keys(platform) == [f"schedule:{schedule_id}:{at(k).isoformat()}" for k in (0, 1)]


async def test_a_paused_schedule_fires_nothing_and_resumes_from_its_next_tick(schedules: ScheduleService) -> None:
    await every_minute(schedules, missed="catch_up")
    await schedules.fire_due(at(0))
    paused = await schedules.update(OLIVIA, "p", "nightly", ScheduleFields(paused=True), now=at(0.5))
    assert paused.paused and paused.next_fire_at is None and paused.next_fire_times == []
    assert await schedules.fire_due(at(30)) == 0
    resumed = await schedules.resume(OLIVIA, "p", "nightly", now=at(30.5))
    assert resumed.next_fire_at == at(31)  # the ticks while paused were not missed: none is caught up
    assert await schedules.fire_due(at(31)) == 1
    assert await firings(schedules) == [(at(0), "started"), (at(31), "started")]
    assert (await schedules.get("p", "nightly")).missed_ticks == 0


async def test_editing_the_timing_moves_the_next_tick_and_run_now_fires_whatever_the_overlap(
    schedules: ScheduleService, platform: Platform
) -> None:
    schedule_id = await every_minute(schedules, overlap="skip")
    changed = await schedules.update(OLIVIA, "p", "nightly", ScheduleFields(interval_seconds=300, start_at=at(2)),
                                     now=at(0.5))  # fmt: skip
    assert changed.next_fire_times[:2] == [at(2), at(7)]
    await schedules.fire_due(at(2))
    firing = await schedules.run_now(OLIVIA, "p", "nightly", now=at(3))  # tick 2's job still queued: runs anyway
    assert firing.manual and firing.outcome == "started" and firing.job_id
    job = await platform.jobs.get("p", firing.job_id)
    assert job.submitted_by == "olivia" and job.idempotency_key == f"schedule:{schedule_id}:manual:{at(3).isoformat()}"
    assert [f.manual for f in (await schedules.firings("p", "nightly", outcome=None, cursor=None, limit=9)).items] == [
        True, False]  # fmt: skip


async def test_an_evaluation_tick_that_cannot_start_is_recorded_as_failed_and_the_schedule_goes_on(
    schedules: ScheduleService, platform: Platform
) -> None:
    await platform.prompts.create(OLIVIA, "p", PromptCreate(name="qa", template="Q: {{question}}",
                                                            labels=["production"]))  # fmt: skip
    items = [{"id": f"q{i}", "input": {"question": f"q{i}"}, "expected": f"Q: q{i}"} for i in range(2)]
    await platform.datasets.create(OLIVIA, "p", DatasetCreate.model_validate({"name": "qa", "items": items}))
    run = {"prompt": {"name": "qa", "label": "production"}, "dataset": {"name": "qa"}, "model": {"connection": "echo"},
           "evaluators": [{"type": "exact_match"}]}  # fmt: skip
    await every_minute(schedules, "qa-eval", job=None, eval=run)
    await schedules.fire_due(at(0))
    await platform.prompts.remove_label(OLIVIA, "p", "qa", "production")  # nothing to follow any more
    await schedules.fire_due(at(1))
    await platform.prompts.move_label(OLIVIA, "p", "qa", "production", 1)
    await schedules.fire_due(at(2))
    page = (await schedules.firings("p", "qa-eval", outcome=None, cursor=None, limit=10)).items[::-1]
    assert [(f.tick, f.outcome) for f in page] == [(at(0), "started"), (at(1), "failed"), (at(2), "started")]
    assert page[1].job_id is None and page[1].reason and "production" in page[1].reason
    assert all(f.run_id and f.job_id for f in (page[0], page[2]))
    evaluated = await platform.evals.get("p", page[2].run_id or "")
    assert evaluated.prompt["ref"] == "label:production" and evaluated.dataset == {"name": "qa", "version": 1}
    assert len(await job_keys(platform)) == 2  # the failed tick left no job behind

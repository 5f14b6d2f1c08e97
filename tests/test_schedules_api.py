"""The schedules API on the session's real server: create, read, edit, pause, resume, run now, delete; 422s that
name the field; viewers read and cannot write; an evaluation target resolved when it fires; the server's own
scheduler firing a schedule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api
from tests.support.evals import make_dataset, make_prompt, qa_items, wait_run
from tests.support.jobs import notebook_of, put_notebook, wait_for
from tests.support.polling import until

NIGHTLY = {"name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Berlin",
           "job": {"notebook": "builtin:hello", "parameters": {"name": "cron"}, "timeout_seconds": 60}}  # fmt: skip


async def create(api: Api, project: str, body: dict[str, Any], **who: Any) -> dict[str, Any]:
    r = await api.post(f"/projects/{project}/schedules", body, **who)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_schedule_is_created_read_edited_paused_resumed_and_deleted(api: Api, project: str) -> None:
    base = f"/projects/{project}/schedules"
    made = await create(api, project, NIGHTLY)
    assert made["target"] == "job" and made["job"]["parameters"] == {"name": "cron"}
    assert made["missed"] == "run_once" and made["overlap"] == "allow" and not made["paused"]
    times = made["next_fire_times"]
    assert len(times) == 5 and times == sorted(times) and made["next_fire_at"] == times[0]
    assert all(t.endswith(("T01:00:00Z", "T02:00:00Z")) for t in times), times  # 03:00 in Berlin, in UTC
    assert (await api.post(base, NIGHTLY)).status_code == 409  # names are unique in a project

    r = await api.request("PATCH", f"{base}/nightly", {"cron": None, "interval_seconds": 3600, "description": "hourly"})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["cron"] is None and edited["interval_seconds"] == 3600 and edited["description"] == "hourly"
    assert edited["job"] == made["job"] and edited["id"] == made["id"]

    paused = (await api.post(f"{base}/nightly/pause")).json()
    assert paused["paused"] and paused["next_fire_at"] is None and paused["next_fire_times"] == []
    assert [s["name"] for s in (await api.get(base, params={"paused": "true"})).json()["items"]] == ["nightly"]
    assert (await api.get(base, params={"paused": "false"})).json()["items"] == []
    resumed = (await api.post(f"{base}/nightly/resume")).json()
    assert not resumed["paused"] and len(resumed["next_fire_times"]) == 5

    r = await api.get(f"/projects/{project}/audit", params={"resource_type": "schedule"})
    assert {e["action"] for e in r.json()["items"]} >= {"schedule.create", "schedule.update", "schedule.pause",
                                                         "schedule.resume"}  # fmt: skip

    assert (await api.delete(f"{base}/nightly")).status_code == 204
    r = await api.get(f"{base}/nightly")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_schedules_are_listed_in_keyset_pages(api: Api, project: str) -> None:
    for n in range(5):
        await create(api, project, {**NIGHTLY, "name": f"s{n}", "paused": True})
    names: list[str] = []
    cursor = None
    while True:
        page = (await api.get(f"/projects/{project}/schedules", params={"limit": 2, "cursor": cursor})).json()
        names += [s["name"] for s in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert names == ["s4", "s3", "s2", "s1", "s0"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "0 3 * *"}, "cron"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"cron": None, "interval_seconds": 0}, "interval_seconds"),
        ({"cron": None, "interval_seconds": -5}, "interval_seconds"),
        ({"interval_seconds": 60}, "cron"),  # both cron and an interval
        ({"cron": None}, "cron"),  # neither
        ({"job": {"notebook": "builtin:hello", "bogus": 1}}, "job.bogus"),
        ({"job": {"notebook": "builtin:hello", "idempotency_key": "k"}}, "job"),
        ({"job": None}, "job"),  # no target
        ({"missed": "sometimes"}, "missed"),
        ({"overlap": "never"}, "overlap"),
        ({"misfire_grace_seconds": 0}, "misfire_grace_seconds"),  # every pass is a little late: 0 would skip all
        ({"surprise": True}, "surprise"),
    ],
)
async def test_invalid_schedules_are_422_naming_the_field(
    api: Api, project: str, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**NIGHTLY, **change}.items() if v is not None}
    r = await api.post(f"/projects/{project}/schedules", body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed" and error["message"]
    assert error["details"]["errors"][0]["field"] == field, error


async def test_an_edit_is_checked_like_a_new_schedule(api: Api, project: str) -> None:
    await create(api, project, NIGHTLY)
    url = f"/projects/{project}/schedules/nightly"
    for change, field in (({"interval_seconds": 60}, "cron"), ({"timezone": "Nowhere/Town"}, "timezone"),
                          ({"overlap": None}, "overlap")):  # fmt: skip
        r = await api.request("PATCH", url, change)
        assert r.status_code == 422 and r.json()["error"]["details"]["errors"][0]["field"] == field, r.text
    assert (await api.get(url)).json()["cron"] == "0 3 * * *"  # unchanged


async def test_a_viewer_reads_schedules_and_cannot_change_or_run_them(api: Api, project: str) -> None:
    await create(api, project, NIGHTLY)
    viewer = await api.new_key(project, "viewer")
    base = f"/projects/{project}/schedules"
    assert (await api.get(base, key=viewer)).status_code == 200
    assert (await api.get(f"{base}/nightly", key=viewer)).status_code == 200
    assert (await api.get(f"{base}/nightly/firings", key=viewer)).status_code == 200
    for method, path, body in (("POST", base, {**NIGHTLY, "name": "mine"}), ("PATCH", f"{base}/nightly", {}),
                               ("DELETE", f"{base}/nightly", None), ("POST", f"{base}/nightly/run", None),
                               ("POST", f"{base}/nightly/pause", None), ("POST", f"{base}/nightly/resume", None)):  # fmt: skip
        r = await api.request(method, path, body, key=viewer)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path, r.text)
    editor = await api.new_key(project, "editor")
    assert (await api.post(f"{base}/nightly/pause", key=editor)).status_code == 200


async def test_a_notebook_from_the_users_files_is_copied_when_the_schedule_is_saved(api: Api, project: str) -> None:
    name = await put_notebook(api, notebook_of("# parameters\nx = 1", "from agiflow_lab.notebook import emit_result\n"
                                                                      "emit_result({'double': x * 2})"), "sched")  # fmt: skip
    body = {"name": "mine", "interval_seconds": 86400, "job": {"notebook": f"contents:{name}", "parameters": {"x": 4}}}
    editor = await api.new_key(project, "editor")
    r = await api.post(f"/projects/{project}/schedules", body, key=editor)
    assert r.status_code == 403 and r.json()["error"]["details"]["field"] == "job.notebook"  # keys have no files
    await create(api, project, body)
    r = await api.client.delete(api.server.url + f"api/contents/{name}", headers=api.headers())
    assert r.status_code == 204  # gone from the files: the schedule runs its copy
    assert (await api.post(f"/projects/{project}/schedules/mine/pause", key=editor)).status_code == 200
    firing = (await api.post(f"/projects/{project}/schedules/mine/run")).json()
    done = await wait_for(api, project, firing["job_id"])
    assert done["state"] == "succeeded" and done["result"] == {"double": 8}


async def test_an_evaluation_target_follows_its_label_and_the_latest_dataset_when_it_fires(
    api: Api, project: str
) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}", labels=["production"])
    await make_dataset(api, project, "qa", qa_items(2))
    body = {"name": "nightly-eval", "cron": "0 2 * * *", "eval": {
        "prompt": {"name": "qa", "label": "production"}, "dataset": {"name": "qa"}, "model": {"connection": "echo"},
        "evaluators": [{"type": "exact_match"}]}}  # fmt: skip
    made = await create(api, project, body)
    assert made["target"] == "eval" and made["eval"]["dataset"]["version"] is None
    # After the schedule was made: a new prompt version takes the label, and the dataset gets a version 2.
    r = await api.post(f"/projects/{project}/prompts/qa/versions", {"template": "Q: {{question}}?",
                                                                   "labels": ["production"]})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await api.post(f"/projects/{project}/datasets/qa/items", {"items": qa_items(3)})
    assert r.status_code in (200, 201), r.text

    r = await api.post(f"/projects/{project}/schedules/nightly-eval/run")
    assert r.status_code == 201, r.text
    firing = r.json()
    assert firing["manual"] and firing["outcome"] == "started" and firing["run_id"] and firing["job_id"]
    run = (await api.get(f"/projects/{project}/evals/runs/{firing['run_id']}")).json()
    assert run["prompt"]["version"] == 2 and run["prompt"]["ref"] == "label:production"
    assert run["dataset"]["version"] == 2 and run["job_id"] == firing["job_id"]
    history = (await api.get(f"/projects/{project}/schedules/nightly-eval/firings")).json()["items"]
    assert [f["run_id"] for f in history] == [firing["run_id"]]

    missing = {**body, "name": "broken", "eval": {**body["eval"], "dataset": {"name": "nope"}}}
    assert (await api.post(f"/projects/{project}/schedules", missing)).status_code == 404


async def test_a_scheduled_run_below_its_pass_rate_gate_is_announced_and_one_above_is_not(
    api: Api, project: str
) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}", labels=["production"])
    await make_dataset(api, project, "qa", qa_items(4, wrong={3}))  # the echo model passes 3 of 4: 75%
    r = await api.post(f"/projects/{project}/notifications/channels", {"name": "inbox", "kind": "in_app"})
    assert r.status_code == 201, r.text
    target = {"prompt": {"name": "qa", "label": "production"}, "dataset": {"name": "qa"},
              "model": {"connection": "echo"}, "evaluators": [{"type": "exact_match"}]}  # fmt: skip
    for name, gate in (("strict", 0.9), ("lenient", 0.5)):
        made = await create(api, project, {"name": name, "cron": "0 2 * * *", "eval": target, "pass_rate_gate": gate})
        assert made["pass_rate_gate"] == gate
        r = await api.post(f"/projects/{project}/schedules/{name}/run")
        assert r.status_code == 201, r.text
        assert (await wait_run(api, project, r.json()["run_id"]))["aggregates"]["pass_rate"] == 0.75

    async def announced() -> list[dict[str, Any]] | None:
        items = (await api.get(f"/projects/{project}/notifications")).json()["items"]
        return [n for n in items if n["event"] == "schedule.pass_rate_below_gate"] or None

    [notice] = await until(announced, "the strict schedule's run to be announced", timeout=30)
    assert notice["data"]["schedule"] == "strict" and notice["data"]["pass_rate"] == 0.75
    assert (notice["data"]["passed"], notice["data"]["items"], notice["data"]["gate"]) == (3, 4, 0.9)
    assert "below its gate" in notice["title"] and "3 of 4 items passed" in notice["body"]
    # Only the strict one: the lenient run's end was recorded in the same way (its job is final) and said nothing.

    # A gate only makes sense on an evaluation; it can be cleared with null.
    job_target = {"name": "gated-job", "cron": "0 2 * * *", "job": {"notebook": "builtin:hello"}, "pass_rate_gate": 0.5}
    r = await api.post(f"/projects/{project}/schedules", job_target)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "pass_rate_gate", r.text
    r = await api.request("PATCH", f"/projects/{project}/schedules/strict", {"pass_rate_gate": None})
    assert r.status_code == 200 and r.json()["pass_rate_gate"] is None, r.text
    r = await api.request("PATCH", f"/projects/{project}/schedules/strict", {"pass_rate_gate": 1.5})
    assert r.status_code == 422 and "pass_rate_gate" in r.text, r.text


async def test_the_servers_scheduler_fires_an_interval_schedule(api: Api, project: str) -> None:
    await create(api, project, {"name": "often", "interval_seconds": 1, "overlap": "skip",
                                "job": {"notebook": "builtin:hello", "parameters": {"name": "tick"}}})  # fmt: skip
    url = f"/projects/{project}/schedules/often"

    async def finished_firing() -> dict[str, Any] | None:
        items = (await api.get(f"{url}/firings", params={"outcome": "started"})).json()["items"]
        return next((f for f in items if f["job_state"] == "succeeded"), None)

    try:
        done = await until(finished_firing, "a scheduled job to succeed", timeout=90)  # the worker may be busy
    finally:
        await api.post(f"{url}/pause")  # not a job a second for the rest of the session, whatever happened
    assert not done["manual"]
    job = (await api.get(f"/projects/{project}/jobs/{done['job_id']}")).json()
    assert job["result"] == {"greeting": "Hello, tick!", "repeat": 1}
    assert job["idempotency_key"].startswith(f"schedule:{done['schedule_id']}:")

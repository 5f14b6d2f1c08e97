"""Batch inference (issue 12) on the session's real server, workers and kernels: an evaluation run with an
``output_dataset`` writes every item with its model output as that dataset (a new version when it exists),
with or without evaluators; a run with neither is refused naming ``evaluators``; a schedule fires one; the
job API writes a run's outputs once, however often a retried attempt asks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agiflow_lab.config import Settings
from agiflow_lab.db.database import Database
from agiflow_lab.evals.run_access import JobContext
from agiflow_lab.platform import Platform
from agiflow_lab_workers.job_api import JobApi
from tests.support.api import Api
from tests.support.evals import make_connection, make_dataset, make_prompt, qa_items, start_run, wait_run
from tests.support.scripted_llm import ScriptedLLM


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


def batch(dataset: str, output: str, connection: str = "echo", **extra: Any) -> dict[str, Any]:
    return {"prompt": {"name": "qa"}, "dataset": {"name": dataset}, "model": {"connection": connection},
            "output_dataset": output, **extra}  # fmt: skip


async def items_of(api: Api, project: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
    params = {"limit": 1000} | ({} if version is None else {"version": version})
    r = await api.get(f"/projects/{project}/datasets/{name}/items", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_a_run_without_evaluators_writes_every_item_with_its_output_as_a_new_dataset(
    api: Api, project: str
) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "questions", qa_items(3))
    run = await start_run(api, project, batch("questions", "answers"))
    assert run["output_dataset"] == "answers" and run["output_version"] is None and run["evaluators"] == []

    done = await wait_run(api, project, run["id"])
    assert done["state"] == "succeeded", done
    assert done["output_version"] == 1
    agg = done["aggregates"]
    assert (agg["items_done"], agg["errors"], agg["pass_rate"], agg["evaluators"]) == (3, 0, None, [])

    model = done["model"]["model"]
    items = await items_of(api, project, "answers")
    assert [i["id"] for i in items] == ["q0", "q1", "q2"]
    for n, item in enumerate(items):
        assert item["input"] == {"question": f"question {n}"} and item["expected"] == f"Q: question {n}"
        meta = item["metadata"]
        assert meta.pop("latency_ms") >= 0
        assert meta == {"i": n, "output": f"Q: question {n}", "model": model}  # the original metadata kept
    dataset = (await api.get(f"/projects/{project}/datasets/answers")).json()
    assert (dataset["latest_version"], dataset["item_count"]) == (1, 3)
    r = await api.get(f"/projects/{project}/audit", params={"resource_type": "dataset"})
    writes = [e for e in r.json()["items"] if e["resource_id"].startswith("answers")]
    assert writes and {e["actor"] for e in writes} == {f"job:{done['job_id']}"}

    # The report and the compare view take a run that scored nothing.
    report = json.dumps((await api.get(f"/projects/{project}/jobs/{done['job_id']}/notebook")).json())
    assert "answers v1" in report and "Traceback" not in report
    again = await wait_run(api, project, (await start_run(api, project, batch("questions", "answers")))["id"])
    r = await api.get(f"/projects/{project}/evals/compare", params={"runs": f"{done['id']},{again['id']}"})
    assert r.status_code == 200, r.text
    assert (r.json()["regressed"], r.json()["improved"], r.json()["unchanged"]) == (0, 0, 3)


async def test_a_second_run_into_the_same_name_writes_its_next_version_with_exactly_its_items(
    api: Api, project: str
) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "questions", qa_items(3))
    await make_dataset(api, project, "few", qa_items(2))
    first = await wait_run(api, project, (await start_run(api, project, batch("questions", "answers")))["id"])
    second = await wait_run(api, project, (await start_run(api, project, batch("few", "answers")))["id"])
    assert (first["output_version"], second["output_version"]) == (1, 2)
    assert [i["id"] for i in await items_of(api, project, "answers", 1)] == ["q0", "q1", "q2"]
    assert [i["id"] for i in await items_of(api, project, "answers")] == ["q0", "q1"]  # replaced, not appended
    versions = (await api.get(f"/projects/{project}/datasets/answers/versions")).json()["items"]
    assert [v["message"] for v in versions] == [f"outputs of evaluation run {r['id']}" for r in (second, first)]

    # The run's own dataset may take the outputs: its new version does not change what the run pinned.
    own = await wait_run(api, project, (await start_run(api, project, batch("few", "few")))["id"])
    assert (own["dataset"]["version"], own["output_version"]) == (1, 2)
    assert [i["metadata"]["output"] for i in await items_of(api, project, "few")] == ["Q: question 0", "Q: question 1"]


async def test_with_evaluators_the_run_is_scored_and_its_outputs_saved_failed_calls_with_their_error(
    api: Api, project: str, llm: ScriptedLLM
) -> None:
    await llm.areset()
    await llm.ascript(default={"mode": "echo"}, rules=[{"match": "question 1$", "status": 500}])
    await make_connection(api, project, "scripted", llm.openai_base_url, default_model="gpt-4o-mini")
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "questions", qa_items(3, wrong={2}))
    body = batch("questions", "scored", "scripted", evaluators=[{"type": "exact_match"}], max_retries=0)
    done = await wait_run(api, project, (await start_run(api, project, body))["id"])
    assert done["state"] == "succeeded", done
    agg = done["aggregates"]
    assert (agg["items_done"], agg["passed"], agg["errors"], done["output_version"]) == (3, 1, 1, 1)
    assert agg["pass_rate"] == pytest.approx(1 / 3)

    items = {i["id"]: i["metadata"] for i in await items_of(api, project, "scored")}
    assert items["q0"]["output"] == "Q: question 0" and items["q0"]["model"] == "gpt-4o-mini"
    assert "error" not in items["q0"] and "error" not in items["q2"]  # q2 answered, wrongly: not an error
    assert items["q1"]["output"] is None and "500" in items["q1"]["error"]


async def test_a_run_needs_evaluators_or_an_output_dataset(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "questions", qa_items(2))
    neither = {"prompt": {"name": "qa"}, "dataset": {"name": "questions"}, "model": {"connection": "echo"}}
    for body, field in ((neither, "evaluators"), ({**neither, "evaluators": []}, "evaluators"),
                        ({**neither, "output_dataset": "not a name"}, "output_dataset")):  # fmt: skip
        r = await api.post(f"/projects/{project}/evals/runs", body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["errors"][0]["field"] == field, r.text
    assert (await api.get(f"/projects/{project}/evals/runs")).json()["items"] == []


async def test_a_schedule_fires_a_batch_inference(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "questions", qa_items(2))
    body = {"name": "nightly-answers", "cron": "0 2 * * *", "eval": batch("questions", "nightly")}
    r = await api.post(f"/projects/{project}/schedules", body)
    assert r.status_code == 201, r.text
    assert r.json()["eval"]["output_dataset"] == "nightly"
    r = await api.post(f"/projects/{project}/schedules/nightly-answers/run")
    assert r.status_code == 201, r.text
    done = await wait_run(api, project, r.json()["run_id"])
    assert (done["state"], done["output_dataset"], done["output_version"]) == ("succeeded", "nightly", 1)
    assert len(await items_of(api, project, "nightly")) == 2


@pytest.fixture
async def job_api(db_url: str, tmp_path: Path) -> AsyncIterator[JobApi]:
    """A job API of this test's own on the session's database: what a worker serves its kernels."""
    db = Database(db_url, min_size=1, max_size=4)
    await db.open()
    platform = Platform.build(Settings(data_dir=tmp_path, owner="tester"), db, db_url)
    api = JobApi(db, platform.prompts, platform.models, platform.datasets)
    await api.start()
    yield api
    await api.stop()
    await db.close()


async def test_a_retried_attempt_gets_the_version_written_before_never_a_second_one(
    api: Api, project: str, job_api: JobApi
) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "questions", qa_items(3))
    done = await wait_run(api, project, (await start_run(api, project, batch("questions", "answers")))["id"])
    assert done["output_version"] == 1
    token = job_api.grant(JobContext(job_id=done["job_id"], attempt=2, worker_id="test", project=project))

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await client.post(f"{job_api.url}/v1/run/output", headers={"Authorization": f"Bearer {token}"})

    for _ in range(2):
        r = await ask()
        assert r.status_code == 200, r.text
        assert r.json() == {"dataset": "answers", "version": 1, "item_count": 3, "written": False}

    # A worker that died between the dataset's commit and the run's: the next attempt adopts the version
    # whose message names the run.
    async with job_api.db.connection() as conn:
        await conn.execute("UPDATE control.eval_runs SET output_version = NULL WHERE id = %s", (done["id"],))
    r = await ask()
    assert r.status_code == 200 and r.json()["version"] == 1 and not r.json()["written"], r.text
    assert (await api.get(f"/projects/{project}/evals/runs/{done['id']}")).json()["output_version"] == 1
    assert (await api.get(f"/projects/{project}/datasets/answers")).json()["latest_version"] == 1
    await job_api.revoke(token)

"""Built-in batch tasks as jobs on the session's real server, workers and kernels: ``builtin:dataset_transform``
de-duplicates, filters (a Python expression, run in the job's kernel), samples and splits a dataset version
into new datasets of the job's own project; bad parameters fail the job naming the parameter; a job's token
opens its own project's datasets only; a schedule may fire the task."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from agiflow_lab.datasets import transform
from tests.support.api import Api
from tests.support.evals import make_dataset
from tests.support.jobs import notebook_of, put_notebook, submit, wait_for

TASK = "builtin:dataset_transform"


def question_items() -> list[dict[str, Any]]:
    """Ten items: q7 repeats q1 (another id, same input and expected), q8 repeats q2's question only, and
    q3 and q9 have questions of ten characters or fewer."""
    questions = ["what is one?", "what is two?", "what is three?", "short", "what is five?", "what is six?",
                 "what is seven?", "what is two?", "what is three?", "tiny"]  # fmt: skip
    expected = ["1", "2", "3", "4", "5", "6", "7", "2", "three", "10"]
    return [{"id": f"q{i}", "input": {"question": q}, "expected": e, "metadata": {"i": i}}
            for i, (q, e) in enumerate(zip(questions, expected, strict=True))]  # fmt: skip


@pytest.fixture(scope="module")
async def project(api: Api) -> str:
    """One project for the module's jobs (each test writes datasets of its own names)."""
    slug = f"bt-{uuid.uuid4().hex[:10]}"
    assert (await api.post("/projects", {"slug": slug, "name": slug})).status_code == 201
    await make_dataset(api, slug, "questions", question_items())
    return slug


async def run(api: Api, project: str, **parameters: Any) -> dict[str, Any]:
    job = await submit(api, project, {"notebook": TASK, "parameters": parameters})
    return await wait_for(api, project, job["id"])


async def items_of(api: Api, project: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
    params = {"limit": 1000} | ({} if version is None else {"version": version})
    r = await api.get(f"/projects/{project}/datasets/{name}/items", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return list(r.json()["items"])


async def test_dedupe_filter_and_split_write_new_datasets_with_exactly_the_kept_items(api: Api, project: str) -> None:
    done, by_question = await asyncio.gather(
        run(api, project, dataset="questions", dedupe=True, filter='len(item["input"]["question"]) > 10',
            split={"train": 0.75, "test": 0.25}, seed=3, output="questions-prep"),
        run(api, project, dataset="questions", dedupe=["input.question"], output="by-question"),
    )  # fmt: skip
    assert done["state"] == "succeeded", done["error"]
    by_id = {item["id"]: item for item in question_items()}
    kept = [by_id[i] for i in ("q0", "q1", "q2", "q4", "q5", "q6", "q8")]  # q7 a duplicate; q3, q9 too short
    parts = transform.split(kept, {"test": 0.25, "train": 0.75}, 3)  # parts are cut in name order
    train, test = parts["train"], parts["test"]
    assert (len(train), len(test)) == (5, 2)
    assert done["result"] == {
        "source": {"name": "questions", "version": 1, "item_count": 10},
        "counts": {"read": 10, "after_dedupe": 9, "after_filter": 7, "after_sample": 7},
        "outputs": [{"part": "test", "dataset": "questions-prep-test", "version": 1, "items": 2},
                    {"part": "train", "dataset": "questions-prep-train", "version": 1, "items": 5}],
    }  # fmt: skip
    assert await items_of(api, project, "questions-prep-train") == train
    assert await items_of(api, project, "questions-prep-test") == test
    assert sorted(i["id"] for i in train + test) == sorted(i["id"] for i in kept)  # every kept item, once

    assert by_question["state"] == "succeeded", by_question["error"]
    assert [i["id"] for i in await items_of(api, project, "by-question")] == [f"q{i}" for i in (0, 1, 2, 3, 4, 5, 6, 9)]


async def test_a_seeded_sample_is_repeatable_and_a_rerun_writes_a_new_version(api: Api, project: str) -> None:
    first, fraction = await asyncio.gather(
        run(api, project, dataset="questions", version=1, sample=4, seed=11, output="questions-sample"),
        run(api, project, dataset="questions", sample=0.5, seed=11, output="questions-half"),
    )
    second = await run(api, project, dataset="questions", sample=4, seed=11, output="questions-sample")
    assert first["state"] == second["state"] == fraction["state"] == "succeeded", (first, second, fraction)
    assert [o["version"] for o in first["result"]["outputs"] + second["result"]["outputs"]] == [1, 2]
    once, again = (
        await items_of(api, project, "questions-sample", 1),
        await items_of(api, project, "questions-sample", 2),
    )
    assert once == again == transform.sample(question_items(), 4, 11)
    assert len(once) == 4 and [i["id"] for i in once] == sorted((i["id"] for i in once), key=lambda s: int(s[1:]))
    assert await items_of(api, project, "questions-half") == transform.sample(question_items(), 5, 11)


async def test_a_bad_filter_or_version_fails_the_job_naming_the_parameter(api: Api, project: str) -> None:
    cases = [  # (parameters, the parameter the job's error names, what it says)
        ({"filter": 'len(item["input"]["question"] > 10'}, "filter", "is not a Python expression"),
        ({"filter": 'item["input"]["nope"]'}, "filter", "failed on item 'q0': KeyError: 'nope'"),
        ({"version": 9}, "version", "'questions' has no version 9 (latest is 1)"),
    ]
    jobs = await asyncio.gather(
        *[run(api, project, **{"dataset": "questions", "output": f"bad-{i}", **parameters})
          for i, (parameters, _, _) in enumerate(cases)]
    )  # fmt: skip
    for i, (done, (_, named, says)) in enumerate(zip(jobs, cases, strict=True)):
        assert done["state"] == "failed", done
        assert done["error"]["ename"] == "ParameterError"
        assert done["error"]["evalue"].startswith(f"parameter {named!r}: ") and says in done["error"]["evalue"], done
        assert (await api.get(f"/projects/{project}/datasets/bad-{i}")).status_code == 404  # nothing written


@pytest.mark.parametrize(
    ("parameters", "named", "says"),
    [
        ({"split": {"train": 0.8, "test": 0.1}}, "split", "the fractions must add up to 1, not 0.9"),
        ({"split": {"a/b": 1.0}}, "split", "part name 'a/b'"),
        ({"sample": "ten"}, "sample", "a count of items (an int) or a fraction in (0, 1]"),
        ({"sample": 1.5}, "sample", "a fraction in (0, 1]"),
        ({"dedupe": ["question"]}, "dedupe", "field 'question' must start with one of id, input, expected, metadata"),
        ({"dataset": "a b"}, "dataset", "must be the name of a dataset"),
        ({"version": 0}, "version", "must be a version number"),
        ({"seed": "x"}, "seed", "must be a whole number"),
        ({"output": ""}, "output", "must name the new dataset"),
        ({"output": "x" * 129}, "output", "is not a valid dataset name"),
    ],
)
def test_parameters_are_checked_before_anything_is_read(parameters: dict[str, Any], named: str, says: str) -> None:
    """The same check the notebook's first call makes: these fail a job just as the ones above do."""
    with pytest.raises(transform.ParameterError) as raised:
        transform.parse(**{"dataset": "questions", "output": "out", **parameters})
    assert raised.value.parameter == named
    assert str(raised.value).startswith(f"parameter {named!r}: ") and says in str(raised.value)


PROBE = """
import json, os, urllib.error, urllib.request

def status(method, path, body=None, token=os.environ["AGIFLOW_JOB_TOKEN"]):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(os.environ["AGIFLOW_JOB_API"] + "/v1" + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code

item = {"id": "x", "input": {"question": "planted"}}
found = {
    "other_pin": status("GET", f"/datasets/{OTHER}"),
    "other_items": status("GET", f"/datasets/{OTHER}/items"),
    "other_write": status("POST", f"/datasets/{OTHER}/items", {"items": [item], "mode": "replace"}),
    "own_create": status("POST", "/datasets", {"name": "mine", "items": [item]}),
    "own_items": status("GET", "/datasets/mine/items"),
    "forged_token": status("GET", "/datasets/mine/items", token="agj_" + "x" * 43),
    "bad_body": status("POST", "/datasets/mine/items", {"items": [{"input": "not an object"}]}),
}
from agiflow_lab.notebook import emit_result
emit_result(found)
"""


async def test_a_jobs_token_opens_only_its_own_projects_datasets(api: Api, project: str) -> None:
    other = f"bt-{uuid.uuid4().hex[:10]}"
    assert (await api.post("/projects", {"slug": other, "name": other})).status_code == 201
    secret = "secret-" + uuid.uuid4().hex[:6]
    await make_dataset(api, project, secret, question_items()[:2])
    name = await put_notebook(api, notebook_of(f"OTHER = {secret!r}\n" + PROBE), "dataset-probe")
    probe, task = await asyncio.gather(
        wait_for(api, other, (await submit(api, other, {"notebook": f"contents:{name}"}))["id"]),
        run(api, other, dataset=secret, output="stolen"),
    )
    assert probe["state"] == "succeeded", probe
    assert probe["result"] == {"other_pin": 404, "other_items": 404, "other_write": 404, "own_create": 201,
                               "own_items": 200, "forged_token": 401, "bad_body": 422}  # fmt: skip
    assert task["state"] == "failed" and task["error"]["evalue"].startswith("parameter 'dataset'"), task
    assert await items_of(api, project, secret) == question_items()[:2]  # untouched
    assert (await api.get(f"/projects/{other}/datasets/stolen")).status_code == 404
    audit = (await api.get(f"/projects/{other}/audit", params={"limit": 100})).json()["items"]
    assert any(a["action"] == "dataset.create" and a["actor"] == f"job:{probe['id']}" for a in audit), audit


async def test_a_schedule_may_fire_the_task(api: Api, project: str) -> None:
    body = {"name": "nightly-prep", "cron": "0 3 * * *",
            "job": {"notebook": TASK, "parameters": {"dataset": "questions", "dedupe": True, "sample": 0.5,
                                                     "split": {"train": 0.8, "test": 0.2}, "output": "nightly"}}}  # fmt: skip
    r = await api.post(f"/projects/{project}/schedules", body)
    assert r.status_code == 201, r.text
    assert r.json()["job"]["notebook"] == TASK and r.json()["job"]["parameters"]["split"] == {"train": 0.8, "test": 0.2}

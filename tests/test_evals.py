"""Evaluation runs end to end: API → job → evaluate notebook on a worker → results → aggregates.

Model calls go through the official ``openai`` client to a scripted OpenAI-compatible server on
127.0.0.1 (tests/support/scripted_llm.py); nothing is patched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.evals import (
    make_connection,
    make_dataset,
    make_prompt,
    qa_items,
    results,
    start_run,
    wait_run,
)
from tests.support.polling import until
from tests.support.scripted_llm import ScriptedLLM
from tests.test_jobs import connect, receive

CHECKS = [{"type": "exact_match"}, {"type": "contains"}, {"type": "levenshtein", "threshold": 0.9}]


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def scripted(llm: ScriptedLLM) -> ScriptedLLM:
    llm.reset()
    return llm


def run_body(prompt: str, dataset: str, connection: str = "echo", **extra: Any) -> dict[str, Any]:
    return {"prompt": {"name": prompt}, "dataset": {"name": dataset}, "model": {"connection": connection},
            "evaluators": CHECKS, **extra}  # fmt: skip


async def test_an_echo_run_scores_every_item_and_leaves_a_report(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(5, wrong={3}))
    run = await start_run(api, project, run_body("qa", "qa"))
    assert run["state"] in ("queued", "dispatched", "running")
    assert run["prompt"] == {"name": "qa", "version": 1, "ref": "label:latest"}
    assert run["dataset"] == {"name": "qa", "version": 1}
    assert run["model"]["builtin"] is True and run["model"]["kind"] == "echo"

    done = await wait_run(api, project, run["id"])
    assert done["state"] == "succeeded", done
    agg = done["aggregates"]
    assert (agg["items_total"], agg["items_done"], agg["passed"], agg["errors"]) == (5, 5, 4, 0)
    assert agg["pass_rate"] == pytest.approx(0.8)
    by_name = {e["name"]: e for e in agg["evaluators"]}
    assert by_name["exact_match"]["passed"] == 4 and by_name["exact_match"]["pass_rate"] == pytest.approx(0.8)
    assert agg["tokens_in"] == 5 * 3 and agg["tokens_out"] == 5 * 3  # "Q: question i" is three words
    assert agg["cost"] == 0 and agg["unpriced_items"] == 0  # echo is free, and priced as such

    items = await results(api, project, run["id"])
    assert [i["item_id"] for i in items] == [f"q{i}" for i in range(5)]
    first = items[0]
    assert first["rendered"] == [{"role": "user", "content": "Q: question 0"}]
    assert first["output"] == "Q: question 0" and first["passed"] is True and first["attempts"] == 1
    assert first["scores"]["exact_match"] == {
        "score": 1.0,
        "passed": True,
        "explanation": first["scores"]["exact_match"]["explanation"],
        "error": None,
    }
    wrong = items[3]
    assert wrong["passed"] is False and wrong["scores"]["exact_match"]["score"] == 0.0
    assert [i["item_id"] for i in await results(api, project, run["id"], failed_only="true")] == ["q3"]

    job = (await api.get(f"/projects/{project}/jobs/{done['job_id']}")).json()
    assert job["notebook"] == "builtin:evaluate" and job["result"]["run_id"] == run["id"]
    assert job["result"]["pass_rate"] == pytest.approx(0.8)
    report = (await api.get(f"/projects/{project}/jobs/{done['job_id']}/notebook")).json()
    text = json.dumps(report)
    for heading in ("Evaluators", "Score distribution", "Latency", "Worst items"):
        assert heading in text
    charts = [o["data"]["image/svg+xml"] for c in report["cells"] for o in c.get("outputs", [])
              if "image/svg+xml" in o.get("data", {})]  # fmt: skip
    assert len(charts) == 2  # the score and latency charts
    score_chart = "".join(charts[0])
    assert "exact_match: score distribution" in score_chart
    assert "<title>1</title>" in score_chart and "<title>4</title>" in score_chart  # 1 item scored 0, 4 scored 1
    assert "built-in echo" in text  # labelled as such in the report
    opened = await api.post(f"/projects/{project}/jobs/{done['job_id']}/notebook/open")
    assert done["name"] == "qa v1 × qa v1"  # named after the run, in characters any file system takes
    assert opened.json()["path"] == f"agiflow-jobs/{project}/eval-qa-v1-qa-v1-{run['id'][:8]}.ipynb"


async def test_a_runs_items_open_as_traces_with_their_scores(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(3, wrong={1}))
    run = await start_run(api, project, run_body("qa", "qa"))
    assert (await wait_run(api, project, run["id"]))["state"] == "succeeded"
    items = {i["item_id"]: i for i in await results(api, project, run["id"])}

    async def traces() -> list[dict[str, Any]]:  # the run is the session of its items' traces
        r = await api.get(f"/projects/{project}/traces", params={"session": run["id"]})
        return [t for t in r.json()["items"] if t["span_count"] == 2 + len(CHECKS)]

    async def all_three() -> list[dict[str, Any]] | None:
        found = await traces()
        return found if len(found) == 3 else None

    stored = await until(all_three, "the run's three item traces to be stored", timeout=60)
    assert sorted(t["trace_id"] for t in stored) == sorted(i["trace_id"] for i in items.values())
    summary = next(t for t in stored if t["trace_id"] == items["q0"]["trace_id"])
    assert (summary["name"], summary["prompt_name"], summary["prompt_version"]) == ("eval item q0", "qa", 1)
    assert summary["input_preview"] is not None and "question 0" in summary["input_preview"]

    detail = (await api.get(f"/projects/{project}/traces/{items['q1']['trace_id']}")).json()
    by_name = {s["name"]: s for s in detail["spans"]}
    root, call = by_name["eval item q1"], by_name["chat echo"]
    assert call["parent_span_id"] == root["span_id"] and call["span_type"] == "chat"
    assert (call["tokens_in"], call["tokens_out"], call["output"]) == (3, 3, "Q: question 1")
    assert by_name["evaluator exact_match"]["span_type"] == "evaluator"
    assert {(s["name"], s["value"], s["source"]) for s in detail["scores"]} >= {("exact_match", 0.0, "eval")}
    failing = await api.get(
        f"/projects/{project}/traces", params={"session": run["id"], "score_name": "exact_match", "score_max": 0}
    )
    assert [t["trace_id"] for t in failing.json()["items"]] == [items["q1"]["trace_id"]]


async def test_model_calls_are_retried_on_429_and_5xx_and_failures_stay_per_item(
    api: Api, project: str, scripted: ScriptedLLM
) -> None:
    await scripted.ascript(
        default={"mode": "echo", "latency_ms": 20},
        rules=[{"match": "question 1$", "status": 429, "times": 2, "retry_after": 0.1},
               {"match": "question 2$", "status": 503, "times": 1},
               {"match": "question 4$", "status": 500}],
    )  # fmt: skip
    await make_connection(api, project, "local", scripted.openai_base_url)
    await make_prompt(api, project, "qa", "Q: {{question}}", config={"model": "gpt-4o-mini"})
    await make_dataset(api, project, "qa", qa_items(6))
    run = await start_run(api, project, run_body("qa", "qa", "local", max_retries=2, concurrency=3))
    assert run["model"]["model"] == "gpt-4o-mini" and run["model"]["builtin"] is False

    done = await wait_run(api, project, run["id"])
    assert done["state"] == "succeeded", done
    items = {i["item_id"]: i for i in await results(api, project, run["id"])}
    assert items["q1"]["attempts"] == 3 and items["q1"]["passed"] is True
    assert items["q2"]["attempts"] == 2 and items["q2"]["passed"] is True
    assert items["q4"]["passed"] is False and "model call failed" in items["q4"]["error"]
    assert items["q4"]["scores"] == {} and items["q4"]["output"] is None
    assert items["q0"]["latency_ms"] >= 20
    agg = done["aggregates"]
    assert (agg["items_done"], agg["passed"], agg["errors"]) == (6, 5, 1)
    assert agg["latency_p50_ms"] >= 20 and agg["latency_p95_ms"] >= agg["latency_p50_ms"]
    assert agg["cost"] is not None and agg["cost"] > 0 and agg["unpriced_items"] == 0

    calls = [r for r in await scripted.arequests() if r["path"].endswith("/chat/completions")]
    per_item = {f"q{i}": sum(1 for r in calls if r["last_user"] == f"Q: question {i}") for i in range(6)}
    assert per_item == {"q0": 1, "q1": 3, "q2": 2, "q3": 1, "q4": 3, "q5": 1}  # 500s: 1 + max_retries


async def test_a_model_missing_from_the_price_table_is_unpriced_not_free(
    api: Api, project: str, scripted: ScriptedLLM
) -> None:
    await scripted.ascript()
    await make_connection(api, project, "local", scripted.openai_base_url, default_model="my-finetune-7b")
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(3))
    done = await wait_run(api, project, (await start_run(api, project, run_body("qa", "qa", "local")))["id"])
    assert done["model"]["model"] == "my-finetune-7b"
    agg = done["aggregates"]
    assert agg["cost"] is None and agg["unpriced_items"] == 3 and agg["tokens_in"] == 9
    assert all(i["cost"] is None for i in await results(api, project, done["id"]))


async def test_evaluator_errors_and_missing_variables_are_recorded_per_item(api: Api, project: str) -> None:
    code = ("def evaluate(output, expected, input, metadata):\n"
            "    if metadata['i'] == 1:\n        raise ValueError('cannot judge item one')\n"
            "    return {'score': 0.5, 'explanation': 'half'}\n")  # fmt: skip
    await make_prompt(api, project, "qa", "Q: {{question}}")
    items = qa_items(3)
    items[2]["input"] = {"other": "no question here"}
    await make_dataset(api, project, "qa", items)
    body = run_body("qa", "qa", evaluators=[{"type": "python", "name": "custom", "code": code, "threshold": 0.4}])
    done = await wait_run(api, project, (await start_run(api, project, body))["id"])
    assert done["state"] == "succeeded", done
    got = {i["item_id"]: i for i in await results(api, project, done["id"])}
    assert got["q0"]["scores"]["custom"] == {"score": 0.5, "passed": True, "explanation": "half", "error": None}
    assert "cannot judge item one" in got["q1"]["scores"]["custom"]["error"] and got["q1"]["passed"] is False
    assert "missing variable" in got["q2"]["error"] and got["q2"]["rendered"] is None
    agg = done["aggregates"]
    assert (agg["passed"], agg["errors"], agg["evaluator_errors"]) == (1, 1, 1)


async def test_an_llm_judge_scores_with_a_pinned_rubric_from_the_registry(
    api: Api, project: str, scripted: ScriptedLLM
) -> None:
    await scripted.ascript(
        rules=[{"match": "Grade", "reply": '```json\n{"score": 8, "reasoning": "mostly right"}\n```'}]
    )
    await make_connection(api, project, "judge", scripted.openai_base_url, default_model="gpt-4o-mini")
    await make_prompt(api, project, "rubric", [{"role": "system", "content": "You grade answers on 0-10."},
                                               {"role": "user", "content": "Grade {{output}} against {{expected}}"}],
                      labels=["production"])  # fmt: skip
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(2))
    judge = {"type": "llm_judge", "name": "judge", "connection": "judge", "prompt": "rubric", "label": "production",
             "scale": 10, "threshold": 0.7}  # fmt: skip
    run = await start_run(api, project, run_body("qa", "qa", evaluators=[judge]))
    pinned = run["evaluators"][0]
    assert (pinned["label"], pinned["version"]) == (None, 1)
    # Moving on after submit does not change what the run uses.
    await api.post(f"/projects/{project}/prompts/rubric/versions",
                   {"template": [{"role": "user", "content": "changed {{output}}"}], "labels": ["production"]})  # fmt: skip
    done = await wait_run(api, project, run["id"])
    assert done["state"] == "succeeded", done
    for item in await results(api, project, run["id"]):
        assert item["scores"]["judge"] == {"score": 0.8, "passed": True, "explanation": "mostly right", "error": None}
    judged = [r for r in await scripted.arequests() if "Grade" in r["last_user"]]
    assert len(judged) == 2 and all("changed" not in r["last_user"] for r in judged)


async def test_progress_reaches_the_websocket_while_the_run_goes(api: Api, project: str, scripted: ScriptedLLM) -> None:
    await scripted.ascript(default={"mode": "echo", "latency_ms": 40})
    await make_connection(api, project, "local", scripted.openai_base_url, default_model="gpt-4o-mini")
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(60))
    ws = await connect(api, project)
    run = await start_run(api, project, run_body("qa", "qa", "local", concurrency=2))
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(120):
        while not seen or seen[-1]["done"] < 60:
            event = await receive(ws)
            if event["type"] == "progress" and event["data"].get("unit") == "items":
                assert event["job_id"] == run["job_id"]
                seen.append(event["data"])
    ws.close()
    assert len(seen) >= 3, seen  # ~1.2 s of work reported every 0.5 s, not only at the end
    assert [d["done"] for d in seen] == sorted(d["done"] for d in seen)
    assert seen[-1] == {"unit": "items", "run_id": run["id"], "done": 60, "total": 60, "passed": 60, "errors": 0}


async def test_comparing_runs_shows_aggregates_and_items_that_regressed_or_improved(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    items = qa_items(6, wrong={0})
    items[5]["expected"] = "Q: question"  # near the v1 echo, further from v2's: fails in both, scores lower in v2
    await make_dataset(api, project, "qa", items)
    checks = {
        **run_body("qa", "qa"),
        "evaluators": [{"type": "exact_match"}, {"type": "levenshtein", "threshold": 0.9}],
    }
    base = await wait_run(api, project, (await start_run(api, project, checks))["id"])
    # v2 answers differently: items whose expected is the v1 echo now fail; q0 and q5 fail in both runs.
    r = await api.post(f"/projects/{project}/prompts/qa/versions", {"template": "{{question}}"})
    assert r.status_code == 201, r.text
    cand = await wait_run(api, project, (await start_run(api, project, checks))["id"])
    assert (base["aggregates"]["passed"], cand["aggregates"]["passed"]) == (4, 0)

    r = await api.get(f"/projects/{project}/evals/compare?runs={base['id']},{cand['id']}")
    assert r.status_code == 200, r.text
    comparison = r.json()
    assert [run["id"] for run in comparison["runs"]] == [base["id"], cand["id"]]
    # Regressed and improved follow the verdict (pass → fail, fail → pass), never the score: q0 failing with a
    # higher score in v2 (0.12 → 0.15) is not "improved", q5 failing with a lower one is not "regressed".
    counts = {k: comparison[k] for k in ("regressed", "improved", "unchanged", "missing", "score_up", "score_down")}
    assert counts == {"regressed": 4, "improved": 0, "unchanged": 2, "missing": 0, "score_up": 1, "score_down": 1}
    assert [i["item_id"] for i in comparison["items"]] == ["q1", "q2", "q3", "q4"]
    first = comparison["items"][0]
    assert first["change"] == "regressed"
    assert [res["output"] for res in first["results"]] == ["Q: question 1", "question 1"]
    assert first["score_delta"] == pytest.approx(first["results"][1]["score"] - first["results"][0]["score"])
    assert first["score_delta"] < 0

    only = await api.get(f"/projects/{project}/evals/compare?runs={base['id']},{cand['id']}&change=unchanged")
    unchanged = {i["item_id"]: i for i in only.json()["items"]}
    assert list(unchanged) == ["q0", "q5"]
    for item in unchanged.values():
        before, after = item["results"]
        assert not before["passed"] and not after["passed"]
        assert item["score_delta"] == pytest.approx(after["score"] - before["score"])
    assert unchanged["q0"]["score_delta"] > 0 > unchanged["q5"]["score_delta"]
    listed = (await api.get(f"/projects/{project}/evals/runs?dataset=qa")).json()["items"]
    assert [run["id"] for run in listed] == [cand["id"], base["id"]]


async def test_bad_run_requests_are_4xx_naming_the_field_and_write_nothing(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(2))
    cases: list[tuple[dict[str, Any], int, str]] = [
        (run_body("nope", "qa"), 404, "prompt"),
        (run_body("qa", "nope"), 404, "dataset"),
        (run_body("qa", "qa", "nope"), 404, "connection"),
        ({**run_body("qa", "qa"), "evaluators": []}, 422, "evaluators"),
        ({**run_body("qa", "qa"), "evaluators": [{"type": "regex", "pattern": "("}]}, 422, "pattern"),
        ({**run_body("qa", "qa"), "evaluators": [{"type": "bogus"}]}, 422, "evaluators"),
        (
            {**run_body("qa", "qa"), "evaluators": [{"type": "exact_match"}, {"type": "exact_match"}]},
            422,
            "exact_match",
        ),
        ({**run_body("qa", "qa"), "prompt": {"name": "qa", "label": "x", "version": 1}}, 422, "prompt"),
        ({**run_body("qa", "qa"), "dataset": {"name": "qa", "version": 9}}, 404, "9"),
        ({**run_body("qa", "qa"), "concurrency": 0}, 422, "concurrency"),
        ({**run_body("qa", "qa"), "surprise": 1}, 422, "surprise"),
    ]
    for body, status, mentions in cases:
        r = await api.post(f"/projects/{project}/evals/runs", body)
        assert r.status_code == status, (body, r.text)
        assert mentions in json.dumps(r.json()["error"]), (body, r.text)
    assert (await api.get(f"/projects/{project}/evals/runs")).json()["items"] == []
    assert (await api.get(f"/projects/{project}/jobs")).json()["items"] == []


async def test_submitting_twice_with_one_key_gives_one_run_and_a_run_can_be_cancelled(
    api: Api, project: str, scripted: ScriptedLLM
) -> None:
    await scripted.ascript(default={"mode": "echo", "latency_ms": 200})
    await make_connection(api, project, "slow", scripted.openai_base_url, default_model="gpt-4o-mini")
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(200))
    body = {
        **run_body("qa", "qa", "slow"),
        "idempotency_key": "nightly-1",
        "concurrency": 1,
        "output_dataset": "qa-out",
    }
    first = await start_run(api, project, body)
    again = await api.post(f"/projects/{project}/evals/runs", body)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    while (await api.get(f"/projects/{project}/evals/runs/{first['id']}")).json()["aggregates"]["items_done"] < 2:
        await asyncio.sleep(0.2)
    r = await api.post(f"/projects/{project}/evals/runs/{first['id']}/cancel")
    assert r.status_code == 200, r.text
    done = await wait_run(api, project, first["id"])
    assert done["state"] == "cancelled"
    kept = {i["item_id"] for i in await results(api, project, first["id"])}
    assert 2 <= len(kept) == done["aggregates"]["items_done"] < 200  # what was scored is kept
    assert (await api.get(f"/projects/{project}/evals/runs/{first['id']}")).json()["aggregates"] == done["aggregates"]

    # Retrying the job resumes the run: finished items are not asked again, and the aggregates kept
    # for the cancelled run give way to the new outcome.
    await scripted.ascript(default={"mode": "echo"})
    r = await api.post(f"/projects/{project}/jobs/{first['job_id']}/retry")
    assert r.status_code == 200, r.text
    resumed = await wait_run(api, project, first["id"])
    assert resumed["state"] == "succeeded" and resumed["aggregates"]["items_done"] == 200
    asked: dict[str, int] = {}
    for call in await scripted.arequests():
        asked[call["last_user"]] = asked.get(call["last_user"], 0) + 1
    assert len(asked) == 200
    # Items recorded before the cancel are not asked again (ones answered but not yet written when the
    # kernel was stopped are: a result counts once it is in the database).
    assert all(asked[f"Q: question {item_id[1:]}"] == 1 for item_id in kept)
    # A batch inference's outputs include the items the cancelled attempt did, written once, by the retry.
    assert resumed["output_version"] == 1 and done["output_version"] is None
    r = await api.get(f"/projects/{project}/datasets/qa-out/items", params={"limit": 1000})
    outputs = {i["id"]: i["metadata"]["output"] for i in r.json()["items"]}
    assert outputs == {f"q{n}": f"Q: question {n}" for n in range(200)}


async def test_a_viewer_reads_runs_but_cannot_start_one(api: Api, project: str) -> None:
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(1))
    r = await api.put(f"/projects/{project}/members/vera", {"role": "viewer"})
    assert r.status_code == 200, r.text
    r = await api.post(f"/projects/{project}/evals/runs", run_body("qa", "qa"), user="vera")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await api.get(f"/projects/{project}/evals/runs", user="vera")).status_code == 200
    types = (await api.get(f"/projects/{project}/evals/evaluators", user="vera")).json()["items"]
    assert {
        "exact_match",
        "contains",
        "regex",
        "json_valid",
        "json_schema",
        "numeric",
        "levenshtein",
        "llm_judge",
        "python",
    } <= {t["type"] for t in types}


async def test_a_run_through_an_anthropic_connection_uses_the_messages_api(
    api: Api, project: str, scripted: ScriptedLLM
) -> None:
    await scripted.ascript()
    await make_connection(api, project, "claude", scripted.anthropic_base_url, kind="anthropic",
                          default_model="claude-3-5-haiku-20241022")  # fmt: skip
    await make_prompt(api, project, "qa", [{"role": "system", "content": "Answer briefly."},
                                           {"role": "user", "content": "Q: {{question}}"}])  # fmt: skip
    await make_dataset(api, project, "qa", qa_items(3))
    done = await wait_run(api, project, (await start_run(api, project, run_body("qa", "qa", "claude")))["id"])
    assert done["state"] == "succeeded", done
    assert done["aggregates"]["passed"] == 3 and done["aggregates"]["cost"] > 0  # a dated Claude name is priced
    calls = [r for r in await scripted.arequests() if r["path"] == "/v1/messages"]
    assert len(calls) == 3

"""Evaluation runs from a notebook's point of view (the SDK) and from CI's (the ``agiflow-lab eval`` command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from agiflow_lab import Client
from tests.support.api import Api
from tests.support.evals import qa_items
from tests.support.servers import JupyterServer

SCRIPT = str(Path(sys.executable).with_name("agiflow-lab"))


@pytest.fixture
async def owner_key(api: Api, project: str) -> str:
    return await api.new_key(project, "owner")


@pytest.fixture
def client(jupyter: JupyterServer, owner_key: str, project: str) -> Client:
    c = Client(url=jupyter.url, api_key=owner_key, project=project, cache=False)
    return c


def eval_cli(server: JupyterServer, key: str, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGIFLOW_URL": server.url, "AGIFLOW_API_KEY": key}
    return subprocess.run([SCRIPT, "eval", *args, "--project", project], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip


async def qa_prompt(api: Api, project: str) -> None:
    r = await api.post(f"/projects/{project}/prompts", {"name": "qa", "template": "Q: {{question}}"})
    assert r.status_code == 201, r.text


async def test_a_notebook_runs_an_evaluation_and_reads_results_as_a_dataframe(
    api: Api, project: str, client: Client
) -> None:
    await qa_prompt(api, project)
    frame = pd.DataFrame([{"question": item["input"]["question"], "expected": item["expected"]}
                          for item in qa_items(8, wrong={2, 5})])  # fmt: skip
    client.datasets.create("qa", frame)
    checks = ["exact_match", {"type": "levenshtein", "threshold": 0.5}]
    run = client.evals.run("qa", "qa", evaluators=checks)
    assert run.run.model["builtin"] is True  # the quickstart's echo connection, labelled as such
    finished = run.wait(timeout=120)
    assert finished.state == "succeeded"
    assert finished.aggregates.pass_rate == pytest.approx(6 / 8)
    results = run.results()
    assert len(results) == 8
    assert {"output", "score", "passed", "latency_ms", "exact_match.score", "levenshtein.passed"} <= set(
        results.columns
    )
    assert results["exact_match.score"].sum() == 6
    failed = run.results(failed_only=True)
    assert sorted(failed["input"].map(lambda i: i["question"])) == ["question 2", "question 5"]
    assert "pass rate 75.0%" in repr(run)

    again = client.evals.run("qa", "qa", evaluators=checks, wait=True, progress=False)
    comparison = run.compare(again)
    summary = comparison.summary()
    assert list(summary.columns) == [f"{r.name} ({r.id[:8]})" for r in (run.run, again.run)]
    assert summary.loc["pass rate"].tolist() == [pytest.approx(0.75), pytest.approx(0.75)]
    assert (comparison.regressed, comparison.improved, comparison.unchanged) == (0, 0, 8)
    assert (comparison.score_up, comparison.score_down) == (0, 0)
    assert comparison.items().empty  # nothing changed between the two runs


async def test_a_comparison_counts_verdict_changes_and_shows_score_moves_beside_them(
    api: Api, project: str, client: Client, jupyter: JupyterServer, owner_key: str
) -> None:
    """Regressed is pass → fail and improved fail → pass; an item failing in both runs is unchanged, however
    its score moved (0.12 → 0.15 is not "improved"), and the move is shown beside it."""
    await qa_prompt(api, project)  # v1 "Q: {{question}}", then v2 "{{question}}"
    expected = {"q0": "Q: question 0",  # v1 passes, v2 fails: regressed
                "q1": "question 1",  # v1 fails, v2 passes: improved
                "q2": "wrong 2",  # fails in both, closer to v2's answer: score up
                "q3": "Q: question"}  # fails in both, closer to v1's answer: score down  # fmt: skip
    client.datasets.create("qa", [{"id": k, "input": {"question": f"question {k[1]}"}, "expected": v}
                                  for k, v in expected.items()])  # fmt: skip
    checks = ["exact_match", {"type": "levenshtein", "threshold": 0.9}]
    first = client.evals.run("qa", "qa", evaluators=checks, wait=True, progress=False)
    client.prompts.add_version("qa", "{{question}}")
    second = client.evals.run("qa", "qa", evaluators=checks, wait=True, progress=False)

    comparison = first.compare(second)
    counts = (comparison.regressed, comparison.improved, comparison.unchanged, comparison.missing)
    assert counts == (1, 1, 2, 0)
    assert (comparison.score_up, comparison.score_down) == (1, 1)
    assert "1 regressed, 1 improved, 2 unchanged (1 score up, 1 score down)" in repr(comparison)
    changed = comparison.items()
    assert changed["change"].to_dict() == {"q0": "regressed", "q1": "improved"}
    assert changed.loc["q0", "score_delta"] < 0 < changed.loc["q1", "score_delta"]
    unchanged = comparison.items("unchanged")
    assert not unchanged["run0.passed"].any() and not unchanged["run1.passed"].any()
    assert unchanged["score_delta"].to_dict() == pytest.approx(
        (unchanged["run1.score"] - unchanged["run0.score"]).to_dict()
    )
    assert unchanged.loc["q2", "score_delta"] > 0 > unchanged.loc["q3", "score_delta"]

    shown = eval_cli(jupyter, owner_key, project, "compare", first.id, second.id)
    assert shown.returncode == 0, shown.stderr
    assert "1 regressed, 1 improved, 2 unchanged (1 score up, 1 score down)" in shown.stdout


async def test_eval_run_gates_ci_on_the_pass_rate(
    api: Api, project: str, jupyter: JupyterServer, owner_key: str, tmp_path: Path
) -> None:
    await qa_prompt(api, project)
    r = await api.post(f"/projects/{project}/datasets", {"name": "qa", "items": qa_items(4, wrong={0})})
    assert r.status_code == 201, r.text
    specs = tmp_path / "evaluators.yaml"
    specs.write_text("- type: exact_match\n- type: contains\n  value: question\n")

    ok = eval_cli(jupyter, owner_key, project, "run", "--prompt", "qa@latest", "--dataset", "qa:1",
                  "--evaluators-file", str(specs), "--min-pass-rate", "0.7")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "pass rate 75.0%" in ok.stdout and "built-in echo" in ok.stdout
    assert "it/s" in ok.stderr or "item/s" in ok.stderr  # the progress bar, on stderr

    gated = eval_cli(jupyter, owner_key, project, "run", "--prompt", "qa", "--dataset", "qa", "--evaluator",
                     "exact_match", "--min-pass-rate", "0.9", "--quiet", "--json")  # fmt: skip
    assert gated.returncode == 5, gated.stderr
    run = json.loads(gated.stdout)
    assert run["aggregates"]["pass_rate"] == pytest.approx(0.75)
    assert "below --min-pass-rate" in gated.stderr

    shown = eval_cli(jupyter, owner_key, project, "show", run["id"])
    assert shown.returncode == 0 and run["id"] in shown.stdout
    compared = eval_cli(jupyter, owner_key, project, "compare", run["id"], run["id"])
    assert compared.returncode == 2 and "compare 2 to 5 different runs" in compared.stderr

    bad = eval_cli(jupyter, owner_key, project, "run", "--prompt", "qa", "--dataset", "nope", "--evaluator",
                   "exact_match")  # fmt: skip
    assert bad.returncode == 4 and "nope" in bad.stderr
    none = eval_cli(jupyter, owner_key, project, "run", "--prompt", "qa", "--dataset", "qa")
    assert none.returncode == 2 and "evaluator" in none.stderr and "--output-dataset" in none.stderr

    # Batch inference from the command line: no evaluators, the outputs written as a dataset.
    batch = eval_cli(jupyter, owner_key, project, "run", "--prompt", "qa", "--dataset", "qa:1",
                     "--output-dataset", "qa-answers", "--quiet")  # fmt: skip
    assert batch.returncode == 0, batch.stderr
    assert "outputs   dataset qa-answers v1" in batch.stdout
    items = (await api.get(f"/projects/{project}/datasets/qa-answers/items")).json()["items"]
    assert sorted(i["metadata"]["output"] for i in items) == [f"Q: question {i}" for i in range(4)]

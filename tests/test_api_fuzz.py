"""The OpenAPI document is a valid OpenAPI 3.1 document, and the API behind it survives a schema-driven fuzzer.

Schemathesis generates requests for every operation from the document itself — values the schema allows
(positive) and values it forbids (negative) — against the real server, as its owner, with real path values
(a project, prompt, dataset, connection, job and runs made here) so requests reach the handlers rather than a
404. Every answer must be a non-5xx that the document declares, with the declared content type and schema.

Bounded and deterministic: a few examples per operation and mode, Hypothesis derandomized (a fixed seed),
no shrinking, no example database.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.support.evals import qa_items
from tests.support.servers import JupyterServer

if TYPE_CHECKING:  # the module is loaded as a plugin below; importing it first would skip its assert rewriting
    from tests.support.scripted_llm import ScriptedLLM

pytest_plugins = ["tests.support.scripted_llm"]

EXAMPLES = 10  # per operation and generation mode: ~1,100 requests, under a minute on two cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def document(jupyter: JupyterServer) -> dict[str, Any]:
    r = httpx.get(jupyter.api + "/openapi.json", headers={"Authorization": f"token {jupyter.token}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_openapi_document_is_valid_and_every_ref_resolves(jupyter: JupyterServer) -> None:
    doc = document(jupyter)
    validate(doc)  # OpenAPI 3.1, including $ref resolution
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)))
    schemas = doc["components"]["schemas"]
    assert refs and all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs), refs
    assert any(name.startswith("Page_") for name in schemas)  # the generic pages are there under pydantic's names
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def real_world(jupyter: JupyterServer, llm_url: str) -> dict[str, str]:
    """Path values that exist, so generated requests reach the handlers."""
    project = f"fz-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=jupyter.api, headers={"Authorization": f"token {jupyter.token}"}, timeout=30) as c:

        def post(path: str, body: Any, method: str = "POST") -> dict[str, Any]:
            r = c.request(method, path, json=body)
            assert r.status_code in (200, 201), r.text
            return dict(r.json())

        post("/projects", {"slug": project, "name": project})
        base = f"/projects/{project}"
        post(f"{base}/prompts", {"name": "greet", "template": "Q: {{question}}", "labels": ["production"]})
        post(f"{base}/datasets", {"name": "qa", "items": qa_items(3)})
        post(f"{base}/models", {"name": "fuzz", "kind": "openai", "base_url": llm_url, "default_model": "m"})
        post(f"{base}/members/fuzz-member", {"role": "viewer"}, method="PUT")
        key = post(f"{base}/keys", {"name": "fuzz", "role": "viewer"})["id"]
        job = post(f"{base}/jobs", {"notebook": "builtin:hello", "parameters": {"name": "fuzz"}})["id"]
        run = {"prompt": {"name": "greet"}, "dataset": {"name": "qa"}, "model": {"connection": "echo"},
               "evaluators": [{"type": "exact_match"}]}  # fmt: skip
        runs = [post(f"{base}/evals/runs", {**run, "name": f"run {i}"})["id"] for i in range(2)]
    return {"project": project, "label": "production", "user": "fuzz-member", "key_id": key, "job_id": job,
            "run_id": runs[0], "version": "1", "item_id": "q0", "model": "gpt-fuzz",
            "message_id": str(uuid.uuid4()), "runs": ",".join(runs), "trace_id": uuid.uuid4().hex,
            "score_id": str(uuid.uuid4()), "action_id": "0x" + uuid.uuid4().hex, "step_id": "0x" + "1" * 16,
            "silence_id": str(uuid.uuid4()), "notification_id": "1"}  # fmt: skip


def path_values(path: str, world: dict[str, str]) -> dict[str, str]:
    name = "qa" if "/datasets/" in path else "fuzz" if "/models/" in path else "greet"
    return {**world, "name": name}


def fuzz(
    operation: Any, mode: GenerationMode, values: dict[str, str], call: Callable[[schemathesis.Case], None]
) -> None:
    compare = operation.path.endswith("/evals/compare")

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: schemathesis.Case) -> None:
        if case.path_parameters:
            case.path_parameters = {k: values[k] for k in case.path_parameters}
        if compare and isinstance(case.query, dict):
            case.query["runs"] = values["runs"]  # two real runs, so the rest of the query is reached
        call(case)

    exercise()


def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(
    jupyter: JupyterServer, scripted_llm: ScriptedLLM
) -> None:
    world = real_world(jupyter, scripted_llm.openai_base_url)
    schema = schemathesis.openapi.from_dict(document(jupyter))
    session = requests.Session()
    auth = {"Authorization": f"token {jupyter.token}"}

    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=jupyter.url.rstrip("/"), session=session, headers=auth, timeout=60)
        case.validate_response(response, checks=CHECKS)

    failures: list[str] = []
    fuzzed: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        if raw.get("x-agiflow-websocket"):
            # The events socket upgrades to a WebSocket: nothing for a request fuzzer to say. Its query
            # (project, after) is covered by tests/test_hostile_input.py and its behaviour by tests/test_jobs.py.
            continue
        # The dataset import's body is a CSV or JSONL stream the document does not model as a schema; its
        # query is fuzzed here, its body by tests/test_hostile_input.py and tests/test_datasets.py.
        values = path_values(operation.path, world)
        # Path values are always the real ones, so an operation with neither query nor body has nothing to negate.
        negatable = "requestBody" in raw or any(p.get("in") == "query" for p in raw.get("parameters", []))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negatable else (GenerationMode.POSITIVE,):
            try:
                fuzz(operation, mode, values, call)
            except (Exception, FailureGroup) as exc:  # every operation is tried; the failures are listed together
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
        fuzzed.append(operation.label)
    elapsed = time.monotonic() - started
    assert len(fuzzed) >= 50, fuzzed
    assert not failures, f"{len(failures)} operations failed in {elapsed:.0f}s:\n\n" + "\n\n".join(failures)

"""Hostile input: every client mistake is a 4xx JSON error naming the field, never a 500, never a half write.

The classes an attacker found with ~4,000 requests: cursors of the wrong shape, query text that is not UTF-8
or holds NUL, integers beyond Postgres' bigint, bodies nested 1,000 deep or holding NUL, lone surrogates,
NaN or 1e400, bodies far beyond any sensible size, booleans where numbers belong, and a model server that
does not speak the API its connection claims.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.api import Api
from tests.support.evals import make_dataset, make_prompt, qa_items, start_run
from tests.support.servers import JupyterServer, configured_api, create_database

if TYPE_CHECKING:  # the module is loaded as a plugin below; importing it first would skip its assert rewriting
    from tests.support.scripted_llm import ScriptedLLM

pytest_plugins = ["tests.support.scripted_llm"]

MiB = 1024 * 1024
HUGE = "99999999999999999999"  # beyond bigint
BEYOND_INT4 = "3000000000"  # a bigint, beyond the integer columns versions live in


@pytest.fixture(scope="module")
async def world(api: Api) -> dict[str, str]:
    """One project with something behind every list: prompt versions, dataset items, a job, two runs."""
    project = f"h-{uuid.uuid4().hex[:10]}"
    assert (await api.post("/projects", {"slug": project, "name": project})).status_code == 201
    await make_prompt(api, project, "greet", "Q: {{question}}", labels=["production"])
    r = await api.post(f"/projects/{project}/prompts/greet/versions", {"template": "Q2: {{question}}"})
    assert r.status_code == 201, r.text
    await make_dataset(api, project, "qa", qa_items(3))
    r = await api.post(f"/projects/{project}/jobs", {"notebook": "builtin:hello", "parameters": {"name": "h"}})
    assert r.status_code == 201, r.text
    body = {"prompt": {"name": "greet"}, "dataset": {"name": "qa"}, "model": {"connection": "echo"},
            "evaluators": [{"type": "exact_match"}]}  # fmt: skip
    runs = [(await start_run(api, project, {**body, "name": f"run {i}"}))["id"] for i in range(2)]
    return {"project": project, "job": r.json()["id"], "run": runs[0], "run2": runs[1]}


def p(world: dict[str, str], path: str) -> str:
    return f"/projects/{world['project']}" + path.format(**world)


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    assert set(error) == {"code", "message", "details"}
    if field is not None:
        assert error["details"]["field"] == field, error
    return dict(error)


async def raw_query(api: Api, path: str, query: str, method: str = "GET") -> httpx.Response:
    """A request whose query is sent byte for byte (``%FF`` stays invalid UTF-8)."""
    url = httpx.URL(api.server.api + path).copy_with(query=query.encode())
    return await api.client.request(method, url, headers=api.headers())


async def count(api: Api, path: str) -> int:
    r = await api.get(path, params={"limit": 200})
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


# --- cursors ---------------------------------------------------------------------------------------

LISTS = {  # each list's key: what a cursor it issues holds
    "/jobs": "time",
    "/evals/runs": "time",
    "/evals/runs/{run}/results": "int",
    "/evals/compare?runs={run},{run2}": "int",
    "/audit": "int",
    "/prompts": "name",
    "/prompts/greet/versions": "int",
    "/datasets": "name",
    "/datasets/qa/versions": "int",
    "/datasets/qa/items": "pair",
}
# A key of the right shape at the edge of its range: a page (maybe empty), never a database error.
EDGE_KEYS = {"time": f'["9999-12-31T23:59:59Z","{uuid.UUID(int=0)}"]', "int": str(2**63 - 1), "name": '"zzz"',
             "pair": f"[1,{2**63 - 1}]"}  # fmt: skip
WRONG_JSON = ["[]", "{}", "[1,2]", "true", "false", "null", '"x"', "1" * 400, "1e400", "-1", "1.5", '"\\u0000"',
              '"\\ud800"', "[1,2,3]", '["x",1]', '{"a":1}', "[" * 1000 + "]" * 1000]  # fmt: skip


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("path", LISTS)
async def test_a_cursor_of_any_other_shape_is_a_400_naming_cursor(api: Api, world: dict[str, str], path: str) -> None:
    url, _, query = p(world, path).partition("?")
    params = dict(part.split("=") for part in query.split("&") if part)
    valid_here = {"name": '"x"', "pair": "[1,2]"}.get(LISTS[path])
    cursors = [b64(j) for j in WRONG_JSON if j != valid_here]
    cursors += ["%%%", "!!", b64(b"\xff\xfe"), "A" * 5000, b64('"' + "n" * 600 + '"')]
    for cursor in cursors:
        r = await api.get(url, params={**params, "limit": 1, "cursor": cursor})
        assert_error(r, 400, "invalid_input", "cursor")
    edge = await api.get(url, params={**params, "limit": 1, "cursor": b64(EDGE_KEYS[LISTS[path]])})
    assert edge.status_code == 200, edge.text
    first = await api.get(url, params={**params, "limit": 1})
    assert first.status_code == 200, first.text
    if cursor := first.json()["next_cursor"]:  # the cursors a list issues still work
        assert (await api.get(url, params={**params, "limit": 1, "cursor": cursor})).status_code == 200


# --- query parameters and path segments ------------------------------------------------------------

TEXT_PARAMS = [
    ("/jobs", "state"), ("/jobs", "submitted_by"), ("/jobs", "notebook"), ("/jobs", "cursor"),
    ("/prompts", "search"), ("/prompts", "tag"), ("/prompts/greet", "label"), ("/prompts/greet/versions", "cursor"),
    ("/datasets", "search"), ("/datasets/qa/items", "cursor"), ("/datasets/qa/export", "format"),
    ("/evals/runs", "dataset"), ("/evals/runs", "prompt"), ("/evals/runs/{run}/results", "cursor"),
    ("/evals/compare", "runs"), ("/audit", "resource_type"), ("/jobs/{job}/events", "after"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "name"), TEXT_PARAMS)
async def test_query_text_that_is_not_utf8_or_holds_nul_is_a_400_naming_it(
    api: Api, world: dict[str, str], path: str, name: str
) -> None:
    for value in ("%FF", "a%00b", "%C3%28", "%ED%A0%80"):  # invalid UTF-8, NUL, bad sequence, encoded surrogate
        assert_error(await raw_query(api, p(world, path), f"{name}={value}"), 400, "invalid_input", name)


async def test_query_text_outside_a_project_is_checked_the_same(api: Api) -> None:
    for name in ("topic", "group"):
        assert_error(await raw_query(api, "/bus/dead-letters", f"{name}=%FF"), 400, "invalid_input", name)
        assert_error(await raw_query(api, "/bus/dead-letters", f"{name}=%00"), 400, "invalid_input", name)
    r = await raw_query(api, "/events", "project=a%00b")  # tornado reads control characters there as spaces
    assert_error(r, 403, "forbidden")
    assert_error(await raw_query(api, "/events", f"project=default&after={HUGE}"), 400, "invalid_input", "after")


async def test_deleting_an_item_with_a_bad_message_deletes_nothing(api: Api, world: dict[str, str]) -> None:
    before = (await api.get(p(world, "/datasets/qa"))).json()
    for value in ("%FF", "%00"):
        r = await raw_query(api, p(world, "/datasets/qa/items/q0"), f"message={value}", method="DELETE")
        assert_error(r, 400, "invalid_input", "message")
    assert (await api.get(p(world, "/datasets/qa"))).json() == before


@pytest.mark.parametrize(
    ("path", "name"),
    [("/prompts/greet", "version"), ("/datasets/qa/items", "version"), ("/datasets/qa/export", "version"),
     ("/prompts/greet/diff?to=1", "from"), ("/prompts/greet/diff?from=1", "to"), ("/jobs/{job}/events", "after"),
     ("/jobs", "limit"), ("/evals/runs", "limit")],
)  # fmt: skip
async def test_integers_beyond_bigint_in_a_query_are_a_400_naming_them(
    api: Api, world: dict[str, str], path: str, name: str
) -> None:
    url = p(world, path)
    sep = "&" if "?" in url else "?"
    r = await api.get(f"{url}{sep}{name}={HUGE}")
    assert r.status_code in (400, 422), r.text
    if r.status_code == 400:
        assert_error(r, 400, "invalid_input", name)
    r = await api.get(f"{url}{sep}{name}={BEYOND_INT4}")  # a bigint: found or not, never a database error
    assert r.status_code in (200, 404, 422), r.text


async def test_integers_in_a_path_are_bounded_too(api: Api, world: dict[str, str]) -> None:
    assert_error(await api.get(p(world, f"/prompts/greet/versions/{HUGE}")), 400, "invalid_input", "version")
    assert_error(await api.get(p(world, f"/prompts/greet/versions/{BEYOND_INT4}")), 404, "not_found")
    assert_error(await api.get(p(world, "/prompts/greet/versions/%FF")), 400, "invalid_input", "version")
    assert_error(await api.get(p(world, "/prompts/gr%FFeet")), 400, "invalid_input", "name")


async def test_a_query_number_may_be_text_but_not_a_boolean(api: Api, world: dict[str, str]) -> None:
    assert (await api.get(p(world, "/jobs"), params={"limit": "5"})).status_code == 200
    for value in ("true", "1.5", "five"):
        r = await api.get(p(world, "/jobs"), params={"limit": value})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["errors"][0]["field"] == "limit"


# --- bodies ----------------------------------------------------------------------------------------

DEEP = "[" * 1000 + "]" * 1000


async def post_raw(api: Api, method: str, path: str, content: str | bytes, **headers: str) -> httpx.Response:
    return await api.client.request(
        method, api.server.api + path, content=content,
        headers={**api.headers(), "Content-Type": "application/json", **headers},
    )  # fmt: skip


def body_operations(doc: dict[str, Any], world: dict[str, str]) -> list[tuple[str, str]]:
    values = {"project": world["project"], "name": "greet", "label": "production", "user": "someone",
              "model": "gpt-4o", "message_id": str(uuid.uuid4()), "key_id": "x", "run_id": world["run"],
              "job_id": world["job"]}  # fmt: skip
    found = []
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            json_body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "$ref" in json_body.get("schema", {}):  # a JSON model; OTLP and CSV/JSONL imports have their own tests
                url = path.removeprefix("/agiflow/api/v1")
                if "/models/" in url:
                    values["name"] = "echo"
                elif "/datasets/" in url:
                    values["name"] = "qa"
                for key, value in values.items():
                    url = url.replace("{" + key + "}", value)
                values["name"] = "greet"
                found.append((verb.upper(), url))
    return found


async def test_every_body_endpoint_refuses_deep_nesting_naming_the_path(api: Api, world: dict[str, str]) -> None:
    doc = (await api.get("/openapi.json")).json()
    operations = body_operations(doc, world)
    assert len(operations) >= 15
    for verb, url in operations:
        r = await post_raw(api, verb, url, DEEP)
        error = assert_error(r, 422, "validation_failed")
        assert error["details"]["errors"][0]["type"] == "too_deep", (verb, url, error)
        nested = json.dumps({"parameters": {"a": json.loads("[" * 70 + "]" * 70)}})
        error = assert_error(await post_raw(api, verb, url, nested), 422, "validation_failed")
        assert error["details"]["field"].startswith("parameters.a.0.0"), (verb, url, error)


@pytest.mark.parametrize(
    ("content", "field", "kind"),
    [
        ('{"template": "a\\u0000b"}', "template", "nul_character"),
        ('{"template": "\\ud800"}', "template", "lone_surrogate"),
        ('{"template": "ok", "config": {"x": 1e400}}', "config.x", "non_finite"),
        ('{"template": "ok", "config": {"x": NaN}}', "config.x", "non_finite"),
        ('{"template": "ok", "config": {"x": [1, -Infinity]}}', "config.x.1", "non_finite"),
        ('{"template": "ok", "config": {"k\\u0000": 1}}', "config.k\\x00", "nul_character"),
        ('{"template": "ok", "config": {"max_tokens": 99999999999999999999}}', "config.max_tokens", "int_too_large"),
    ],
)
async def test_unstorable_values_in_a_body_are_422_naming_the_path_and_write_nothing(
    api: Api, world: dict[str, str], content: str, field: str, kind: str
) -> None:
    versions = p(world, "/prompts/greet/versions")
    before = await count(api, versions)
    error = assert_error(await post_raw(api, "POST", versions, content), 422, "validation_failed", field)
    assert error["details"]["errors"][0] == {"field": field, "message": error["details"]["errors"][0]["message"],
                                             "type": kind}  # fmt: skip
    assert field in error["message"]
    assert await count(api, versions) == before


async def test_free_form_json_is_checked_wherever_it_sits(api: Api, world: dict[str, str]) -> None:
    jobs = p(world, "/jobs")
    before = await count(api, jobs)
    body = '{"notebook": "builtin:hello", "parameters": {"a": {"b": NaN}}}'
    assert_error(await post_raw(api, "POST", jobs, body), 422, "validation_failed", "parameters.a.b")
    body = '{"notebook": "builtin:hello", "parameters": {"a": {"b": "x\\u0000"}}}'
    assert_error(await post_raw(api, "POST", jobs, body), 422, "validation_failed", "parameters.a.b")
    assert await count(api, jobs) == before
    items = p(world, "/datasets/qa/items")
    body = '{"items": [{"input": {"q": "fine"}}, {"input": {"q": 1e999}}]}'
    assert_error(await post_raw(api, "POST", items, body), 422, "validation_failed", "items.1.input.q")
    body = '{"items": [{"input": {"q": "fine"}, "metadata": {"m": "\\udfff"}}]}'
    assert_error(await post_raw(api, "POST", items, body), 422, "validation_failed", "items.0.metadata.m")
    assert (await api.get(p(world, "/datasets/qa"))).json()["latest_version"] == 1


async def test_numbers_are_strict_in_bodies(api: Api, world: dict[str, str]) -> None:
    label = p(world, "/prompts/greet/labels/production")
    for version in (True, "1", 1.0, 2.5):
        r = await api.put(label, {"version": version})
        assert r.status_code == 422, (version, r.text)
        assert r.json()["error"]["details"]["errors"][0]["field"] == "version"
    r = await api.put(label, {"version": int(HUGE)})
    assert_error(r, 422, "validation_failed", "version")
    assert_error(await api.put(label, {"version": int(BEYOND_INT4)}), 404, "not_found")
    assert (await api.get(p(world, "/prompts/greet"))).json()["version"] == 1  # the label never moved
    r = await api.post(p(world, "/jobs"), {"notebook": "builtin:hello", "max_attempts": True})
    assert r.status_code == 422, r.text
    r = await api.post(p(world, "/models/echo/test"), {"max_tokens": True})
    assert r.status_code == 422, r.text
    assert (await api.put(label, {"version": 2})).status_code == 200  # a JSON integer still is one
    assert (await api.put(label, {"version": 1})).status_code == 200


async def test_a_template_has_a_length_limit(api: Api, world: dict[str, str]) -> None:
    versions = p(world, "/prompts/greet/versions")
    before = await count(api, versions)
    r = await api.post(versions, {"template": "x" * 200_001})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["errors"][0]["field"].startswith("template")
    assert await count(api, versions) == before


# --- imports: the same checks, per row -------------------------------------------------------------


async def test_an_import_lists_every_unstorable_row_and_writes_nothing(api: Api, world: dict[str, str]) -> None:
    lines = [
        '{"input": {"q": "fine"}}',
        '{"input": {"q": "a\\u0000"}}',
        '{"input": {"q": NaN}}',
        '{"input": {"q": 1e400}}',
        '{"input": {"q": "\\ud800"}}',
        '{"input": {"q": ' + DEEP + "}}",
        '{"input": {"q": ' + "[" * 70 + "]" * 70 + "}}",
        '{"input": {"q": 99999999999999999999}}',
    ]
    url = api.server.api + p(world, "/datasets/qa/import")
    headers = {**api.headers(), "Content-Type": "application/x-ndjson"}
    r = await api.client.post(url, params={"mode": "replace"}, content="\n".join(lines).encode(), headers=headers)
    error = assert_error(r, 422, "validation_failed")
    rows = {row["row"]: row for row in error["details"]["rows"]}
    assert sorted(rows) == [2, 3, 4, 5, 6, 7, 8]
    assert [rows[n].get("field") for n in (2, 3, 4, 5, 8)] == ["input.q"] * 5
    assert rows[7]["field"].startswith("input.q.0.0") and "deeper than 64" in rows[7]["message"]
    assert "deeper than 64" in rows[6]["message"]
    r = await api.client.post(url, params={"format": "csv"}, content=b"id,q\nz1,ok\nz2,a\x00b\n",
                              headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    error = assert_error(r, 422, "validation_failed")
    assert error["details"]["rows"] == [{"row": 2, "field": "q", "message": "contains a NUL character (\\u0000)"}]
    assert (await api.get(p(world, "/datasets/qa"))).json()["latest_version"] == 1


# --- size limits -----------------------------------------------------------------------------------


async def raw_request(server: JupyterServer, head: str, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """Send a request byte for byte and read the answer; the server must answer without reading more."""
    url = urlsplit(server.api)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        status_line = await reader.readline()
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = await reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, json.loads(payload)
    finally:
        writer.close()


def head(server: JupyterServer, method: str, path: str, *lines: str) -> str:
    url = urlsplit(server.api)
    return (f"{method} {url.path}{path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: token {server.token}\r\n"
            + "".join(line + "\r\n" for line in lines))  # fmt: skip


def assert_too_large(status: int, headers: dict[str, str], payload: Any, limit: int, setting: str) -> None:
    assert status == 413, payload
    assert headers["connection"] == "close"
    error = payload["error"]
    assert error["code"] == "too_large"
    assert error["details"] == {"field": "body", "limit": limit, "setting": setting}
    assert str(limit) in error["message"] and setting in error["message"]


async def test_a_json_body_over_the_limit_is_refused_before_it_is_read(api: Api, world: dict[str, str]) -> None:
    prompts = p(world, "/prompts")
    before = await count(api, prompts)
    declared = head(api.server, "POST", prompts, "Content-Type: application/json", f"Content-Length: {200 * MiB}")
    assert_too_large(*await raw_request(api.server, declared), 2 * MiB, "max_body_bytes")
    chunked = head(api.server, "POST", prompts, "Content-Type: application/json", "Transfer-Encoding: chunked")
    size = 2 * MiB + 1  # one chunk that crosses the limit, sent whole so the server has read all of it
    status, headers, payload = await raw_request(api.server, chunked, f"{size:x}\r\n".encode() + b" " * size)
    assert_too_large(status, headers, payload, 2 * MiB, "max_body_bytes")
    assert await count(api, prompts) == before


async def test_an_import_over_its_limit_is_refused_before_it_is_read(api: Api, world: dict[str, str]) -> None:
    declared = head(api.server, "POST", p(world, "/datasets/qa/import"), "Content-Type: application/x-ndjson",
                    f"Content-Length: {600 * MiB}")  # fmt: skip
    assert_too_large(*await raw_request(api.server, declared), 512 * MiB, "max_import_bytes")


async def test_a_refusal_waits_for_the_body_so_the_client_reads_it(api: Api, world: dict[str, str]) -> None:
    body = json.dumps({"name": "big", "template": "x" * (MiB // 2)})
    r = await api.client.post(api.server.api + p(world, "/prompts"), content=body,
                              headers={"Content-Type": "application/json"})  # fmt: skip
    assert_error(r, 401, "unauthenticated")
    assert "connection" not in r.headers  # answered after the body: the connection stays usable
    r = await api.client.post(api.server.api + p(world, "/prompts"), content=body,
                              headers={"Content-Type": "application/json", "Authorization": "Bearer agf_nope"})  # fmt: skip
    assert r.status_code == 401, r.text


@pytest.fixture(scope="module")
async def small(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """A server with tiny limits, set through its traitlets, so a chunked upload can cross them."""
    args = ["--AgiflowLab.workers=0", "--AgiflowLab.max_body_bytes=4096", "--AgiflowLab.max_import_bytes=65536",
            "--AgiflowLab.max_json_depth=8"]  # fmt: skip
    async with configured_api(create_database(pg_server), tmp_path_factory.mktemp("small-limits"), args) as api:
        yield api


async def test_configured_limits_apply_to_json_imports_and_nesting(small: Api) -> None:
    api = small
    assert (await api.post("/projects/default/datasets", {"name": "qa", "items": qa_items(2)})).status_code == 201
    url = "/projects/default/datasets/qa/import"
    chunked = head(api.server, "POST", url, "Content-Type: application/x-ndjson", "Transfer-Encoding: chunked")
    line = json.dumps({"input": {"q": "x" * 1003}}).encode() + b"\n"  # 1,024 bytes: 64 lines fill the limit
    assert len(line) * 64 == 65536
    chunks = [f"{len(line):x}\r\n".encode() + line + b"\r\n" for _ in range(64)]
    body = b"".join(chunks) + b"1\r\ny"  # the one byte over is the last one sent: the server has read it all
    assert_too_large(*await raw_request(api.server, chunked, body), 65536, "max_import_bytes")
    info = (await api.get("/projects/default/datasets/qa")).json()
    assert (info["latest_version"], info["item_count"]) == (1, 2)  # the staged rows were rolled back

    declared = head(api.server, "POST", "/projects/default/prompts", "Content-Type: application/json",
                    "Content-Length: 5000")  # fmt: skip
    assert_too_large(*await raw_request(api.server, declared), 4096, "max_body_bytes")
    r = await api.post("/projects/default/jobs", {"notebook": "builtin:hello", "parameters": {"a": [[[[[[[[1]]]]]]]]}})
    assert_error(r, 422, "validation_failed", "parameters.a.0.0.0.0.0.0")
    r = await api.client.post(api.server.api + url, content=b'{"input": {"q": [[[[[[[[1]]]]]]]]}}\n',
                              headers={**api.headers(), "Content-Type": "application/x-ndjson"})  # fmt: skip
    assert "deeper than 8" in assert_error(r, 422, "validation_failed")["details"]["rows"][0]["message"]


# --- model servers that do not speak the API their connection claims -------------------------------


async def test_a_connection_to_a_server_answering_another_api_fails_its_test_cleanly(
    api: Api, world: dict[str, str], scripted_llm: ScriptedLLM
) -> None:
    models = p(world, "/models")
    for name, kind, base_url, api_name in (
        ("claude", "anthropic", scripted_llm.url + "/as-openai", "Anthropic Messages"),
        ("gpt", "openai", scripted_llm.url + "/as-anthropic", "OpenAI Chat Completions"),
    ):
        body = {"name": name, "kind": kind, "base_url": base_url, "default_model": "m", "api_key": "sk-test"}
        assert (await api.post(models, body)).status_code == 201
        r = await api.post(f"{models}/{name}/test", {"prompt": "hello"})
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["ok"] is False and result["retryable"] is False, result
        assert f"did not answer like the {api_name} API" in result["error"], result

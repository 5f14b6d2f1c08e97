"""Datasets over HTTP and through the SDK: immutable versions, paging, streamed import and export, errors, access."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import psycopg
import pytest

from agiflow_lab.datasets import store
from agiflow_lab.datasets.importers import parse_all
from agiflow_lab.datasets.service import DatasetService
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Forbidden, NotFound, ValidationFailed
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.sdk import Client
from tests.support.api import Api
from tests.support.polling import until
from tests.support.servers import JupyterServer


def make_items(n: int, start: int = 0, tag: str = "") -> list[dict[str, Any]]:
    return [
        {"id": f"i{k}", "input": {"question": f"q{k}{tag}"}, "expected": f"a{k}", "metadata": {"k": k}}
        for k in range(start, start + n)
    ]


def base(project: str, name: str | None = None) -> str:
    return f"/projects/{project}/datasets" + ("" if name is None else f"/{name}")


async def create(api: Api, project: str, name: str = "qa", items: list[dict[str, Any]] | None = None) -> dict:
    r = await api.post(base(project), {"name": name, **({"items": items} if items is not None else {})})
    assert r.status_code == 201, r.text
    return r.json()


async def read_version(api: Api, project: str, name: str, version: int | None = None, limit: int = 1000) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"version": version} if version is not None and cursor is None else {})}
        if cursor:
            params["cursor"] = cursor
        r = await api.get(base(project, name) + "/items", params=params)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


async def upload(api: Api, project: str, name: str, body: bytes, **params: Any) -> Any:
    content_type = "text/csv" if params.get("format") == "csv" else "application/x-ndjson"
    if isinstance(params.get("mapping"), dict):
        params["mapping"] = json.dumps(params["mapping"])
    return await api.client.post(
        api.server.api + base(project, name) + "/import",
        content=body,
        params=params,
        headers={**api.headers(), "Content-Type": content_type},
    )


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


# --- versions --------------------------------------------------------------------------------


async def test_create_with_items_is_version_1_and_without_is_version_0(api: Api, project: str) -> None:
    ds = await create(api, project, "qa", make_items(3))
    assert (ds["latest_version"], ds["item_count"], ds["created_by"]) == (1, 3, "olivia")
    empty = await create(api, project, "empty")
    assert (empty["latest_version"], empty["item_count"]) == (0, 0)
    r = await api.get(base(project, "empty") + "/items")
    assert r.json() == {"items": [], "next_cursor": None}
    r = await api.post(base(project), {"name": "qa"})
    assert r.status_code == 409
    assert r.json()["error"]["details"]["field"] == "name"


async def test_every_change_is_a_new_version_and_old_versions_never_change(api: Api, project: str) -> None:
    v1 = make_items(3)
    await create(api, project, "qa", v1)
    items = base(project, "qa") + "/items"

    r = await api.post(items, {"items": make_items(2, start=3), "message": "two more"})
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["item_count"], r.json()["message"]) == (2, 5, "two more")

    changed = {"id": "i1", "input": {"question": "better q1"}, "expected": "A1", "metadata": {}}
    r = await api.post(items, {"items": [changed]})
    assert (r.json()["version"], r.json()["item_count"]) == (3, 5)

    r = await api.delete(items + "/i0")
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["item_count"]) == (4, 4)

    assert await read_version(api, project, "qa", 1) == v1
    assert await read_version(api, project, "qa", 2) == make_items(5)
    v3 = await read_version(api, project, "qa", 3)
    assert [i["id"] for i in v3] == ["i0", "i1", "i2", "i3", "i4"]  # an updated item keeps its place
    assert v3[1] == changed
    assert await read_version(api, project, "qa") == v3[1:]  # latest is version 4

    r = await api.post(items, {"items": [make_items(1, start=2)[0], {"input": {"question": "new"}}], "mode": "replace"})
    assert (r.json()["version"], r.json()["item_count"]) == (5, 2)
    v5 = await read_version(api, project, "qa")
    assert v5[0] == make_items(1, start=2)[0] and v5[1]["input"] == {"question": "new"} and v5[1]["id"]
    assert await read_version(api, project, "qa", 1) == v1  # still exactly as written

    versions = (await api.get(base(project, "qa") + "/versions")).json()["items"]
    assert [(v["version"], v["item_count"]) for v in versions] == [(5, 2), (4, 4), (3, 5), (2, 5), (1, 3)]
    info = (await api.get(base(project, "qa"))).json()
    assert (info["latest_version"], info["item_count"]) == (5, 2)

    audit = (await api.get(f"/projects/{project}/audit", params={"resource_type": "dataset"})).json()["items"]
    delete = next(a for a in audit if a["action"] == "dataset.items.delete")
    assert delete["resource_id"] == "qa@4"
    assert delete["before"] == {"version": 3, "item_count": 5}
    assert delete["after"]["version"] == 4 and delete["after"]["item_count"] == 4


async def test_deleting_an_unknown_item_is_404_and_writes_no_version(api: Api, project: str) -> None:
    await create(api, project, "qa", make_items(2))
    r = await api.delete(base(project, "qa") + "/items/nope")
    assert r.status_code == 404
    assert (await api.get(base(project, "qa"))).json()["latest_version"] == 1


async def test_concurrent_appends_get_gap_free_versions(api: Api, project: str) -> None:
    await create(api, project, "qa")
    results = await asyncio.gather(
        *[api.post(base(project, "qa") + "/items", {"items": make_items(5, start=5 * k)}) for k in range(10)]
    )
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    assert sorted(r.json()["version"] for r in results) == list(range(1, 11))
    by_version = sorted((r.json()["version"], r.json()["item_count"]) for r in results)
    assert [count for _, count in by_version] == [5 * v for v in range(1, 11)]
    assert len(await read_version(api, project, "qa")) == 50


# --- paging ----------------------------------------------------------------------------------


async def test_paging_returns_every_item_once_in_order_and_the_cursor_pins_the_version(api: Api, project: str) -> None:
    await create(api, project, "big", make_items(2500))
    url = base(project, "big") + "/items"
    first = (await api.get(url, params={"limit": 1000})).json()
    assert len(first["items"]) == 1000 and first["next_cursor"]
    # A write between pages does not leak into a walk that started on version 1.
    await api.post(url, {"items": make_items(1, start=0, tag="-changed")})
    rest = await read_version_from(api, url, first["next_cursor"])
    ids = [i["id"] for i in first["items"] + rest]
    assert ids == [f"i{k}" for k in range(2500)]
    assert all(not i["input"]["question"].endswith("-changed") for i in first["items"] + rest)
    assert (await api.get(url, params={"limit": 1000, "cursor": first["next_cursor"], "version": 2})).status_code == 400


async def read_version_from(api: Api, url: str, cursor: str) -> list[dict]:
    items: list[dict] = []
    while cursor:
        page = (await api.get(url, params={"limit": 1000, "cursor": cursor})).json()
        items += page["items"]
        cursor = page["next_cursor"]
    return items


# --- import ----------------------------------------------------------------------------------


async def test_csv_import_with_a_column_mapping(api: Api, project: str) -> None:
    await create(api, project, "csv")
    body = (
        b"key,question,context,answer,source\r\n"
        b'a,"What is ""2+2""?","{""x"": 1}",4,web\r\n'
        b'b,"two\nlines",,five,book\r\n'
    )
    mapping = {"id": "key", "input": ["question", "context"], "expected": "answer", "metadata": ["source"]}
    r = await upload(api, project, "csv", body, format="csv", mapping=mapping, message="from csv")
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["item_count"], r.json()["message"]) == (1, 2, "from csv")
    assert await read_version(api, project, "csv") == [
        {"id": "a", "input": {"question": 'What is "2+2"?', "context": '{"x": 1}'}, "expected": "4",
         "metadata": {"source": "web"}},
        {"id": "b", "input": {"question": "two\nlines", "context": ""}, "expected": "five",
         "metadata": {"source": "book"}},
    ]  # fmt: skip


async def test_csv_import_defaults_take_id_and_expected_by_name(api: Api, project: str) -> None:
    await create(api, project, "csv")
    r = await upload(api, project, "csv", b"\xef\xbb\xbfid,q,expected\n1,hi,yes\n2,bye,no\n", format="csv")
    assert r.status_code == 201, r.text
    assert await read_version(api, project, "csv") == [
        {"id": "1", "input": {"q": "hi"}, "expected": "yes", "metadata": {}},
        {"id": "2", "input": {"q": "bye"}, "expected": "no", "metadata": {}},
    ]


async def test_jsonl_import_takes_structured_lines_as_they_are_and_maps_the_rest(api: Api, project: str) -> None:
    await create(api, project, "j", make_items(2))
    body = jsonl([
        {"id": "i1", "input": {"question": "updated"}, "expected": {"score": 1}},
        {"id": 7, "question": "flat", "expected": [1, 2], "lang": "en"},
    ])  # fmt: skip
    r = await upload(api, project, "j", body, format="jsonl", mode="append")
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["item_count"]) == (2, 3)
    assert await read_version(api, project, "j") == [
        make_items(1)[0],
        {"id": "i1", "input": {"question": "updated"}, "expected": {"score": 1}, "metadata": {}},
        {"id": "7", "input": {"question": "flat", "lang": "en"}, "expected": [1, 2], "metadata": {}},
    ]
    mapped = jsonl([{"q": "x", "gold": "y", "src": "s"}])
    r = await upload(api, project, "j", mapped, mapping={"input": ["q"], "expected": "gold", "metadata": ["src"]},
                     mode="replace")  # fmt: skip
    assert (r.json()["version"], r.json()["item_count"]) == (3, 1)
    [only] = await read_version(api, project, "j")
    assert (only["input"], only["expected"], only["metadata"]) == ({"q": "x"}, "y", {"src": "s"})


@pytest.mark.parametrize(
    ("fmt", "body", "mapping", "expected_rows"),
    [
        ("jsonl", b'{"input": {"a": 1}}\n{"input": {"a": 2}}\n{"input": {"a": \n{"input": {"a": 4}}\n', None, [3]),
        ("jsonl", b'{"q": 1, "gold": 1}\n{"q": 2}\n{"q": 3, "gold": 3}\n', {"expected": "gold"}, [2]),
        ("jsonl", b'{"id": "x", "input": {}}\n{"id": "y", "input": {}}\n{"id": "x", "input": {}}\n', None, [3]),
        ("jsonl", b'{"input": [1]}\n\n{"input": {}}\n["row"]\n{"q": NaN}\n', None, [1, 2, 4, 5]),
        ("csv", b"id,q,gold\n1,a,x\n2,b\n3,c,z\n1,d,w\n", {"expected": "gold"}, [2, 4]),
        ("csv", b"id,q\n1,a\n2,b\n", {"expected": "gold"}, [0]),
    ],
    ids=["bad-json-line-3", "missing-mapped-key", "duplicate-id", "shapes", "csv-rows", "csv-missing-column"],
)
async def test_a_bad_upload_is_422_with_its_rows_and_writes_nothing(
    api: Api, project: str, fmt: str, body: bytes, mapping: dict | None, expected_rows: list[int]
) -> None:
    await create(api, project, "qa", make_items(2))
    params: dict[str, Any] = {"format": fmt, "mode": "replace"}
    if mapping is not None:
        params["mapping"] = mapping
    r = await upload(api, project, "qa", body, **params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert sorted({row["row"] for row in error["details"]["rows"]}) == expected_rows
    assert all(row["message"] for row in error["details"]["rows"])
    assert f"{len(expected_rows)} row" in error["message"]
    info = (await api.get(base(project, "qa"))).json()
    assert (info["latest_version"], info["item_count"]) == (1, 2)
    assert len((await api.get(base(project, "qa") + "/versions")).json()["items"]) == 1
    assert await read_version(api, project, "qa") == make_items(2)


async def test_json_items_with_duplicate_ids_or_unstorable_values_write_nothing(api: Api, project: str) -> None:
    await create(api, project, "qa")
    items = base(project, "qa") + "/items"
    r = await api.post(items, {"items": [{"id": "a", "input": {}}, {"id": "a", "input": {}}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["rows"][0]["row"] == 2
    r = await api.client.post(
        api.server.api + items,
        content=b'{"items": [{"input": {"x": NaN}}, {"input": {"x": "\\u0000"}}]}',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text  # refused where the body is parsed, naming the first value
    assert r.json()["error"]["details"]["field"] == "items.0.input.x"
    assert (await api.get(base(project, "qa"))).json()["latest_version"] == 0


async def test_import_needs_an_existing_dataset(api: Api, project: str) -> None:
    r = await upload(api, project, "missing", jsonl(make_items(1)))
    assert r.status_code == 404
    assert r.json()["error"]["details"] == {"dataset": "missing"}


async def staging_sessions(db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            """SELECT count(*) FROM pg_stat_activity
                WHERE state = 'idle in transaction' AND query LIKE 'COPY dataset_stage%%'"""
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def test_an_abandoned_upload_writes_nothing_and_releases_its_transaction(
    api: Api, project: str, db_url: str
) -> None:
    await create(api, project, "qa", make_items(2))
    url = urlsplit(api.server.api + base(project, "qa") + "/import")
    body = jsonl(make_items(3000, start=10))
    head = (
        f"POST {url.path}?format=jsonl HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: token {api.server.token}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {2 * len(body)}\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head.encode() + body)  # half of what was announced, then the client goes away
    await writer.drain()

    async def staged() -> bool:
        return await staging_sessions(db_url) > 0

    async def released() -> bool:
        return await staging_sessions(db_url) == 0

    await until(staged, "the upload's COPY to be open", timeout=30)
    writer.close()
    await until(released, "the upload's transaction to be released", timeout=30)
    info = (await api.get(base(project, "qa"))).json()
    assert (info["latest_version"], info["item_count"]) == (1, 2)


async def test_an_anonymous_upload_is_refused_at_once_and_the_connection_closed(api: Api, project: str) -> None:
    await create(api, project, "qa")
    r = await api.client.post(api.server.api + base(project, "qa") + "/import")
    assert r.status_code == 401
    assert r.headers["connection"] == "close"
    assert r.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_parsers_give_the_same_rows_however_the_body_is_split(fmt: str) -> None:
    if fmt == "csv":
        body = 'id,q,expected\r\n1,"multi\nline ""quoted""",é\r\n2,plain,\r\n'.encode()
    else:
        body = jsonl([{"id": "1", "input": {"q": "multi\nline é"}, "expected": None}, {"id": 2, "q": "plain"}])
    whole = parse_all(fmt, [body])  # type: ignore[arg-type]
    assert len(whole) == 2
    for size in (1, 2, 3, 7):
        assert parse_all(fmt, [body[i : i + size] for i in range(0, len(body), size)]) == whole  # type: ignore[arg-type]


# --- export ----------------------------------------------------------------------------------


async def test_export_streams_a_version_that_imports_back_identically(api: Api, project: str) -> None:
    await create(api, project, "src", make_items(1500))
    await api.delete(base(project, "src") + "/items/i3")
    r = await api.get(base(project, "src") + "/export", params={"version": 1})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["x-agiflow-dataset-version"] == "1"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines == make_items(1500)

    await create(api, project, "copy")
    r2 = await upload(api, project, "copy", r.content)
    assert r2.status_code == 201, r2.text
    assert await read_version(api, project, "copy") == await read_version(api, project, "src", 1)
    r = await api.get(base(project, "src") + "/export", params={"version": 9})
    assert r.status_code == 404


# --- access and bad input --------------------------------------------------------------------


async def test_a_viewer_may_read_but_not_write(api: Api, project: str) -> None:
    await create(api, project, "qa", make_items(2))
    viewer = f"viewer-{uuid.uuid4().hex[:6]}"
    assert (await api.put(f"/projects/{project}/members/{viewer}", {"role": "viewer"})).status_code == 200
    key = await api.new_key(project, "viewer")
    for who in ({"user": viewer}, {"key": key}):
        assert (await api.get(base(project), **who)).status_code == 200
        assert (await api.get(base(project, "qa") + "/items", **who)).status_code == 200
        assert (await api.get(base(project, "qa") + "/export", **who)).status_code == 200
        r = await api.post(base(project, "qa") + "/items", {"items": make_items(1, start=9)}, **who)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert (await api.delete(base(project, "qa") + "/items/i0", **who)).status_code == 403
        assert (await api.post(base(project), {"name": "mine"}, **who)).status_code == 403
        r = await api.client.post(
            api.server.api + base(project, "qa") + "/import",
            content=jsonl(make_items(3, start=10)),
            headers={**api.headers(**who), "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 403, r.text
    r = await api.client.post(api.server.api + base(project, "qa") + "/import")
    assert r.status_code == 401
    assert (await api.get(base(project, "qa"))).json()["latest_version"] == 1


async def test_bad_queries_and_bodies_are_4xx_never_500(api: Api, project: str) -> None:
    await create(api, project, "qa", make_items(2))
    items = base(project, "qa") + "/items"
    for params in ({"limit": 5000}, {"limit": 0}, {"version": -1}, {"version": "abc"}, {"nope": 1}):
        r = await api.get(items, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "validation_failed"
    assert (await api.get(items, params={"cursor": "garbage!"})).status_code == 400
    assert (await api.get(items, params={"version": 7})).status_code == 404
    for body in (
        {"items": [{"input": "not an object"}]},
        {"items": [{"expected": 1}]},
        {"items": [{"input": {}, "extra": 1}]},
        {"items": [], "mode": "merge"},
        {"items": [{"input": {}, "id": ""}]},
    ):
        r = await api.post(items, body)
        assert r.status_code == 422, (body, r.text)
    for body in ({"name": "bad name"}, {"name": "ok", "items": "x"}, {}):
        r = await api.post(base(project), body)
        assert r.status_code == 422, (body, r.text)
    for params in (
        {"format": "xml"},
        {"mapping": "{not json"},
        {"mapping": json.dumps({"input": "q"})},
        {"mode": "merge"},
    ):
        r = await upload(api, project, "qa", jsonl(make_items(1)), **params)
        assert r.status_code == 422, (params, r.text)
    r = await upload(api, project, "qa", b"", format="csv")
    assert r.status_code == 422
    assert (await api.get(base(project, "qa") + "/export", params={"format": "csv"})).status_code == 422
    for path in ("a%00b", "a%00b/items", "a%00b/export", "a%00b/versions", "qa/items/x%00y"):
        method = api.delete if path.endswith("y") else api.get
        r = await method(base(project, path))
        assert r.status_code == 400 and "NUL" in r.json()["error"]["message"], (path, r.text)
    assert (await upload(api, project, "a%00b", jsonl(make_items(1)))).status_code == 400
    assert (await api.get(base(project, "qa"))).json()["latest_version"] == 1


# --- what evaluation runs use ----------------------------------------------------------------


@pytest.fixture
async def service(db_url: str, jupyter: JupyterServer) -> AsyncIterator[DatasetService]:
    db = Database(db_url, min_size=1, max_size=2)
    await db.open()
    yield DatasetService(db, ProjectService(db, None))  # type: ignore[arg-type]  # resolve_id needs no authz
    await db.close()


async def test_resolve_pins_a_version_and_items_page_streams_it(
    api: Api, project: str, service: DatasetService
) -> None:
    await create(api, project, "qa", make_items(5))
    await api.post(base(project, "qa") + "/items", {"items": make_items(2, start=5)})
    ref = await service.resolve(project, "qa", None)
    assert (ref.project, ref.name, ref.version, ref.item_count) == (project, "qa", 2, 7)
    assert (await service.resolve(project, "qa", 1)).item_count == 5
    assert (await service.resolve(project, "qa", 0)).item_count == 0
    with pytest.raises(NotFound) as missing:
        await service.resolve(project, "qa", 3)
    assert missing.value.details["version"] == 3
    with pytest.raises(NotFound):
        await service.resolve(project, "nope", None)
    async with service.db.connection() as conn:
        first = await store.items_page(conn, ref.dataset_id, 1, after_ordinal=0, limit=3)
        rest = await store.items_page(conn, ref.dataset_id, 1, after_ordinal=first[-1]["ordinal"], limit=3)
    assert [r["item_id"] for r in first + rest] == ["i0", "i1", "i2", "i3", "i4"]
    assert set(first[0]) == {"item_id", "ordinal", "input", "expected", "metadata"}


# --- SDK -------------------------------------------------------------------------------------


@pytest.fixture
async def owner_key(api: Api, project: str) -> str:
    return await api.new_key(project, "owner")


@pytest.fixture
def client(jupyter: JupyterServer, owner_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=owner_key, project=project, cache=False) as c:
        yield c


def test_sdk_dataframe_round_trip(client: Client) -> None:
    df = pd.DataFrame(
        {"id": [1, 2, 3], "question": ["a?", "b?", "c?"], "context": ["x", None, "z"], "expected": ["A", "B", None]}
    )
    ds = client.datasets.create("qa", df, description="from a frame")
    assert (ds.name, ds.version, ds.item_count) == ("qa", 1, 3)
    out = ds.to_pandas()
    assert list(out.columns) == ["id", "input", "expected", "metadata"]
    assert out["id"].tolist() == ["1", "2", "3"]
    assert out["input"].tolist() == [
        {"question": "a?", "context": "x"},
        {"question": "b?", "context": None},
        {"question": "c?", "context": "z"},
    ]
    assert out["expected"].tolist() == ["A", "B", None]
    # What to_pandas gives back uploads again as the same items (the structured form).
    copy = client.datasets.create("qa-copy", out)
    assert copy.to_pandas().to_dict("records") == out.to_dict("records")


def test_sdk_files_records_versions_and_errors(client: Client, tmp_path: Path) -> None:
    csv_path = tmp_path / "qa.csv"
    csv_path.write_text("key,question,answer\nk1,hi,hello\nk2,bye,goodbye\n")
    ds = client.datasets.create("files", csv_path, mapping={"id": "key", "expected": "answer"})
    assert ds.version == 1
    assert [i.id for i in ds.items()] == ["k1", "k2"]
    jsonl_path = tmp_path / "more.jsonl"
    jsonl_path.write_text(json.dumps({"id": "k3", "input": {"question": "why"}}) + "\n")
    assert ds.upload(jsonl_path).version == 2
    assert ds.upload([{"id": "k1", "question": "hi again"}], mode="append").item_count == 3
    assert ds.delete_item("k2").version == 4
    assert [v.version for v in ds.versions()] == [4, 3, 2, 1]
    assert [i.id for i in ds.items(version=1)] == ["k1", "k2"]
    assert ds.to_pandas(version=2)["id"].tolist() == ["k1", "k2", "k3"]
    with pytest.raises(ValidationFailed) as bad:
        ds.upload([{"id": "x", "q": 1}, {"id": "x", "q": 2}])
    assert bad.value.details["rows"] == [{"row": 2, "field": "id", "message": "duplicate id 'x' (first used in row 1)"}]
    assert client.datasets.get("files").version == 4
    with pytest.raises(NotFound):
        client.datasets.get("nope")
    assert [d.name for d in client.datasets.list()] == ["files"]


@pytest.fixture
async def viewer_key(api: Api, project: str) -> str:
    return await api.new_key(project, "viewer")


def test_sdk_viewer_reads_but_cannot_upload(
    jupyter: JupyterServer, client: Client, viewer_key: str, project: str
) -> None:
    client.datasets.create("qa", [{"q": "x"}])
    with Client(url=jupyter.url, api_key=viewer_key, project=project, cache=False) as viewer:
        ds = viewer.datasets.get("qa")
        assert ds.to_pandas()["input"].tolist() == [{"q": "x"}]
        with pytest.raises(Forbidden):
            ds.upload([{"q": "y"}])
    assert client.datasets.get("qa").version == 1


def test_sdk_streams_a_100k_item_upload_and_pages_it_back(client: Client, db_url: str) -> None:
    n = 100_000

    def rows() -> Iterator[dict[str, Any]]:  # a generator: the SDK never sees the whole list
        for k in range(n):
            yield {"id": f"r{k}", "question": f"question {k}", "expected": str(k % 7)}

    ds = client.datasets.create("large")
    version = ds.upload(rows(), message="100k")
    assert (version.version, version.item_count) == (1, n)
    seen = 0
    for k, item in enumerate(ds.items()):
        assert item.id == f"r{k}"
        seen += 1
    assert seen == n
    assert sum(1 for _ in ds.export_lines()) == n

    with psycopg.connect(db_url) as conn:
        conn.execute("ANALYZE control.dataset_items")
        dataset_id = conn.execute(
            "SELECT id FROM control.datasets WHERE name = 'large' ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) " + store.ITEMS_OF_VERSION,
            {"dataset": dataset_id, "version": 1, "after": 50_000, "limit": 1001},
        ).fetchone()[0]  # type: ignore[index]
    text = json.dumps(plan)
    assert "dataset_items_by_ordinal" in text and '"Sort"' not in text

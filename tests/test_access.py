"""Access control as a specification: every route in the OpenAPI document, with every kind of caller.

The expected answer comes from the table below (what each role may do), not from the server's own
policy code, so a policy change that widens access makes this test fail.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from jupyter_server.auth.decorator import ws_authenticated
from tornado import web

from agiflow_lab_server.app import ROUTES
from agiflow_lab_server.routing import operations
from tests.support.api import Api

MAY: dict[str, set[tuple[str, str]]] = {
    "owner": {("*", "*")},
    "editor": {("agiflow:prompts", "read"), ("agiflow:prompts", "write"), ("agiflow:jobs", "read"),
               ("agiflow:jobs", "write"), ("agiflow:datasets", "read"), ("agiflow:datasets", "write"),
               ("agiflow:evals", "read"), ("agiflow:evals", "write"), ("agiflow:models", "read"),
               ("agiflow:models", "execute"), ("agiflow:project", "read"), ("agiflow:members", "read"),
               ("agiflow:audit", "read"), ("agiflow:traces", "read"), ("agiflow:traces", "write"),
               ("agiflow:schedules", "read"), ("agiflow:schedules", "write"), ("agiflow:alerts", "read"),
               ("agiflow:alerts", "write"), ("agiflow:notifications", "read"), ("agiflow:notifications", "write")},
    "viewer": {("agiflow:prompts", "read"), ("agiflow:jobs", "read"), ("agiflow:datasets", "read"),
               ("agiflow:evals", "read"), ("agiflow:models", "read"), ("agiflow:project", "read"),
               ("agiflow:members", "read"), ("agiflow:traces", "read"), ("agiflow:schedules", "read"),
               ("agiflow:alerts", "read"), ("agiflow:notifications", "read")},
}  # fmt: skip
PROJECTLESS_READS = {"agiflow:docs", "agiflow:projects"}
ADMIN_ONLY = {"agiflow:bus"}  # deployment-wide: only server admins (the server owner)
ADMIN_OR_KEY = {"agiflow:status"}  # the deployment's for admins, a key's own project's; users name a project
KEY_OR_HEADER = {"agiflow:traces"}  # OTLP (no project in the path): the key's project, or a user's x-agiflow-project
# header (400 without); the /projects/{project}/traces read routes are ordinary project-scoped ones
KEYS_MAY_NOT = {("agiflow:members", "write")}  # whatever their role, unless keys_manage_members is on


def may(role: str, resource: str, action: str) -> bool:
    allowed = MAY[role]
    return ("*", "*") in allowed or (resource, action) in allowed


def body_for(path: str, verb: str) -> Any:
    if path.endswith("/projects") and verb == "post":
        slug = f"m-{uuid.uuid4().hex[:8]}"
        return {"slug": slug, "name": slug}
    if path.endswith("/prompts") and verb == "post":
        return {"name": f"n{uuid.uuid4().hex[:8]}", "template": "hi {{x}}"}
    if path.endswith("/versions") and verb == "post":
        return {"template": "hi again {{x}}"}
    if "/labels/" in path and verb == "put":
        return {"version": 1}
    if path.endswith("/jobs") and verb == "post":
        return {"notebook": "builtin:hello", "parameters": {"name": "rbac"}}
    if path.endswith("/render"):
        return {"variables": {"x": "1"}}
    if path.endswith("/keys") and verb == "post":
        return {"name": "k", "role": "viewer"}
    if path.endswith("/requeue"):
        return {"group": "agiflow-workers"}
    if "/members/" in path and verb == "put":
        return {"role": "viewer"}
    if path.endswith("/scores") and verb == "post":
        return {"trace_id": "0" * 32, "name": "helpful", "value": 1}
    if path.endswith("/score") and verb == "patch":
        return {"score": 0.5}
    if "/steps/" in path and verb == "patch":
        return {"output": "later"}
    return None


def fill(path: str, project: str) -> str:
    values = {"project": project, "name": "greet", "version": "1", "label": "production",
              "user": "someone", "key_id": "000000000000", "job_id": "00000000-0000-0000-0000-000000000000",
              "message_id": "00000000-0000-0000-0000-000000000000",
              "run_id": "00000000-0000-0000-0000-000000000000", "item_id": "i1", "model": "gpt-4o",
              "trace_id": "0" * 32, "score_id": "00000000-0000-0000-0000-000000000000",
              "action_id": "0x" + "0" * 32, "step_id": "0x" + "0" * 16,
              "silence_id": "00000000-0000-0000-0000-000000000000", "notification_id": "1"}  # fmt: skip
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path.removeprefix("/agiflow/api/v1")


@pytest.fixture
async def world(api: Api, project: str) -> dict[str, Any]:
    """A project with a prompt, Jupyter users in each role, keys in each role, and a key of another project."""
    r = await api.post(
        f"/projects/{project}/prompts", {"name": "greet", "template": "hi {{x}}", "labels": ["production"]}
    )
    assert r.status_code == 201
    callers: dict[str, dict[str, Any]] = {"owner user": {"role": "owner", "who": {}}}
    for role in ("editor", "viewer"):
        user = f"{role}-{uuid.uuid4().hex[:6]}"
        assert (await api.put(f"/projects/{project}/members/{user}", {"role": role})).status_code == 200
        callers[f"{role} user"] = {"role": role, "who": {"user": user}}
    for role in ("owner", "editor", "viewer"):
        callers[f"{role} key"] = {"role": role, "who": {"key": await api.new_key(project, role)}}
    other = f"o-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": other, "name": other})).status_code == 201
    return {"callers": callers, "foreign_key": await api.new_key(other, "owner")}


async def test_every_route_with_every_role(api: Api, project: str, world: dict[str, Any]) -> None:
    doc = (await api.get("/openapi.json")).json()
    checked = 0
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            if op["x-agiflow-websocket"]:
                continue  # tests/test_jobs.py covers the events socket's access rules
            resource, action = op["x-agiflow-resource"], op["x-agiflow-action"]
            url = fill(path, project)
            project_scoped = "{project}" in path

            r = await api.request(verb.upper(), url, body_for(path, verb), anonymous=True)
            assert r.status_code == 401, (verb, path, r.status_code)
            assert r.json()["error"]["code"] == "unauthenticated"

            r = await api.request(verb.upper(), url, body_for(path, verb), user=f"stranger-{uuid.uuid4().hex[:4]}")
            expect_stranger = not project_scoped and resource not in ADMIN_ONLY | ADMIN_OR_KEY
            assert (r.status_code != 403) == expect_stranger, ("stranger", verb, path, r.status_code, r.text)

            for name, caller in world["callers"].items():
                if resource in KEY_OR_HEADER and not project_scoped and "key" not in caller["who"]:
                    r = await api.request(verb.upper(), url, body_for(path, verb), **caller["who"])
                    assert r.status_code == 400 and "x-agiflow-project" in r.text, (name, verb, path, r.text)
                    continue
                if resource in KEY_OR_HEADER and not project_scoped:
                    allowed = may(caller["role"], resource, action)
                elif project_scoped:
                    allowed = may(caller["role"], resource, action)
                    allowed &= not ("key" in caller["who"] and (resource, action) in KEYS_MAY_NOT)
                elif resource in ADMIN_ONLY:
                    allowed = name == "owner user"
                elif resource in ADMIN_OR_KEY:
                    allowed = name == "owner user" or "key" in caller["who"]
                else:
                    allowed = resource in PROJECTLESS_READS and (action == "read" or "key" not in caller["who"])
                r = await api.request(verb.upper(), url, body_for(path, verb), **caller["who"])
                assert r.status_code != 500, (name, verb, path, r.text)
                denied = r.status_code in (401, 403)
                assert denied != allowed, (name, verb, path, r.status_code, r.text)
                checked += 1

            if project_scoped:
                r = await api.request(verb.upper(), url, body_for(path, verb), key=world["foreign_key"])
                assert r.status_code == 403, ("foreign key", verb, path, r.status_code)
    assert checked > 100


def test_every_route_is_authenticated_and_authorized() -> None:
    """A route added without the decorators fails here before it can ship."""
    authenticated_code = web.authenticated(lambda self: None).__code__
    ws_authenticated_code = ws_authenticated(lambda self: None).__code__  # no login redirect on an upgrade
    for route in ROUTES:
        ops = operations(route.handler)
        assert ops, f"{route.template} has no documented operations"
        for verb in ("get", "post", "put", "patch", "delete"):
            method = route.handler.__dict__.get(verb)
            if method is None:
                continue
            assert verb in ops, f"{route.handler.__name__}.{verb} is not in the OpenAPI document"
            decorator = "ws_authenticated" if ops[verb].websocket else "authenticated"
            wanted = ws_authenticated_code if ops[verb].websocket else authenticated_code
            assert method.__code__ is wanted, f"{route.handler.__name__}.{verb} lacks @{decorator}"
            assert getattr(method, "__agiflow_authorized__", False), (
                f"{route.handler.__name__}.{verb} lacks @authorized"
            )
            assert route.handler.auth_resource.startswith("agiflow:") and route.handler.auth_resource != "agiflow:none"


async def test_api_keys_are_shown_once_hashed_and_revocable(api: Api, project: str, db_url: str) -> None:
    import psycopg

    r = await api.post(f"/projects/{project}/keys", {"name": "ci", "role": "editor"})
    created = r.json()
    secret, key_id = created["secret"], created["id"]
    listed = (await api.get(f"/projects/{project}/keys")).json()["items"]
    assert [k["id"] for k in listed] == [key_id]
    assert "secret" not in listed[0]
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT secret_hash FROM control.api_keys WHERE id = %s", (key_id,)).fetchone()
    assert stored is not None and secret not in stored[0] and secret.split("_", 2)[2] not in stored[0]

    assert (await api.get(f"/projects/{project}/prompts", key=secret)).status_code == 200
    assert (await api.delete(f"/projects/{project}/keys/{key_id}")).status_code == 200
    r = await api.get(f"/projects/{project}/prompts", key=secret)
    assert r.status_code in (401, 403)
    r = await api.get(f"/projects/{project}/prompts", key=secret[:-2] + "xx")
    assert r.status_code == 401
    r = await api.get(f"/projects/{project}/prompts", key="agf_nonsense")
    assert r.status_code == 401


async def test_members_can_be_managed_and_the_last_owner_stays(api: Api, project: str) -> None:
    assert (await api.put(f"/projects/{project}/members/ed", {"role": "editor"})).status_code == 200
    members = (await api.get(f"/projects/{project}/members")).json()["items"]
    assert {"user": "ed", "role": "editor"} in members
    assert (await api.get(f"/projects/{project}/prompts", user="ed")).status_code == 200
    r = await api.put(f"/projects/{project}/members/ed", {"role": "god"})
    assert r.status_code == 422
    r = await api.put(f"/projects/{project}/members/olivia", {"role": "viewer"})
    assert r.status_code == 403 and "server's owner" in r.json()["error"]["message"]
    r = await api.delete(f"/projects/{project}/members/olivia")
    assert r.status_code == 403 and "server's owner" in r.json()["error"]["message"]
    assert (await api.delete(f"/projects/{project}/members/ed")).status_code == 204
    assert (await api.get(f"/projects/{project}/prompts", user="ed")).status_code == 403
    actions = [a["action"] for a in (await api.get(f"/projects/{project}/audit")).json()["items"]]
    assert actions[:2] == ["member.remove", "member.set"]


async def test_projects_list_shows_only_the_callers_projects(api: Api, project: str) -> None:
    mine = [p["slug"] for p in (await api.get("/projects")).json()["items"]]
    assert project in mine and "default" in mine
    theirs = (await api.get("/projects", user=f"new-{uuid.uuid4().hex[:6]}")).json()["items"]
    assert theirs == []
    key = await api.new_key(project, "viewer")
    assert [p["slug"] for p in (await api.get("/projects", key=key)).json()["items"]] == [project]


async def test_no_one_demotes_or_removes_the_server_owner(api: Api, project: str) -> None:
    """Not an owner key, not another owner: whoever runs the server cannot be locked out of a project."""
    alice = f"alice-{uuid.uuid4().hex[:6]}"
    assert (await api.put(f"/projects/{project}/members/{alice}", {"role": "owner"})).status_code == 200
    owner_key = await api.new_key(project, "owner")
    for who in ({"key": owner_key}, {"user": alice}):
        r = await api.put(f"/projects/{project}/members/olivia", {"role": "viewer"}, **who)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (who, r.text)
        r = await api.delete(f"/projects/{project}/members/olivia", **who)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (who, r.text)
    assert (await api.put(f"/projects/{project}/members/olivia", {"role": "owner"})).status_code == 200  # no change
    assert {"user": "olivia", "role": "owner"} in (await api.get(f"/projects/{project}/members")).json()["items"]


async def test_api_keys_do_not_manage_members_by_default(api: Api, project: str) -> None:
    key = await api.new_key(project, "owner")
    r = await api.put(f"/projects/{project}/members/someone", {"role": "owner"}, key=key)
    assert r.status_code == 403 and "keys_manage_members" in r.json()["error"]["message"]
    assert (await api.put(f"/projects/{project}/members/someone", {"role": "viewer"})).status_code == 200
    r = await api.delete(f"/projects/{project}/members/someone", key=key)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await api.get(f"/projects/{project}/members", key=key)).status_code == 200  # reading is fine


async def test_a_made_up_owner_does_not_count_as_the_last_owner(api: Api) -> None:
    """Only owners who have signed in (or the server owner) keep a project owned."""
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    slug = f"a-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": slug, "name": slug}, user=alice)).status_code == 201
    assert (await api.put(f"/projects/{slug}/members/ghost-{bob}", {"role": "owner"}, user=alice)).status_code == 200
    r = await api.put(f"/projects/{slug}/members/{alice}", {"role": "viewer"}, user=alice)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict", r.text
    assert (await api.delete(f"/projects/{slug}/members/{alice}", user=alice)).status_code == 409
    assert (await api.put(f"/projects/{slug}/members/{bob}", {"role": "owner"}, user=alice)).status_code == 200
    r = await api.put(f"/projects/{slug}/members/{alice}", {"role": "viewer"}, user=alice)
    assert r.status_code == 409  # bob was named, but has not signed in yet
    assert (await api.get("/projects", user=bob)).status_code == 200  # now he has
    assert (await api.put(f"/projects/{slug}/members/{alice}", {"role": "viewer"}, user=alice)).status_code == 200
    r = await api.delete(f"/projects/{slug}/members/{bob}", user=bob)
    assert r.status_code == 409  # the made-up owner is all that would be left


async def test_owner_keys_allowed_to_manage_members_still_cannot_lock_anyone_out(api: Api, db_url: str) -> None:
    """With keys_manage_members on, the attack from the trust review: demote the server owner, or add a
    made-up owner and then remove the real ones."""
    from agiflow_lab.authz.admins import ServerAdmins
    from agiflow_lab.authz.enforcer import Authorizer
    from agiflow_lab.core.actor import Actor
    from agiflow_lab.db.database import Database
    from agiflow_lab.errors import Conflict, Forbidden
    from agiflow_lab.projects.service import ProjectService

    alice = f"alice-{uuid.uuid4().hex[:6]}"
    slug = f"k-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": slug, "name": slug})).status_code == 201
    assert (await api.put(f"/projects/{slug}/members/{alice}", {"role": "owner"})).status_code == 200
    key_id = (await api.post(f"/projects/{slug}/keys", {"name": "ci", "role": "owner"})).json()["id"]
    db = Database(db_url, min_size=1, max_size=2)
    await db.open()
    try:
        projects = ProjectService(db, Authorizer(db), admins=ServerAdmins.of(["olivia"]), keys_manage_members=True)
        key = Actor.for_key(key_id, slug)
        with pytest.raises(Forbidden):
            await projects.set_member(key, slug, "olivia", "viewer")
        with pytest.raises(Forbidden):
            await projects.remove_member(key, slug, "olivia")
        await projects.set_member(key, slug, "made-up", "owner")
        await projects.remove_member(key, slug, alice)  # allowed: olivia, the server owner, is still an owner
        members = {m.user: m.role for m in await projects.members(slug)}
        assert members["olivia"] == "owner" and alice not in members

        other = f"o-{uuid.uuid4().hex[:8]}"  # a project the server owner is not in: alice alone (made-up aside)
        assert (await api.post("/projects", {"slug": other, "name": other}, user=alice)).status_code == 201
        other_key = (await api.post(f"/projects/{other}/keys", {"name": "ci", "role": "owner"}, user=alice)).json()
        key = Actor.for_key(other_key["id"], other)
        await projects.set_member(key, other, "made-up", "owner")
        with pytest.raises(Conflict):
            await projects.set_member(key, other, alice, "viewer")
        with pytest.raises(Conflict):
            await projects.remove_member(key, other, alice)
    finally:
        await db.close()


async def test_status_is_scoped_and_worker_hosts_are_for_admins(api: Api, project: str, db_url: str) -> None:
    import psycopg

    editor = f"ed-{uuid.uuid4().hex[:6]}"
    assert (await api.put(f"/projects/{project}/members/{editor}", {"role": "editor"})).status_code == 200
    key = await api.new_key(project, "viewer")
    other = f"o-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": other, "name": other})).status_code == 201
    host = f"host-{uuid.uuid4().hex[:8]}.internal"  # a worker that stopped a moment ago: listed, not alive
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """INSERT INTO control.workers (id, hostname, pid, topics, concurrency, stopped_at)
               VALUES (%s, %s, 4242, ARRAY['jobs'], 1, now())""",
            (f"w-{uuid.uuid4().hex[:8]}", host),
        )

    everything = await api.get("/status")  # the server owner: the whole deployment, workers by host and pid
    assert everything.json()["project"] is None and host in everything.text

    r = await api.get("/status", user=editor)
    assert r.status_code == 403 and r.json()["error"]["details"]["field"] == "project"
    for who in ({"user": editor}, {"key": key}):
        r = await api.get("/status", params={"project": project}, **who)
        assert r.status_code == 200, r.text
        assert r.json()["project"] == project and r.json()["workers"] == [] and host not in r.text
        assert isinstance(r.json()["workers_alive"], int)
        assert (await api.get("/status", params={"project": other}, **who)).status_code == 403
    r = await api.get("/status", key=key)  # a key: its own project unless it names one
    assert r.status_code == 200 and r.json()["project"] == project and r.json()["workers"] == []
    assert (await api.get("/status", params={"project": project}, user="stranger")).status_code == 403


async def test_only_the_server_owner_administers_the_bus(api: Api) -> None:
    """Owning the default project is not enough: its owners can make anyone an owner."""
    mallory = f"mallory-{uuid.uuid4().hex[:6]}"
    assert (await api.put(f"/projects/default/members/{mallory}", {"role": "owner"})).status_code == 200
    key = await api.new_key("default", "owner")
    for who in ({"user": mallory}, {"key": key}):
        r = await api.get("/bus/dead-letters", **who)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (who, r.text)
        r = await api.post("/bus/dead-letters/00000000-0000-0000-0000-000000000000/requeue", {"group": "g"}, **who)
        assert r.status_code == 403, (who, r.text)
    assert (await api.get("/bus/dead-letters")).status_code == 200
    assert (await api.delete(f"/projects/default/members/{mallory}")).status_code == 204

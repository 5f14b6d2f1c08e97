"""The Python SDK against a real Jupyter server: fetch, render, cache rules, errors, discovery."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_core.paths import jupyter_runtime_dir

import agiflow_lab
from agiflow_lab.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, ValidationFailed
from agiflow_lab.sdk import ApiError, Client, DiscoveryError, ServerUnreachable, StaleCacheWarning
from agiflow_lab.sdk.cache import PromptCache
from agiflow_lab.sdk.discovery import discover
from tests.support.api import Api
from tests.support.kernels import ready_client
from tests.support.servers import JupyterServer, start_jupyter

CHAT = [
    {"role": "system", "content": "You help {{company}} customers."},
    {"role": "user", "content": "{{question}}"},
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Requests:
    """Counts the HTTP requests a client sends (an httpx event hook), to prove cache hits."""

    def __init__(self, client: Client) -> None:
        self.count = 0
        client.http.event_hooks["request"].append(self._seen)

    def _seen(self, request: httpx.Request) -> None:
        self.count += 1


@pytest.fixture
async def owner_key(api: Api, project: str) -> str:
    return await api.new_key(project, "owner")


@pytest.fixture
async def viewer_key(api: Api, project: str) -> str:
    return await api.new_key(project, "viewer")


@pytest.fixture
def client(jupyter: JupyterServer, owner_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=owner_key, project=project) as c:
        c.prompts.create("greet", "Hello {{name}} from {{place}}!", config={"model": "gpt-4o"}, labels=["production"])
        yield c


def test_get_by_label_renders_text(client: Client) -> None:
    prompt = client.prompts.get("greet", label="production")
    assert (prompt.name, prompt.version, prompt.type) == ("greet", 1, "text")
    assert prompt.variables == ["name", "place"]
    assert prompt.config == {"model": "gpt-4o"}
    assert prompt.labels == ["production"]
    assert prompt.render(name="Ann", place="Oslo") == "Hello Ann from Oslo!"
    assert prompt.render({"name": "Ann"}, place="Oslo") == "Hello Ann from Oslo!"


def test_chat_prompt_renders_openai_messages(client: Client) -> None:
    client.prompts.create("support", CHAT, labels=["production"])
    prompt = client.prompts.get("support")  # production is the default label
    assert prompt.type == "chat"
    assert prompt.render_messages(company="Acme", question="Where is my order?") == [
        {"role": "system", "content": "You help Acme customers."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert prompt.template == CHAT  # the raw template is untouched by rendering


def test_render_names_missing_and_unknown_variables_locally(client: Client) -> None:
    prompt = client.prompts.get("greet")
    requests = Requests(client)
    with pytest.raises(InvalidInput) as missing:
        prompt.render(name="Ann")
    assert missing.value.details["missing"] == ["place"]
    assert "greet" in str(missing.value) and "place" in str(missing.value)
    with pytest.raises(InvalidInput) as unknown:
        prompt.render(name="Ann", place="Oslo", mood="glad")
    assert unknown.value.details["unknown"] == ["mood"]
    assert requests.count == 0


def test_a_fresh_entry_is_served_without_a_request(client: Client) -> None:
    first = client.prompts.get("greet", label="production")
    requests = Requests(client)
    for _ in range(5):
        assert client.prompts.get("greet", label="production") is first
    assert requests.count == 0
    assert client.cache is not None and client.cache.stats.hits == 5


def test_an_expired_entry_is_refetched(client: Client, api: Api, project: str) -> None:
    assert client.cache is not None
    client.cache.clock = clock = FakeClock()
    client.prompts.get("greet")
    # Another user moves the label; this client sees it only once its copy expires.
    other = Client(url=client.endpoint.url, api_key=client.endpoint.secret, project=project, cache=False)
    other.prompts.add_version("greet", "Hi {{name}}", labels=["production"])
    requests = Requests(client)
    clock.now += 59
    assert client.prompts.get("greet").version == 1
    assert requests.count == 0
    clock.now += 2
    assert client.prompts.get("greet").version == 2
    assert requests.count == 1


def test_cache_false_always_asks_the_server(client: Client, jupyter: JupyterServer, owner_key: str) -> None:
    client.prompts.get("greet")
    requests = Requests(client)
    client.prompts.get("greet", cache=False)
    client.prompts.get("greet", cache=False)
    assert requests.count == 2

    uncached = Client(url=jupyter.url, api_key=owner_key, project=client.project, cache=False)
    requests = Requests(uncached)
    uncached.prompts.get("greet")
    uncached.prompts.get("greet")
    assert requests.count == 2 and uncached.cache is None


def test_a_client_reads_its_own_writes_at_once(client: Client) -> None:
    assert client.prompts.get("greet").version == 1
    assert client.prompts.get("greet", label="latest").version == 1
    client.prompts.add_version("greet", "Hi {{name}}", labels=["production"])
    assert client.prompts.get("greet").version == 2
    assert client.prompts.get("greet", label="latest").version == 2
    # A label moved back to an older version is also seen at once (no "highest version wins").
    client.prompts.set_label("greet", "production", 1)
    assert client.prompts.get("greet").version == 1


def test_an_answer_to_a_request_sent_before_a_write_is_never_served() -> None:
    cache: PromptCache[int] = PromptCache(ttl=60)

    def fetch_while_this_client_writes() -> int:
        cache.wrote("greet")  # the write completes while the read is in flight
        return 1  # the read's (old) answer

    assert cache.get("greet", "production", fetch_while_this_client_writes) == 1
    assert cache.get("greet", "production", lambda: 2) == 2  # not served from the cache
    assert cache.get("greet", "production", lambda: 3) == 2  # the post-write answer is cached


def test_stale_copy_is_served_when_the_server_is_gone(
    db_url: str, tmp_path: Path, jupyter: JupyterServer, owner_key: str, project: str
) -> None:
    second = start_jupyter(db_url, tmp_path)  # same database, so the same project and key
    try:
        c = Client(url=second.url, api_key=owner_key, project=project, cache_ttl=60)
        c.prompts.create("greet", "Hello {{name}}", labels=["production"])
        assert c.cache is not None
        c.cache.clock = clock = FakeClock()
        assert c.prompts.get("greet").version == 1
    finally:
        second.stop()
    clock.now += 120
    with pytest.warns(StaleCacheWarning, match="greet"):
        assert c.prompts.get("greet").version == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every call
        assert c.prompts.get("greet").render(name="Ann") == "Hello Ann"
    assert c.cache.stats.stale == 2
    with pytest.raises(ServerUnreachable):  # nothing cached for this one: the error is the answer
        c.prompts.get("greet", label="latest")
    with pytest.raises(ServerUnreachable):  # an explicit bypass never serves stale
        c.prompts.get("greet", cache=False)


def test_only_transient_failures_are_covered_by_a_stale_copy() -> None:
    cache: PromptCache[int] = PromptCache(ttl=0)
    cache.get("greet", "production", lambda: 1)

    def fail(status: int, code: str) -> int:
        raise ApiError("boom", status=status, code=code)

    with pytest.warns(StaleCacheWarning):
        assert cache.get("greet", "production", lambda: fail(503, "unavailable")) == 1
    with pytest.raises(ApiError):  # a 404 is an answer, not an outage
        cache.get("greet", "production", lambda: fail(404, "not_found"))


def test_viewer_key_reads_but_cannot_write(jupyter: JupyterServer, client: Client, viewer_key: str) -> None:
    viewer = Client(url=jupyter.url, api_key=viewer_key, project=client.project)
    assert viewer.prompts.get("greet").version == 1
    with pytest.raises(Forbidden) as exc:
        viewer.prompts.create("mine", "x")
    assert isinstance(exc.value, ApiError) and exc.value.status == 403 and exc.value.code == "forbidden"
    with pytest.raises(Forbidden):
        viewer.keys.create("escalate", "owner")


def test_api_errors_map_to_domain_classes(client: Client, jupyter: JupyterServer) -> None:
    with pytest.raises(NotFound) as missing:
        client.prompts.get("nope")
    assert "nope" in missing.value.message
    with pytest.raises(NotFound):
        client.prompts.get("greet", label="staging")
    with pytest.raises(Conflict):
        client.prompts.create("greet", "again")
    with pytest.raises(ValidationFailed) as invalid:
        client.prompts.create("bad", "text", type="chat")
    assert invalid.value.status == 422
    with pytest.raises(InvalidInput):
        client.prompts.get("greet", label="production", version=1)
    bad = Client(url=jupyter.url, api_key="agf_000000000000_nope", project=client.project)
    with pytest.raises(Unauthenticated):
        bad.prompts.get("greet")
    with pytest.raises(ServerUnreachable):
        Client(url="http://127.0.0.1:9/", api_key="agf_x", timeout=2).prompts.get("greet")


def test_revoked_key_is_refused(client: Client, jupyter: JupyterServer) -> None:
    created = client.keys.create("ci", "editor")
    assert created.secret.startswith("agf_") and created.role == "editor"
    assert any(k.id == created.id for k in client.keys.list())
    ci = Client(url=jupyter.url, api_key=created.secret, project=client.project, cache=False)
    assert ci.prompts.get("greet").version == 1
    assert client.keys.revoke(created.id).revoked_at is not None
    with pytest.raises((Unauthenticated, Forbidden)):
        ci.prompts.get("greet")


def test_list_iterates_every_page(client: Client) -> None:
    for i in range(4):
        client.prompts.create(f"item-{i}", "x", description="findme")
    names = [p.name for p in client.prompts.list(search="findme", page_size=3)]
    assert names == [f"item-{i}" for i in range(4)]
    assert {p.name for p in client.prompts.list()} >= {"greet", "item-0"}


# --- discovery -----------------------------------------------------------------------------------


def _without_agiflow_env(monkeypatch: pytest.MonkeyPatch, jupyter: JupyterServer) -> None:
    monkeypatch.delenv("AGIFLOW_URL", raising=False)
    monkeypatch.delenv("AGIFLOW_API_KEY", raising=False)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", jupyter.env["JUPYTER_PLATFORM_DIRS"])


def test_discovery_picks_the_server_that_started_the_kernel(
    monkeypatch: pytest.MonkeyPatch, jupyter: JupyterServer, tmp_path: Path
) -> None:
    _without_agiflow_env(monkeypatch, jupyter)
    monkeypatch.setenv("JPY_PARENT_PID", str(jupyter.process.pid))
    endpoint = discover(cwd=str(tmp_path))
    assert (endpoint.url, endpoint.secret) == (jupyter.url, jupyter.token)
    assert endpoint.authorization == f"token {jupyter.token}"


def test_server_url_and_token_hints_when_no_server_info_is_visible(
    monkeypatch: pytest.MonkeyPatch, jupyter: JupyterServer, tmp_path: Path
) -> None:
    _without_agiflow_env(monkeypatch, jupyter)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # e.g. a kernel in another container
    monkeypatch.setenv("JUPYTER_SERVER_URL", jupyter.url)
    monkeypatch.setenv("JUPYTER_TOKEN", jupyter.token)
    client = Client()
    assert client.endpoint.source == "JUPYTER_SERVER_URL"
    assert isinstance(list(client.prompts.list()), list)  # authenticated as the server's owner
    monkeypatch.delenv("JUPYTER_SERVER_URL")
    with pytest.raises(DiscoveryError, match="AGIFLOW_URL"):
        Client()


def test_environment_wins_over_discovery(monkeypatch: pytest.MonkeyPatch, jupyter: JupyterServer) -> None:
    monkeypatch.setenv("AGIFLOW_URL", "http://agiflow.example:8888/")
    monkeypatch.setenv("AGIFLOW_API_KEY", "agf_0123456789ab_secret")
    monkeypatch.setenv("JPY_PARENT_PID", str(jupyter.process.pid))
    endpoint = discover()
    assert endpoint.api_url == "http://agiflow.example:8888/agiflow/api/v1"
    assert endpoint.authorization == "Bearer agf_0123456789ab_secret"


def test_client_with_no_arguments_inside_a_kernel_the_server_started(
    monkeypatch: pytest.MonkeyPatch, jupyter: JupyterServer
) -> None:
    _without_agiflow_env(monkeypatch, jupyter)
    name = f"nb-{uuid.uuid4().hex[:8]}"
    owner = httpx.Client(base_url=jupyter.url, headers={"Authorization": f"token {jupyter.token}"}, timeout=60)
    r = owner.post(
        "agiflow/api/v1/projects/default/prompts", json={"name": name, "template": "hi", "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    # What JupyterLab does when a notebook opens: a session, whose kernel the server starts.
    r = owner.post("api/sessions", json={"path": "analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text
    session = r.json()
    try:
        out = _execute(
            session["kernel"]["id"],
            "import agiflow_lab\n"
            "c = agiflow_lab.Client()\n"
            f"print(c.prompts.get({name!r}).version, c.endpoint.source)\n",
        )
    finally:
        owner.delete(f"api/sessions/{session['id']}")
    assert out.strip() == f"1 Jupyter server pid {jupyter.process.pid}"


def _execute(kernel_id: str, code: str) -> str:
    """Run one cell in a server-owned kernel through its connection file; return its stdout."""
    kc = ready_client(Path(jupyter_runtime_dir()) / f"kernel-{kernel_id}.json")
    chunks: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            chunks.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append("\n".join(msg["content"]["traceback"]))

    try:
        reply = kc.execute_interactive(code, timeout=60, output_hook=hook)
    finally:
        kc.stop_channels()
    assert reply["content"]["status"] == "ok", "\n".join(errors)
    return "".join(chunks)


def test_lazy_import_exposes_the_client() -> None:
    assert agiflow_lab.Client is Client

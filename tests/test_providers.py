"""Model providers: the connection registry over HTTP, encrypted write-only keys, the official OpenAI and
Anthropic clients against the scripted server, retries, and prices."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.config import Settings
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import ValidationFailed
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.providers.anthropic_client import AnthropicClient
from agiflow_lab.providers.base import CompletionRequest, ProviderError
from agiflow_lab.providers.echo import EchoClient
from agiflow_lab.providers.hosts import HostPolicy, HostRefused, canonical_address
from agiflow_lab.providers.models import ConnectionCreate, ConnectionTest
from agiflow_lab.providers.openai_compat import OpenAICompatibleClient
from agiflow_lab.providers.prices import Price, PriceBook
from agiflow_lab.providers.retry import RetryPolicy, complete_with_retries
from agiflow_lab.providers.secrets import ENV_KEY, SecretBox, SecretKeyError, load_cipher, read_or_create_key
from agiflow_lab.providers.service import open_model_service
from tests.support.api import Api

if TYPE_CHECKING:  # the module is loaded as a plugin below; importing it first would skip its assert rewriting
    from tests.support.scripted_llm import ScriptedLLM

pytest_plugins = ["tests.support.scripted_llm"]

FAST = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05)


def new_secret() -> str:
    return f"sk-test-{uuid.uuid4().hex}{uuid.uuid4().hex}"


async def patch(api: Api, path: str, body: Any, **who: Any) -> Any:
    return await api.request("PATCH", path, body, **who)


async def add_connection(api: Api, project: str, **body: Any) -> dict[str, Any]:
    r = await api.post(f"/projects/{project}/models", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def ask(text: str, model: str = "gpt-4o-mini", **kw: Any) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": text}], model=model, **kw)


# --- the registry over HTTP ----------------------------------------------------------------------------


async def test_connection_crud_keeps_the_key_write_only_and_encrypted(
    api: Api, project: str, db_url: str, scripted_llm: ScriptedLLM
) -> None:
    secret = new_secret()
    gateway_key = f"goog-{uuid.uuid4().hex}"  # a credential in a custom header: as secret as api_key
    base = f"/projects/{project}/models"
    bodies: list[str] = []

    created = await api.post(base, {"name": "gpt", "kind": "openai", "base_url": scripted_llm.openai_base_url,
                                    "default_model": "gpt-4o-mini", "api_key": secret,
                                    "options": {"headers": {"X-Goog-Api-Key": gateway_key}}})  # fmt: skip
    assert created.status_code == 201, created.text
    bodies.append(created.text)
    c = created.json()
    assert c["has_api_key"] is True and c["builtin"] is False and "api_key" not in c
    assert c["options"] == {"api_version": None, "header_names": ["X-Goog-Api-Key"]} and c["created_by"] == "olivia"

    for r in [await api.get(base), await api.get(f"{base}/gpt")]:
        assert r.status_code == 200, r.text
        bodies.append(r.text)

    r = await patch(api, f"{base}/gpt", {"description": "shared key"})
    assert r.status_code == 200, r.text
    bodies.append(r.text)
    assert r.json()["has_api_key"] is True and r.json()["description"] == "shared key"
    assert r.json()["default_model"] == "gpt-4o-mini"  # omitted fields stay
    r = await patch(api, f"{base}/gpt", {"options": {"api_version": None}})  # what a client read back: headers stay
    assert r.status_code == 200 and r.json()["options"]["header_names"] == ["X-Goog-Api-Key"], r.text

    r = await api.post(f"{base}/gpt/test", {"prompt": "with the gateway key"})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    [sent] = [q for q in await scripted_llm.arequests() if q["last_user"] == "with the gateway key"]
    assert sent["headers"]["x-goog-api-key"] == gateway_key  # decrypted for the call, and only there

    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            """SELECT m.secret, m.headers_secret, m.options::text FROM control.model_connections m
                 JOIN control.projects p ON p.id = m.project_id WHERE p.slug = %s AND m.name = 'gpt'""",
            (project,),
        ).fetchone()
    assert stored is not None and stored[0] is not None and stored[1] is not None
    ciphertext = bytes(stored[0])
    assert (
        ciphertext != secret.encode() and secret.encode() not in ciphertext and secret[-12:].encode() not in ciphertext
    )
    assert gateway_key.encode() not in bytes(stored[1]) and gateway_key not in stored[2]

    r = await patch(api, f"{base}/gpt", {"api_key": None, "default_model": None})
    assert r.status_code == 200 and r.json()["has_api_key"] is False and r.json()["default_model"] is None
    r = await patch(api, f"{base}/gpt", {"api_key": secret})
    assert r.status_code == 200 and r.json()["has_api_key"] is True
    bodies.append(r.text)
    r = await patch(api, f"{base}/gpt", {"options": {"headers": {}}})
    assert r.status_code == 200 and r.json()["options"]["header_names"] == []

    audit = await api.get(f"/projects/{project}/audit", params={"resource_type": "model"})
    assert audit.status_code == 200
    bodies.append(audit.text)
    actions = [a["action"] for a in audit.json()["items"]]
    assert actions.count("model.update") == 5 and "model.create" in actions

    assert (await api.delete(f"{base}/gpt")).status_code == 204
    r = await api.get(f"{base}/gpt")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    for body in bodies:
        assert secret not in body and secret[-8:] not in body and gateway_key not in body
    log = api.server.log_path.read_text(errors="replace")
    assert secret not in log and gateway_key not in log


async def test_the_builtin_echo_is_listed_labelled_and_fixed(api: Api, project: str) -> None:
    base = f"/projects/{project}/models"
    items = (await api.get(base)).json()["items"]
    echo = items[0]
    assert echo["name"] == "echo" and echo["builtin"] is True and echo["kind"] == "echo"
    assert echo["description"].startswith("Built-in echo") and echo["has_api_key"] is False

    r = await api.post(base, {"name": "echo", "kind": "openai"})
    assert r.status_code == 409 and "built-in" in r.json()["error"]["message"]
    r = await patch(api, f"{base}/echo", {"description": "mine"})
    assert r.status_code == 409 and "built-in" in r.json()["error"]["message"]
    r = await api.delete(f"{base}/echo")
    assert r.status_code == 409 and "built-in" in r.json()["error"]["message"]
    assert (await api.get(f"{base}/echo")).json()["builtin"] is True

    r = await api.post(f"{base}/echo/test", {"prompt": "hello there"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["output"] == "hello there" and r.json()["model"] == "echo"


async def test_test_endpoint_calls_openai_and_anthropic_connections(
    api: Api, project: str, scripted_llm: ScriptedLLM
) -> None:
    await scripted_llm.ascript(default={"mode": "reply", "reply": "OK"})
    await add_connection(api, project, name="oa", kind="openai", base_url=scripted_llm.openai_base_url,
                         default_model="gpt-4o-mini", api_key=new_secret())  # fmt: skip
    await add_connection(api, project, name="claude", kind="anthropic", base_url=scripted_llm.url,
                         default_model="claude-sonnet-4-20250514", api_key=new_secret())  # fmt: skip

    r = await api.post(f"/projects/{project}/models/oa/test", {})
    assert r.status_code == 200, r.text
    assert r.json() | {"latency_ms": 0} == {
        "ok": True, "connection": "oa", "model": "gpt-4o-mini", "latency_ms": 0, "output": "OK",
        "tokens_in": 6, "tokens_out": 1, "error": None, "status": None, "retryable": None,
    }  # fmt: skip
    r = await api.post(f"/projects/{project}/models/claude/test", {"model": "claude-3-5-haiku-latest"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["output"] == "OK" and r.json()["model"] == "claude-3-5-haiku-latest"

    paths = [(q["path"], q["model"]) for q in await scripted_llm.arequests()]
    assert paths == [("/v1/chat/completions", "gpt-4o-mini"), ("/v1/messages", "claude-3-5-haiku-latest")]


async def test_azure_openai_connection_calls_its_deployment(api: Api, project: str, scripted_llm: ScriptedLLM) -> None:
    await add_connection(api, project, name="az", kind="azure_openai", base_url=scripted_llm.url,
                         default_model="my-deployment", options={"api_version": "2024-10-21"}, api_key=new_secret())  # fmt: skip
    r = await api.post(f"/projects/{project}/models/az/test", {"prompt": "hello azure"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["output"] == "hello azure"
    assert [q["path"] for q in await scripted_llm.arequests()] == ["/openai/deployments/my-deployment/chat/completions"]


async def test_test_endpoint_reports_provider_errors_without_the_key(
    api: Api, project: str, scripted_llm: ScriptedLLM
) -> None:
    secret = new_secret()
    await add_connection(api, project, name="oa", kind="openai", base_url=scripted_llm.openai_base_url,
                         default_model="gpt-4o", api_key=secret)  # fmt: skip
    # Real vendors quote the (masked) key back in a 401; the scripted one quotes all of it.
    await scripted_llm.ascript(rules=[
        {"match": "bad key", "status": 401, "reply": f"Incorrect API key provided: {secret}"},
        {"match": "boom", "status": 500, "reply": "upstream exploded"},
    ])  # fmt: skip
    r = await api.post(f"/projects/{project}/models/oa/test", {"prompt": "bad key"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["ok"] is False and result["status"] == 401 and result["retryable"] is False
    assert "HTTP 401" in result["error"] and secret not in r.text and secret[-8:] not in r.text

    r = await api.post(f"/projects/{project}/models/oa/test", {"prompt": "boom"})
    assert r.json()["ok"] is False and r.json()["status"] == 500 and r.json()["retryable"] is True
    assert "upstream exploded" in r.json()["error"]

    await add_connection(api, project, name="nomodel", kind="openai", base_url=scripted_llm.openai_base_url)
    r = await api.post(f"/projects/{project}/models/nomodel/test", {})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "model"


async def test_owner_writes_editors_and_viewers_read(api: Api, project: str) -> None:
    for user, role in (("ed", "editor"), ("vic", "viewer")):
        assert (await api.put(f"/projects/{project}/members/{user}", {"role": role})).status_code == 200
    base = f"/projects/{project}/models"
    body = {"name": "oa", "kind": "openai", "api_key": new_secret()}
    for user in ("ed", "vic"):
        r = await api.post(base, body, user=user)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    await add_connection(api, project, **body)
    for user in ("ed", "vic"):
        r = await api.get(base, user=user)
        assert r.status_code == 200 and [c["name"] for c in r.json()["items"]] == ["echo", "oa"]
        assert (await api.delete(f"{base}/oa", user=user)).status_code == 403
        assert (await api.put(f"/projects/{project}/prices/gpt-4o", {"input_per_million": 1,
                                                                    "output_per_million": 1}, user=user)).status_code == 403  # fmt: skip
    assert (await api.post(f"{base}/echo/test", {}, user="ed")).status_code == 200  # editors run them anyway
    r = await api.post(f"{base}/oa/test", {}, user="vic")  # a call spends the key and reaches the host
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await api.get(base, user="stranger")).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "cohere"}, "kind"),
        ({"name": "x", "kind": "openai", "base_url": "ftp://example.com"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "not a url"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "https://user:pw@example.com/v1"}, "base_url"),
        ({"name": "x", "kind": "openai", "options": {"headers": {"Authorization": "Bearer sk-x"}}}, "options.headers"),
        (
            {"name": "x", "kind": "openai", "options": {"headers": {"X-Team": "a\r\nX-Injected: sk-x"}}},
            "options.headers",
        ),
        ({"name": "x", "kind": "openai", "options": {"headers": {"X-Team": "bell\x07sk-x"}}}, "options.headers"),
        ({"name": "x", "kind": "openai", "options": {"headers": {"X-Team\r\nX-Injected": "sk-x"}}}, "options.headers"),
        ({"name": "x", "kind": "openai", "options": {"headers": {"Host": "sk-x.internal"}}}, "options.headers"),
        ({"name": "x", "kind": "openai", "options": {"headers": {"X-A": "1", "x-a": "sk-x"}}}, "options.headers"),
        ({"name": "x", "kind": "openai", "base_url": "http://example.com:99999/v1"}, "base_url"),
        # Link-local and cloud metadata, in any spelling: refused whatever allow_private_model_hosts says.
        ({"name": "x", "kind": "openai", "base_url": "http://169.254.169.254/latest/meta-data"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://0xa9fea9fe/"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://2852039166/"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://169.254.43518/"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://[::ffff:169.254.169.254]/"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://[fe80::1]:8080/"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://[fd00:ec2::254]/"}, "base_url"),
        ({"name": "x", "kind": "openai", "base_url": "http://100.100.100.200/"}, "base_url"),
        (
            {"name": "x", "kind": "anthropic", "base_url": "http://metadata.google.internal./computeMetadata/v1"},
            "base_url",
        ),
        ({"name": "x", "kind": "openai", "apikey": "sk-typo"}, "apikey"),
        ({"name": "bad name!", "kind": "openai"}, "name"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(api: Api, project: str, body: dict[str, Any], field: str) -> None:
    r = await api.post(f"/projects/{project}/models", {**body, "api_key": body.get("api_key", "sk-never-logged-42")})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_failed"
    assert any(e["field"].startswith(field) for e in r.json()["error"]["details"]["errors"]), r.text
    assert "sk-never-logged-42" not in r.text and "sk-x" not in r.text
    log = api.server.log_path.read_text(errors="replace")
    assert "sk-never-logged-42" not in log and "sk-typo" not in log and "sk-x" not in log


async def test_rule_breaking_input_is_a_400(api: Api, project: str) -> None:
    base = f"/projects/{project}/models"
    r = await api.post(base, {"name": "az", "kind": "azure_openai", "base_url": "https://x.openai.azure.com"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "options.api_version"
    r = await api.post(base, {"name": "oa", "kind": "openai", "api_key": "  "})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "api_key"
    r = await api.post(base, {"name": "az", "kind": "azure_openai", "base_url": "https://x.openai.azure.com",
                              "options": {"api_version": "2024-10-21"}, "api_key": new_secret()})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await patch(api, f"{base}/az", {"options": {}})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "options.api_version"
    r = await patch(api, f"{base}/az", {"kind": "openai"})
    assert r.status_code == 422
    r = await api.post(base, {"name": "az", "kind": "openai"})
    assert r.status_code == 409 and r.json()["error"]["details"]["field"] == "name"


async def test_another_process_decrypts_with_the_shared_key_file(
    api: Api, project: str, db_url: str, scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    """What a worker or evaluation kernel does: build the service from settings and open a client."""
    await add_connection(api, project, name="oa", kind="openai", base_url=scripted_llm.openai_base_url,
                         default_model="gpt-4o", api_key=new_secret())  # fmt: skip
    key_file = Path(api.server.env["AGIFLOW_DATA_DIR"]) / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    db = Database(db_url, min_size=1, max_size=2)
    await db.open()
    try:
        projects = ProjectService(db, Authorizer(db))
        models = open_model_service(db, projects, Settings(database_url=db_url, secret_key_file=key_file))
        ref = await models.resolve(project, "oa")
        assert ref.kind == "openai" and ref.default_model == "gpt-4o" and ref.builtin is False and ref.id
        assert (await models.resolve(project, "echo")).builtin is True
        client = await models.open_client(project, "oa", timeout=10)
        try:
            completion = await client.complete(ask("ping"))
        finally:
            await client.close()
        assert completion.text == "ping"
        wrong = open_model_service(db, projects, Settings(secret_key_file=tmp_path / "other.key"))
        with pytest.raises(SecretKeyError):
            await wrong.open_client(project, "oa")
    finally:
        await db.close()


async def test_a_team_server_refuses_private_hosts_when_saved_and_when_connecting(
    api: Api, project: str, db_url: str, scripted_llm: ScriptedLLM
) -> None:
    """``allow_private_model_hosts`` off: loopback and private addresses in any spelling are a 422 naming
    base_url; a connection that points there anyway (saved while allowed, or a name that resolves there) is
    refused by the client's transport after resolution, before a byte is sent."""
    key_file = Path(api.server.env["AGIFLOW_DATA_DIR"]) / "secret.key"
    port = urllib.parse.urlsplit(scripted_llm.url).port
    db = Database(db_url, min_size=1, max_size=2)
    await db.open()
    try:
        projects = ProjectService(db, Authorizer(db))
        laptop = open_model_service(db, projects, Settings(database_url=db_url, secret_key_file=key_file))
        team = open_model_service(
            db, projects, Settings(database_url=db_url, secret_key_file=key_file, allow_private_model_hosts=False)
        )
        for url in [
            f"http://127.0.0.1:{port}/v1", f"http://0x7f000001:{port}/v1", f"http://2130706433:{port}/v1",
            f"http://127.1:{port}/v1", f"http://0177.0.0.1:{port}/v1", f"http://[::ffff:127.0.0.1]:{port}/v1",
            f"http://[::1]:{port}/v1", f"http://localhost:{port}/v1", f"http://0.0.0.0:{port}/v1",
            "http://10.1.2.3/v1", "http://192.168.0.10:11434/v1", "http://[fd12::1]/v1",
        ]:  # fmt: skip
            with pytest.raises(ValidationFailed) as refused:
                await team.create(Actor("olivia"), project, ConnectionCreate(name="lo", kind="openai", base_url=url))
            assert refused.value.details["errors"][0]["field"] == "base_url", url
        assert [c.name for c in await team.list(project)] == ["echo"]

        body = ConnectionCreate(name="local", kind="openai", base_url=f"http://localhost:{port}/v1", default_model="m")
        await laptop.create(Actor("olivia"), project, body)
        result = await team.test(project, "local", ConnectionTest(prompt="never sent"))
        assert result.ok is False and result.retryable is False and result.error is not None
        assert "refused to connect to localhost" in result.error and "allow_private_model_hosts" in result.error
        assert await scripted_llm.arequests() == []

        result = await laptop.test(project, "local", ConnectionTest(prompt="pinned"))
        assert result.ok is True, result
        [sent] = await scripted_llm.arequests()
        assert sent["headers"]["host"] == f"localhost:{port}"  # connected to the checked address, named as given
    finally:
        await db.close()


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` and its key, as PEM files."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_https_calls_go_to_the_checked_address_and_verify_the_certificate_of_the_name(tmp_path: Path) -> None:
    """The guarded client sends each request to the address it checked, yet TLS must still be about the
    connection's host: the name sent (SNI), the name the certificate is verified against and ``Host``."""
    import ssl

    import openai
    import tornado.httpserver
    import tornado.web

    from agiflow_lab.providers.transport import guarded_client

    seen: list[str] = []

    class Completions(tornado.web.RequestHandler):
        def post(self) -> None:
            seen.append(self.request.host)
            self.write({"choices": [{"message": {"content": "over tls"}}], "model": "m"})

    cert, key = self_signed(tmp_path, "localhost")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/v1/chat/completions", Completions)]),
                                           ssl_options=served)  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    trusted = ssl.create_default_context(cafile=str(cert))

    async def call(host: str, tls: ssl.SSLContext | None) -> bytes:
        sdk = openai.AsyncOpenAI(base_url=f"https://{host}:{port}/v1", api_key="k", max_retries=0,
                                 http_client=guarded_client("openai", HostPolicy(), 10, tls))  # fmt: skip
        try:
            body: bytes = await sdk.post("/chat/completions", cast_to=bytes, body={"model": "m", "messages": []})
            return body
        finally:
            await sdk.close()

    try:
        assert b"over tls" in await call("localhost", trusted)
        assert seen == [f"localhost:{port}"]
        with pytest.raises(openai.APIConnectionError) as refused:  # the default trust (certifi) does not know it
            await call("localhost", None)
        assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value.__cause__)
        with pytest.raises(openai.APIConnectionError) as mismatch:  # same address, but not the certificate's name
            await call("127.0.0.1", trusted)
        assert "CERTIFICATE_VERIFY_FAILED" in repr(mismatch.value.__cause__)
        assert len(seen) == 1
    finally:
        server.stop()


async def test_only_canonical_addresses_skip_the_resolver() -> None:
    """The fast path for ``127.0.0.1`` must not let another spelling of it past the check."""
    assert [canonical_address(n) is not None for n in ("127.0.0.1", "::1", "8.8.8.8")] == [True] * 3
    for spelled in ("127.1", "0x7f000001", "2130706433", "0177.0.0.1", "::ffff:127.0.0.1", "0:0::1", "fe80::1%eth0"):
        assert canonical_address(spelled) is None, spelled
    team = HostPolicy(allow_private=False)
    for host in ("127.0.0.1", "127.1", "::1", "169.254.169.254"):
        with pytest.raises(HostRefused):
            await team.resolve(host, 80)
    assert await HostPolicy(allow_private=True).resolve("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(HostRefused):
        await HostPolicy(allow_private=True).resolve("169.254.169.254", 80)


async def test_failures_reveal_neither_port_state_nor_pages(api: Api, project: str, scripted_llm: ScriptedLLM) -> None:
    """What a connection's errors say cannot be used to scan ports or read pages of non-model hosts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    await add_connection(api, project, name="closed", kind="openai", base_url=f"http://127.0.0.1:{closed}/v1",
                         default_model="m")  # fmt: skip
    await add_connection(api, project, name="page", kind="openai", base_url=f"{scripted_llm.url}/nowhere",
                         default_model="m")  # fmt: skip
    r = await api.post(f"/projects/{project}/models/closed/test", {})
    assert r.status_code == 200 and r.json()["error"] == "openai: could not connect to the server", r.text
    r = await api.post(f"/projects/{project}/models/page/test", {})
    assert r.status_code == 200 and r.json()["status"] == 404, r.text
    assert r.json()["error"] == "openai: HTTP 404: the server did not answer like a model API"
    r = await patch(api, f"/projects/{project}/models/page", {"base_url": "http://169.254.169.254/v1"})
    assert r.status_code == 422 and r.json()["error"]["details"]["errors"][0]["field"] == "base_url"


# --- clients against the scripted server, in-process ------------------------------------------------


async def test_429_twice_then_success_takes_three_attempts(scripted_llm: ScriptedLLM) -> None:
    await scripted_llm.ascript(rules=[{"match": "retry me", "status": 429, "times": 2, "retry_after": 0}])
    client = OpenAICompatibleClient(scripted_llm.openai_base_url, "sk-x", timeout=10)
    try:
        completion = await complete_with_retries(client, ask("please retry me"), FAST)
    finally:
        await client.close()
    assert completion.attempts == 3 and completion.text == "please retry me"
    assert [q["status"] for q in await scripted_llm.arequests()] == [429, 429, 200]


async def test_a_400_is_not_retried(scripted_llm: ScriptedLLM) -> None:
    await scripted_llm.ascript(rules=[{"match": "invalid", "status": 400, "reply": "bad parameter"}])
    client = OpenAICompatibleClient(scripted_llm.openai_base_url, "sk-x", timeout=10)
    try:
        with pytest.raises(ProviderError) as caught:
            await complete_with_retries(client, ask("invalid request"), FAST)
    finally:
        await client.close()
    assert caught.value.status == 400 and caught.value.retryable is False and caught.value.attempts == 1
    assert "bad parameter" in str(caught.value)
    assert len(await scripted_llm.arequests()) == 1


async def test_exhausted_retries_report_the_attempts(scripted_llm: ScriptedLLM) -> None:
    await scripted_llm.ascript(rules=[{"status": 503, "retry_after": 0.01}])
    client = OpenAICompatibleClient(scripted_llm.openai_base_url, "sk-x", timeout=10)
    try:
        with pytest.raises(ProviderError) as caught:
            await complete_with_retries(client, ask("x"), RetryPolicy(max_retries=2, base_delay=0.01))
    finally:
        await client.close()
    assert caught.value.attempts == 3 and "3 attempts" in str(caught.value) and caught.value.status == 503
    assert len(await scripted_llm.arequests()) == 3


async def test_retry_after_and_timeouts_are_reported_as_retryable(scripted_llm: ScriptedLLM) -> None:
    await scripted_llm.ascript(rules=[{"match": "slow down", "status": 429, "retry_after": 7},
                                      {"match": "hang", "hang": True}])  # fmt: skip
    client = OpenAICompatibleClient(scripted_llm.openai_base_url, "sk-x", timeout=0.5)
    try:
        with pytest.raises(ProviderError) as limited:
            await client.complete(ask("slow down"))
        with pytest.raises(ProviderError) as timed_out:
            await client.complete(ask("hang"))
    finally:
        await client.close()
    assert limited.value.status == 429 and limited.value.retryable and limited.value.retry_after == 7
    assert timed_out.value.retryable is True and timed_out.value.status is None
    assert "timed out" in str(timed_out.value)
    assert RetryPolicy(max_delay=5).delay(1, retry_after=7) == 5  # a server's wait is honoured, capped


async def test_openai_client_passes_parameters_and_json_mode(scripted_llm: ScriptedLLM) -> None:
    await scripted_llm.ascript(default={"mode": "reply", "reply": '{"answer": "{{last}}"}'})
    client = OpenAICompatibleClient(scripted_llm.openai_base_url, "sk-x", timeout=10)
    try:
        request = ask("two words", params={"temperature": 0.1, "max_tokens": 20, "seed": 1, "custom_knob": True},
                      json_output=True)  # fmt: skip
        completion = await client.complete(request)
    finally:
        await client.close()
    assert completion.text == '{"answer": "two words"}'
    assert (completion.tokens_in, completion.tokens_out, completion.model) == (2, 3, "gpt-4o-mini")


async def test_anthropic_client_round_trip(scripted_llm: ScriptedLLM) -> None:
    client = AnthropicClient(scripted_llm.url, "sk-ant-x", 10)
    request = CompletionRequest(
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "say hi back"}],
        model="claude-3-5-haiku-20241022", params={"temperature": 0, "stop": "\n", "seed": 3},
    )  # fmt: skip
    try:
        completion = await client.complete(request)
        await scripted_llm.ascript(rules=[{"status": 529, "reply": "overloaded"}])
        with pytest.raises(ProviderError) as caught:
            await client.complete(request)
    finally:
        await client.close()
    assert completion.text == "say hi back" and completion.model == "claude-3-5-haiku-20241022"
    assert (completion.tokens_in, completion.tokens_out) == (6, 3)  # the system prompt counts as input
    assert caught.value.status == 529 and caught.value.retryable and "overloaded" in str(caught.value)
    assert [q["path"] for q in await scripted_llm.arequests()] == ["/v1/messages", "/v1/messages"]


async def test_echo_client_returns_the_rendered_prompt() -> None:
    request = CompletionRequest(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        model="gpt-4o",
    )
    completion = await EchoClient().complete(request)
    assert completion.text == "Be brief.\n\nWhat is 2+2?"
    assert (completion.tokens_in, completion.tokens_out, completion.model) == (5, 5, "echo")
    assert PriceBook().cost(completion.model, completion.tokens_in, completion.tokens_out) == 0.0


# --- prices ------------------------------------------------------------------------------------------


async def test_price_book_rules() -> None:
    book = PriceBook()
    assert book.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert book.cost("gpt-4o-2024-08-06", 2_000, 1_000) == pytest.approx((2_000 * 2.5 + 1_000 * 10) / 1e6)
    assert book.cost("claude-3-5-sonnet-20241022", 1_000_000, 0) == pytest.approx(3.0)
    assert book.cost("claude-3-5-sonnet-latest", 0, 1_000_000) == pytest.approx(15.0)
    assert book.cost("my-finetune", 10, 10) is None  # unpriced, never free
    assert book.cost("gpt-4o", None, 10) is None
    assert book.cost(None, 10, 10) is None
    only_41 = PriceBook({"gpt-4.1": Price(2.0, 8.0)})
    assert only_41.cost("gpt-4.1-nano", 10, 10) is None  # a sibling model is not a dated variant
    assert only_41.cost("gpt-4.1-2025-04-14", 1_000_000, 0) == pytest.approx(2.0)
    overridden = PriceBook(overrides={"GPT-4o": Price(1.0, 1.0, "project"), "my-finetune": Price(4.0, 4.0)})
    assert overridden.cost("gpt-4o-2024-08-06", 1_000_000, 1_000_000) == pytest.approx(2.0)
    assert overridden.cost("my-finetune", 500_000, 0) == pytest.approx(2.0)
    assert dict(overridden.rows())["my-finetune"].source == "project"


async def test_price_table_overrides_over_http(api: Api, project: str) -> None:
    base = f"/projects/{project}/prices"
    table = (await api.get(base)).json()
    rows = {r["model"]: r for r in table["items"]}
    assert rows["gpt-4o"] == {"model": "gpt-4o", "input_per_million": 2.5, "output_per_million": 10.0,
                              "source": "shipped"}  # fmt: skip
    assert rows["echo"]["input_per_million"] == 0 and table["shipped_as_of"]

    r = await api.put(f"{base}/gpt-4o", {"input_per_million": 1.5, "output_per_million": 6})
    assert r.status_code == 200 and r.json()["source"] == "project"
    r = await api.put(f"{base}/acme-llm-7b", {"input_per_million": 0.2, "output_per_million": 0.2})
    assert r.status_code == 200
    rows = {r["model"]: r for r in (await api.get(base)).json()["items"]}
    assert rows["gpt-4o"]["source"] == "project" and rows["gpt-4o"]["input_per_million"] == 1.5
    assert rows["acme-llm-7b"]["source"] == "project"

    r = await api.put(f"{base}/gpt-4o", {"input_per_million": -1, "output_per_million": 6})
    assert r.status_code == 422
    assert (await api.delete(f"{base}/gpt-4o")).status_code == 204
    assert {r["model"]: r for r in (await api.get(base)).json()["items"]}["gpt-4o"]["source"] == "shipped"
    r = await api.delete(f"{base}/gpt-4o")
    assert r.status_code == 404 and "shipped" in r.json()["error"]["message"]

    audit = (await api.get(f"/projects/{project}/audit", params={"resource_type": "model_price"})).json()["items"]
    assert [a["action"] for a in audit] == ["model.price.delete", "model.price.set", "model.price.set"]


# --- the secret key ----------------------------------------------------------------------------------


def test_racing_processes_end_up_with_one_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: read_or_create_key(path), range(16)))
    assert len({tuple(k) for k in keys}) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary files left behind
    box = SecretBox(keys[0])
    assert box.decrypt(box.encrypt("sk-live-1")) == "sk-live-1" and "sk" not in repr(box)


def test_env_key_wins_and_rotation_keeps_old_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path)
    old = load_cipher(settings)  # creates <data_dir>/secret.key
    token = old.encrypt("sk-old")
    new_key = Fernet.generate_key().decode()
    old_key = (tmp_path / "secret.key").read_text().strip()
    monkeypatch.setenv(ENV_KEY, f"{new_key},{old_key}")
    rotated = load_cipher(settings)
    assert rotated.decrypt(token) == "sk-old"
    monkeypatch.setenv(ENV_KEY, new_key)
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        load_cipher(settings).decrypt(token)  # the old key was dropped: its secrets are gone
    monkeypatch.setenv(ENV_KEY, "not-a-key")
    with pytest.raises(SecretKeyError):
        load_cipher(settings)
    assert os.environ[ENV_KEY] == "not-a-key"


async def test_scripted_server_serves_concurrent_requests(scripted_llm: ScriptedLLM) -> None:
    await scripted_llm.ascript(default={"mode": "echo", "latency_ms": 50})
    client = OpenAICompatibleClient(scripted_llm.openai_base_url, "sk-x", timeout=10)
    try:
        done = await asyncio.gather(*(client.complete(ask(f"item {i}")) for i in range(64)))
    finally:
        await client.close()
    assert sorted(c.text for c in done) == sorted(f"item {i}" for i in range(64))
    assert len(await scripted_llm.arequests()) == 64


def test_a_scripted_server_removes_the_log_it_made_and_keeps_one_it_was_given(tmp_path: Path) -> None:
    from tests.support.scripted_llm import ScriptedLLM  # loaded as a plugin by now (see the imports)

    with ScriptedLLM() as server:
        made = server.log_path
        assert made is not None and made.exists()
    assert not made.exists()
    given = tmp_path / "server.log"
    with ScriptedLLM(log_path=given):
        pass
    assert given.exists()


async def test_openapi_marks_the_key_write_only(api: Api) -> None:
    doc = (await api.get("/openapi.json")).json()
    paths = {p.removeprefix("/agiflow/api/v1"): ops for p, ops in doc["paths"].items()}
    assert {"get", "patch", "delete"} <= set(paths["/projects/{project}/models/{name}"])
    assert paths["/projects/{project}/models/{name}"]["patch"]["x-agiflow-action"] == "write"
    assert paths["/projects/{project}/models/{name}/test"]["post"]["x-agiflow-action"] == "execute"
    assert {"put", "delete"} <= set(paths["/projects/{project}/prices/{model}"])
    text = str(doc["components"]["schemas"])
    schemas = doc["components"]["schemas"]
    assert "api_key" not in schemas["Connection"]["properties"] and "has_api_key" in schemas["Connection"]["properties"]
    key = schemas["ConnectionCreate"]["properties"]["api_key"]
    assert "writeOnly" in str(key) and "password" in str(key), key
    assert "ConnectionUpdate" in text
    assert "headers" not in schemas["ConnectionOptionsView"]["properties"]  # header values are write-only too

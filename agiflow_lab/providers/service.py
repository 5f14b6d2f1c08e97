"""The model-connection registry's rules.

A connection names a provider endpoint and holds its API key encrypted; runs and judges refer to it by
name and get a ready client from ``open_client`` without ever seeing the key. The key is write-only:
set or cleared through the API, decrypted only to build a client, absent from every response, audit
row and error; custom header values are handled exactly like it. ``echo`` is built in: present in every
project, never stored, never changed.

Where a connection may point is ``hosts.HostPolicy``'s rule, applied when ``base_url`` is saved (a 422
the owner can act on) and again by the client's transport on every connection it opens.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from agiflow_lab.audit import store as audit
from agiflow_lab.config import Settings
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Conflict, InvalidInput, NotFound
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.providers import store
from agiflow_lab.providers.base import ClientSpec, CompletionRequest, ProviderClient, ProviderError
from agiflow_lab.providers.echo import ECHO, ECHO_DESCRIPTION, EchoClient
from agiflow_lab.providers.hosts import HostPolicy
from agiflow_lab.providers.models import (
    Connection,
    ConnectionCreate,
    ConnectionOptions,
    ConnectionOptionsView,
    ConnectionRef,
    ConnectionTest,
    ConnectionTestResult,
    ConnectionUpdate,
    PriceRow,
    PriceSet,
    PriceTable,
)
from agiflow_lab.providers.prices import Price, PriceBook, shipped_as_of, shipped_prices
from agiflow_lab.providers.secrets import SecretBox, load_cipher

BUILTIN_ECHO = Connection(
    name=ECHO, kind="echo", base_url=None, default_model=ECHO, description=ECHO_DESCRIPTION,
    options=ConnectionOptionsView(), has_api_key=False, builtin=True,
)  # fmt: skip
ECHO_REF = ConnectionRef(id=None, name=ECHO, kind=ECHO, default_model=ECHO, builtin=True)
_MODEL_NAME_MAX = 200
# A name that does not resolve when it is saved is checked again on every connection; do not wait long.


ClientFactory = Callable[[ClientSpec], ProviderClient]

# The adapter module of each connection kind: each imports its vendor SDK (about a second each).
ADAPTERS: Mapping[str, str] = {
    "openai": "agiflow_lab.providers.openai_compat",
    "azure_openai": "agiflow_lab.providers.openai_compat",
    "anthropic": "agiflow_lab.providers.anthropic_client",
}


async def load_adapter(kind: str) -> None:
    """Import the adapter (and vendor SDK) of ``kind`` on a thread the first time: an import on the event loop
    would stall every request and model call in flight for that second."""
    module = ADAPTERS.get(kind)
    if module is not None and module not in sys.modules:
        await asyncio.to_thread(importlib.import_module, module)


def make_client(spec: ClientSpec) -> ProviderClient:
    """The vendor SDK is imported here, on first use: importing openai and anthropic costs about two seconds,
    which every Jupyter server start and every worker would otherwise pay before serving anything."""
    module = ADAPTERS.get(spec.kind)
    if module is None:
        raise ProviderError(f"unknown connection kind {spec.kind!r}")
    build: Callable[[ClientSpec], ProviderClient] = importlib.import_module(module).from_spec
    return build(spec)


def _is_builtin(name: str) -> bool:
    return name.lower() == ECHO


def _refuse_builtin(name: str, what: str) -> None:
    if _is_builtin(name):
        raise Conflict(
            f"'echo' is the built-in connection (it returns the rendered prompt and calls no model); "
            f"it cannot be {what}. Choose another name for your own connection.",
            {"field": "name", "name": name, "builtin": True},
        )


def _check_shape(kind: str, base_url: str | None, options: Mapping[str, Any]) -> None:
    if kind == "azure_openai":
        if not base_url:
            raise InvalidInput(
                "an azure_openai connection needs base_url: the resource endpoint", {"field": "base_url"}
            )
        if not options.get("api_version"):
            raise InvalidInput("an azure_openai connection needs options.api_version", {"field": "options.api_version"})


def _secret_value(key: SecretStr | None) -> str | None:
    if key is None:
        return None
    value = key.get_secret_value()
    if not value.strip():
        raise InvalidInput("api_key is empty; send null for no key", {"field": "api_key"})
    return value


def _options_view(options: Mapping[str, Any] | None) -> ConnectionOptionsView:
    """Stored options as clients see them: header names only (rows from before headers were encrypted
    still hold them in ``options.headers`` until the server seals them at start)."""
    options = options or {}
    names = options.get("header_names") or list(options.get("headers") or {})
    return ConnectionOptionsView(api_version=options.get("api_version"), header_names=list(names))


def _stored_options(options: ConnectionOptions, headers: Mapping[str, str]) -> dict[str, Any]:
    return {"api_version": options.api_version, "header_names": sorted(headers)}


def _public(row: Mapping[str, Any]) -> Connection:
    fields = {k: v for k, v in row.items() if k != "id"}
    return Connection.model_validate({**fields, "options": _options_view(row.get("options"))})


def _audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a connection: everything but the key and header values, which are secrets."""
    keys = ("name", "kind", "base_url", "default_model", "description", "has_api_key")
    return {**{k: row.get(k) for k in keys}, "options": _options_view(row.get("options")).model_dump()}


def _normalise_model(model: str) -> str:
    name = model.strip().lower()
    if not name or len(name) > _MODEL_NAME_MAX or any(c.isspace() for c in name):
        raise InvalidInput(f"model must be 1-{_MODEL_NAME_MAX} characters without spaces", {"field": "model"})
    return name


class ModelService:
    def __init__(
        self,
        db: Database,
        projects: ProjectService,
        cipher: SecretBox | Callable[[], SecretBox],
        prices: Mapping[str, Price] | None = None,
        *,
        client_factory: ClientFactory = make_client,
        host_policy: HostPolicy | None = None,
    ) -> None:
        """``cipher`` may be a loader, run once in a thread on first use (it may create the key file)."""
        self.host_policy = host_policy or HostPolicy()
        self.db = db
        self.projects = projects
        self._cipher = cipher if isinstance(cipher, SecretBox) else None
        self._cipher_loader = None if isinstance(cipher, SecretBox) else cipher
        self._cipher_lock = asyncio.Lock()
        self.shipped = shipped_prices() if prices is None else prices
        self.client_factory = client_factory

    async def cipher(self) -> SecretBox:
        if self._cipher is None:
            async with self._cipher_lock:
                if self._cipher is None:
                    assert self._cipher_loader is not None
                    # Reading (or creating) the key file is blocking file I/O.
                    self._cipher = await asyncio.to_thread(self._cipher_loader)
        return self._cipher

    async def _encrypt(self, key: SecretStr | None) -> bytes | None:
        value = _secret_value(key)
        return None if value is None else (await self.cipher()).encrypt(value)

    async def _encrypt_headers(self, headers: Mapping[str, str]) -> bytes | None:
        return (await self.cipher()).encrypt(json.dumps(dict(headers))) if headers else None

    async def _decrypt_headers(self, row: Mapping[str, Any]) -> dict[str, str]:
        if row.get("headers_secret") is not None:
            return dict(json.loads((await self.cipher()).decrypt(row["headers_secret"])))
        return dict((row.get("options") or {}).get("headers") or {})

    async def check_base_url(self, base_url: str | None) -> None:
        """Refuse, with a 422 naming ``base_url``, a host the policy forbids (``HostPolicy.check_on_save``)."""
        if base_url is not None:
            await self.host_policy.check_url_on_save(base_url, "base_url")

    async def seal_plaintext_headers(self) -> int:
        """Encrypt header values saved in plain text before they were treated as secrets; returns how many
        connections changed. Idempotent, and safe with several servers starting at once (rows are locked)."""
        async with self.db.transaction() as conn:
            rows = await store.plaintext_headers(conn)
            for row in rows:
                options = dict(row["options"])
                headers = dict(options.pop("headers") or {})
                options["header_names"] = sorted(headers)
                await store.set_headers(conn, row["id"], options, await self._encrypt_headers(headers))
        return len(rows)

    # --- connections ---------------------------------------------------------------------------

    async def list(self, project: str) -> list[Connection]:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.list_all(conn, project_id)
        return [BUILTIN_ECHO, *(_public(r) for r in rows)]

    async def get(self, project: str, name: str) -> Connection:
        project_id = await self.projects.resolve_id(project)
        if _is_builtin(name):
            return BUILTIN_ECHO
        async with self.db.connection() as conn:
            row = await store.get(conn, project_id, name)
        if row is None:
            raise NotFound(f"model connection {name!r} does not exist", {"connection": name})
        return _public(row)

    async def create(self, actor: Actor, project: str, body: ConnectionCreate) -> Connection:
        _refuse_builtin(body.name, "created")
        options = _stored_options(body.options, body.options.headers)
        _check_shape(body.kind, body.base_url, options)
        project_id = await self.projects.resolve_id(project)
        await self.check_base_url(body.base_url)
        secret = await self._encrypt(body.api_key)
        headers_secret = await self._encrypt_headers(body.options.headers)
        async with self.db.transaction() as conn:
            created = await store.insert(
                conn, project_id, name=body.name, kind=body.kind, base_url=body.base_url,
                default_model=body.default_model, description=body.description, options=options, secret=secret,
                headers_secret=headers_secret, by=actor.principal,
            )  # fmt: skip
            if created is None:
                raise Conflict(f"model connection {body.name!r} already exists", {"field": "name", "name": body.name})
            row = await store.get(conn, project_id, body.name)
            assert row is not None
            await audit.record(
                conn, project_id=project_id, actor=actor, action="model.create", resource_type="model",
                resource_id=body.name, after=_audit_view(row),
            )  # fmt: skip
        return _public(row)

    async def update(self, actor: Actor, project: str, name: str, body: ConnectionUpdate) -> Connection:
        _refuse_builtin(name, "changed")
        given = body.model_fields_set
        new_headers = "options" in given and "headers" in body.options.model_fields_set
        project_id = await self.projects.resolve_id(project)
        if "base_url" in given:
            await self.check_base_url(body.base_url)
        secret = await self._encrypt(body.api_key) if "api_key" in given else None
        headers_secret = await self._encrypt_headers(body.options.headers) if new_headers else None
        async with self.db.transaction() as conn:
            before = await store.get(conn, project_id, name, lock=True)
            if before is None:
                raise NotFound(f"model connection {name!r} does not exist", {"connection": name})
            merged = dict(before)
            for key in ("base_url", "default_model", "description"):
                if key in given:
                    merged[key] = getattr(body, key)
            if "options" in given:
                kept = _options_view(before["options"]).header_names
                merged["options"] = {
                    **_stored_options(body.options, body.options.headers),
                    **({} if new_headers else {"header_names": kept}),
                }
                if not new_headers and "headers" in (before["options"] or {}):  # not yet sealed: keep as it was
                    merged["options"]["headers"] = before["options"]["headers"]
            _check_shape(merged["kind"], merged["base_url"], merged["options"])
            await store.update(
                conn, before["id"], base_url=merged["base_url"], default_model=merged["default_model"],
                description=merged["description"], options=merged["options"],
            )  # fmt: skip
            if "api_key" in given:
                await store.set_secret(conn, before["id"], secret)
            if new_headers:
                await store.set_headers(conn, before["id"], merged["options"], headers_secret)
            after = await store.get(conn, project_id, name)
            assert after is not None
            change = _audit_view(after)
            if "api_key" in given:
                change["api_key"] = "replaced" if secret is not None else "cleared"
            if new_headers:
                change["headers"] = "replaced" if headers_secret is not None else "cleared"
            await audit.record(
                conn, project_id=project_id, actor=actor, action="model.update", resource_type="model",
                resource_id=name, before=_audit_view(before), after=change,
            )  # fmt: skip
        return _public(after)

    async def delete(self, actor: Actor, project: str, name: str) -> None:
        _refuse_builtin(name, "deleted")
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            row = await store.get(conn, project_id, name, lock=True)
            if row is None:
                raise NotFound(f"model connection {name!r} does not exist", {"connection": name})
            await store.delete(conn, row["id"])
            await audit.record(
                conn, project_id=project_id, actor=actor, action="model.delete", resource_type="model",
                resource_id=name, before=_audit_view(row),
            )  # fmt: skip

    # --- for runs and judges -------------------------------------------------------------------

    async def resolve(self, project: str, name: str) -> ConnectionRef:
        project_id = await self.projects.resolve_id(project)
        if _is_builtin(name):
            return ECHO_REF
        async with self.db.connection() as conn:
            row = await store.get(conn, project_id, name)
        if row is None:
            raise NotFound(f"model connection {name!r} does not exist", {"connection": name})
        return ConnectionRef(id=int(row["id"]), name=row["name"], kind=row["kind"],
                             default_model=row["default_model"], builtin=False)  # fmt: skip

    async def open_client(self, project: str, name: str, *, timeout: float = 60.0) -> ProviderClient:  # noqa: ASYNC109
        """A ready client with the key decrypted; the caller closes it. ``timeout`` is the client's per-request
        limit, not a limit on this call."""
        project_id = await self.projects.resolve_id(project)
        if _is_builtin(name):
            return EchoClient()
        async with self.db.connection() as conn:
            row = await store.secret_of(conn, project_id, name)
        if row is None:
            raise NotFound(f"model connection {name!r} does not exist", {"connection": name})
        api_key = None if row["secret"] is None else (await self.cipher()).decrypt(row["secret"])
        options = {k: v for k, v in (row["options"] or {}).items() if k != "headers"}
        await load_adapter(row["kind"])
        return self.client_factory(
            ClientSpec(kind=row["kind"], base_url=row["base_url"], options=options, timeout=timeout,
                       api_key=api_key, headers=await self._decrypt_headers(row), host_policy=self.host_policy)
        )  # fmt: skip

    async def test(self, project: str, name: str, body: ConnectionTest) -> ConnectionTestResult:
        """One tiny completion, no retries: does this connection work right now, and how fast?"""
        connection = await self.get(project, name)
        model = body.model or connection.default_model
        if not model:
            raise InvalidInput(
                f"connection {name!r} has no default_model; name one in 'model'", {"field": "model", "connection": name}
            )
        params: dict[str, Any] = {} if body.max_tokens is None else {"max_tokens": body.max_tokens}
        request = CompletionRequest(messages=[{"role": "user", "content": body.prompt}], model=model, params=params)
        started = time.perf_counter()
        client: ProviderClient | None = None
        try:
            client = await self.open_client(project, name, timeout=body.timeout)
            completion = await client.complete(request)
        except ProviderError as exc:
            return ConnectionTestResult(
                ok=False, connection=connection.name, model=model, latency_ms=(time.perf_counter() - started) * 1000,
                error=str(exc), status=exc.status, retryable=exc.retryable,
            )  # fmt: skip
        finally:
            if client is not None:
                await client.close()
        return ConnectionTestResult(
            ok=True, connection=connection.name, model=completion.model, latency_ms=completion.latency_ms,
            output=completion.text, tokens_in=completion.tokens_in, tokens_out=completion.tokens_out,
        )  # fmt: skip

    # --- prices --------------------------------------------------------------------------------

    async def prices(self, project: str) -> PriceBook:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.prices(conn, project_id)
        overrides = {
            r["model"]: Price(r["input_per_million"], r["output_per_million"], "project") for r in rows
        }  # fmt: skip
        return PriceBook(self.shipped, overrides)

    async def price_table(self, project: str) -> PriceTable:
        book = await self.prices(project)
        items = [
            PriceRow(model=model, input_per_million=p.input_per_million, output_per_million=p.output_per_million,
                     source=p.source)
            for model, p in book.rows()
        ]  # fmt: skip
        return PriceTable(items=items, shipped_as_of=shipped_as_of())

    async def set_price(self, actor: Actor, project: str, model: str, body: PriceSet) -> PriceRow:
        name = _normalise_model(model)
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            before = await store.price(conn, project_id, name)
            await store.set_price(conn, project_id, name, body.input_per_million, body.output_per_million,
                                  actor.principal)  # fmt: skip
            await audit.record(
                conn, project_id=project_id, actor=actor, action="model.price.set", resource_type="model_price",
                resource_id=name, before=None if before is None else dict(before),
                after={"model": name, **body.model_dump()},
            )  # fmt: skip
        return PriceRow(model=name, source="project", **body.model_dump())

    async def delete_price(self, actor: Actor, project: str, model: str) -> None:
        name = _normalise_model(model)
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            before = await store.price(conn, project_id, name)
            if before is None or not await store.delete_price(conn, project_id, name):
                raise NotFound(
                    f"project has no price of its own for {name!r} (shipped prices cannot be deleted)",
                    {"model": name},
                )
            await audit.record(
                conn, project_id=project_id, actor=actor, action="model.price.delete", resource_type="model_price",
                resource_id=name, before=dict(before),
            )  # fmt: skip


def open_model_service(db: Database, projects: ProjectService, settings: Settings) -> ModelService:
    """The service as any process builds it; the key file is read (or created) on first use."""
    return ModelService(
        db, projects, lambda: load_cipher(settings), host_policy=HostPolicy(settings.allow_private_model_hosts)
    )

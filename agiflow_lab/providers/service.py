"""The model-connection registry's rules.

A connection names a provider endpoint and holds its API key encrypted; runs and judges refer to it by
name and get a ready client from ``open_client`` without ever seeing the key. The key is write-only:
set or cleared through the API, decrypted only to build a client, absent from every response, audit
row and error. ``echo`` is built in: present in every project, never stored, never changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from agiflow_lab.audit import store as audit
from agiflow_lab.config import Settings
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Conflict, InvalidInput, NotFound
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.providers import store
from agiflow_lab.providers.anthropic_client import AnthropicClient
from agiflow_lab.providers.base import CompletionRequest, ProviderClient, ProviderError
from agiflow_lab.providers.echo import ECHO, ECHO_DESCRIPTION, EchoClient
from agiflow_lab.providers.models import (
    Connection,
    ConnectionCreate,
    ConnectionRef,
    ConnectionTest,
    ConnectionTestResult,
    ConnectionUpdate,
    PriceRow,
    PriceSet,
    PriceTable,
)
from agiflow_lab.providers.openai_compat import OpenAICompatibleClient
from agiflow_lab.providers.prices import Price, PriceBook, shipped_as_of, shipped_prices
from agiflow_lab.providers.secrets import SecretBox, load_cipher

BUILTIN_ECHO = Connection(
    name=ECHO, kind="echo", base_url=None, default_model=ECHO, description=ECHO_DESCRIPTION, options={},
    has_api_key=False, builtin=True,
)  # fmt: skip
ECHO_REF = ConnectionRef(id=None, name=ECHO, kind=ECHO, default_model=ECHO, builtin=True)
_MODEL_NAME_MAX = 200


@dataclass(frozen=True)
class ClientSpec:
    """Everything needed to build a client; ``repr`` leaves the key out."""

    kind: str
    base_url: str | None
    options: dict[str, Any]
    timeout: float
    api_key: str | None = field(default=None, repr=False)


ClientFactory = Callable[[ClientSpec], ProviderClient]


def make_client(spec: ClientSpec) -> ProviderClient:
    headers = dict(spec.options.get("headers") or {})
    if spec.kind == "anthropic":
        return AnthropicClient(spec.base_url, spec.api_key, spec.timeout, default_headers=headers)
    if spec.kind in ("openai", "azure_openai"):
        return OpenAICompatibleClient(
            spec.base_url, spec.api_key, timeout=spec.timeout, default_headers=headers, kind=spec.kind,
            api_version=spec.options.get("api_version"),
        )  # fmt: skip
    raise ProviderError(f"unknown connection kind {spec.kind!r}")


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


def _public(row: Mapping[str, Any]) -> Connection:
    return Connection.model_validate({k: v for k, v in row.items() if k != "id"})


def _audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a connection: everything but the key, which it only says is present."""
    keys = ("name", "kind", "base_url", "default_model", "description", "options", "has_api_key")
    return {k: row.get(k) for k in keys}


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
    ) -> None:
        """``cipher`` may be a loader, run once in a thread on first use (it may create the key file)."""
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
        options = body.options.model_dump()
        _check_shape(body.kind, body.base_url, options)
        project_id = await self.projects.resolve_id(project)
        secret = await self._encrypt(body.api_key)
        async with self.db.transaction() as conn:
            created = await store.insert(
                conn, project_id, name=body.name, kind=body.kind, base_url=body.base_url,
                default_model=body.default_model, description=body.description, options=options, secret=secret,
                by=actor.principal,
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
        project_id = await self.projects.resolve_id(project)
        secret = await self._encrypt(body.api_key) if "api_key" in given else None
        async with self.db.transaction() as conn:
            before = await store.get(conn, project_id, name, lock=True)
            if before is None:
                raise NotFound(f"model connection {name!r} does not exist", {"connection": name})
            merged = dict(before)
            for key in ("base_url", "default_model", "description"):
                if key in given:
                    merged[key] = getattr(body, key)
            if "options" in given:
                merged["options"] = body.options.model_dump()
            _check_shape(merged["kind"], merged["base_url"], merged["options"])
            await store.update(
                conn, before["id"], base_url=merged["base_url"], default_model=merged["default_model"],
                description=merged["description"], options=merged["options"],
            )  # fmt: skip
            if "api_key" in given:
                await store.set_secret(conn, before["id"], secret)
            after = await store.get(conn, project_id, name)
            assert after is not None
            change = _audit_view(after)
            if "api_key" in given:
                change["api_key"] = "replaced" if secret is not None else "cleared"
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
        return self.client_factory(
            ClientSpec(kind=row["kind"], base_url=row["base_url"], options=dict(row["options"] or {}),
                       timeout=timeout, api_key=api_key)
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
    return ModelService(db, projects, lambda: load_cipher(settings))

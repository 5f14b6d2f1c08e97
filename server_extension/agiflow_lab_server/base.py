"""The base handler: authentication, authorization, JSON in and out, and the one error mapping.

Every handler inherits this and stays a few lines long. Domain errors raised anywhere below map to
HTTP here (``write_error``), the way Elyra's ``HttpErrorMixin`` does it, instead of an except-chain
in every method; pydantic errors become 422 with the field path; nothing a client sends can turn
into a 500.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jupyter_core.utils import ensure_async
from jupyter_server.auth import IdentityProvider, User
from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import JupyterHandler
from pydantic import BaseModel, ValidationError
from tornado import web

from agiflow_lab.authz.policy import READ, WRITE
from agiflow_lab.config import Settings
from agiflow_lab.core import json_input
from agiflow_lab.core.actor import Actor
from agiflow_lab.errors import (
    AgiflowError,
    Forbidden,
    InvalidInput,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
    error_body,
)
from agiflow_lab.keys.secrets import PREFIX as KEY_PREFIX
from agiflow_lab.platform import Platform
from agiflow_lab_server.body import StreamedBody
from agiflow_lab_server.redaction import uri_for_log, validation_summary

M = TypeVar("M", bound=BaseModel)
H = TypeVar("H", bound=Callable[..., Awaitable[None]])

# Identity providers that only say "whoever holds the server's token": the person running the server.
SHARED_SECRET_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


def check_parameter(name: str, value: str) -> None:
    """A path segment or query value: text Postgres can store (no NUL), or a 400 naming it."""
    try:
        json_input.check_text(value, name)
    except json_input.UnsafeJson as exc:
        raise InvalidInput(f"{name} {exc.problem.message}", {"field": name}) from None


def check_bigint(name: str, value: int) -> None:
    if not json_input.INT64_MIN <= value <= json_input.INT64_MAX:
        raise InvalidInput(f"{name} is out of range (a 64-bit integer)", {"field": name})


def action_for(handler: type[AgiflowHandler], method: str) -> str:
    """The Casbin action a request needs: reads are GET, unless a handler says otherwise."""
    method = method.upper()
    return handler.auth_actions.get(method, READ if method in ("GET", "HEAD") else WRITE)


def authorized(method: H) -> H:
    """Check the caller's role (Casbin) for ``auth_resource`` in the path's project before running."""

    @functools.wraps(method)
    async def wrapper(self: AgiflowHandler, *args: Any, **kwargs: Any) -> None:
        action = action_for(type(self), self.request.method or "GET")
        actor = self.actor
        await self.check_jupyter_authorizer(action)  # Jupyter's own authorizer first, then ours
        project = kwargs.get("project")
        if project is None:
            if action == WRITE and actor.kind != "user":
                raise Forbidden("API keys may not act outside their project")
        else:
            self.platform.authz.check(actor, project, self.auth_resource, action)
        for name, value in kwargs.items():  # Postgres refuses NUL characters: a bad name, not a 500
            if isinstance(value, str):
                check_parameter(name, value)
        await method(self, *args, **kwargs)

    wrapper.__agiflow_authorized__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


@dataclass
class PlatformState:
    """Shared by the extension and its handlers; the platform opens after the server starts listening."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    platform: Platform | None = None
    backend: Any = None  # the JobBackend, once started
    startup_error: str | None = None


class AgiflowHandler(StreamedBody):
    auth_resource = "agiflow:none"
    auth_actions: dict[str, str] = {}
    body_limit_setting = "max_body_bytes"  # the Settings field bounding this route's request bodies
    _key_actor: Actor | None = None

    @property
    def platform(self) -> Platform:
        state: PlatformState = self.settings["agiflow"]
        platform = state.platform
        assert platform is not None
        return platform

    def body_limit(self) -> tuple[int, str]:
        platform = self.settings["agiflow"].platform  # None if it failed to start: the defaults bound the refusal
        settings = platform.settings if platform is not None else Settings()
        return int(getattr(settings, self.body_limit_setting)), self.body_limit_setting

    async def prepare(self, **kwargs: Any) -> None:
        state: PlatformState = self.settings["agiflow"]
        await state.ready.wait()
        self.admit_body()
        if state.startup_error:
            raise Unavailable("AGIFlow failed to start: " + state.startup_error)
        token = self._bearer_key()
        if token is None:
            try:
                if kwargs:  # WebSocketMixin: no login redirect; the origin is checked by the upgrade
                    await JupyterHandler.prepare(self, **kwargs)
                else:
                    await super().prepare()
            except web.HTTPError as exc:
                # tornado's @authenticated answers 403 to a non-GET without a user; it means "who are you?"
                if exc.status_code == 403 and self.current_user is None and self.check_host():
                    raise Unauthenticated(
                        "sign in to Jupyter or send 'Authorization: Bearer <project API key>'"
                    ) from None
                raise
            return
        # Project API key: no cookie, so no XSRF check; Jupyter's token machinery is not involved.
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        if not self.check_host():
            raise web.HTTPError(403)
        self._key_actor = await self.platform.keys.authenticate(token)
        # Jupyter's user for tornado's @authenticated and its request log ("key:<id>@<ip>"); ``actor`` is the key.
        self.current_user = self._jupyter_current_user = User(username=self._key_actor.principal)

    def _bearer_key(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value.startswith(KEY_PREFIX):
            return value
        return None

    def check_xsrf_cookie(self) -> None:
        # XSRF protects cookie sessions; a request with no user is refused as unauthenticated (401)
        # right after this, which tells the client more than Jupyter's 403 "_xsrf missing" would.
        if getattr(self, "_jupyter_current_user", None) is None:
            return
        super().check_xsrf_cookie()

    def get_login_url(self) -> str:
        raise Unauthenticated("sign in to Jupyter or send 'Authorization: Bearer <project API key>'")

    async def check_jupyter_authorizer(self, action: str) -> None:
        """A signed-in user must also pass the Jupyter server's authorizer (JupyterHub scopes, custom ones).

        ``is_authorized`` may be a coroutine (an async Authorizer): unawaited, it would always be truthy."""
        if self.actor.kind != "user":
            return
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, action, "agiflow")):
            raise Forbidden(f"the Jupyter server does not allow {action} on agiflow")
        await self.platform.projects.note_user(self.actor)  # a signed-in user: counts as a real member

    @property
    def actor(self) -> Actor:
        if self._key_actor is not None:
            return self._key_actor
        user = self.current_user
        if user is None:
            raise Unauthenticated("not signed in")
        if type(self.identity_provider) in SHARED_SECRET_PROVIDERS:
            return Actor(self.platform.settings.owner)
        return Actor(user.username)

    # --- input -------------------------------------------------------------------------------

    def parse(self, model: type[M]) -> M:
        if self.request.headers.get("Content-Type", "application/json").split(";")[0] not in (
            "application/json",
            "",
        ):
            raise InvalidInput("send the body as application/json", {"field": "body"})
        body = self.body or b"null"
        try:
            json_input.loads(body, max_depth=self.platform.settings.max_json_depth)
        except json_input.UnsafeJson as exc:
            where, problem = exc.problem.path or "body", exc.problem
            error = {"field": where, "message": problem.message, "type": problem.kind}
            raise ValidationFailed(f"{where}: {problem.message}", {"field": where, "errors": [error]}) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", {"field": "body"}) from None
        # Strict, in JSON mode: ``true`` is not 1 and "5" is not 5, while strings still become datetimes or UUIDs.
        return model.model_validate_json(body, strict=True)

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Path segments and query values: tornado's 400 for bad UTF-8 does not say which; this one does."""
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            field = name or "path"
            raise InvalidInput(f"{field} is not valid UTF-8", {"field": field}) from None

    def path_int(self, field: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput(f"{field} must be a whole number", {"field": field, "value": value}) from None
        check_bigint(field, number)
        return number

    def query(self, model: type[M]) -> M:
        """Query strings are text, so the model is lax ("5" is 5; "true" is still not a number); the text is
        checked first (UTF-8, no NUL) and integers after, against Postgres' bigint."""
        values: dict[str, str] = {}
        for name, raw in self.request.query_arguments.items():
            if name.isdigit():  # JupyterLab's ServerConnection appends a bare cache-buster (``&1732740000000``)
                continue
            values[name] = self.decode_argument(raw[-1], name)
            check_parameter(name, values[name])
        parsed = model.model_validate(values)
        for name, info in type(parsed).model_fields.items():
            if isinstance(value := getattr(parsed, name), int) and not isinstance(value, bool):
                check_bigint(info.alias or name, value)
        return parsed

    # --- output ------------------------------------------------------------------------------

    def finish_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if isinstance(value, BaseModel):
            self.finish(value.model_dump_json())
        elif isinstance(value, list):
            items = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
            self.finish(json.dumps({"items": items}))
        elif value is None:
            self.finish()
        else:
            self.finish(json.dumps(value))

    # --- errors: the one place exceptions become HTTP ----------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status, body = error_body(status_code, kwargs.get("exc_info", (None, None, None))[1])
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def _request_summary(self) -> str:
        # Tornado's warning and uncaught-exception lines quote this; scrub the query like Jupyter's request log.
        return f"{self.request.method} {uri_for_log(self)} ({self.request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ValidationError):  # field paths and messages only: inputs may be secrets
            self.log.info("%s %s: %s", self.request.method, uri_for_log(self), validation_summary(value))
        elif isinstance(value, AgiflowError) and value.status < 500:
            self.log.info("%s %s: %s", self.request.method, uri_for_log(self), value)
        elif isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)
        else:  # tornado's own line adds repr(request), whose uri is not scrubbed
            self.log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

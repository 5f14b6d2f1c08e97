"""The job API: how a job's kernel reaches the platform without holding its credentials.

A kernel runs user code (a user's notebook, a ``python`` evaluator), so it gets neither the database URL
nor the secret key. Instead the worker serves this small HTTP API on 127.0.0.1 and gives each job
attempt a random token (``AGIFLOW_JOB_TOKEN``) valid while that attempt runs on this worker and only for
that job: an evaluation job reads its own run's pinned items, calls its run's pinned connections (the
decrypted keys stay in the worker), writes its run's results and, for a batch inference, has its run's
outputs written as the run's output dataset (``/run/output``, ``evals.outputs``). The run is found from the job id, so a
kernel cannot point its token at another run or project.

Any job may also read and write the datasets *of its own project* (``/datasets``: the data-preparation
tasks run their user-given filter expressions in the kernel, never here). The project is the job's, so
another project's dataset is simply not found; writes go through the dataset service, with its limits,
and are audited as ``job:<id>``.

Model calls, one per item and dozens in flight, travel over one WebSocket per kernel (``/run/calls``,
typed ``CallFrame``/``ReplyFrame``) rather than a request each: per-request HTTP parsing, headers and
token checks on both sides cost more CPU than the call itself, and the worker is the evaluation's
bottleneck. The socket is authenticated once, when it opens, and closed when the token is revoked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from agiflow_lab.core import json_input
from agiflow_lab.core.actor import Actor
from agiflow_lab.datasets.job_wire import DATASETS_PATH, DatasetPin
from agiflow_lab.datasets.models import DatasetCreate, ItemsWrite
from agiflow_lab.datasets.service import DatasetService
from agiflow_lab.db.database import Database
from agiflow_lab.errors import AgiflowError, InvalidInput, NotFound, Unauthenticated, ValidationFailed, error_body
from agiflow_lab.evals.outputs import write_outputs
from agiflow_lab.evals.run_access import JobContext, RunAccess
from agiflow_lab.evals.wire import JOB_API_VERSION, CallFrame, ReplyFrame, ResultsBatch
from agiflow_lab.prompts.service import PromptService
from agiflow_lab.providers.service import ModelService

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

TOKEN_PREFIX = "agj_"
MAX_BODY = 64 * 1024 * 1024


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class _Grant:
    job: JobContext
    access: RunAccess | None = None
    looked_up: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sockets: set[_CallsSocket] = field(default_factory=set)


class JobApi:
    def __init__(
        self, db: Database, prompts: PromptService, models: ModelService, datasets: DatasetService | None = None
    ) -> None:
        self.db = db
        self.prompts = prompts
        self.models = models
        self.datasets = datasets if datasets is not None else DatasetService(db, prompts.projects)
        self._grants: dict[str, _Grant] = {}
        self._server: HTTPServer | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(
            [
                (rf"/{JOB_API_VERSION}/run", _RunHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}/run/totals", _TotalsHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}/run/items", _ItemsHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}/run/results", _ResultsHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}/run/calls", _CallsSocket, {"api": self}),
                (rf"/{JOB_API_VERSION}/run/report", _ReportHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}/run/output", _OutputHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}{DATASETS_PATH}", _DatasetsHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}{DATASETS_PATH}/([^/]+)", _DatasetHandler, {"api": self}),
                (rf"/{JOB_API_VERSION}{DATASETS_PATH}/([^/]+)/items", _DatasetItemsHandler, {"api": self}),
            ],
            default_handler_class=_NotFoundHandler,
            default_handler_args={"api": self},
            websocket_max_message_size=MAX_BODY,
        )
        sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self._server = HTTPServer(app, max_body_size=MAX_BODY, xheaders=False)
        self._server.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
        for digest in list(self._grants):
            await self._revoke(digest)

    def grant(self, job: JobContext) -> str:
        """A token for this attempt of this job; ``revoke`` it when the attempt ends."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._grants[_digest(token)] = _Grant(job)
        return token

    async def revoke(self, token: str) -> None:
        await self._revoke(_digest(token))

    async def _revoke(self, digest: str) -> None:
        grant = self._grants.pop(digest, None)
        if grant is None:
            return
        for socket_ in list(grant.sockets):
            socket_.close(1008, "the job's token was revoked")
        if grant.access is not None:
            await grant.access.close()

    def grant_for(self, authorization: str) -> _Grant:
        scheme, _, token = authorization.partition(" ")
        grant = self._grants.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if grant is None:
            raise Unauthenticated("send 'Authorization: Bearer <job token>' of a job running on this worker")
        return grant

    async def access(self, grant: _Grant) -> RunAccess:
        async with grant.lock:
            if not grant.looked_up:
                grant.access = await RunAccess.for_job(self.db, self.prompts, self.models, grant.job)
                grant.looked_up = True
        if grant.access is None:
            raise NotFound("this job is not an evaluation run")
        return grant.access


class _Errors(web.RequestHandler):
    """The job API's error body and logging, for its plain routes and for a refused socket upgrade alike."""

    def initialize(self, api: JobApi) -> None:
        self.api = api

    def check_xsrf_cookie(self) -> None:  # token-authenticated API: no cookies involved
        return None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status, body = error_body(status_code, kwargs.get("exc_info", (None, None, None))[1])
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ValidationError) or (isinstance(value, AgiflowError) and value.status < 500):
            return
        super().log_exception(typ, value, tb)


class _Handler(_Errors):
    async def run_access(self) -> RunAccess:
        return await self.api.access(self.api.grant_for(self.request.headers.get("Authorization", "")))

    def body(self, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate_json(self.request.body)
        except ValidationError:
            raise
        except ValueError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", {"field": "body"}) from exc

    def job(self) -> JobContext:
        return self.api.grant_for(self.request.headers.get("Authorization", "")).job

    def checked_body(self, model: type[M]) -> M:
        """A body from user code, checked like the REST API's (``core.json_input``, then strict pydantic)."""
        try:
            json_input.loads(self.request.body or b"null")
        except json_input.UnsafeJson as exc:
            where, problem = exc.problem.path or "body", exc.problem
            error = {"field": where, "message": problem.message, "type": problem.kind}
            raise ValidationFailed(f"{where}: {problem.message}", {"field": where, "errors": [error]}) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", {"field": "body"}) from None
        return model.model_validate_json(self.request.body, strict=True)

    def optional_int_arg(self, name: str) -> int | None:
        return None if self.get_query_argument(name, None) is None else self.int_arg(name, 0)

    def int_arg(self, name: str, default: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number", {"field": name}) from None
        if not 0 <= value < 2**62:
            raise InvalidInput(f"{name} is out of range", {"field": name})
        return value

    def send(self, value: BaseModel | None, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(value.model_dump_json() if value is not None else "{}")


class _NotFoundHandler(_Handler):
    def prepare(self) -> None:
        raise NotFound("no such job API route")


class _RunHandler(_Handler):
    async def get(self) -> None:
        self.send(await (await self.run_access()).spec())


class _TotalsHandler(_Handler):
    async def get(self) -> None:
        self.send(await (await self.run_access()).totals())


class _ItemsHandler(_Handler):
    async def get(self) -> None:
        access = await self.run_access()
        self.send(await access.pending_items(self.int_arg("after", 0), self.int_arg("limit", 500)))


class _ResultsHandler(_Handler):
    async def post(self) -> None:
        access = await self.run_access()
        await access.write(self.body(ResultsBatch))
        self.send(None, 201)


class _CallsSocket(_Errors, WebSocketHandler):
    """Model calls of one kernel: each ``CallFrame`` is answered by a ``ReplyFrame`` as soon as it finishes.

    A frame that is not a call closes the socket (1003): a well-behaved client never sends one, and
    guessing which call it meant would pair a reply with the wrong item."""

    async def prepare(self) -> None:  # before the upgrade: a refused socket is an ordinary 401/404 reply
        self.grant = self.api.grant_for(self.request.headers.get("Authorization", ""))
        self.access = await self.api.access(self.grant)
        self.calls: set[asyncio.Task[None]] = set()

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)  # small frames, one per reply: Nagle would hold each back for an ACK
        self.grant.sockets.add(self)

    def on_message(self, message: str | bytes) -> None:
        try:
            frame = CallFrame.model_validate_json(message)
        except ValueError:
            self.close(1003, "expected a call frame")
            return
        task = asyncio.create_task(self._answer(frame))
        self.calls.add(task)
        task.add_done_callback(self.calls.discard)

    async def _answer(self, frame: CallFrame) -> None:
        try:
            reply = ReplyFrame(id=frame.id, reply=await self.access.complete(frame.call))
        except AgiflowError as exc:
            reply = ReplyFrame(id=frame.id, status=exc.status, error=exc.message)
        except Exception:
            log.exception("model call %s of a job failed in the worker", frame.id)
            reply = ReplyFrame(id=frame.id, status=500, error="the worker failed to make this call")
        try:
            await self.write_message(reply.model_dump_json())
        except WebSocketClosedError:
            pass  # the kernel went away; nobody is waiting for this reply

    def on_close(self) -> None:
        self.grant.sockets.discard(self)
        for task in self.calls:
            task.cancel()


class _ReportHandler(_Handler):
    async def get(self) -> None:
        self.send(await (await self.run_access()).report())


class _OutputHandler(_Handler):
    """Batch inference: the run's items with their outputs, written as its ``output_dataset`` once."""

    async def post(self) -> None:
        access = await self.run_access()
        written = await write_outputs(self.api.db, self.api.datasets, _job_actor(access.job), access.run)
        self.send(written, 201 if written.written else 200)


def _job_actor(job: JobContext) -> Actor:
    """Who a job's dataset writes are audited as: the job (its row says who submitted or scheduled it)."""
    return Actor(f"job:{job.job_id}", "system")


class _DatasetsHandler(_Handler):
    async def post(self) -> None:
        job = self.job()
        body = self.checked_body(DatasetCreate)
        self.send(await self.api.datasets.create(_job_actor(job), job.project, body), 201)


class _DatasetHandler(_Handler):
    async def get(self, name: str) -> None:
        ref = await self.api.datasets.resolve(self.job().project, name, self.optional_int_arg("version"))
        self.send(DatasetPin(name=ref.name, version=ref.version, item_count=ref.item_count))


class _DatasetItemsHandler(_Handler):
    async def get(self, name: str) -> None:
        page = await self.api.datasets.items(
            self.job().project, name, version=self.optional_int_arg("version"),
            cursor=self.get_query_argument("cursor", None), limit=self.int_arg("limit", 100),
        )  # fmt: skip
        self.send(page)

    async def post(self, name: str) -> None:
        job = self.job()
        body = self.checked_body(ItemsWrite)
        self.send(await self.api.datasets.write_items(_job_actor(job), job.project, name, body), 201)

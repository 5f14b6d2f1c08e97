"""``/otel``: the OTLP/HTTP trace receiver, so ``OTEL_EXPORTER_OTLP_ENDPOINT=<server>/agiflow/api/v1/otel``
works unchanged with any OpenTelemetry SDK.

The project is not in the path (exporters append ``/v1/traces`` to a fixed endpoint): it is the API key's,
or, for a signed-in Jupyter user, the ``x-agiflow-project`` header's. So these methods check access
inline (``TraceIngest``) instead of with ``@authorized``, which reads the project from the path.
"""

from __future__ import annotations

from typing import Any

from pydantic import RootModel
from tornado.web import authenticated

from agiflow_lab.authz.policy import WRITE
from agiflow_lab.errors import InvalidInput, Unavailable
from agiflow_lab.traces.ingest import RETRY_AFTER_SECONDS, TraceIngest
from agiflow_lab.traces.otlp import JSON, encode_response
from agiflow_lab.traces.results import Score
from agiflow_lab.traces.scores import SdkScore
from agiflow_lab_server.base import AgiflowHandler, check_parameter
from agiflow_lab_server.routing import operation

TAGS = ("traces",)
_BINARY = {"type": "string", "format": "binary"}
OTLP_BODIES = {
    "application/x-protobuf": {**_BINARY, "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"},
    "application/json": {"type": "object", "description": "ExportTraceServiceRequest in OTLP/JSON, or agiflow-sdk's "
                         "resource_spans dialect"},
}  # fmt: skip
OTLP_RESPONSES = {
    "application/x-protobuf": {**_BINARY, "description": "ExportTraceServiceResponse (for a protobuf request)"},
    "application/json": {"type": "object", "description": "ExportTraceServiceResponse in OTLP/JSON, e.g. "
                         '{"partialSuccess": {"rejectedSpans": "1", "errorMessage": "..."}}'},
}  # fmt: skip
PROJECT_HEADER = "x-agiflow-project"
INGEST_SETTING = "agiflow_trace_ingest"  # the web app setting holding the TraceIngest (built once the bus is)


class OtelHandler(AgiflowHandler):
    auth_resource = "agiflow:traces"

    @property
    def ingest(self) -> TraceIngest:
        ingest: TraceIngest | None = self.settings.get(INGEST_SETTING)
        if ingest is None:
            raise Unavailable("trace ingestion is not running")
        return ingest

    def project(self) -> str:
        """The header's project, else the key's; a user must name one (the same exporter config serves many
        projects). A key naming another project is refused by the access check, not silently redirected."""
        project = self.request.headers.get(PROJECT_HEADER, "") or (self.actor.key_project or "")
        if not project:
            raise InvalidInput(
                f"name the project in the {PROJECT_HEADER} header, or send a project API key",
                {"field": PROJECT_HEADER},
            )
        check_parameter(PROJECT_HEADER, project)
        return project

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A 503 says when to try again: OTLP exporters honour ``Retry-After`` and keep the batch meanwhile."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Unavailable):
            self.set_header("Retry-After", str(getattr(exc, "retry_after", RETRY_AFTER_SECONDS)))
        super().write_error(status_code, **kwargs)


class TracesHandler(OtelHandler):
    @operation("OTLP/HTTP trace export (ExportTraceServiceRequest as application/x-protobuf or application/json, "
               "gzip or deflate allowed). The project is the API key's, or the x-agiflow-project header's. "
               "Answers an ExportTraceServiceResponse in the request's encoding; 415 for another Content-Type, "
               "503 with Retry-After when the bus cannot take the batch", tags=TAGS,
               raw_body=OTLP_BODIES, raw_responses=OTLP_RESPONSES)  # fmt: skip
    @authenticated
    async def post(self) -> None:
        await self.check_jupyter_authorizer(WRITE)
        headers = self.request.headers
        content_type = headers.get("Content-Type")
        result = await self.ingest.accept(
            self.actor, self.project(), self.body, content_type, headers.get("Content-Encoding")
        )
        as_json = (content_type or "").partition(";")[0].strip().lower() in JSON
        self.set_header("Content-Type", "application/json" if as_json else "application/x-protobuf")
        self.finish(encode_response(result.rejected, result.message, as_json))

    post.__agiflow_authorized__ = True  # type: ignore[attr-defined]  # checked inline: see the module docstring


class SdkStepBody(RootModel[dict[str, Any]]):
    """Whatever the app passes to agiflow-sdk's ``update_span``: a JSON object."""


class SdkScoreHandler(OtelHandler):
    @operation("agiflow-sdk report_score(id, score): set the score named `score` of the trace with that id "
               "(0x + 32 hex) or alias (associate_trace); a second call replaces it", body=SdkScore,
               response=Score, tags=TAGS)  # fmt: skip
    @authenticated
    async def patch(self, action_id: str) -> None:
        await self.check_jupyter_authorizer(WRITE)
        body = self.parse(SdkScore)
        self.finish_json(await self.platform.scores.sdk_score(self.actor, self.project(), action_id, body))

    patch.__agiflow_authorized__ = True  # type: ignore[attr-defined]  # checked inline: see the module docstring


class SdkStepHandler(OtelHandler):
    @operation(
        "agiflow-sdk update_span(id, body): attach a JSON object to the span with that id (0x + 16 hex) "
        "or alias; the trace detail shows it as the span's `updates`",
        body=SdkStepBody,
        tags=TAGS,
    )
    @authenticated
    async def patch(self, step_id: str) -> None:
        await self.check_jupyter_authorizer(WRITE)
        body = self.parse(SdkStepBody).root
        await self.platform.scores.sdk_step(self.actor, self.project(), step_id, body)
        self.finish_json({})

    patch.__agiflow_authorized__ = True  # type: ignore[attr-defined]  # checked inline: see the module docstring

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, Protocol

from jupyter_core.utils import ensure_async
from pydantic import BaseModel, ConfigDict, Field
from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.errors import InvalidInput
from agiflow_lab.jobs.models import Job, JobEvent, JobState, JobSubmit, QueueStatus
from agiflow_lab.jobs.notebooks import report_path
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("jobs",)
OPEN_FOLDER = "agiflow-jobs"


class JobQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: JobState | None = None
    submitted_by: str | None = None
    notebook: str | None = None
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: int = Field(0, ge=0, description="Only events with a larger id (resume point)")
    limit: int = Field(500, ge=1, le=5000)


class EventList(BaseModel):
    items: list[JobEvent]


class Contents(Protocol):
    """The part of Jupyter's contents manager used here. Its methods are unannotated, and sync or async
    depending on the manager the server is configured with: hence the union, and ``ensure_async``."""

    def get(
        self, path: str, content: bool = True, type: str | None = None, format: str | None = None
    ) -> Awaitable[dict[str, Any]] | dict[str, Any]: ...

    def dir_exists(self, path: str) -> Awaitable[bool] | bool: ...

    def new(
        self, model: dict[str, Any] | None = None, path: str = ""
    ) -> Awaitable[dict[str, Any]] | dict[str, Any]: ...

    def save(self, model: dict[str, Any], path: str) -> Awaitable[dict[str, Any]] | dict[str, Any]: ...


class OpenedNotebook(BaseModel):
    path: str = Field(description="Path of the executed notebook in the Jupyter contents, ready to open")


class JobBase(AgiflowHandler):
    auth_resource = "agiflow:jobs"

    @property
    def jobs(self) -> Any:
        return self.platform.jobs


class JobsHandler(JobBase):
    @operation("List jobs, newest first", query=JobQuery, response=Page[Job], tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(JobQuery)
        page = await self.jobs.search(
            project, state=q.state, submitted_by=q.submitted_by, notebook=q.notebook, cursor=q.cursor, limit=q.limit
        )
        self.finish_json(page)

    @operation("Submit a notebook job (an idempotency key makes resubmission safe)", body=JobSubmit, response=Job,
               status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.parse(JobSubmit)
        job, created = await self.jobs.submit(self.actor, project, body, self._snapshot)
        self.finish_json(job, status=201 if created else 200)

    async def _snapshot(self, path: str) -> dict[str, Any]:
        """A contents notebook is copied into the job, so any worker can run it and the run is reproducible."""
        try:
            contents: Contents = self.contents_manager
            model = await ensure_async(contents.get(path, content=True, type="notebook"))
        except Exception as exc:  # the contents manager raises tornado HTTPErrors of its own
            raise InvalidInput(f"notebook {path!r} cannot be read: {exc}", {"field": "notebook"}) from None
        content: dict[str, Any] = json.loads(json.dumps(model["content"]))
        return content


class JobHandler(JobBase):
    @operation("Get a job", response=Job, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, job_id: str) -> None:
        self.finish_json(await self.jobs.get(project, job_id))


class JobCancelHandler(JobBase):
    @operation("Cancel a job: a running kernel is stopped within seconds", response=Job, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, job_id: str) -> None:
        self.finish_json(await self.jobs.cancel(self.actor, project, job_id))


class JobRetryHandler(JobBase):
    @operation("Run a failed or cancelled job again", response=Job, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, job_id: str) -> None:
        self.finish_json(await self.jobs.retry(self.actor, project, job_id))


class JobEventsHandler(JobBase):
    @operation("A job's events (state, progress, log lines) after an event id", query=EventsQuery,
               response=EventList, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str, job_id: str) -> None:
        q = self.query(EventsQuery)
        self.finish_json(await self.jobs.events(project, job_id, after=q.after, limit=q.limit))


class JobNotebookHandler(JobBase):
    @operation("Download the executed notebook (the job's report)", tags=TAGS, content_type="application/x-ipynb+json")
    @authenticated
    @authorized
    async def get(self, project: str, job_id: str) -> None:
        notebook = await self.jobs.output(project, job_id)
        self.set_header("Content-Disposition", f'attachment; filename="job-{job_id}.ipynb"')
        self.finish(json.dumps(notebook), set_content_type="application/x-ipynb+json")  # APIHandler would say JSON


class JobNotebookOpenHandler(JobBase):
    # Copying the report into the caller's own Jupyter files needs only read access to the job.
    auth_actions = {"POST": "read"}

    @operation("Copy the executed notebook into Jupyter's files so JupyterLab can open it", response=OpenedNotebook,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, job_id: str) -> None:
        if self._key_actor is not None:
            raise InvalidInput("API keys have no Jupyter files; download the notebook instead", {"field": "job_id"})
        notebook = await self.jobs.output(project, job_id)
        job = await self.jobs.get(project, job_id)
        run = await self.platform.evals.run_of_job(project, job_id)
        path = report_path(OPEN_FOLDER, project, job, None if run is None else (run.name, run.id))
        cm: Contents = self.contents_manager
        for level in (OPEN_FOLDER, path.rsplit("/", 1)[0]):
            if not await ensure_async(cm.dir_exists(level)):
                await ensure_async(cm.new(model={"type": "directory"}, path=level))
        await ensure_async(cm.save({"type": "notebook", "format": "json", "content": notebook}, path))
        self.finish_json(OpenedNotebook(path=path))


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str | None = Field(None, description="Figures for this project (default: all for admins, own for keys)")


class StatusHandler(AgiflowHandler):
    auth_resource = "agiflow:status"

    @operation("Queue depth and lag (the deployment's and its workers for server admins; else one project's)",
               query=StatusQuery, response=QueueStatus, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self) -> None:
        q = self.query(StatusQuery)
        self.finish_json(await self.platform.status.status(self.actor, q.project))

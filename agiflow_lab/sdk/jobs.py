"""``client.jobs``: run a notebook as a job (papermill on a worker), follow it, read its result and log."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agiflow_lab.jobs.models import Job, JobEvent
from agiflow_lab.sdk._wait import until_final
from agiflow_lab.sdk.transport import Transport, segment

if TYPE_CHECKING:
    from agiflow_lab.widgets._display import Bundle


class Jobs:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self, job_id: str | None = None) -> str:
        base = f"projects/{segment(self.project)}/jobs"
        return base if job_id is None else f"{base}/{segment(job_id)}"

    def submit(
        self,
        notebook: str,
        parameters: dict[str, Any] | None = None,
        *,
        timeout_seconds: float = 3600,
        max_attempts: int = 3,
        idempotency_key: str | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> JobRun:
        """Run ``notebook`` (``builtin:<name>`` or a path under the server's root) with ``parameters``
        injected by papermill. ``wait``: return once it has finished (``timeout`` bounds the wait)."""
        body = {
            "notebook": notebook, "parameters": parameters or {}, "timeout_seconds": timeout_seconds,
            "max_attempts": max_attempts, "idempotency_key": idempotency_key,
        }  # fmt: skip
        handle = JobRun(self, Job.model_validate(self._t.request("POST", self._base(), json=body)))
        if wait:
            handle.wait(timeout)
        return handle

    def get(self, job_id: str) -> JobRun:
        return JobRun(self, self._get(job_id))

    def _get(self, job_id: str) -> Job:
        return Job.model_validate(self._t.request("GET", self._base(job_id)))

    def list(self, *, state: str | None = None, notebook: str | None = None, limit: int = 20) -> builtins.list[JobRun]:
        """The newest jobs first."""
        params = {"state": state, "notebook": notebook}
        return [JobRun(self, Job.model_validate(j)) for j in self._t.items(self._base(), params, limit=limit)]


class JobRun:
    """A submitted job. ``wait()`` returns when it has finished; ``result`` is what its notebook recorded."""

    def __init__(self, jobs: Jobs, job: Job) -> None:
        self._jobs = jobs
        self.job = job

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def state(self) -> str:
        return self.job.state

    @property
    def result(self) -> Any:
        return self.job.result

    def refresh(self) -> Job:
        self.job = self._jobs._get(self.id)
        return self.job

    def wait(self, timeout: float | None = None) -> Job:
        return until_final(self.refresh, lambda job: job.state, what=f"job {self.id}", timeout=timeout)

    def cancel(self) -> Job:
        self.job = Job.model_validate(self._jobs._t.request("POST", f"{self._jobs._base(self.id)}/cancel"))
        return self.job

    def retry(self) -> Job:
        self.job = Job.model_validate(self._jobs._t.request("POST", f"{self._jobs._base(self.id)}/retry"))
        return self.job

    def events(self) -> Iterator[JobEvent]:
        path = f"{self._jobs._base(self.id)}/events"
        after = 0
        while True:
            page = self._jobs._t.request("GET", path, params={"after": after, "limit": 5000})["items"]
            for item in page:
                event = JobEvent.model_validate(item)
                after = event.id
                yield event
            if len(page) < 5000:
                return

    def log(self) -> str:
        """What the notebook printed, across attempts."""
        return "".join(str(e.data.get("text", "")) for e in self.events() if e.type == "log")

    def notebook(self) -> dict[str, Any]:
        """The executed notebook (its report), as nbformat JSON."""
        return dict(self._jobs._t.request("GET", f"{self._jobs._base(self.id)}/notebook"))

    def __repr__(self) -> str:
        return f"<JobRun {self.id} {self.job.notebook!r} {self.state}, attempt {self.job.attempts}>"

    def _repr_html_(self) -> str:
        from agiflow_lab.widgets._html import job_html

        return job_html(self.job)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        from agiflow_lab.widgets._display import bundle

        return bundle(self._repr_html_(), repr(self), None)

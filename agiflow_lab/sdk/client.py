"""``agiflow_lab.Client``: the synchronous SDK a notebook, a script or an app uses."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from agiflow_lab.sdk.alerts import Alerts
from agiflow_lab.sdk.cache import PromptCache
from agiflow_lab.sdk.datasets import Datasets
from agiflow_lab.sdk.discovery import discover
from agiflow_lab.sdk.evals import Evals
from agiflow_lab.sdk.jobs import Jobs
from agiflow_lab.sdk.keys import Keys
from agiflow_lab.sdk.notifications import Notifications
from agiflow_lab.sdk.prompts import Prompt, Prompts
from agiflow_lab.sdk.schedules import Schedules
from agiflow_lab.sdk.scores import Scores
from agiflow_lab.sdk.traces import DEFAULT_LIMIT, MetricMeasure, Traces, When
from agiflow_lab.sdk.transport import Endpoint, Transport
from agiflow_lab.traces.results import Bucket, GroupBy

if TYPE_CHECKING:
    import pandas as pd

PROJECT_ENV = "AGIFLOW_PROJECT"


class Client:
    """Talk to AGIFlow Lab.

    Inside a notebook ``Client()`` finds the Jupyter server that started the kernel and uses its
    token; elsewhere set ``AGIFLOW_URL`` and ``AGIFLOW_API_KEY`` (or pass ``url`` and ``api_key``).

    ``cache_ttl`` is how long a fetched prompt is served without asking the server again (0: ask
    every time, but still serve the last copy if the server is down); ``cache=False`` turns the
    cache off entirely.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        project: str | None = None,
        *,
        cache_ttl: float = 60.0,
        cache: bool = True,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint: Endpoint = discover(url, api_key)
        self.project = project or os.environ.get(PROJECT_ENV) or "default"
        self._transport = Transport(self.endpoint, timeout=timeout, transport=transport)
        self.cache: PromptCache[Prompt] | None = PromptCache(cache_ttl) if cache else None
        self.prompts = Prompts(self._transport, self.project, self.cache)
        self.keys = Keys(self._transport, self.project)
        self.datasets = Datasets(self._transport, self.project)
        self.evals = Evals(self._transport, self.project)
        self.jobs = Jobs(self._transport, self.project)
        self.traces = Traces(self._transport, self.project)
        self.scores = Scores(self._transport, self.project)
        self.schedules = Schedules(self._transport, self.project)
        self.alerts = Alerts(self._transport, self.project)
        self.notifications = Notifications(self._transport, self.project)

    def spans(self, trace_id: str) -> pd.DataFrame:
        """One trace's spans as a DataFrame, in start order (``client.traces.get(id)`` gives the tree)."""
        return self.traces.spans(trace_id)

    def sessions(self, *, start: When = None, end: When = None, limit: int | None = DEFAULT_LIMIT) -> pd.DataFrame:
        """Sessions seen in [start, end) (default: the last week) with their trace counts, tokens and cost."""
        return self.traces.sessions(start=start, end=end, limit=limit)

    def users(self, *, start: When = None, end: When = None, limit: int | None = DEFAULT_LIMIT) -> pd.DataFrame:
        """Users seen in [start, end) (default: the last week) with their trace counts, tokens and cost."""
        return self.traces.users(start=start, end=end, limit=limit)

    def metrics(
        self,
        *,
        start: When = None,
        end: When = None,
        bucket: Bucket = "hour",
        group_by: GroupBy | None = None,
        measures: str | Sequence[MetricMeasure] | None = None,
    ) -> pd.DataFrame:
        """Span metrics, one row per bucket (and group): see ``Traces.metrics``."""
        return self.traces.metrics(start=start, end=end, bucket=bucket, group_by=group_by, measures=measures)

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (for event hooks, proxies, ...)."""
        return self._transport.http

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<agiflow_lab.Client {self.endpoint.api_url} project={self.project!r}>"

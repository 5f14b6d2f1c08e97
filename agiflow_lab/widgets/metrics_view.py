"""``MetricsView``: small charts of a project's span metrics (count, error rate, p95 latency, tokens, cost)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import traitlets as t
from typing_extensions import TypedDict

from agiflow_lab.traces.results import Bucket, MetricPoint
from agiflow_lab.widgets._base import STATIC, Widget, messages_of, rows
from agiflow_lab.widgets._session import Session

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client

MEASURES = "count,errors,latency,tokens,cost"


class Point(TypedDict):
    time: str  # ISO 8601, UTC: the bucket's start
    count: int
    error_rate: float | None
    latency_p95_ms: float | None
    tokens: int  # in + out
    cost_usd: float | None


class Reload(TypedDict):
    type: Literal["reload"]
    hours: int
    bucket: Bucket


class MetricsView(Widget[Reload]):
    """``MetricsView(client, hours=24, bucket="hour")``: the last ``hours`` of the project's spans per bucket, read
    from the metrics API's rollups. The front end's window and bucket pickers reload it."""

    _esm = STATIC / "metrics_view.js"
    messages = messages_of(Reload)

    project = t.Unicode("").tag(sync=True)
    hours = t.Int(24).tag(sync=True)
    bucket = t.Unicode("hour").tag(sync=True)
    points: t.List[Point] = rows(Point)

    def __init__(self, client: Client | Session, *, hours: int = 24, bucket: Bucket = "hour") -> None:
        super().__init__()
        self._session = Session.of(client)
        self.project = self._session.project
        self.load(hours, bucket)

    def dispatch(self, message: Reload) -> None:
        self.load(message["hours"], message["bucket"])

    def load(self, hours: int, bucket: Bucket) -> None:
        end = datetime.now(UTC) + timedelta(minutes=1)
        params = {"start": (end - timedelta(hours=hours)).isoformat(), "end": end.isoformat(), "bucket": bucket,
                  "measures": MEASURES}  # fmt: skip
        answer = self._session.request("GET", "metrics", params=params)
        points = sorted((MetricPoint.model_validate(p) for p in answer["points"]), key=lambda p: p.time)
        with self.hold_trait_notifications():
            self.hours, self.bucket = hours, bucket
            self.points = [
                Point(time=p.time.isoformat(), count=p.count or 0, error_rate=p.error_rate,
                      latency_p95_ms=p.latency_p95_ms, tokens=(p.tokens_in or 0) + (p.tokens_out or 0),
                      cost_usd=p.cost_usd)
                for p in points
            ]  # fmt: skip

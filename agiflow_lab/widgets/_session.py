"""What a widget talks to: a project's SDK objects over one HTTP session.

Built from a ``Client`` (``PromptEditor(client, "qa")``) or from the transport an SDK object already holds
(``run._repr_mimebundle_`` shows its ``EvalRunView`` without a second discovery or a second connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agiflow_lab.sdk.datasets import Datasets
from agiflow_lab.sdk.evals import Evals
from agiflow_lab.sdk.prompts import Prompts
from agiflow_lab.sdk.traces import Traces
from agiflow_lab.sdk.transport import Transport, segment

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client


@dataclass(frozen=True)
class Session:
    transport: Transport
    project: str
    prompts: Prompts
    evals: Evals
    datasets: Datasets
    traces: Traces

    @classmethod
    def of(cls, client: Client | Session) -> Session:
        if isinstance(client, Session):
            return client
        return cls(client._transport, client.project, client.prompts, client.evals, client.datasets, client.traces)

    @classmethod
    def over(cls, transport: Transport, project: str, prompts: Prompts | None = None) -> Session:
        """A session sharing an SDK object's transport (and its client's ``prompts``, whose cache the editor's
        writes must reach; without one, no cache: widgets always read fresh)."""
        return cls(transport, project, prompts or Prompts(transport, project, None), Evals(transport, project),
                   Datasets(transport, project), Traces(transport, project))  # fmt: skip

    def request(self, method: str, resource: str, **kwargs: Any) -> Any:
        """``resource`` is relative to the project (``models/echo/test``)."""
        return self.transport.request(method, f"projects/{segment(self.project)}/{resource}", **kwargs)

"""``PromptEditor``: edit a prompt's template with its ``{{variables}}`` filled in live, try it against a model
connection, save it as a new version, move a label, diff two versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

import traitlets as t
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from agiflow_lab.prompts.models import PromptDiff, PromptVersion
from agiflow_lab.prompts.template import extract_variables, render
from agiflow_lab.sdk.transport import segment
from agiflow_lab.widgets._base import STATIC, Widget, messages_of, record, rows
from agiflow_lab.widgets._html import diff_html
from agiflow_lab.widgets._session import Session

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client

VERSIONS_SHOWN = 50
Role = Literal["system", "user", "assistant", "developer", "tool"]


class Message(TypedDict):
    role: Role
    content: str


class VersionRow(TypedDict):
    version: int
    labels: list[str]
    commit_message: str
    created_by: str
    created_at: str


class ConnectionRow(TypedDict):
    name: str
    kind: str
    default_model: str | None
    builtin: bool


class DiffView(TypedDict):
    """``PromptDiff`` as JSON."""

    name: str
    from_version: int
    to_version: int
    template_diff: list[str]  # unified diff lines
    config_changes: list[dict[str, Any]]  # {key, before, after}
    variables_added: list[str]
    variables_removed: list[str]


class Trial(TypedDict):
    """One "try it" call: what the connection's test endpoint answered, priced from the project's table."""

    ok: bool
    connection: str
    model: str
    output: str | None
    error: str | None
    latency_ms: float
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None  # None: unpriced (model missing from the price table, or no token counts)


# Messages from the front end -------------------------------------------------------------------------------


class Load(TypedDict):
    type: Literal["load"]
    version: int


class Try(TypedDict):
    type: Literal["try"]
    connection: str
    model: str  # "": the connection's default model


class Save(TypedDict):
    type: Literal["save"]
    commit_message: str
    labels: list[str]


class MoveLabel(TypedDict):
    type: Literal["move_label"]
    label: str
    version: int


class Diff(TypedDict):
    type: Literal["diff"]
    from_version: int
    to_version: int


EditorMessage = Load | Try | Save | MoveLabel | Diff
CHAT = TypeAdapter(list[Message])


class PromptEditor(Widget[EditorMessage]):
    """A prompt's editor in a notebook: ``PromptEditor(client, "qa")`` (label ``latest`` by default).

    The template (``template`` for a text prompt, ``messages`` for a chat prompt) and the variables' ``values``
    are plain synced state; rendering happens here with the SDK's own renderer (the server's), so the preview
    is exactly what ``prompt.render(**values)`` gives. A variable without a value stays ``{{name}}`` in the
    preview and is listed in ``missing``."""

    _esm = STATIC / "prompt_editor.js"
    messages = messages_of(Load, Try, Save, MoveLabel, Diff)

    name = t.Unicode("").tag(sync=True)
    prompt_type = t.Unicode("text").tag(sync=True)
    version = t.Int(0).tag(sync=True)  # the version the edit started from
    latest = t.Int(0).tag(sync=True)
    template = t.Unicode("").tag(sync=True)  # a text prompt's template
    chat: t.List[Message] = rows(Message)  # a chat prompt's messages
    config = t.Dict().tag(sync=True)  # model parameters saved with the version, kept as they are
    variables = t.List(t.Unicode()).tag(sync=True)
    values = t.Dict(value_trait=t.Unicode(), key_trait=t.Unicode()).tag(sync=True)
    missing = t.List(t.Unicode()).tag(sync=True)
    rendered = t.Unicode("").tag(sync=True)
    labels = t.Dict(value_trait=t.Int(), key_trait=t.Unicode()).tag(sync=True)  # label → version
    versions: t.List[VersionRow] = rows(VersionRow)  # newest first
    connections: t.List[ConnectionRow] = rows(ConnectionRow)
    trial = record(Trial)
    diff = record(DiffView)

    def __init__(
        self, client: Client | Session, name: str, *, label: str | None = None, version: int | None = None
    ) -> None:
        super().__init__(name=name)
        self._session = Session.of(client)
        self._prices: dict[str, tuple[float, float]] | None = None
        if version is None and label is None:
            label = "latest"
        self._show(self._session.prompts.get(name, label=label, version=version, cache=False).data)
        self._refresh_versions()
        self.connections = [
            ConnectionRow(name=c["name"], kind=c["kind"], default_model=c.get("default_model"),
                          builtin=bool(c.get("builtin")))
            for c in self._session.request("GET", "models")["items"]
        ]  # fmt: skip

    @t.validate("chat")
    def _valid_chat(self, proposal: Any) -> list[Message]:
        """The front end writes ``chat`` too: only messages of the API's shape get in."""
        return CHAT.validate_python(proposal["value"])

    # --- live render ------------------------------------------------------------------------------------------

    @t.observe("template", "chat", "values")
    def _render(self, _change: object = None) -> None:
        template = self._template()
        variables = extract_variables(template)
        values = dict(self.values)
        self.missing = [v for v in variables if not values.get(v)]
        filled = {v: values.get(v) or "{{" + v + "}}" for v in variables}
        self.variables = variables
        self.rendered = _as_text(render(template, filled))

    def _template(self) -> str | list[dict[str, str]]:
        if self.prompt_type == "chat":
            return [{"role": m["role"], "content": m["content"]} for m in self.chat]
        return self.template

    # --- actions (the front end's messages) ------------------------------------------------------------------

    def dispatch(self, message: EditorMessage) -> None:
        if message["type"] == "load":
            self._show(self._session.prompts.get(self.name, version=message["version"], cache=False).data)
        elif message["type"] == "try":
            self.try_it(message["connection"], message["model"] or None)
        elif message["type"] == "save":
            self.save(message["commit_message"], message["labels"])
        elif message["type"] == "move_label":
            self.move_label(message["label"], message["version"])
        elif message["type"] == "diff":
            self.compare(message["from_version"], message["to_version"])

    def try_it(self, connection: str, model: str | None = None) -> Trial:
        """One call through ``connection`` (its test endpoint) with the rendered prompt; shown as ``trial``."""
        if self.missing:
            raise ValueError("fill in every variable first: " + ", ".join(self.missing))
        body = {"prompt": self.rendered, "model": model}
        answer = self._session.request("POST", f"models/{segment(connection)}/test", json=body)
        trial = Trial(
            ok=bool(answer["ok"]), connection=answer["connection"], model=answer["model"],
            output=answer.get("output"), error=answer.get("error"), latency_ms=float(answer["latency_ms"]),
            tokens_in=answer.get("tokens_in"), tokens_out=answer.get("tokens_out"),
            cost_usd=self._cost(answer["model"], answer.get("tokens_in"), answer.get("tokens_out")),
        )  # fmt: skip
        self.trial = trial
        return trial

    def save(self, commit_message: str = "", labels: list[str] | None = None) -> int:
        """Save the edited template (with the loaded version's parameters) as a new version; returns its number."""
        saved = self._session.prompts.add_version(
            self.name, self._template(), config=self.config, commit_message=commit_message, labels=labels or []
        )
        self._show(saved.data)
        self._refresh_versions()
        self.notice = f"Saved v{saved.version}"
        return saved.version

    def move_label(self, label: str, version: int) -> None:
        self._session.prompts.set_label(self.name, label, version)
        self._refresh_versions()
        self.notice = f"{label} → v{version}"

    def compare(self, from_version: int, to_version: int) -> VersionDiff:
        """The server's diff of two versions: shown in the editor, and returned (it displays itself)."""
        params = {"from": from_version, "to": to_version}
        diff = PromptDiff.model_validate(
            self._session.request("GET", f"prompts/{segment(self.name)}/diff", params=params)
        )
        self.diff = cast(DiffView, diff.model_dump(mode="json"))
        return VersionDiff(diff)

    # --- loading ----------------------------------------------------------------------------------------------

    def _show(self, data: PromptVersion) -> None:
        with self.hold_trait_notifications():
            self.prompt_type = data.type
            self.version = data.version
            self.config = dict(data.config)
            if isinstance(data.template, str):
                self.template, self.chat = data.template, []
            else:
                self.template = ""
                self.chat = [Message(role=m.role, content=m.content) for m in data.template]
        self._render()

    def _refresh_versions(self) -> None:
        path = f"projects/{segment(self._session.project)}/prompts/{segment(self.name)}/versions"
        found = [PromptVersion.model_validate(v) for v in self._session.transport.items(path, limit=VERSIONS_SHOWN)]
        summary = self._session.prompts.summary(self.name)
        self.latest = summary.latest_version
        self.labels = dict(summary.labels)
        self.versions = [
            VersionRow(version=v.version, labels=sorted(k for k, n in summary.labels.items() if n == v.version),
                       commit_message=v.commit_message, created_by=v.created_by, created_at=v.created_at.isoformat())
            for v in found
        ]  # fmt: skip

    def _cost(self, model: str, tokens_in: int | None, tokens_out: int | None) -> float | None:
        if tokens_in is None and tokens_out is None:
            return None
        if self._prices is None:
            table = self._session.request("GET", "prices")["items"]
            self._prices = {r["model"]: (r["input_per_million"], r["output_per_million"]) for r in table}
        price = self._prices.get(model)
        if price is None:
            return None
        return ((tokens_in or 0) * price[0] + (tokens_out or 0) * price[1]) / 1_000_000


class VersionDiff:
    """Two versions' diff (``diff``: the API's ``PromptDiff``); in a notebook, a compact HTML view."""

    def __init__(self, diff: PromptDiff) -> None:
        self.diff = diff

    def _repr_html_(self) -> str:
        return diff_html(self.diff)

    def __repr__(self) -> str:
        head = f"<VersionDiff {self.diff.name!r} v{self.diff.from_version} → v{self.diff.to_version}>"
        return "\n".join([head, *self.diff.template_diff])


def _as_text(rendered: Any) -> str:
    if isinstance(rendered, str):
        return rendered
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in rendered)

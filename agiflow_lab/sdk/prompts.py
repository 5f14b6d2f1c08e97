"""``client.prompts``: fetch (cached), render, create, version, label and list prompts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agiflow_lab.core.paging import MAX_LIMIT
from agiflow_lab.errors import InvalidInput
from agiflow_lab.prompts.models import PromptSummary, PromptType, PromptVersion
from agiflow_lab.prompts.template import Template, render
from agiflow_lab.sdk._current_span import mark_prompt
from agiflow_lab.sdk.cache import PromptCache
from agiflow_lab.sdk.transport import Transport, segment

if TYPE_CHECKING:
    from agiflow_lab.widgets._display import Bundle

DEFAULT_LABEL = "production"
Messages = list[dict[str, str]]


class Prompt:
    """One immutable prompt version. ``render(**variables)`` fills its ``{{variables}}`` locally.

    ``label`` is the label it was fetched by (None: fetched by version number, or written). In a notebook it
    shows itself as a ``PromptEditor`` on this version (static HTML where widgets cannot run)."""

    __slots__ = ("_data", "_prompts", "label")

    def __init__(self, data: PromptVersion, label: str | None = None, prompts: Prompts | None = None) -> None:
        self._data = data
        self.label = label
        self._prompts = prompts  # where it came from: what its editor talks to

    @property
    def name(self) -> str:
        return self._data.name

    @property
    def type(self) -> PromptType:
        return self._data.type

    @property
    def version(self) -> int:
        return self._data.version

    @property
    def template(self) -> str | Messages:
        """The raw template: a string, or a fresh list of ``{"role", "content"}`` dicts."""
        return _template(self._data)

    @property
    def variables(self) -> list[str]:
        return list(self._data.variables)

    @property
    def config(self) -> dict[str, Any]:
        """Model parameters (``model``, ``temperature``, ...) stored with this version."""
        return dict(self._data.config)

    @property
    def labels(self) -> list[str]:
        return list(self._data.labels)

    @property
    def commit_message(self) -> str:
        return self._data.commit_message

    @property
    def created_by(self) -> str:
        return self._data.created_by

    @property
    def created_at(self) -> datetime:
        return self._data.created_at

    @property
    def data(self) -> PromptVersion:
        """The API's own model of this version (a copy)."""
        return self._data.model_copy(deep=True)

    def render(self, variables: Mapping[str, Any] | None = None, /, **kwargs: Any) -> str | Messages:
        """Text for a text prompt, OpenAI-style messages for a chat prompt.

        A missing or unknown variable raises ``InvalidInput`` naming it, before anything is sent anywhere.
        Inside an OpenTelemetry span that is recording, the span is marked with this prompt's name, version
        and label (``agiflow.prompt.*``), so its trace can be found by prompt version.
        """
        values = {**(variables or {}), **kwargs}
        try:
            rendered = render(_template(self._data), values)
        except InvalidInput as exc:
            exc.message = f"prompt {self.name!r} v{self.version}: {exc.message}"
            exc.args = (exc.message,)
            raise
        mark_prompt(self.name, self.version, self.label)
        return rendered

    def render_text(self, variables: Mapping[str, Any] | None = None, /, **kwargs: Any) -> str:
        result = self.render(variables, **kwargs)
        if not isinstance(result, str):
            raise TypeError(f"prompt {self.name!r} is a chat prompt; use render_messages()")
        return result

    def render_messages(self, variables: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Messages:
        result = self.render(variables, **kwargs)
        if isinstance(result, str):
            raise TypeError(f"prompt {self.name!r} is a text prompt; use render_text()")
        return result

    def __repr__(self) -> str:
        labels = f" labels={self._data.labels}" if self._data.labels else ""
        return f"<Prompt {self.name!r} v{self.version} {self.type}{labels}>"

    def _repr_html_(self) -> str:
        from agiflow_lab.widgets._html import prompt_html

        return prompt_html(self._data, self.label)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        from agiflow_lab.widgets._display import bundle

        prompts = self._prompts

        def editor() -> Any:
            from agiflow_lab.widgets import PromptEditor
            from agiflow_lab.widgets._session import Session

            assert prompts is not None
            return PromptEditor(Session.over(prompts._t, prompts.project, prompts), self.name, version=self.version)

        return bundle(self._repr_html_(), repr(self), None if prompts is None else editor)


def _template(data: PromptVersion) -> Template:
    if isinstance(data.template, str):
        return data.template
    return [{"role": m.role, "content": m.content} for m in data.template]


def _template_body(template: str | Iterable[Mapping[str, str]]) -> str | Messages:
    # The server validates (422 with field paths); the SDK only shapes the JSON.
    return template if isinstance(template, str) else [dict(m) for m in template]


class Prompts:
    def __init__(self, transport: Transport, project: str, cache: PromptCache[Prompt] | None) -> None:
        self._t = transport
        self.project = project
        self.cache = cache

    def _base(self, name: str | None = None) -> str:
        base = f"projects/{segment(self.project)}/prompts"
        return base if name is None else f"{base}/{segment(name)}"

    def get(self, name: str, *, label: str | None = None, version: int | None = None, cache: bool = True) -> Prompt:
        """A version by label (default ``production``; ``latest`` is the newest) or by number.

        Served from the client's cache when fresh; ``cache=False`` always asks the server (and
        refreshes the cache with the answer).
        """
        if label is not None and version is not None:
            raise InvalidInput("give label or version, not both", {"field": "label"})
        if version is None and label is None:
            label = DEFAULT_LABEL
        params: dict[str, Any] = {"version": version} if version is not None else {"label": label}

        def fetch() -> Prompt:
            data = PromptVersion.model_validate(self._t.request("GET", self._base(name), params=params))
            return Prompt(data, label, self)

        group = (self.project, name)
        key = ("version", version) if version is not None else ("label", label)
        if self.cache is None:
            return fetch()
        if not cache:
            return self.cache.refresh(group, key, fetch)
        return self.cache.get(group, key, fetch)

    def create(
        self,
        name: str,
        template: str | Iterable[Mapping[str, str]],
        *,
        type: PromptType | None = None,
        config: Mapping[str, Any] | None = None,
        commit_message: str = "",
        labels: Iterable[str] = (),
        description: str = "",
        tags: Iterable[str] = (),
    ) -> Prompt:
        """Create a prompt with its first version; ``type`` defaults to what the template looks like."""
        tmpl = _template_body(template)
        body = {
            "name": name,
            "type": type or ("text" if isinstance(tmpl, str) else "chat"),
            "template": tmpl,
            "config": dict(config or {}),
            "commit_message": commit_message,
            "labels": [*labels],
            "description": description,
            "tags": [*tags],
        }
        return self._write(name, "POST", self._base(), body)

    def add_version(
        self,
        name: str,
        template: str | Iterable[Mapping[str, str]],
        *,
        config: Mapping[str, Any] | None = None,
        commit_message: str = "",
        labels: Iterable[str] = (),
    ) -> Prompt:
        """Add an immutable version; ``labels`` are moved to it."""
        body = {
            "template": _template_body(template),
            "config": dict(config or {}),
            "commit_message": commit_message,
            "labels": [*labels],
        }
        return self._write(name, "POST", self._base(name) + "/versions", body)

    def set_label(self, name: str, label: str, version: int) -> Prompt:
        """Point ``label`` at ``version`` (audited on the server; undo with the label's rollback)."""
        return self._write(name, "PUT", f"{self._base(name)}/labels/{segment(label)}", {"version": version})

    def summary(self, name: str) -> PromptSummary:
        return PromptSummary.model_validate(self._t.request("GET", self._base(name) + "/summary"))

    def list(
        self,
        *,
        search: str | None = None,
        tag: str | None = None,
        include_archived: bool = False,
        page_size: int = MAX_LIMIT,
    ) -> Iterator[PromptSummary]:
        """Every matching prompt, fetching page after page as the iterator is consumed."""
        params = {"search": search, "tag": tag, "include_archived": "true" if include_archived else None}
        for item in self._t.items(self._base(), params, page_size=page_size):
            yield PromptSummary.model_validate(item)

    def _write(self, name: str, method: str, path: str, body: Any) -> Prompt:
        try:
            prompt = Prompt(PromptVersion.model_validate(self._t.request(method, path, json=body)), prompts=self)
        finally:
            # Even a failed write may have committed (a timeout after the server acted): forget either way.
            if self.cache is not None:
                self.cache.wrote((self.project, name))
        if self.cache is not None:
            self.cache.put((self.project, name), ("version", prompt.version), prompt)
        return prompt

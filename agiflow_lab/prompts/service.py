"""The prompt registry's rules.

Versions are immutable and numbered without gaps; labels are movable pointers whose every move is
logged (so a move can be undone); ``latest`` is not stored, it always follows the newest version.
An archived prompt still resolves (running apps keep working) but takes no new versions.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from agiflow_lab.audit import store as audit
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import Cursor, KeyInt, KeyText, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, InvalidInput, NotFound
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.prompts import store
from agiflow_lab.prompts.cache import PromptCache
from agiflow_lab.prompts.models import (
    LABEL_PATTERN,
    ConfigChange,
    LabelMove,
    PromptCreate,
    PromptDiff,
    PromptSummary,
    PromptVersion,
    Rendered,
    RenderRequest,
    VersionCreate,
)
from agiflow_lab.prompts.template import extract_variables, render

AUTOMATIC_LABEL = "latest"
DEFAULT_LABEL = "production"
NAME_CURSOR = Cursor[str](KeyText)  # prompts by name
VERSION_CURSOR = Cursor[int](KeyInt)  # versions, newest first


def _template_json(body: VersionCreate | PromptCreate) -> Any:
    if isinstance(body.template, str):
        return body.template
    return [m.model_dump() for m in body.template]


def _check_labels(labels: list[str]) -> None:
    for label in labels:
        if not re.fullmatch(LABEL_PATTERN, label):
            raise InvalidInput(f"label {label!r} must match {LABEL_PATTERN}", {"field": "label", "label": label})
    if AUTOMATIC_LABEL in labels:
        raise InvalidInput("'latest' is automatic and cannot be set", {"field": "labels", "label": AUTOMATIC_LABEL})


class PromptService:
    def __init__(self, db: Database, projects: ProjectService, cache: PromptCache | None = None) -> None:
        self.db = db
        self.projects = projects
        self.cache = cache or PromptCache(db)

    async def create(self, actor: Actor, project: str, body: PromptCreate) -> PromptVersion:
        _check_labels(body.labels)
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            prompt_id = await store.insert_prompt(
                conn, project_id, body.name, body.type, body.description, body.tags, actor.principal
            )
            if prompt_id is None:
                raise Conflict(
                    f"prompt {body.name!r} already exists; add a version instead",
                    {"field": "name", "name": body.name},
                )
            version = await self._add_version(conn, actor, project_id, prompt_id, body.name, body)
            await audit.record(
                conn, project_id=project_id, actor=actor, action="prompt.create", resource_type="prompt",
                resource_id=body.name, after=body.model_dump(mode="json"),
            )  # fmt: skip
        return await self.get(project, body.name, version=version)

    async def add_version(self, actor: Actor, project: str, name: str, body: VersionCreate) -> PromptVersion:
        _check_labels(body.labels)
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            prompt = await store.lock_prompt(conn, project_id, name)
            if prompt is None:
                raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
            if prompt["archived"]:
                raise Conflict(f"prompt {name!r} is archived; unarchive it to add versions", {"prompt": name})
            if (prompt["type"] == "text") != isinstance(body.template, str):
                raise InvalidInput(
                    f"prompt {name!r} is a {prompt['type']} prompt; the template does not match",
                    {"field": "template"},
                )
            version = await self._add_version(conn, actor, project_id, prompt["id"], name, body)
        return await self.get(project, name, version=version)

    async def _add_version(
        self,
        conn: Conn,
        actor: Actor,
        project_id: int,
        prompt_id: int,
        name: str,
        body: VersionCreate | PromptCreate,
    ) -> int:
        template = _template_json(body)
        config = body.config.model_dump(exclude_none=True)
        version = await store.insert_version(
            conn,
            prompt_id,
            template,
            extract_variables(template),
            config,
            body.commit_message,
            actor.principal,
        )
        await self._changed(conn, project_id, name)
        await audit.record(
            conn, project_id=project_id, actor=actor, action="prompt.version.create", resource_type="prompt",
            resource_id=f"{name}@{version}", after={"template": template, "config": config,
                                                   "commit_message": body.commit_message},
        )  # fmt: skip
        for label in dict.fromkeys(body.labels):
            await self._move(conn, actor, project_id, prompt_id, name, label, version)
        return version

    async def get(
        self, project: str, name: str, *, label: str | None = None, version: int | None = None
    ) -> PromptVersion:
        if label is not None and version is not None:
            raise InvalidInput("give a label or a version, not both", {"field": "label"})
        if label is None and version is None:
            label = DEFAULT_LABEL
        project_id = await self.projects.resolve_id(project)
        key = (project_id, name, label, version)
        if (cached := self.cache.get(key)) is not None:
            return cached
        generation = self.cache.generation((project_id, name))
        async with self.db.connection() as conn:
            row = await store.get_version(conn, project_id, name, version, label)
            if row is None:
                await self._require_prompt(conn, project_id, name)
                what = f"version {version}" if version is not None else f"label {label!r}"
                raise NotFound(f"prompt {name!r} has no {what}", {"prompt": name, "label": label, "version": version})
        found = PromptVersion.model_validate(row)
        self.cache.put(key, generation, found)
        return found

    async def search(
        self,
        project: str,
        *,
        search: str | None = None,
        tag: str | None = None,
        include_archived: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[PromptSummary]:
        check_limit(limit)
        after = NAME_CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.search(
                conn, project_id, text=search, tag=tag, include_archived=include_archived,
                after_name=after, limit=limit + 1,
            )  # fmt: skip
        items = [PromptSummary.model_validate(row) for row in rows[:limit]]
        return Page[PromptSummary](items=items, next_cursor=NAME_CURSOR.next(rows, limit, lambda r: r["name"]))

    async def summary(self, project: str, name: str) -> PromptSummary:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            row = await store.summary(conn, project_id, name)
        if row is None:
            raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
        return PromptSummary.model_validate(row)

    async def versions(self, project: str, name: str, *, cursor: str | None, limit: int) -> Page[PromptVersion]:
        check_limit(limit)
        before = VERSION_CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            prompt_id = await self._require_prompt(conn, project_id, name)
            rows = await store.list_versions(conn, prompt_id, before, limit + 1)
        items = [PromptVersion.model_validate(row) for row in rows[:limit]]
        return Page[PromptVersion](items=items, next_cursor=VERSION_CURSOR.next(rows, limit, lambda r: r["version"]))

    async def move_label(self, actor: Actor, project: str, name: str, label: str, version: int) -> PromptVersion:
        _check_labels([label])
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            prompt = await store.lock_prompt(conn, project_id, name)
            if prompt is None:
                raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
            await self._move(conn, actor, project_id, prompt["id"], name, label, version)
        return await self.get(project, name, version=version)

    async def remove_label(self, actor: Actor, project: str, name: str, label: str) -> None:
        _check_labels([label])
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            prompt = await store.lock_prompt(conn, project_id, name)
            if prompt is None:
                raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
            if await store.label_version(conn, prompt["id"], label) is None:
                raise NotFound(f"prompt {name!r} has no label {label!r}", {"label": label})
            await self._move(conn, actor, project_id, prompt["id"], name, label, None)

    async def rollback_label(self, actor: Actor, project: str, name: str, label: str) -> PromptVersion:
        """Undo the label's last move: point it back where it was before."""
        _check_labels([label])
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            prompt = await store.lock_prompt(conn, project_id, name)
            if prompt is None:
                raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
            history = await store.label_history(conn, prompt["id"], label)
            if not history or history[0]["from_version"] is None:
                raise Conflict(f"label {label!r} has no earlier position to return to", {"label": label})
            target = int(history[0]["from_version"])
            await self._move(conn, actor, project_id, prompt["id"], name, label, target)
        return await self.get(project, name, version=target)

    async def _move(
        self,
        conn: Conn,
        actor: Actor,
        project_id: int,
        prompt_id: int,
        name: str,
        label: str,
        version: int | None,
    ) -> None:
        if version is not None and not await store.version_exists(conn, prompt_id, version):
            raise NotFound(f"prompt {name!r} has no version {version}", {"field": "version", "version": version})
        previous = await store.set_label(conn, prompt_id, label, version, actor.principal)
        await self._changed(conn, project_id, name)
        await audit.record(
            conn, project_id=project_id, actor=actor,
            action="prompt.label.move" if version is not None else "prompt.label.remove",
            resource_type="prompt", resource_id=f"{name}:{label}",
            before=None if previous is None else {"version": previous},
            after=None if version is None else {"version": version},
        )  # fmt: skip

    async def label_history(self, project: str, name: str, label: str | None = None) -> list[LabelMove]:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            prompt_id = await self._require_prompt(conn, project_id, name)
            return [LabelMove.model_validate(row) for row in await store.label_history(conn, prompt_id, label)]

    async def render(self, project: str, name: str, body: RenderRequest) -> Rendered:
        version = await self.get(project, name, label=body.label, version=body.version)
        return render_version(version, body.variables)

    async def diff(self, project: str, name: str, from_version: int, to_version: int) -> PromptDiff:
        before = await self.get(project, name, version=from_version)
        after = await self.get(project, name, version=to_version)
        return diff_versions(before, after)

    async def set_archived(self, actor: Actor, project: str, name: str, archived: bool) -> PromptSummary:
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            prompt = await store.lock_prompt(conn, project_id, name)
            if prompt is None:
                raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
            await store.set_archived(conn, prompt["id"], archived)
            await self._changed(conn, project_id, name)
            await audit.record(
                conn, project_id=project_id, actor=actor,
                action="prompt.archive" if archived else "prompt.unarchive", resource_type="prompt",
                resource_id=name, before={"archived": prompt["archived"]}, after={"archived": archived},
            )  # fmt: skip
        return await self.summary(project, name)

    async def _changed(self, conn: Conn, project_id: int, name: str) -> None:
        """Drop cached versions of this prompt here now, and in every process when the write commits."""
        self.cache.invalidate((project_id, name))
        await PromptCache.announce(conn, (project_id, name))

    @staticmethod
    async def _require_prompt(conn: Conn, project_id: int, name: str) -> int:
        prompt_id = await store.prompt_id(conn, project_id, name)
        if prompt_id is None:
            raise NotFound(f"prompt {name!r} does not exist", {"prompt": name})
        return prompt_id


def render_version(version: PromptVersion, variables: dict[str, Any]) -> Rendered:
    template = version.template if isinstance(version.template, str) else [m.model_dump() for m in version.template]
    filled = render(template, variables)
    return Rendered.model_validate(
        {
            "name": version.name,
            "version": version.version,
            "type": version.type,
            "config": version.config,
            "text" if isinstance(filled, str) else "messages": filled,
        }
    )


def _template_lines(version: PromptVersion) -> list[str]:
    if isinstance(version.template, str):
        return version.template.splitlines()
    return [f"[{m.role}] {line}" for m in version.template for line in (m.content.splitlines() or [""])]


def diff_versions(before: PromptVersion, after: PromptVersion) -> PromptDiff:
    lines = list(
        difflib.unified_diff(
            _template_lines(before),
            _template_lines(after),
            fromfile=f"v{before.version}",
            tofile=f"v{after.version}",
            lineterm="",
        )  # fmt: skip
    )
    keys = sorted(set(before.config) | set(after.config))
    changes = [
        ConfigChange(key=k, before=before.config.get(k), after=after.config.get(k))
        for k in keys
        if json.dumps(before.config.get(k), sort_keys=True) != json.dumps(after.config.get(k), sort_keys=True)
    ]
    return PromptDiff(
        name=after.name,
        from_version=before.version,
        to_version=after.version,
        template_diff=lines,
        config_changes=changes,
        variables_added=[v for v in after.variables if v not in before.variables],
        variables_removed=[v for v in before.variables if v not in after.variables],
    )

"""``prompts push`` and ``prompts pull``: a folder of prompt files ↔ a project's prompts.

Push is idempotent. Each file is compared with the version it targets — the one ``--label`` points
at, or the newest — and only a changed template or config makes a new version. Labels named in the
file (and ``--label``) are then made to point at that content. Everything is planned before anything
is written, so a bad file or a conflicting prompt means nothing is pushed.

Description and tags are set when a prompt is created; the API has no way to edit them later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agiflow_lab.cli.prompt_files import (
    Format,
    Problem,
    PromptFile,
    canonical_config,
    canonical_template,
    dumps,
    file_document,
)
from agiflow_lab.errors import NotFound
from agiflow_lab.sdk.client import Client
from agiflow_lab.sdk.prompts import Prompt

LATEST = "latest"
PAST = {"create": "created", "update": "updated", "relabel": "relabelled", "unchanged": "unchanged"}


@dataclass
class Step:
    """What push does for one file: ``create``, ``update``, ``relabel`` or ``unchanged``."""

    file: PromptFile
    action: str
    labels: list[str] = field(default_factory=list)
    current: int | None = None  # the version compared with

    @property
    def done(self) -> str:
        return PAST[self.action]

    def describe(self, version: int | None, dry_run: bool) -> str:
        """One line per file; ``version`` is the one the content now has (None on a dry run)."""
        text = f"would {self.action}" if dry_run and self.action != "unchanged" else self.done
        where = f"v{version}" if version is not None else ("a new version" if self.action == "update" else "")
        if self.action == "update":
            where = f"v{self.current} → {where}"
        labels = f" [{', '.join(self.labels)}]" if self.labels and self.action != "unchanged" else ""
        return f"{text:<16} {' '.join(filter(None, [self.file.name, where]))}{labels}  ({self.file.path})"


def _same_content(file: PromptFile, version: Prompt) -> bool:
    return file.template() == canonical_template(version.template) and file.config() == canonical_config(version.config)


def plan_push(client: Client, files: list[PromptFile], label: str | None) -> tuple[list[Step], list[Problem]]:
    steps: list[Step] = []
    problems: list[Problem] = []
    for file in files:
        wanted = list(dict.fromkeys([*file.spec.labels, *([label] if label else [])]))
        try:
            summary = client.prompts.summary(file.name)
        except NotFound:
            steps.append(Step(file, "create", wanted))
            continue
        if summary.type != file.spec.type:
            problems.append(Problem(file.path, f"prompt {file.name!r} is a {summary.type} prompt on the server"))
            continue
        target = summary.labels.get(label, summary.latest_version) if label else summary.latest_version
        current = client.prompts.get(file.name, version=target, cache=False)
        if not _same_content(file, current):
            if summary.archived:
                problems.append(Problem(file.path, f"prompt {file.name!r} is archived; unarchive it to push"))
                continue
            steps.append(Step(file, "update", wanted, current.version))
        else:
            missing = [name for name in wanted if summary.labels.get(name) != current.version]
            steps.append(Step(file, "relabel" if missing else "unchanged", missing, current.version))
    return steps, problems


def apply_step(client: Client, step: Step) -> int:
    """Carry out one step; returns the version the file's content now has."""
    spec, prompts = step.file.spec, client.prompts
    message = spec.commit_message or f"agiflow-lab push {step.file.path.name}"
    if step.action == "create":
        created = prompts.create(
            spec.name, step.file.template(), type=spec.type, config=step.file.config(), commit_message=message,
            labels=step.labels, description=spec.description, tags=spec.tags,
        )  # fmt: skip
        return created.version
    if step.action == "update":
        added = prompts.add_version(
            spec.name, step.file.template(), config=step.file.config(), commit_message=message, labels=step.labels
        )
        return added.version
    assert step.current is not None
    for name in step.labels:
        prompts.set_label(spec.name, name, step.current)
    return step.current


def pull(client: Client, folder: Path, label: str | None, fmt: Format, say: Callable[[str], None]) -> tuple[int, int]:
    """Write one file per prompt (the version ``label`` points at, default the newest); (written, skipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    for summary in client.prompts.list():
        try:
            version = client.prompts.get(summary.name, label=label or LATEST, cache=False)
        except NotFound:
            say(f"skipped          {summary.name} (no label {label!r})")
            skipped += 1
            continue
        document = file_document(
            name=version.name, type=version.type, template=version.template, config=version.config,
            labels=version.labels, description=summary.description, tags=summary.tags,
        )  # fmt: skip
        path = folder / f"{version.name}.{fmt}"
        path.write_text(dumps(document, fmt), encoding="utf-8")
        say(f"wrote            {version.name} v{version.version}  ({path})")
        written += 1
    return written, skipped

"""Where built-in task notebooks live: inside the wheel (``agiflow_lab/_notebooks``) or, in a source
checkout or editable install, the repository's ``notebooks/`` folder."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from agiflow_lab.errors import InvalidInput
from agiflow_lab.jobs.models import BUILTIN_PREFIX, Job

_PACKAGE = Path(__file__).resolve().parents[1]
CANDIDATES = (_PACKAGE / "_notebooks", _PACKAGE.parent / "notebooks")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Tasks the platform submits itself, bound to a record of the job's own project (an evaluation run is
# found from the job, never from a parameter). Submitting one by hand would let a caller point it at
# anything, so the jobs API refuses them.
INTERNAL = frozenset({"evaluate"})
# Tasks that are another resource's job: the refusal says where to go instead.
ELSEWHERE = {
    "evaluate": "submit an evaluation run instead (POST .../evals/runs)",
    "batch_inference": "batch inference is an evaluation run that writes its outputs as a dataset: POST "
    ".../evals/runs with output_dataset (evaluators optional), so it resumes and is scheduled like one",
}


def builtin_dir() -> Path:
    for folder in CANDIDATES:
        if folder.is_dir():
            return folder
    raise FileNotFoundError("the built-in notebooks are not installed")


def builtin_names() -> list[str]:
    """The tasks a person may submit (internal ones are left out)."""
    return sorted(p.stem for p in builtin_dir().glob("*.ipynb") if p.stem not in INTERNAL)


def builtin_path(notebook: str, *, internal: bool = False) -> Path:
    """``builtin:hello`` → the notebook's path; an unknown name is a client error naming the choices.
    ``internal``: the platform itself submits or runs it, so internal tasks are allowed."""
    name = notebook.removeprefix(BUILTIN_PREFIX)
    path = builtin_dir() / f"{name}.ipynb"
    if name in ELSEWHERE and not (internal and name in INTERNAL):
        raise InvalidInput(f"builtin:{name} is not submitted as a job; {ELSEWHERE[name]}",
                           {"field": "notebook", "available": builtin_names()})  # fmt: skip
    if not NAME.match(name) or not path.is_file():
        raise InvalidInput(
            f"unknown built-in notebook {name!r}; available: {', '.join(builtin_names())}",
            {"field": "notebook", "available": builtin_names()},
        )
    return path


def report_path(folder: str, project: str, job: Job, run: tuple[str, str] | None = None) -> str:
    """Where an opened report goes: ``<folder>/<project>/<what ran>-<first 8 of its id>.ipynb``, named after the
    evaluation run (``run``: its name and id) or the job's notebook, so a user's file browser says what it is."""
    if run is not None:
        title, record_id = f"eval-{run[0] or 'run'}", run[1]
    else:
        title, record_id = PurePosixPath(job.notebook.removeprefix(BUILTIN_PREFIX)).stem, job.id
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", title).strip("-.")[:60] or "report"
    return f"{folder}/{project}/{safe}-{record_id[:8]}.ipynb"

"""Batch inference: a finished run's items, each with its model output, written as a dataset.

The trusted worker does it when the run's kernel asks (``POST /v1/run/output`` of the job API, at the end
of ``run_evaluation``). It reads every item of the run's pinned dataset version and the run's stored
result for each, whichever attempt made it, and streams them into the dataset service's JSONL import: the
write has the service's checks, limits and audit row (as ``job:<id>``), and any number of items becomes
one version. That version is the named dataset's next (``replace``: exactly the run's items), or version 1
of a new dataset. Each item keeps its id, input and expected answer; its metadata gains ``output``,
``model``, ``latency_ms`` and, when the model call failed, ``error``.

Idempotent, for a retried attempt: the run's row stays locked while the outputs are written, and records
the version (``output_version``); an attempt that finds it set answers that version again. The dataset
service commits in a transaction of its own, so ``output_version`` is stored right after it, in the run
lock's transaction. Should the worker die between the two commits, the version's message names the run,
and the next attempt adopts that version instead of writing another.
"""

from __future__ import annotations

import json
from typing import Any

from agiflow_lab.core.actor import Actor
from agiflow_lab.datasets import store as datasets_store
from agiflow_lab.datasets.models import DatasetCreate, DatasetVersion
from agiflow_lab.datasets.service import DatasetService
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, NotFound
from agiflow_lab.evals import store
from agiflow_lab.evals.wire import OutputWritten

PAGE = 1000  # items read, and fed to the import, at a time
ADOPT_WITHIN = 50  # newest versions searched for one an interrupted attempt wrote but did not record


def marker(run_id: str) -> str:
    """The message of the version holding a run's outputs: how a later attempt recognises it."""
    return f"outputs of evaluation run {run_id}"


async def write_outputs(db: Database, datasets: DatasetService, actor: Actor, run: dict[str, Any]) -> OutputWritten:
    """Write ``run``'s outputs as its ``output_dataset`` once (see the module's notes); ``run`` is the run's row."""
    run_id, project, name = str(run["id"]), str(run["project"]), run["output_dataset"]
    if name is None:
        raise NotFound("this run writes no output dataset", {"field": "output_dataset"})
    total = int(run["items_total"])
    async with db.transaction() as conn:
        locked = await store.lock_output(conn, run_id)
        assert locked is not None  # the job's run: runs are never deleted
        if locked["output_version"] is not None:
            return OutputWritten(dataset=name, version=locked["output_version"], item_count=total, written=False)
        if (missing := total - await store.count_results(conn, run_id)) > 0:
            raise Conflict(f"{missing:,} of the run's {total:,} items have no result yet", {"missing": missing})
        version = await _adopt(datasets, project, name, marker(run_id))
        written = version is None
        if version is None:
            version = await _write(conn, datasets, actor, run)
        # Right after the dataset service's own commit (it takes no outside transaction); see the module's notes.
        await store.set_output_version(conn, run_id, version.version)
    return OutputWritten(dataset=name, version=version.version, item_count=version.item_count, written=written)


async def _adopt(datasets: DatasetService, project: str, name: str, message: str) -> DatasetVersion | None:
    try:
        page = await datasets.versions(project, name, limit=ADOPT_WITHIN)
    except NotFound:
        return None
    return next((version for version in page.items if version.message == message), None)


async def _write(conn: Conn, datasets: DatasetService, actor: Actor, run: dict[str, Any]) -> DatasetVersion:
    run_id, project, name = str(run["id"]), str(run["project"]), str(run["output_dataset"])
    try:
        description = f"Model outputs of evaluation run {run_id} ({run['name']})"
        await datasets.create(actor, project, DatasetCreate(name=name, description=description[:5000]))
    except Conflict:
        pass  # it exists: the outputs become its next version
    session = await datasets.begin_import(
        actor, project, name, fmt="jsonl", mode="replace", mapping=None, message=marker(run_id)
    )
    try:
        after = 0
        while True:
            items = await datasets_store.items_page(
                conn, int(run["dataset_id"]), int(run["dataset_version"]), after_ordinal=after, limit=PAGE
            )
            found = await store.results_for(conn, [run_id], [item["item_id"] for item in items])
            results = {row["item_id"]: row for row in found}
            await session.feed(
                "".join(_line(item, results.get(item["item_id"]), run["model"]) for item in items).encode()
            )
            if len(items) < PAGE:
                break
            after = int(items[-1]["ordinal"])
    except BaseException:
        await session.abort()
        raise
    return await session.finish()


def _line(item: dict[str, Any], result: dict[str, Any] | None, model: str) -> str:
    if result is None:  # counted above, so only if the pinned version and the results disagree
        raise Conflict(f"item {item['item_id']!r} has no result", {"item": item["item_id"]})
    metadata = {**(item["metadata"] or {}), "output": result["output"], "model": model,
                "latency_ms": result["latency_ms"]}  # fmt: skip
    if result["error"] is not None:
        metadata["error"] = result["error"]
    line = {"id": item["item_id"], "input": item["input"], "expected": item["expected"], "metadata": metadata}
    return json.dumps(line, ensure_ascii=False) + "\n"

"""``builtin:dataset_transform``: de-duplicate, filter, sample and split a dataset version into new datasets.

Runs in the job's kernel, which is where a user's filter expression belongs (it is user code): the worker
only serves the items and takes the new datasets (``agiflow_lab.datasets.job_client``). The steps run in
this order, each on what the previous one kept:

1. ``dedupe``: keep the first item of each group of items equal in the given fields.
2. ``filter``: keep the items for which a Python expression over ``item`` is true.
3. ``sample``: keep a random ``n`` items (an int) or that fraction of them (a float), in their order.
4. ``split``: deal the items out to named parts by fraction (``{"train": 0.8, "test": 0.2}``), cut in the
   order of the parts' names.

``seed`` makes sample and split repeatable; the same parameters on the same version give the same items.
A bad parameter raises :class:`ParameterError`, whose message starts with the parameter's name.
"""

from __future__ import annotations

import builtins
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import CodeType
from typing import Any

from agiflow_lab.datasets.job_client import DatasetsJobClient, JobApiStatusError
from agiflow_lab.datasets.job_wire import DatasetPin
from agiflow_lab.datasets.models import NAME_PATTERN, DatasetItem, ItemIn

ITEM_PARTS = ("id", "input", "expected", "metadata")
DEFAULT_DEDUPE = ("input", "expected")
SPLIT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
_MISSING = object()


class ParameterError(ValueError):
    """A parameter the task cannot use; ``parameter`` names it, and so does the message."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"parameter {parameter!r}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class TransformSpec:
    dataset: str
    output: str
    version: int | None = None
    dedupe: tuple[str, ...] = ()
    filter: str | None = None
    sample: int | float | None = None
    split: dict[str, float] | None = None
    seed: int = 0
    compiled_filter: CodeType | None = field(default=None, compare=False, repr=False)

    def output_names(self) -> dict[str | None, str]:
        """Where each part goes: ``{None: output}`` without a split, else ``{part: "<output>-<part>"}``."""
        if self.split is None:
            return {None: self.output}
        return {part: f"{self.output}-{part}" for part in self.split}


def parse(
    *,
    dataset: Any,
    output: Any,
    version: Any = None,
    dedupe: Any = False,
    filter: Any = None,  # noqa: A002 - the parameter's documented name
    sample: Any = None,
    split: Any = None,
    seed: Any = 0,
) -> TransformSpec:
    """The notebook's parameters, checked; every refusal names its parameter."""
    if not isinstance(dataset, str) or not re.fullmatch(NAME_PATTERN, dataset):
        raise ParameterError("dataset", f"must be the name of a dataset of this project, not {dataset!r}")
    if version is not None and (not _is_int(version) or version < 1):
        raise ParameterError("version", f"must be a version number (1 or more) or None for the latest, not {version!r}")
    if not _is_int(seed):
        raise ParameterError("seed", f"must be a whole number, not {seed!r}")
    spec = TransformSpec(
        dataset=dataset, output=_output(output), version=version, dedupe=_dedupe(dedupe), filter=None,
        sample=_sample(sample), split=_split(split), seed=seed,
    )  # fmt: skip
    code = _compile_filter(filter)
    names = spec.output_names()
    for part, name in names.items():
        if not re.fullmatch(NAME_PATTERN, name):
            where = "output" if part is None else "split"
            raise ParameterError(where, f"{name!r} is not a valid dataset name (letters, digits, '_', '.', '-')")
    return replace(spec, filter=filter or None, compiled_filter=code)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _output(output: Any) -> str:
    if not isinstance(output, str) or not output:
        raise ParameterError("output", "must name the new dataset (or, with split, the prefix of the new datasets)")
    return output


def _dedupe(dedupe: Any) -> tuple[str, ...]:
    if dedupe is None or dedupe is False:
        return ()
    if dedupe is True:
        return DEFAULT_DEDUPE
    if not isinstance(dedupe, list | tuple) or not dedupe or not all(isinstance(f, str) for f in dedupe):
        raise ParameterError(
            "dedupe", f"must be true, false or a list of fields such as ['input.question'], not {dedupe!r}"
        )
    for path in dedupe:
        if path.split(".", 1)[0] not in ITEM_PARTS:
            raise ParameterError("dedupe", f"field {path!r} must start with one of {', '.join(ITEM_PARTS)}")
    return tuple(dedupe)


def _sample(sample: Any) -> int | float | None:
    if sample is None:
        return None
    if _is_int(sample):
        if sample < 0:
            raise ParameterError("sample", f"a count of items must not be negative, not {sample}")
        return int(sample)
    if isinstance(sample, float) and 0 < sample <= 1:
        return sample
    raise ParameterError("sample", f"must be a count of items (an int) or a fraction in (0, 1], not {sample!r}")


def _split(split: Any) -> dict[str, float] | None:
    if split is None:
        return None
    if not isinstance(split, Mapping) or not split:
        raise ParameterError(
            "split", f"must map part names to fractions, such as {{'train': 0.8, 'test': 0.2}}, not {split!r}"
        )
    parts: dict[str, float] = {}
    for name, fraction in split.items():
        if not isinstance(name, str) or not SPLIT_NAME.match(name):
            raise ParameterError("split", f"part name {name!r} must be 1-40 letters, digits, '_', '.' or '-'")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ParameterError("split", f"part {name!r} needs a fraction in (0, 1], not {fraction!r}")
        parts[name] = float(fraction)
    parts = dict(
        sorted(parts.items())
    )  # cut in name order: a job's parameters are stored as jsonb, which reorders keys
    if not math.isclose(sum(parts.values()), 1.0, abs_tol=1e-9):
        raise ParameterError("split", f"the fractions must add up to 1, not {sum(parts.values()):g}")
    return parts


def _compile_filter(expression: Any) -> CodeType | None:
    if expression is None or expression == "":
        return None
    if not isinstance(expression, str):
        raise ParameterError("filter", f"must be a Python expression over `item` (a string), not {expression!r}")
    try:
        return compile(expression, "<filter>", "eval")
    except SyntaxError as exc:
        raise ParameterError("filter", f"{expression!r} is not a Python expression: {exc.msg}") from None


# --- the steps ----------------------------------------------------------------------------------------------


def _field(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def dedupe(items: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The first item of each group equal in ``fields`` (a missing field is a value of its own)."""
    if not fields:
        return items
    seen: set[str] = set()
    kept = []
    for item in items:
        values = [_field(item, path) for path in fields]
        key = json.dumps([["missing"] if v is _MISSING else ["value", v] for v in values], sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def keep_matching(items: list[dict[str, Any]], expression: str | None, code: CodeType | None) -> list[dict[str, Any]]:
    """The items for which ``expression`` is true; an item it fails on fails the task, naming that item."""
    if code is None:
        return items
    scope = {"__builtins__": builtins, "json": json, "re": re, "math": math}
    kept = []
    for item in items:
        try:
            matches = eval(code, scope, {"item": item})  # noqa: S307 - the user's expression, in the user's kernel
        except Exception as exc:
            raise ParameterError(
                "filter", f"{expression!r} failed on item {item.get('id')!r}: {type(exc).__name__}: {exc}"
            ) from None
        if matches:
            kept.append(item)
    return kept


def sample(items: list[dict[str, Any]], size: int | float | None, seed: int) -> list[dict[str, Any]]:
    """``size`` items (or that fraction, rounded), chosen with ``seed``, in their original order."""
    if size is None:
        return items
    count = size if isinstance(size, int) else round(size * len(items))
    chosen = sorted(random.Random(seed).sample(range(len(items)), min(count, len(items))))
    return [items[i] for i in chosen]


def split(
    items: list[dict[str, Any]], parts: dict[str, float] | None, seed: int
) -> dict[str | None, list[dict[str, Any]]]:
    """Shuffle with ``seed`` and cut by cumulative fraction (rounded), each part keeping the original order."""
    if parts is None:
        return {None: items}
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    result: dict[str | None, list[dict[str, Any]]] = {}
    start, cumulative = 0, 0.0
    names = list(parts)
    for index, name in enumerate(names):
        cumulative += parts[name]
        end = len(items) if index == len(names) - 1 else round(cumulative * len(items))
        result[name] = [items[i] for i in sorted(order[start:end])]
        start = end
    return result


# --- the task -----------------------------------------------------------------------------------------------


@dataclass
class TransformResult:
    source: DatasetPin
    counts: dict[str, int]
    outputs: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source.model_dump(), "counts": self.counts, "outputs": self.outputs}


def _as_dict(item: DatasetItem) -> dict[str, Any]:
    return item.model_dump()


def _as_input(item: dict[str, Any]) -> ItemIn:
    return ItemIn(
        id=item["id"], input=item["input"], expected=item.get("expected"), metadata=item.get("metadata") or {}
    )


async def run_transform(client: DatasetsJobClient, spec: TransformSpec) -> TransformResult:
    """Read the pinned version, apply the steps, write each output as a new dataset or a new version."""
    try:
        source = await client.pin(spec.dataset, spec.version)
    except JobApiStatusError as exc:
        if exc.status != 404:
            raise
        if spec.version is None:
            raise ParameterError("dataset", f"this project has no dataset {spec.dataset!r}") from None
        try:
            latest = await client.pin(spec.dataset)
        except JobApiStatusError:
            raise ParameterError("dataset", f"this project has no dataset {spec.dataset!r}") from None
        raise ParameterError(
            "version", f"{spec.dataset!r} has no version {spec.version} (latest is {latest.version})"
        ) from None
    items = [_as_dict(item) async for item in client.items(source)]
    counts = {"read": len(items)}
    items = dedupe(items, spec.dedupe)
    counts["after_dedupe"] = len(items)
    items = keep_matching(items, spec.filter, spec.compiled_filter)
    counts["after_filter"] = len(items)
    items = sample(items, spec.sample, spec.seed)
    counts["after_sample"] = len(items)
    message = f"dataset_transform of {source.name}@{source.version}"
    outputs = []
    for part, kept in split(items, spec.split, spec.seed).items():
        name = spec.output_names()[part]
        written = await client.write(name, [_as_input(i) for i in kept], message=message)
        outputs.append({"part": part, "dataset": written.name, "version": written.version, "items": len(kept)})
    return TransformResult(source=source, counts=counts, outputs=outputs)


async def dataset_transform(**parameters: Any) -> dict[str, Any]:
    """The notebook's one call: check the parameters, run the task through this job's API, return its result."""
    spec = parse(**parameters)
    async with DatasetsJobClient.from_env() as client:
        return (await run_transform(client, spec)).as_json()

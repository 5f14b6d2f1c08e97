"""Span attributes → the span store's columns, whichever convention the sender speaks.

The same fact arrives under different names: OpenTelemetry GenAI semantic conventions, OpenInference
(Arize, Phoenix), Traceloop/OpenLLMetry and the agiflow-sdk 0.0.24 each name the model, the tokens and the
prompt their own way. ``SOURCES`` lists, per column, every attribute that can fill it, best first; the
first one present *and usable* wins (an unknown span kind or a token count that is not a number falls
through to the next). The order follows one principle:

1. ``agiflow.*`` keys a user sets on purpose (``agiflow.span.type``, ``agiflow.session.id``, ...);
2. the OpenTelemetry GenAI semantic conventions, being the standard;
3. OpenInference;
4. Traceloop/OpenLLMetry;
5. what agiflow-sdk 0.0.24 writes (``agiflow.service.type``, ``agiflow.entity.*``, ``gen_ai.prompt`` as
   JSON text, ``agiflow.association.properties.*``, ``agiflow.prompt.key``).

Input and output then fall back to messages spread over indexed attributes (Traceloop
``gen_ai.prompt.N.*``, OpenInference ``llm.input_messages.N.message.*``) and last to span events
(``gen_ai.client.inference.operation.details``, then ``gen_ai.{system,user,assistant,tool}.message`` and
``gen_ai.choice``, then the older ``gen_ai.content.prompt``/``gen_ai.content.completion``). How messages
become text is ``_messages``' rule; each side is capped at ``MAX_TEXT_BYTES``.

Two columns have their own reason: ``model`` takes the response model before the request model (the
response names the dated snapshot that was billed), and ``provider`` is lowercased so ``OpenAI`` and
``openai`` group together. A span with no type from any source is ``llm`` if it names a model, else
``other``. Raw attributes are always kept in the record, so nothing is lost by choosing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple, cast, get_args

from agiflow_lab.providers.prices import MILLION, Price, PriceBook
from agiflow_lab.traces import _messages
from agiflow_lab.traces._values import as_int, cap_text, clean_json_text
from agiflow_lab.traces.records import JsonValue, SpanEvent, SpanType

MAX_TEXT_BYTES = 1_000_000
_UNRANKED = 1 << 30
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1

PriceLookup = Callable[[str | None], "tuple[str, Price] | None"]
Parser = Callable[[JsonValue], object]


def _kind_table(table: Mapping[str, SpanType]) -> Parser:
    def parse(value: JsonValue) -> SpanType | None:
        return table.get(value.strip().lower()) if isinstance(value, str) else None

    return parse


SPAN_TYPES: frozenset[str] = frozenset(get_args(SpanType))
GENAI_OPERATIONS: Mapping[str, SpanType] = MappingProxyType(
    {
        "chat": "chat",
        "text_completion": "llm",
        "generate_content": "llm",
        "embeddings": "embedding",
        "execute_tool": "tool",
        "invoke_agent": "agent",
        "create_agent": "agent",
        "retrieval": "retriever",
        # agiflow-sdk 0.0.24 writes its LLMTypes here: Chat, Completion, ImageGeneration, Embedding, Rerank
        "completion": "llm",
        "imagegeneration": "llm",
        "embedding": "embedding",
        "rerank": "reranker",
    }
)
OPENINFERENCE_KINDS: Mapping[str, SpanType] = MappingProxyType(
    {k.lower(): cast(SpanType, k.lower()) for k in ("LLM", "CHAIN", "TOOL", "AGENT", "RETRIEVER", "EMBEDDING")}
    | {"reranker": "reranker", "guardrail": "guardrail", "evaluator": "evaluator", "prompt": "other"}
)
TRACELOOP_KINDS: Mapping[str, SpanType] = MappingProxyType(
    {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
)
TRACELOOP_REQUEST_TYPES: Mapping[str, SpanType] = MappingProxyType(
    {"chat": "chat", "completion": "llm", "embedding": "embedding", "rerank": "reranker"}
)
AGIFLOW_SDK_SERVICE_TYPES: Mapping[str, SpanType] = MappingProxyType(
    {
        "llm": "llm",
        "chat": "chat",
        "workflow": "chain",
        "task": "chain",
        "framework": "chain",
        "agent": "agent",
        "tool": "tool",
        "vectordb": "retriever",
        "database": "other",
    }
)


def _text(value: JsonValue) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _lower_text(value: JsonValue) -> str | None:
    text = _text(value)
    return text.lower() if text else None


def _count(value: JsonValue) -> int | None:
    number = as_int(value)
    return number if number is not None and 0 <= number <= _INT64_MAX else None


def _version(value: JsonValue) -> int | None:
    """A prompt version number: 3, "3" or "v3"; anything else ("0.0.1", a hash) is not a version we number.

    Bounded like the prompt registry's ``integer`` versions, so a span can be joined to its prompt."""
    if isinstance(value, str):
        value = value.strip()
        if value[:1] in ("v", "V"):
            value = value[1:]
    number = _count(value)
    return number if number is not None and number <= _INT32_MAX else None


def _tags(value: JsonValue) -> tuple[str, ...] | None:
    """A list of tags, JSON text of one, or comma-separated text."""
    items: Sequence[JsonValue]
    if isinstance(value, list):
        items = value
    elif isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return None
        if not isinstance(parsed, list):
            return None
        items = parsed
    elif isinstance(value, str):
        items = value.split(",")
    else:
        return None
    tags = tuple(clean_json_text(tag) for tag in (_text(item) for item in items) if tag)
    return tags or None


def _own_type(value: JsonValue) -> str | None:
    text = _lower_text(value)
    return text if text in SPAN_TYPES else None


SOURCES: Mapping[str, Sequence[tuple[str, Parser]]] = MappingProxyType(
    {
        "span_type": (
            ("agiflow.span.type", _own_type),
            ("gen_ai.operation.name", _kind_table(GENAI_OPERATIONS)),
            ("openinference.span.kind", _kind_table(OPENINFERENCE_KINDS)),
            ("traceloop.span.kind", _kind_table(TRACELOOP_KINDS)),
            ("llm.request.type", _kind_table(TRACELOOP_REQUEST_TYPES)),
            ("agiflow.service.type", _kind_table(AGIFLOW_SDK_SERVICE_TYPES)),
        ),
        "model": (
            ("gen_ai.response.model", _text),
            ("gen_ai.request.model", _text),
            ("llm.model_name", _text),
            ("llm.response.model", _text),
            ("llm.request.model", _text),
        ),
        "provider": (
            ("gen_ai.provider.name", _lower_text),
            ("gen_ai.system", _lower_text),
            ("llm.provider", _lower_text),
            ("llm.system", _lower_text),
        ),
        "tokens_in": (
            ("gen_ai.usage.input_tokens", _count),
            ("gen_ai.usage.prompt_tokens", _count),
            ("llm.token_count.prompt", _count),
            ("llm.usage.prompt_tokens", _count),
        ),
        "tokens_out": (
            ("gen_ai.usage.output_tokens", _count),
            ("gen_ai.usage.completion_tokens", _count),
            ("llm.token_count.completion", _count),
            ("llm.usage.completion_tokens", _count),
        ),
        "input": (
            ("gen_ai.input.messages", _messages.from_messages),
            ("input.value", _messages.as_text),
            ("traceloop.entity.input", _messages.as_text),
            ("agiflow.entity.input", _messages.as_text),
            ("gen_ai.prompt", _messages.from_messages),
        ),
        "output": (
            ("gen_ai.output.messages", _messages.from_messages),
            ("output.value", _messages.as_text),
            ("traceloop.entity.output", _messages.as_text),
            ("agiflow.entity.output", _messages.as_text),
            ("gen_ai.completion", _messages.from_messages),
        ),
        "session_id": (
            ("agiflow.session.id", _text),
            ("gen_ai.conversation.id", _text),
            ("session.id", _text),
            ("traceloop.association.properties.session_id", _text),
            ("agiflow.association.properties.session_id", _text),
        ),
        "user_id": (
            ("agiflow.user.id", _text),
            ("user.id", _text),
            ("enduser.id", _text),
            ("traceloop.association.properties.user_id", _text),
            ("agiflow.association.properties.user_id", _text),
        ),
        "tags": (("agiflow.tags", _tags), ("tag.tags", _tags)),
        "prompt_name": (
            ("agiflow.prompt.name", _text),
            ("traceloop.prompt.key", _text),
            ("agiflow.prompt.key", _text),
        ),
        "prompt_version": (
            ("agiflow.prompt.version", _version),
            ("llm.prompt_template.version", _version),
            ("traceloop.prompt.version", _version),
        ),
    }
)

# attribute → (column, rank, parser): one dict lookup per attribute on the hot path.
_RULES: Mapping[str, tuple[str, int, Parser]] = MappingProxyType(
    {key: (column, rank, parse) for column, sources in SOURCES.items() for rank, (key, parse) in enumerate(sources)}
)
# Messages spread over indexed attributes: prefix → (column, the sub-key prefix to drop).
_INDEXED: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "gen_ai.prompt.": ("input", ""),
        "gen_ai.completion.": ("output", ""),
        "llm.input_messages.": ("input", "message."),
        "llm.output_messages.": ("output", "message."),
    }
)
_INDEXED_PREFIXES = tuple(_INDEXED)
_ROLE_EVENTS: Mapping[str, str] = MappingProxyType(
    {f"gen_ai.{role}.message": role for role in ("system", "user", "assistant", "tool")}
)


class Semantics(NamedTuple):
    span_type: SpanType
    model: str | None
    provider: str | None
    input: str | None
    output: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    session_id: str | None
    user_id: str | None
    tags: tuple[str, ...]
    prompt_name: str | None
    prompt_version: int | None
    exception: str | None  # "Type: message" of the first exception event, for the span's status


class Pricer:
    """Prices spans for one batch.

    ``lookup`` is ``PriceBook.lookup``: the shipped table by default, a project's book with its overrides
    when the caller has one. Found prices are remembered for the batch (not the process), so a dated model
    name pays for the prefix rule once per batch and a project's new override applies to the next one."""

    __slots__ = ("_lookup", "_seen")

    def __init__(self, lookup: PriceLookup | None = None) -> None:
        self._lookup = lookup or _shipped_book().lookup
        self._seen: dict[str, Price | None] = {}

    def cost(self, model: str | None, tokens_in: int | None, tokens_out: int | None) -> float | None:
        """USD, or None (unpriced) for an unknown model or a missing token count: never a made-up zero."""
        if model is None or tokens_in is None or tokens_out is None:
            return None
        if model in self._seen:
            price = self._seen[model]
        else:
            found = self._lookup(model)
            price = self._seen[model] = found[1] if found else None
        if price is None:
            return None
        return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / MILLION


@functools.cache
def _shipped_book() -> PriceBook:
    return PriceBook()


def normalise(
    attributes: Mapping[str, JsonValue],
    events: Sequence[SpanEvent],
    pricer: Pricer,
    *,
    max_text_bytes: int = MAX_TEXT_BYTES,
) -> Semantics:
    """The columns of one span, reading each attribute once."""
    got: dict[str, Any] = {}  # column → parsed value of the best source seen so far
    ranks: dict[str, int] = {}
    indexed: dict[str, dict[int, dict[str, JsonValue]]] = {}
    rules = _RULES
    for key, value in attributes.items():
        rule = rules.get(key)
        if rule is None:
            if key.startswith(_INDEXED_PREFIXES):
                _collect_indexed(key, value, indexed)
            continue
        column, rank, parse = rule
        if rank < ranks.get(column, _UNRANKED):
            parsed = parse(value)
            if parsed is not None:
                got[column] = parsed
                ranks[column] = rank
    facts = _EventFacts.scan(events) if events else None
    model = got.get("model")
    tokens_in, tokens_out = got.get("tokens_in"), got.get("tokens_out")
    return Semantics(
        got.get("span_type") or ("llm" if model else "other"),
        model,
        got.get("provider"),
        _side("input", got, indexed, facts, max_text_bytes),
        _side("output", got, indexed, facts, max_text_bytes),
        tokens_in,
        tokens_out,
        pricer.cost(model, tokens_in, tokens_out),
        got.get("session_id"),
        got.get("user_id"),
        got.get("tags", ()),
        got.get("prompt_name"),
        got.get("prompt_version"),
        facts.exception if facts else None,
    )


def _side(
    column: str,
    got: dict[str, Any],
    indexed: dict[str, dict[int, dict[str, JsonValue]]],
    facts: _EventFacts | None,
    max_text_bytes: int,
) -> str | None:
    """Input or output: attributes first, then indexed messages, then events; capped."""
    text: str | None = got.get(column)
    if text is None and column in indexed:
        text = _messages.from_indexed(indexed[column])
    if text is None and facts is not None:
        text = facts.text(column)
    return cap_text(text, max_text_bytes) if text is not None else None


def _collect_indexed(key: str, value: JsonValue, into: dict[str, dict[int, dict[str, JsonValue]]]) -> None:
    """``gen_ai.prompt.0.role`` → into["input"][0]["role"] (every indexed prefix has exactly two dots)."""
    cut = key.index(".", key.index(".") + 1) + 1
    column, drop = _INDEXED[key[:cut]]
    position, _, field = key[cut:].partition(".")
    if not position.isdecimal() or not position.isascii() or not field:
        return
    if drop and field.startswith(drop):
        field = field[len(drop) :]
    into.setdefault(column, {}).setdefault(int(position), {})[field] = value


class _EventFacts:
    """What a span's events say about its input, output and failure, gathered in one pass."""

    __slots__ = ("details", "messages", "content", "exception")

    def __init__(self) -> None:
        self.details: dict[str, JsonValue] = {}  # gen_ai.client.inference.operation.details attributes
        self.messages: dict[str, list[JsonValue]] = {"input": [], "output": []}
        self.content: dict[str, JsonValue] = {}  # the older gen_ai.content.prompt/completion events
        self.exception: str | None = None

    @classmethod
    def scan(cls, events: Sequence[SpanEvent]) -> _EventFacts:
        facts = cls()
        for event in events:
            handler = _EVENT_HANDLERS.get(event["name"])
            if handler is not None:
                handler(facts, event["name"], event["attributes"])
        return facts

    def text(self, column: str) -> str | None:
        details = self.details.get(f"gen_ai.{column}.messages")
        if details is not None:
            return _messages.from_messages(details)
        if self.messages[column]:
            return _messages.from_messages(self.messages[column])
        return _messages.from_messages(self.content.get(column))

    def on_details(self, name: str, attributes: dict[str, JsonValue]) -> None:
        self.details.update(attributes)

    def on_message(self, name: str, attributes: dict[str, JsonValue]) -> None:
        message = {k: v for k, v in attributes.items() if k not in ("gen_ai.system", "gen_ai.provider.name")}
        message.setdefault("role", _ROLE_EVENTS[name])
        self.messages["input"].append(message)

    def on_choice(self, name: str, attributes: dict[str, JsonValue]) -> None:
        message = attributes.get("message")
        if not isinstance(message, dict):
            message = {"role": "assistant", "content": attributes.get("content")}
        self.messages["output"].append(message)

    def on_content(self, name: str, attributes: dict[str, JsonValue]) -> None:
        if name == "gen_ai.content.prompt":
            self.content.setdefault("input", attributes.get("gen_ai.prompt"))
        else:
            self.content.setdefault("output", attributes.get("gen_ai.completion"))

    def on_exception(self, name: str, attributes: dict[str, JsonValue]) -> None:
        if self.exception is None:
            kind, message = attributes.get("exception.type"), attributes.get("exception.message")
            self.exception = ": ".join(str(part) for part in (kind, message) if part) or "exception"


_EVENT_HANDLERS: Mapping[str, Callable[[_EventFacts, str, dict[str, JsonValue]], None]] = MappingProxyType(
    {
        "gen_ai.client.inference.operation.details": _EventFacts.on_details,
        **{name: _EventFacts.on_message for name in _ROLE_EVENTS},
        "gen_ai.choice": _EventFacts.on_choice,
        "gen_ai.content.prompt": _EventFacts.on_content,
        "gen_ai.content.completion": _EventFacts.on_content,
        "exception": _EventFacts.on_exception,
    }
)

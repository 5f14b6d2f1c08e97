"""A span's input or output as text a person can read in the trace view and search.

The rule: one message whose content is text becomes that text (a single user prompt reads as the prompt,
a single answer as the answer); anything else (several messages, tool calls, images) stays the JSON of the
messages list, because flattening it would lose who said what. Text that is already JSON of such a list
is kept as sent rather than re-serialised. Plain text (OpenInference ``input.value``, Traceloop entity
input) is stored as it came.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from agiflow_lab.traces._values import clean_json_text
from agiflow_lab.traces.records import JsonValue

# Past this a text attribute is not parsed just to find one message: it will be truncated anyway.
_PARSE_LIMIT = 1 << 20
# ``raw_decode`` skips ``json.loads``' regex passes over the text (half its cost on short messages). The
# decoder holds only its (default) configuration.
_DECODER = json.JSONDecoder()


def as_text(value: JsonValue) -> str | None:
    """Plain text as given; a structured value as its JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return dump(value)


def from_messages(value: JsonValue) -> str | None:
    """Readable text of a message-shaped value: a list of messages, one message, or JSON text of either."""
    if value is None:
        return None
    if isinstance(value, str):
        return _from_json_text(value)
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        single = single_text(value)
        return single if single is not None else dump(value)
    return dump(value)


def from_indexed(messages: Mapping[int, dict[str, JsonValue]]) -> str | None:
    """Messages spread over ``prefix.N.role`` / ``prefix.N.content`` attributes, in index order."""
    ordered: list[JsonValue] = [messages[i] for i in sorted(messages)]
    return from_messages(ordered) if ordered else None


def single_text(messages: Sequence[JsonValue]) -> str | None:
    """The text of the only message, or None when there are several or its content is not plain text."""
    if len(messages) != 1:
        return None
    message = messages[0]
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = message.get("parts", content)  # GenAI ``parts``, or OpenAI's list-of-parts content
    if isinstance(parts, list) and len(parts) == 1 and isinstance(part := parts[0], dict):
        if part.get("type") == "text":
            text = part.get("content", part.get("text"))
            return text if isinstance(text, str) else None
    return None


def dump(value: JsonValue) -> str:
    return clean_json_text(json.dumps(value, ensure_ascii=False))


def _from_json_text(text: str) -> str:
    head = text[:64]
    start = len(head) - len(head.lstrip())
    if len(text) > _PARSE_LIMIT or head[start : start + 1] not in ("[", "{"):
        return text
    try:
        parsed, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return text
    if end != len(text) and text[end:].strip():
        return text  # JSON followed by more text is text
    if isinstance(parsed, dict):
        parsed = [parsed]
    if isinstance(parsed, list) and (single := single_text(parsed)) is not None:
        return clean_json_text(single)
    return text

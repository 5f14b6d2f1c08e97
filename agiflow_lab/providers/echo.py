"""The built-in ``echo`` connection: answers with the rendered prompt and calls no model.

It lets a project try runs, evaluators and reports before anyone has entered a provider key, and it
gives tests and benchmarks a provider with no network and no cost. The completion's ``model`` is always
``echo`` so price lookups find the zero-cost row, whatever model the prompt names.
"""

from __future__ import annotations

import time

from agiflow_lab.providers.base import Completion, CompletionRequest

ECHO = "echo"
ECHO_DESCRIPTION = "Built-in echo: returns the rendered prompt; no model is called"


def word_count(text: str) -> int:
    return len(text.split())


class EchoClient:
    kind = ECHO

    def __repr__(self) -> str:
        return "EchoClient()"

    async def complete(self, request: CompletionRequest) -> Completion:
        started = time.perf_counter()
        text = "\n\n".join(m["content"] for m in request.messages)
        words = word_count(text)
        return Completion(
            text=text, model=ECHO, tokens_in=words, tokens_out=words,
            latency_ms=(time.perf_counter() - started) * 1000,
        )  # fmt: skip

    async def close(self) -> None:
        return None

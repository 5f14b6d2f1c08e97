"""A scripted OpenAI- and Anthropic-compatible model server, so provider tests use the official SDKs end to end.

It speaks ``POST /v1/chat/completions`` (OpenAI Chat Completions, non-streaming; also Azure's
``/openai/deployments/{name}/chat/completions``) and ``POST /v1/messages`` (Anthropic Messages) well enough
for ``openai.AsyncOpenAI``, ``openai.AsyncAzureOpenAI`` and ``anthropic.AsyncAnthropic``. What it answers
is scripted over HTTP, so a test can make the third call succeed after two 429s, or make a call hang:

``POST /_script``::

    {"default": {"mode": "echo" | "reply", "reply": "...", "latency_ms": 0},
     "rules": [{"match": "<regex searched in the last user message>", "reply": "...", "mode": "echo",
                "status": 429, "times": 2, "latency_ms": 0, "retry_after": 1, "hang": false}]}

Rules are tried in order; a rule with ``times`` applies to its first N matching requests only. ``reply`` may
contain ``{{last}}`` (the last user message). ``GET /_requests`` lists every request received
(``?since=N`` skips the first N); ``POST /_reset`` clears the rules and the log.

Token usage is deterministic: prompt tokens are the whitespace-split word count of all message contents,
completion tokens the word count of the reply.

Run it alone with ``python -m tests.support.scripted_llm --port 0`` (prints its URL as the first stdout line),
or from tests with :class:`ScriptedLLM` (a subprocess, so benchmarks do not share the test's event loop) or
the ``scripted_llm`` fixture (``pytest_plugins = ["tests.support.scripted_llm"]``).

It is deliberately lean — one aiohttp process (HTTP parsed in C), no per-request work beyond a regex search and
``json`` — because a benchmark drives it at ~400 requests/s on the two cores it shares with the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------------
# The script: what to answer
# ---------------------------------------------------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found_error",
    408: "timeout",
    409: "conflict",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class ScriptError(ValueError):
    """A ``/_script`` body the server cannot use; answered with 400 so the test sees its own mistake."""


@dataclass
class Rule:
    pattern: re.Pattern[str] | None
    reply: str | None = None
    mode: str | None = None
    status: int | None = None
    times: int | None = None  # remaining uses; None = unlimited
    latency_ms: float | None = None
    retry_after: float | None = None
    hang: bool = False


@dataclass
class Default:
    mode: str = "echo"
    reply: str = "ok"
    latency_ms: float = 0.0


@dataclass
class Outcome:
    text: str = ""
    status: int = 200
    latency_ms: float = 0.0
    retry_after: float | None = None
    hang: bool = False


@dataclass
class Script:
    default: Default = field(default_factory=Default)
    rules: list[Rule] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def load(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ScriptError("script must be a JSON object")
        unknown = set(body) - {"default", "rules"}
        if unknown:
            raise ScriptError(f"unknown script keys: {sorted(unknown)}")
        default = Default()
        raw_default = body.get("default") or {}
        if not isinstance(raw_default, dict):
            raise ScriptError("default must be an object")
        mode = raw_default.get("mode", "echo" if "reply" not in raw_default else "reply")
        if mode not in ("echo", "reply"):
            raise ScriptError(f"default.mode must be echo or reply, not {mode!r}")
        default.mode = mode
        default.reply = str(raw_default.get("reply", default.reply))
        default.latency_ms = float(raw_default.get("latency_ms", 0) or 0)
        rules = [self._rule(i, r) for i, r in enumerate(body.get("rules") or [])]
        self.default, self.rules = default, rules

    @staticmethod
    def _rule(index: int, raw: Any) -> Rule:
        if not isinstance(raw, dict):
            raise ScriptError(f"rules[{index}] must be an object")
        allowed = {"match", "reply", "mode", "status", "times", "latency_ms", "retry_after", "hang"}
        unknown = set(raw) - allowed
        if unknown:
            raise ScriptError(f"rules[{index}] has unknown keys: {sorted(unknown)}")
        try:
            pattern = re.compile(raw["match"]) if raw.get("match") is not None else None
        except re.error as e:
            raise ScriptError(f"rules[{index}].match is not a valid regex: {e}") from e
        if raw.get("mode") not in (None, "echo", "reply"):
            raise ScriptError(f"rules[{index}].mode must be echo or reply")
        return Rule(
            pattern=pattern,
            reply=None if raw.get("reply") is None else str(raw["reply"]),
            mode=raw.get("mode"),
            status=None if raw.get("status") is None else int(raw["status"]),
            times=None if raw.get("times") is None else int(raw["times"]),
            latency_ms=None if raw.get("latency_ms") is None else float(raw["latency_ms"]),
            retry_after=None if raw.get("retry_after") is None else float(raw["retry_after"]),
            hang=bool(raw.get("hang", False)),
        )

    def decide(self, last_user: str) -> Outcome:
        """Pick the first live rule matching the last user message; using it counts against its ``times``."""
        for rule in self.rules:
            if rule.times is not None and rule.times <= 0:
                continue
            if rule.pattern is not None and rule.pattern.search(last_user) is None:
                continue
            if rule.times is not None:
                rule.times -= 1
            latency = rule.latency_ms if rule.latency_ms is not None else self.default.latency_ms
            if rule.hang:
                return Outcome(hang=True, latency_ms=latency)
            if rule.status is not None and rule.status >= 400:
                return Outcome(status=rule.status, latency_ms=latency, retry_after=rule.retry_after,
                               text=rule.reply or f"scripted error {rule.status}")  # fmt: skip
            mode = rule.mode or ("reply" if rule.reply is not None else self.default.mode)
            return Outcome(text=self._text(mode, rule.reply, last_user), latency_ms=latency,
                           status=rule.status or 200)  # fmt: skip
        d = self.default
        return Outcome(text=self._text(d.mode, d.reply, last_user), latency_ms=d.latency_ms)

    def _text(self, mode: str, reply: str | None, last_user: str) -> str:
        if mode == "echo":
            return last_user
        return (reply if reply is not None else self.default.reply).replace("{{last}}", last_user)


# ---------------------------------------------------------------------------------------------------------------
# Message helpers
# ---------------------------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """Message content as plain text: a string, or the text parts of a content-block list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    return str(content)


def _words(text: str) -> int:
    return len(text.split())


def _last_user(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


# ---------------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------------


def make_app(script: Script) -> Any:
    """The server as an ``aiohttp.web`` application: aiohttp parses HTTP in C, so a request costs 0.20 ms of
    CPU where tornado's pure-Python server took 0.35 ms (32 calls in flight); at 320 calls/s that was a ninth
    of a core, which a hosted model would not take from the machine under test."""
    from aiohttp import web

    ids = itertools.count(1)

    def send(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, body=json.dumps(body).encode(), headers=headers,
                            content_type="application/json")  # fmt: skip

    async def body_json(request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"{}")
        except ValueError:
            return None

    def openai_success(model: str, text: str, tokens_in: int, tokens_out: int, n: int) -> web.Response:
        return send(200, {
            "id": f"chatcmpl-scripted-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out},
        })  # fmt: skip

    def openai_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        kind = _OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return send(status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}, headers)

    def anthropic_success(model: str, text: str, tokens_in: int, tokens_out: int, n: int) -> web.Response:
        return send(200, {
            "id": f"msg_scripted_{n}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        })  # fmt: skip

    def anthropic_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return send(status, {"type": "error", "error": {"type": kind, "message": message}}, headers)

    async def hang(request: web.Request) -> None:
        """Never answer; stop waiting once the client has gone, so hung requests do not pile up forever."""
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.25)

    def model_api(
        success: Callable[..., web.Response], error_reply: Callable[..., web.Response], *, counts_system: bool = False
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A model API's handler: its reply and error shapes, and whether a top-level ``system`` counts as prompt."""

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await body_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return error_reply(400, "request body must be a JSON object with a messages list")
            messages: list[Any] = body["messages"]
            model = str(body.get("model") or request.match_info.get("deployment") or "")
            last = _last_user(messages)
            entry: dict[str, Any] = {"path": request.path, "model": model, "last_user": last,
                                     "status": None, "at": time.time(),
                                     "headers": {k.lower(): v for k, v in request.headers.items()
                                                 if k.lower() == "host" or k.lower().startswith("x-")}}  # fmt: skip
            script.log.append(entry)
            outcome = script.decide(last)
            if outcome.hang:
                entry["status"] = "hang"
                await hang(request)
                return web.Response(status=499)  # nobody reads it: the client has gone
            if outcome.latency_ms > 0:
                await asyncio.sleep(outcome.latency_ms / 1000)
            entry["status"] = outcome.status
            if outcome.status >= 400:
                headers = {} if outcome.retry_after is None else {"Retry-After": _fmt_seconds(outcome.retry_after)}
                return error_reply(outcome.status, outcome.text, headers)
            prompt_words = sum(_words(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
            if counts_system:
                prompt_words += _words(_text_of(body.get("system")))
            return success(model, outcome.text, prompt_words, _words(outcome.text), next(ids))

        return handle

    async def load_script(request: web.Request) -> web.Response:
        try:
            script.load(await body_json(request))
        except (ScriptError, TypeError, ValueError) as e:
            return send(400, {"error": str(e)})
        return send(200, {"ok": True, "rules": len(script.rules)})

    async def requests(request: web.Request) -> web.Response:
        return send(200, script.log[int(request.query.get("since", "0")) :])

    async def reset(request: web.Request) -> web.Response:
        script.default, script.rules, script.log = Default(), [], []
        return send(200, {"ok": True})

    async def health(request: web.Request) -> web.Response:
        return send(200, {"ok": True})

    openai = model_api(openai_success, openai_error)
    anthropic = model_api(anthropic_success, anthropic_error, counts_system=True)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([
        web.post("/v1/chat/completions", openai),
        web.post("/chat/completions", openai),  # clients configured without the /v1 suffix
        web.post("/openai/deployments/{deployment}/chat/completions", openai),  # Azure OpenAI
        web.post("/v1/messages", anthropic),
        # Servers that are not the API a connection claims: Chat Completions at Messages' path and back.
        web.post("/as-openai/v1/messages", openai),
        web.post("/as-anthropic/chat/completions", anthropic),
        web.post("/_script", load_script),
        web.get("/_requests", requests),
        web.post("/_reset", reset),
        web.get("/_health", health),
    ])  # fmt: skip
    return app


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


async def serve(port: int = 0, host: str = "127.0.0.1") -> None:
    """Serve until cancelled; prints ``http://host:port`` as the first stdout line once listening."""
    from aiohttp import web

    # No access log: it costs more than the work at 400 requests/s.
    runner = web.AppRunner(make_app(Script()), access_log=None, keepalive_timeout=300)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual = runner.addresses[0][1]
    sys.stdout.write(f"http://{host}:{actual}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.host))
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------------------------------------------------
# Test-side handle
# ---------------------------------------------------------------------------------------------------------------


class ScriptedLLM:
    """The scripted server as a subprocess, controlled over HTTP.

    Use as a context manager or with ``start()``/``stop()``. ``url`` is ``http://127.0.0.1:PORT``;
    point ``openai`` at ``openai_base_url`` and ``anthropic`` at ``anthropic_base_url`` (= ``url``).
    Each control call has a sync and an async form (``script``/``ascript``, …).
    """

    def __init__(self, *, log_path: Path | None = None, start_timeout: float = 30.0) -> None:
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._own_log = False  # a temporary file made by start(), removed by stop(); a given log_path is kept

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def start(self) -> ScriptedLLM:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="scripted-llm-", suffix=".log")
            os.close(fd)
            self.log_path, self._own_log = Path(name), True
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-m", "tests.support.scripted_llm", "--port", "0"],
                stdout=subprocess.PIPE, stderr=log, env=env, cwd=REPO,
            )  # fmt: skip
        finally:
            log.close()
        self.url = self._read_url()
        return self

    def _read_url(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.start_timeout)
        url = line[0].decode().strip() if line else ""
        if not url.startswith("http://"):
            log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path else ""
            self.stop()
            raise RuntimeError(f"scripted LLM server did not start: {url!r}\n{log}")
        return url

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path, self._own_log = None, False

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control, sync ------------------------------------------------------------------------------------------

    @staticmethod
    def _script_body(default: dict[str, Any] | None, rules: list[dict[str, Any]] | None) -> dict[str, Any]:
        return {"default": default or {"mode": "echo"}, "rules": rules or []}

    def script(self, default: dict[str, Any] | None = None, rules: list[dict[str, Any]] | None = None) -> None:
        """Replace the script (the request log is kept; ``reset()`` clears both)."""
        import httpx

        r = httpx.post(self.url + "/_script", json=self._script_body(default, rules), timeout=10)
        r.raise_for_status()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        import httpx

        r = httpx.get(self.url + "/_requests", params={"since": since}, timeout=10)
        r.raise_for_status()
        return list(r.json())

    def reset(self) -> None:
        import httpx

        httpx.post(self.url + "/_reset", timeout=10).raise_for_status()

    # -- control, async -----------------------------------------------------------------------------------------

    async def ascript(self, default: dict[str, Any] | None = None, rules: list[dict[str, Any]] | None = None) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=10) as c:
            (await c.post(self.url + "/_script", json=self._script_body(default, rules))).raise_for_status()

    async def arequests(self, since: int = 0) -> list[dict[str, Any]]:
        import httpx

        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.get(self.url + "/_requests", params={"since": since})
            r.raise_for_status()
            return list(r.json())

    async def areset(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=10) as c:
            (await c.post(self.url + "/_reset")).raise_for_status()


# ---------------------------------------------------------------------------------------------------------------
# Pytest fixtures (load with ``pytest_plugins = ["tests.support.scripted_llm"]``)
# ---------------------------------------------------------------------------------------------------------------

if __name__ != "__main__":  # the server process itself needs no pytest
    import pytest

    @pytest.fixture(scope="session")
    def scripted_llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedLLM]:
        """One scripted server for the whole session."""
        with ScriptedLLM(log_path=tmp_path_factory.mktemp("scripted-llm") / "server.log") as server:
            yield server

    @pytest.fixture
    async def scripted_llm(scripted_llm_server: ScriptedLLM) -> AsyncIterator[ScriptedLLM]:
        """The session's scripted server with an empty script and log (echo replies) for this test."""
        await scripted_llm_server.areset()
        yield scripted_llm_server


if __name__ == "__main__":
    main()

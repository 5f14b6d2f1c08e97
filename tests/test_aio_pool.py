"""The provider SDKs' connection pool (``providers.aio_pool``): requests go on the wire at once.

On Python 3.11 aiohttp writes a request's body in a task queued behind everything already waiting on the
event loop; in an evaluation that kept a run's calls moving in lockstep groups, each call waiting for the
rest of its group (see the module's docstring). These tests pin the eager write and the helper behind it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from agiflow_lab.providers.aio_pool import started
from agiflow_lab.providers.base import CompletionRequest
from agiflow_lab.providers.openai_compat import OpenAICompatibleClient

REPLY = (
    b'{"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, '
    b'"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}], '
    b'"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}'
)


class HeldServer:
    """An HTTP/1.1 server on a plain socket in a thread: answers the first request at once and reads the
    second only once ``release`` is set, so a test can look at what the client has written by then."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"
        self.connection: socket.socket | None = None
        self.release = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        self.connection = conn
        with conn:
            self._answer(conn)
            self.release.wait(30)
            self._answer(conn)

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            body += conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)
        )

    def waiting_bytes(self) -> bytes:
        """What the client has sent that the server has not read yet (without reading it)."""
        assert self.connection is not None
        try:
            return self.connection.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        self.release.set()
        self._thread.join(10)
        self._listener.close()


@pytest.fixture
def held_server() -> Iterator[HeldServer]:
    server = HeldServer()
    yield server
    server.close()


async def test_a_model_call_is_on_the_wire_before_the_loop_runs_what_was_queued_after_it(
    held_server: HeldServer,
) -> None:
    client = OpenAICompatibleClient(held_server.url, "k", timeout=30)
    request = CompletionRequest(messages=[{"role": "user", "content": "hello"}], model="m", params={})
    try:
        assert (await client.complete(request)).text == "hi"  # opens the connection the next call reuses
        seen: list[bytes] = []
        call = asyncio.ensure_future(client.complete(request))
        asyncio.get_running_loop().call_soon(lambda: seen.append(held_server.waiting_bytes()))
        while not seen:
            await asyncio.sleep(0)
        held_server.release.set()
        assert (await call).text == "hi"
    finally:
        await client.close()
    # Queued behind the look, the request would not be there yet (aiohttp's own writer task on Python 3.11).
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1"), seen[0][:80]
    assert b'"content":"hello"' in seen[0].replace(b" ", b"")


async def test_started_runs_a_coroutine_to_its_first_wait_now_and_finishes_it_when_awaited() -> None:
    steps: list[str] = []
    later: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def two_steps() -> str:
        steps.append("first")
        value = await later
        steps.append("second")
        return value

    rest = started(two_steps())
    assert steps == ["first"]  # ran here, before anything else on the loop
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0)
    assert steps == ["first"] and not task.done()
    later.set_result("done")
    assert await task == "done" and steps == ["first", "second"]


async def test_started_keeps_results_errors_and_cancellation() -> None:
    async def at_once() -> int:
        return 7

    async def failing() -> None:
        raise ValueError("bad body")

    cleaned: list[str] = []

    async def waiting() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("cleaned")

    assert await started(at_once()) == 7
    with pytest.raises(ValueError, match="bad body"):
        await started(failing())
    task = asyncio.ensure_future(started(waiting()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["cleaned"]

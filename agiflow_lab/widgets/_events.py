"""A job's events from the project's events WebSocket (``/events?project=&after=latest``), on a thread.

``EvalRunView`` follows its run this way: each event of the run's job (progress, state) wakes its refresher at
once, so a run is shown live without polling every second; its refresher still asks every few seconds, which
covers a socket that cannot connect (a Unix-socket endpoint, a proxy without WebSockets) or drops.
"""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import quote

from agiflow_lab.sdk.transport import Transport

READ_SECONDS = 1.0  # how often the reader looks at ``stop`` between messages


class JobEvents:
    def __init__(self, transport: Transport, project: str, job_id: str, wake: threading.Event) -> None:
        self._endpoint = transport.endpoint
        self._project = project
        self._job_id = job_id
        self._wake = wake
        self.stop = threading.Event()
        self.connected = threading.Event()  # set once the socket is open (it stays set)
        self._thread = threading.Thread(target=self._run, name=f"agiflow-events-{job_id[:8]}", daemon=True)

    def start(self) -> None:
        if self._endpoint.unix_socket is None:  # tornado's client speaks TCP only: polling covers the rest
            self._thread.start()

    def join(self, timeout: float) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except Exception:  # no socket: the refresher's own polling shows the run
            pass

    async def _follow(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        base = self._endpoint.api_url.replace("http", "ws", 1)
        url = f"{base}/events?project={quote(self._project, safe='')}&after=latest"
        request = HTTPRequest(url, headers={"Authorization": self._endpoint.authorization}, connect_timeout=10)
        socket = await websocket_connect(request)
        self.connected.set()
        try:
            while not self.stop.is_set():
                try:
                    message = await asyncio.wait_for(socket.read_message(), READ_SECONDS)
                except TimeoutError:
                    continue
                if message is None:  # closed by the server
                    return
                event = json.loads(message)
                if isinstance(event, dict) and event.get("job_id") == self._job_id:
                    self._wake.set()
        finally:
            socket.close()

"""Clients of kernels the Jupyter server started (a notebook's session), as the tests drive them."""

from __future__ import annotations

import time
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient


def ready_client(connection: Path, timeout: float = 90) -> BlockingKernelClient:
    """A client of the server's kernel once it answers. A kernel still starting can miss heartbeats on a busy
    machine, which the blocking client takes for a dead kernel: then try again."""
    deadline = time.monotonic() + timeout
    while True:
        kc = BlockingKernelClient(connection_file=str(connection))
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            return kc
        except RuntimeError as exc:
            kc.stop_channels()
            if "died before replying" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)

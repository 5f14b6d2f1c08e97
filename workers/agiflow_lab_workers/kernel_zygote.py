"""The process job kernels are forked from: ipykernel and IPython imported once, not once per kernel.

A fresh kernel spends most of its start (about 0.9 of 1 CPU-second on the CI machine) importing IPython,
ipykernel, jupyter_client, zmq and the debugger before it runs a line of the job. At saturation a job costs a
kernel start, so that import was over half of every job's CPU; a forked kernel is ready after ~0.1 CPU-s. This process imports the kernel stack once and forks a
child per kernel, which becomes the kernel exactly as ``python -m ipykernel_launcher`` would: a session of its
own, the requested uid/gid (no supplementary groups), working folder and environment (nothing inherited
from here), stdin on ``/dev/null``, stdout and stderr on this process's stderr (the worker's log), and
every other descriptor closed.

What a child shares with the others is only what was imported here, which holds nothing secret: this
process starts with the kernel's allow-listed environment (``kernel_pool.kernel_environment``), runs no user
code and creates no threads, sockets or event loops before forking. ``random`` reseeds itself in every child
(``os.register_at_fork``); nothing that seeds its own generator at import (numpy) is imported here, so
warm imports of user libraries stay in the kernels (``KernelPool.warm_imports``). The children do share the
interpreter's string-hash secret, which only matters for hash flooding between kernels.

Modules named on the command line are imported too (the worker's ``fork_imports``: the evaluation runner,
with openai, httpx and pydantic): a kernel then finds them loaded, as a warmed pooled kernel would.

Protocol, one JSON object per line: the worker writes ``{"argv", "env", "cwd", "uid", "gid"}`` on stdin and
reads ``{"pid"}`` or ``{"error"}`` on stdout; the first line out is ``{"ready": <pid>}``. End of stdin (the
worker exited or died) ends this process, and each kernel then ends within a second: its ``JPY_PARENT_PID``
is this process, which ipykernel's parent poller watches.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, NoReturn

import ipykernel.ipkernel  # noqa: F401  (imported once here, for every kernel: the point of this process)
import ipykernel.kernelapp

# What a kernel still imported on its way to ready after the two above (a forked kernel's sys.modules minus
# this process's): the debugger (debugpy, pydevd), tornado's queues, the completer's helpers. ~0.1 s each.
PREIMPORTS = (
    "ipykernel.debugger", "IPython.core.completerlib", "tornado.gen", "tornado.locks", "tornado.queues",
    "tornado.platform.asyncio", "http.server", "xmlrpc.server", "gzip", "faulthandler", "encodings.idna",
)  # fmt: skip
_SPEC = importlib.util.find_spec("ipykernel_launcher")
LAUNCHER = _SPEC.origin if _SPEC is not None and _SPEC.origin else "ipykernel_launcher"  # argv[0], as -m sets it


def main() -> None:
    for name in (*PREIMPORTS, *sys.argv[1:]):  # then the worker's own (``KernelPool(fork_imports=...)``)
        try:
            importlib.import_module(name)
        except ImportError as e:  # an optional part of the kernel (the debugger): the kernel copes without it
            print(f"kernel fork server: {name} not imported ({e})", file=sys.stderr)
    _write_connection_files_atomically()
    if threading.active_count() != 1:  # a fork copies only the calling thread: locks others held stay held
        raise SystemExit(f"kernel fork server: an import started threads {threading.enumerate()}; cannot fork")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped at exit (no zombies); the worker holds pidfds
    _reply({"ready": os.getpid()})
    for line in sys.stdin:
        try:
            request = json.loads(line)
            pid = os.fork()
        except (ValueError, OSError) as e:
            _reply({"error": f"{type(e).__name__}: {e}"})
            continue
        if pid == 0:
            _become_kernel(request)
        _reply({"pid": pid})


def _write_connection_files_atomically() -> None:
    """A kernel rewrites its connection file once its sockets are bound (when what it merged differs), while
    jupyter_client reads the same file right after the launch returns, and removes and rewrites it when it
    differs. A forked kernel reaches its rewrite within milliseconds, so the manager once read it truncated
    (an empty file: JSONDecodeError, the kernel lost). Written to a temporary name and renamed, the file is
    always whole: either version is a complete, equivalent connection file."""
    write = vars(ipykernel.kernelapp)["write_connection_file"]  # the name kernelapp calls (from ipykernel.connect)

    def write_atomically(fname: str, **info: Any) -> tuple[str, Any]:
        partial = f"{fname}.{os.getpid()}.partial"
        _, cfg = write(partial, **info)
        os.replace(partial, fname)
        return fname, cfg

    setattr(ipykernel.kernelapp, "write_connection_file", write_atomically)  # noqa: B010


def _reply(message: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the worker is gone (killed while this started): nobody to serve, nothing to say
        os._exit(0)


def _become_kernel(request: dict[str, Any]) -> NoReturn:
    code: object = 1
    try:
        os.setsid()  # a process group of its own: the pool kills the kernel with everything it started
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # not the pipe back to the worker: that is this process's alone
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 4096)
        if request.get("uid") is not None:
            os.setgroups([])
            os.setgid(int(request["gid"]))
            os.setuid(int(request["uid"]))
        if request.get("cwd"):
            os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["JPY_PARENT_PID"] = parent = str(os.getppid())
        time.tzset()
        tempfile.tempdir = None  # TMPDIR is the kernel's, not this process's
        # ipykernel read JPY_PARENT_PID when it was imported (here, before any kernel): say it again
        sys.argv = [LAUNCHER, *request["argv"], f"--IPKernelApp.parent_handle={parent}"]
        sys.path[0] = os.getcwd()  # as ``python -m`` sets it: the kernel's folder, not this process's
        ipykernel.kernelapp.launch_new_instance()
        code = 0
    except SystemExit as e:
        code = e.code
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()

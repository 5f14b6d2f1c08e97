"""The temporary directories a worker makes, and removing those whose worker died.

A worker stopped in the ordinary way removes what it made: its work dir, the sandbox's root of kernel homes,
each kernel's socket directory. One killed with SIGKILL (the supervisor's last resort, the OOM killer) cannot,
and a full test run left some thirty such directories in /tmp. So each directory made here holds a lock file that
its worker keeps ``flock``ed while it lives; the operating system frees the lock when the process ends,
however it ends. A worker starting up removes every such directory whose lock it can take: its maker is
gone. A directory without the lock file (being made just now, or made by an older version) is left alone,
as is one whose lock file another user owns: a kernel may write in its own socket directory, and must not
be able to make a root worker remove anything (``shutil.rmtree`` does not follow symbolic links).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

WORK_DIR = "agiflow-worker-"
KERNEL_HOMES = "agiflow-kernels-"
KERNEL_SOCKETS = "agk-"  # short: ZeroMQ ipc socket paths are limited to 107 bytes
PREFIXES = (WORK_DIR, KERNEL_HOMES, KERNEL_SOCKETS)
LOCK = ".agiflow-owner.lock"


class Scratch:
    """A directory made for this process: ``remove`` deletes it and lets go of its lock."""

    def __init__(self, prefix: str, parent: Path | None = None) -> None:
        if prefix not in PREFIXES:
            raise ValueError(f"unknown scratch prefix {prefix!r}")
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self._fd: int | None = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # a file made just now: nobody else can hold it

    def remove(self) -> None:
        """Blocking (a tree of files): call it in a thread from async code."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sweep(parent: Path | None = None) -> list[Path]:
    """Remove the scratch directories in ``parent`` (the system temp dir) whose makers have died; returns them.

    Blocking: call it in a thread from async code."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    with os.scandir(parent) as entries:
        candidates = [Path(e.path) for e in entries if e.name.startswith(PREFIXES) and e.is_dir(follow_symlinks=False)]
    for path in candidates:
        if _orphaned(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %s temporary directories left by workers that died", len(removed))
    return removed


def _orphaned(path: Path) -> bool:
    """The lock file is ours, a plain file, and nobody holds it."""
    try:
        fd = os.open(path / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # no lock file, a symbolic link, or not ours to read
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its worker is alive
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)

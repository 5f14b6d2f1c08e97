"""Kernels as unprivileged users: what keeps user code away from the data dir and other jobs.

A kernel runs whatever its notebook says (a user's notebook, a ``python`` evaluator). Its environment
holds no credentials (``environment.kernel_environment``), but a kernel running as the worker's own user
could still read the secret-key file, the embedded Postgres's data dir, another kernel's memory or the
worker's ``/proc/<pid>/environ``. When the worker runs as root, each kernel therefore runs as a uid of
its own, leased from a range for the kernel's lifetime and nobody else's while leased:

- the kernel's home (``HOME``, IPython and Jupyter dirs, ``TMPDIR``) is a fresh 0700 directory, so one
  job cannot leave a start-up file for the next;
- the job's working folder is handed to the uid when the job starts;
- before a uid goes back to the range, and again before it is leased, every process running under it is
  killed, so a daemon a job started cannot wait for the next kernel with the same uid;
- several workers on one host share the range: a uid is leased under an exclusive ``flock`` on a file in
  a root-only folder (``/run/agiflow-lab/kernel-uids``), which the kernel dies with if its worker does.

The uids need no ``/etc/passwd`` entry (like systemd's ``DynamicUser``). A worker that is not root cannot
switch users: kernels then run as the worker's user, which the README's deployment notes cover.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agiflow_lab.config import CHOICES
from agiflow_lab_workers.scratch import KERNEL_HOMES, Scratch

log = logging.getLogger(__name__)

DEFAULT_UIDS = range(61000, 61512)
LOCK_DIR = Path("/run/agiflow-lab/kernel-uids")


@dataclass(frozen=True)
class KernelIdentity:
    uid: int
    home: Path

    @property
    def gid(self) -> int:
        return self.uid


class KernelSandbox:
    def __init__(self, uids: range = DEFAULT_UIDS, root: Path | None = None) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("running kernels as other users needs a worker running as root")
        self._free = list(uids)
        self._leased: dict[int, int] = {}  # uid → the fd holding its lock
        self._scratch: Scratch | None = None  # made here, so removed with its lock on close
        if root is None:
            self._scratch = Scratch(KERNEL_HOMES)
            root = self._scratch.path
        self.root = root
        self.locks = _root_only_dir(LOCK_DIR) if LOCK_DIR.parent.parent.is_dir() else self.root
        self.root.chmod(0o711)  # kernels may enter their own home below it, not list the others
        self.work_root: Path | None = None  # the worker's scratch folder, where job folders are made

    @classmethod
    def from_setting(cls, mode: str, uids: str | None = None) -> KernelSandbox | None:
        """``auto``: on when the worker is root; ``on``: required; ``off``: kernels run as the worker's user."""
        mode = mode.strip().lower()
        if mode not in CHOICES["kernel_sandbox"]:
            raise ValueError(f"kernel sandbox must be one of {', '.join(CHOICES['kernel_sandbox'])}, not {mode!r}")
        if mode == "off" or (mode == "auto" and os.geteuid() != 0):
            return None
        return cls(parse_uids(uids) if uids else DEFAULT_UIDS)

    def lease(self) -> KernelIdentity:
        uid = self._lock_free_uid()
        kill_user_processes(uid)  # left over from a worker that died
        home = self.root / f"k{uid}-{secrets.token_hex(4)}"
        home.mkdir(mode=0o700)
        for sub in ("tmp", ".ipython", ".jupyter", ".config"):
            (home / sub).mkdir(mode=0o700)
        for path in (home, *home.iterdir()):
            os.chown(path, uid, uid)
        return KernelIdentity(uid, home)

    def env(self, identity: KernelIdentity) -> dict[str, str]:
        home = str(identity.home)
        return {
            "HOME": home, "USER": f"agiflow-k{identity.uid}", "LOGNAME": f"agiflow-k{identity.uid}",
            "TMPDIR": f"{home}/tmp", "IPYTHONDIR": f"{home}/.ipython", "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter",
            "JUPYTER_CONFIG_DIR": f"{home}/.jupyter", "JUPYTER_DATA_DIR": f"{home}/.jupyter",
            "MPLCONFIGDIR": f"{home}/.config", "XDG_CONFIG_HOME": f"{home}/.config", "XDG_CACHE_HOME": f"{home}/tmp",
        }  # fmt: skip

    @staticmethod
    def popen_options(identity: KernelIdentity) -> dict[str, object]:
        return {"user": identity.uid, "group": identity.gid, "extra_groups": []}

    def admit(self, identity: KernelIdentity, folder: Path) -> None:
        """Give the kernel its job's working folder (blocking: call in a thread). The folders between it
        and the worker's scratch folder become enterable (not listable) by other users."""
        os.chown(folder, identity.uid, identity.gid)
        folder.chmod(0o700)
        if self.work_root is None:
            return
        root = self.work_root.resolve()
        for parent in folder.resolve().parents:
            if parent != root and root not in parent.parents:
                break
            mode = parent.stat().st_mode
            if mode & 0o111 != 0o111:
                parent.chmod((mode | 0o111) & 0o7711)

    def release(self, identity: KernelIdentity) -> None:
        """Kill what the uid still runs, remove its home, and free the uid (blocking: call in a thread)."""
        kill_user_processes(identity.uid)
        shutil.rmtree(identity.home, ignore_errors=True)
        fd = self._leased.pop(identity.uid, None)
        if fd is not None:
            os.close(fd)  # releases the flock
            self._free.append(identity.uid)

    def _lock_free_uid(self) -> int:
        for _ in range(len(self._free)):
            uid = self._free.pop(0)
            fd = os.open(self.locks / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another worker's kernel has it
                os.close(fd)
                self._free.append(uid)
                continue
            self._leased[uid] = fd
            return uid
        raise RuntimeError("no free kernel uid: widen AGIFLOW_KERNEL_UIDS")

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.remove()
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def check_python(self) -> None:
        """Fail at start-up, not at the first job, when the kernel uid cannot import what kernels need
        (an editable install in a folder other users cannot enter)."""
        identity = self.lease()
        try:
            probe = subprocess.run(
                [sys.executable, "-c", "import agiflow_lab.evals.runner, ipykernel"],
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                     **self.env(identity)},
                cwd=identity.home, capture_output=True, text=True, timeout=120, **self.popen_options(identity),
            )  # type: ignore[call-overload]  # fmt: skip
        finally:
            self.release(identity)
        if probe.returncode != 0:
            raise RuntimeError(
                f"kernels run as uid {identity.uid} cannot import agiflow_lab with {sys.executable}: "
                f"{probe.stderr.strip()[-500:]} — make the installation readable by other users, or set "
                "AGIFLOW_KERNEL_SANDBOX=off to run kernels as the worker's user"
            )


def _root_only_dir(path: Path) -> Path:
    """Create ``path`` (0700) and check nobody else could have planted it (no link, owned by us)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not path.is_dir() or path.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(f"{path} must be a folder owned by uid {os.geteuid()} that others cannot write")
    return path


def parse_uids(text: str) -> range:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"kernel uids must look like 61000-61511, not {text!r}") from None
    if not 1000 <= first <= last < 2**31:
        raise ValueError(f"kernel uids must be a range of unprivileged uids, not {text!r}")
    return range(first, last + 1)


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process whose real or effective uid is ``uid`` (Linux ``/proc``)."""
    for _ in range(3):  # a process may fork while we look; look again until none is left
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                status = (entry / "status").read_text()
                line = next(li for li in status.splitlines() if li.startswith("Uid:"))
                if uid in {int(v) for v in line.split()[1:3]}:
                    found = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(entry.name), signal.SIGKILL)
        if not found:
            return

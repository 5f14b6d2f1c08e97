"""A worker's temporary directories: removed by the next worker to start when their maker was killed, and
never when their maker lives or when someone else could have planted them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agiflow_lab_workers.scratch import KERNEL_SOCKETS, LOCK, WORK_DIR, Scratch, sweep

MAKER = """
import sys
from pathlib import Path
from agiflow_lab_workers.scratch import Scratch
made = Scratch(sys.argv[1], Path(sys.argv[2]))
print(made.path, flush=True)
sys.stdin.read()  # until the test kills it
"""


def made_by_a_process(prefix: str, parent: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", MAKER, prefix, str(parent)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_the_directories_of_a_killed_worker_are_swept_and_those_of_a_live_one_are_not(tmp_path: Path) -> None:
    killed, orphan = made_by_a_process(WORK_DIR, tmp_path)
    alive, kept = made_by_a_process(KERNEL_SOCKETS, tmp_path)
    try:
        (orphan / "job-1").mkdir()
        (orphan / "job-1" / "output.ipynb").write_text("{}")
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        assert sweep(tmp_path) == [orphan]
        assert not orphan.exists()
        assert kept.is_dir() and (kept / LOCK).is_file()
    finally:
        alive.kill()
        alive.wait(10)
    assert sweep(tmp_path) == [kept]


def test_a_directory_of_this_process_stays_until_removed(tmp_path: Path) -> None:
    mine = Scratch(WORK_DIR, tmp_path)
    assert sweep(tmp_path) == []
    mine.remove()
    assert not mine.path.exists()
    mine.remove()  # twice is harmless


def test_directories_without_our_lock_are_left_alone(tmp_path: Path) -> None:
    being_made = tmp_path / f"{WORK_DIR}new"  # made, its lock file not yet
    being_made.mkdir()
    elsewhere = tmp_path / "target"
    elsewhere.mkdir()
    (elsewhere / LOCK).touch()
    link = tmp_path / f"{KERNEL_SOCKETS}link"
    link.symlink_to(elsewhere)  # swept, it would remove what it points to
    planted = tmp_path / f"{KERNEL_SOCKETS}planted"
    planted.mkdir()
    (planted / LOCK).symlink_to(elsewhere / LOCK)
    other = tmp_path / "unrelated"
    other.mkdir()
    (other / LOCK).touch()
    assert sweep(tmp_path) == []
    assert all(p.exists() for p in (being_made, elsewhere, link, planted, other))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the lock file to another user")
def test_a_lock_file_another_user_owns_is_not_ours_to_act_on(tmp_path: Path) -> None:
    """A kernel may write in its own socket directory; only the worker's own lock file counts."""
    killed, made = made_by_a_process(KERNEL_SOCKETS, tmp_path)
    killed.kill()
    killed.wait(10)
    os.chown(made / LOCK, 61000, 61000)
    assert sweep(tmp_path) == []
    assert made.is_dir()

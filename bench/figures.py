"""What every bench shares: one percentile rule, and waiting for a deployment to go quiet before measuring."""

from __future__ import annotations

import time

import psutil


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank on the sorted samples (no interpolation: a p99 is a latency some request really had)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def wait_quiet(root: psutil.Process, *, below: float = 0.05, window: float = 0.5, timeout: float = 90.0) -> float:
    """Wait until ``root`` and its descendants use less than ``below`` of a core over ``window`` seconds.

    A freshly started server is still busy after it answers: its supervised worker is starting kernels for its
    pool. Measuring then charges that start-up to the first run; returns how long the wait took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        processes = [root, *root.children(recursive=True)]
        before = _cpu(processes)
        time.sleep(window)
        if (_cpu(processes) - before) / window < below:
            return time.monotonic() - started
    raise TimeoutError(f"still busy after {timeout:.0f} s")


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total

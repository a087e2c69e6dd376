"""Timing helper shared by the benchmark scripts (run them from the project root: python benchmarks/NAME.py)."""

from __future__ import annotations

import time


def best_time(fn, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best

"""Freed memory goes back to the operating system, so resident size follows what is in use.

Why: every frame allocates and frees the same few large buffers (a pickled frame of several
MB, its unpickled arrays, answers of 32,768 series, an accounting view of a month of jobs).
glibc serves them from its heaps once its mmap threshold has risen past their size (it does
after the first large free), and keeps freed pages resident while anything above them in the
heap is in use. Resident size then creeps up for hours although nothing is leaked (with the
engine in a worker process, by tens of MB in each process: benchmarks/bench_soak.py).
``malloc_trim(0)`` hands the free pages of every heap back. Where there is no glibc (macOS,
Windows, musl) there is nothing to call and `trim_free_memory` does nothing.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable
from functools import lru_cache

#: How often a `Trimmer` may trim: often enough that freed pages do not pile up between two
#: looks, rarely enough that its cost (a walk over the heaps, milliseconds) never shows.
TRIM_EVERY_S = 30.0


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the C library this process already runs on
    except (OSError, AttributeError):  # not glibc
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim_free_memory() -> bool:
    """Return the free pages of the C heaps to the OS; False where that cannot be done."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)  # ctypes releases the GIL for the call
    return True


class Trimmer:
    """Trims at most once per ``interval_s`` however often `maybe_trim` is called (on each
    frame, from any thread)."""

    def __init__(self, interval_s: float = TRIM_EVERY_S, *,
                 clock: Callable[[], float] = time.monotonic,
                 trim: Callable[[], bool] = trim_free_memory) -> None:
        self.interval_s = float(interval_s)
        self._clock = clock
        self._trim = trim
        self._lock = threading.Lock()
        self._next = clock() + self.interval_s  # nothing to give back at the start
        self.trims = 0

    def maybe_trim(self) -> bool:
        """Trim if ``interval_s`` has passed since the last time; True when it trimmed."""
        now = self._clock()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self.interval_s
        self._trim()
        self.trims += 1
        return True


__all__ = ["TRIM_EVERY_S", "Trimmer", "trim_free_memory"]

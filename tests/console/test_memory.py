"""Freed C-heap memory is handed back at a bounded rate (console.memory)."""

from __future__ import annotations

import platform

import pytest

from console.memory import Trimmer, trim_free_memory


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_trims_at_most_once_per_interval_and_not_at_the_start() -> None:
    clock = _Clock()
    calls: list[float] = []
    t = Trimmer(30.0, clock=clock, trim=lambda: calls.append(clock.t) or True)
    assert not t.maybe_trim()  # nothing freed yet worth a walk over the heaps
    clock.t = 129.9
    assert not t.maybe_trim()
    clock.t = 130.0
    assert t.maybe_trim() and calls == [130.0]
    clock.t = 150.0
    assert not t.maybe_trim()  # 20 s after the last trim
    clock.t = 160.0
    assert t.maybe_trim() and calls == [130.0, 160.0] and t.trims == 2


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_trim_runs_where_glibc_is() -> None:
    assert trim_free_memory() is True

"""Poller: backoff, late results dropped, errors classified — driven by events, never sleeps."""

from __future__ import annotations

import queue
import threading

import pytest

from console.polling import Poller, PollResult, Schedule
from console.sources.base import ErrorKind, SourceError


class FakeSource:
    """A source whose answers the test scripts one by one."""

    kind = "telemetry"

    def __init__(self, name: str = "fake", interval_s: float = 0.01) -> None:
        self.name = name
        self.interval_s = interval_s
        self.script: queue.Queue = queue.Queue()
        self.calls = 0
        self.closed = False

    def fetch(self):
        self.calls += 1
        item = self.script.get(timeout=10)
        if isinstance(item, threading.Event):  # block until released, then answer
            item.wait(10)
            item = self.script.get(timeout=10)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


def test_backoff_doubles_with_bounded_jitter_and_resets_on_success() -> None:
    s = Schedule(10.0, max_backoff_s=300.0, seed=1)
    delays = [s.delay_after(False) for _ in range(6)]
    for n, d in enumerate(delays, start=1):
        base = min(10.0 * 2 ** n, 300.0)
        assert base * 0.9 <= d <= base * 1.1
    assert s.failures == 6
    assert s.delay_after(True) == 10.0
    assert s.failures == 0


def test_backoff_survives_an_outage_of_any_length() -> None:
    s = Schedule(1.0, max_backoff_s=30.0, seed=1)
    delays = [s.delay_after(False) for _ in range(5000)]  # overflowed at 1,024 failures
    assert s.failures == 5000
    assert 27.0 <= delays[-1] <= 33.0


def test_retry_after_is_honoured_when_longer() -> None:
    s = Schedule(5.0, max_backoff_s=300.0)
    assert s.delay_after(False, retry_after_s=120.0) == 120.0
    assert s.delay_after(False, retry_after_s=10_000.0) == 300.0  # capped


def test_settle_drops_late_and_repeated_ids() -> None:
    s = Schedule(1.0)
    a, b = s.new_request(), s.new_request()
    assert s.settle(b) is True
    assert s.settle(a) is False  # older than one already answered
    assert s.settle(b) is False  # answered twice


def _collect(results: queue.Queue, n: int) -> list[PollResult]:
    return [results.get(timeout=10) for _ in range(n)]


def test_results_and_classified_errors_reach_the_callback() -> None:
    src = FakeSource()
    src.script.put(["update-1"])
    src.script.put(SourceError(ErrorKind.AUTH, "token rejected or expired", status=500))
    src.script.put(ValueError("boom"))
    results: queue.Queue = queue.Queue()
    poller = Poller([src], results.put)
    poller.start()
    try:
        ok, auth, internal = _collect(results, 3)
    finally:
        src.script.put(["x"] * 1)
        poller.stop()
    assert ok.ok and ok.updates == ("update-1",) and ok.request_id == 1
    assert auth.error is not None and auth.error.kind is ErrorKind.AUTH
    assert auth.error.message == "token rejected or expired"
    assert internal.error is not None and internal.error.kind is ErrorKind.INTERNAL
    assert "internal error in the fake source: ValueError" == internal.error.message
    assert [r.request_id for r in (ok, auth, internal)] == [1, 2, 3]
    assert src.closed


def test_a_stuck_fetch_times_out_and_its_late_answer_is_dropped() -> None:
    src = FakeSource(interval_s=0.01)
    gate = threading.Event()
    src.script.put(gate)
    results: queue.Queue = queue.Queue()
    poller = Poller([src], results.put, deadline_s={"fake": 0.2})
    poller.start()
    try:
        first = results.get(timeout=10)
        assert first.error is not None and first.error.kind is ErrorKind.TIMEOUT
        assert first.request_id == 1
        # Release the stuck fetch: its answer arrives late and must not be delivered.
        src.script.put(["late answer"])
        src.script.put(["fresh answer"])
        gate.set()
        later = results.get(timeout=10)
        while later.error is not None:  # "still waiting" reports may precede the fresh poll
            later = results.get(timeout=10)
    finally:
        poller.stop()
    assert later.updates == ("fresh answer",)
    assert later.request_id > 1
    assert poller.dropped_late("fake") == 1


def test_failures_back_off_and_success_recovers() -> None:
    src = FakeSource(interval_s=0.01)
    for _ in range(3):
        src.script.put(SourceError(ErrorKind.UNREACHABLE, "cannot connect"))
    src.script.put(["back"])
    results: queue.Queue = queue.Queue()
    poller = Poller([src], results.put)
    poller.start()
    try:
        got = _collect(results, 4)
        sched = poller.schedule("fake")
        failures_after_recovery = sched.failures
    finally:
        poller.stop()
    assert [r.ok for r in got] == [False, False, False, True]
    assert failures_after_recovery == 0


def test_poll_now_wakes_a_waiting_worker() -> None:
    src = FakeSource(interval_s=3600.0)  # would otherwise wait an hour
    src.script.put(["one"])
    src.script.put(["two"])
    results: queue.Queue = queue.Queue()
    poller = Poller([src], results.put)
    poller.start()
    try:
        assert results.get(timeout=10).updates == ("one",)
        poller.poll_now()
        assert results.get(timeout=10).updates == ("two",)
    finally:
        poller.stop()


@pytest.mark.parametrize("interval", [0.5, 30.0])
def test_default_deadline_is_at_least_ten_seconds(interval: float) -> None:
    assert Schedule(interval).deadline_s == max(2 * interval, 10.0)


def test_stopping_a_poller_that_never_started_closes_its_sources() -> None:
    src = FakeSource()
    Poller([src], lambda r: None).stop()
    assert src.closed

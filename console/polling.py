"""Polling: one schedule per source, worker threads, backoff, request ids, classified errors.

Each source gets its own worker thread, so a slow Prometheus never delays Slurm. A fetch runs in
a short-lived fetch thread watched by the worker: when it takes longer than its deadline the
worker reports a TIMEOUT at once (the screen learns within one deadline that the source is
stuck) and the answer that eventually arrives is dropped as late, recognised by its request id.
Only one fetch per source is ever in flight, because sources own a `requests.Session` and are
not thread-safe.

The scheduling arithmetic lives in `Schedule`, a plain object driven by an injected clock, so
that backoff and late-result rules are tested without threads or sleeps.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.model import Update
from console.sources.base import ErrorKind, Source, SourceError

log = logging.getLogger(__name__)


def fetch_updates(source: Source) -> tuple[tuple[Update, ...], SourceError | None]:
    """One fetch of ``source``: its updates, or the error that classifies the failure.

    The one fetch path of the poller and of the synchronous stepping in both engines, so a
    failure is worded the same wherever the source runs. A source classifies its own errors
    (`SourceError`); anything else is a bug in it, reported as internal, never a crash.
    """
    try:
        return tuple(source.fetch()), None
    except SourceError as e:
        return (), e
    except Exception as e:  # a bug in a source must not kill polling
        log.exception("source %s raised", source.name)
        return (), SourceError(ErrorKind.INTERNAL,
                               f"internal error in the {source.name} source: {type(e).__name__}")


@dataclass(frozen=True, eq=False)
class PollResult:
    """The outcome of one fetch: updates, or a classified error. Times are wall-clock epochs."""

    source: str
    kind: str
    request_id: int
    started_at: float
    fetched_at: float
    latency_s: float
    updates: tuple[Update, ...] = ()
    error: SourceError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Schedule:
    """When to poll one source next, and which answers still count.

    Backoff after n consecutive failures: ``interval * 2**n`` capped at ``max_backoff_s``, with
    +-10 % jitter so that several consoles do not hammer a recovering server in step. A server's
    Retry-After hint is honoured when longer.
    """

    def __init__(self, interval_s: float, *, deadline_s: float | None = None,
                 max_backoff_s: float = 300.0, seed: int = 0) -> None:
        self.interval_s = interval_s
        self.deadline_s = deadline_s if deadline_s is not None else max(2.0 * interval_s, 10.0)
        self.max_backoff_s = max(max_backoff_s, interval_s)
        self.failures = 0
        self.next_due = 0.0
        self._next_id = 0
        self._newest_settled = 0  # highest request id already answered or timed out
        self._rng = random.Random(seed)

    def new_request(self) -> int:
        self._next_id += 1
        return self._next_id

    def delay_after(self, ok: bool, retry_after_s: float | None = None) -> float:
        if ok:
            self.failures = 0
            return self.interval_s
        self.failures += 1
        # The exponent is capped: past ~1,000 failures in a row (hours of outage at the capped
        # backoff) 2.0 ** n overflows, and the poller must outlive any outage.
        base = min(self.interval_s * (2.0 ** min(self.failures, 60)), self.max_backoff_s)
        delay = base * self._rng.uniform(0.9, 1.1)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_backoff_s))
        return delay

    def settle(self, request_id: int) -> bool:
        """Record an answer (or a timeout) for ``request_id``; False if it is late and must be dropped."""
        if request_id <= self._newest_settled:
            return False
        self._newest_settled = request_id
        return True


class _SourceWorker:
    """The worker thread of one source. Never touches anything but its source and the callback."""

    def __init__(self, source: Source, schedule: Schedule, deliver: Callable[[PollResult], None],
                 clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self.source = source
        self.schedule = schedule
        self._deliver = deliver
        self._clock = clock
        self._wall = wall
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: threading.Thread | None = None
        self._in_flight_done = threading.Event()
        self.dropped_late = 0
        self.thread = threading.Thread(target=self._run, name=f"poll-{source.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poll_now(self) -> None:
        self.schedule.next_due = 0.0
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.schedule.next_due - self._clock()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            self._poll_once()

    def _poll_once(self) -> None:
        sched = self.schedule
        if self._in_flight is not None and not self._in_flight_done.is_set():
            # The previous fetch is still stuck past its deadline: say so again, do not pile up.
            self._in_flight_done.wait(sched.deadline_s)
            if not self._in_flight_done.is_set():
                if self._stop.is_set():
                    return
                rid = sched.new_request()
                sched.settle(rid)
                self._emit_error(rid, self._wall(), SourceError(
                    ErrorKind.TIMEOUT,
                    f"still waiting for an answer after {sched.deadline_s:.0f} s"))
                sched.next_due = self._clock() + sched.delay_after(False)
                return
        rid = sched.new_request()
        started_wall = self._wall()
        started = self._clock()
        done = threading.Event()
        box: dict[str, object] = {}

        def fetch() -> None:
            try:
                box["updates"], box["error"] = fetch_updates(self.source)
            finally:
                latency = self._clock() - started
                box["latency"] = latency
                done.set()
                if box.get("late"):
                    # Answered after we had already reported a timeout for it: dropped, counted.
                    with self._lock:
                        self.dropped_late += 1

        t = threading.Thread(target=fetch, name=f"fetch-{self.source.name}-{rid}", daemon=True)
        self._in_flight = t
        self._in_flight_done = done
        t.start()
        finished = done.wait(sched.deadline_s)
        if self._stop.is_set():
            return
        if not finished:
            box["late"] = True
            sched.settle(rid)
            self._emit_error(rid, started_wall, SourceError(
                ErrorKind.TIMEOUT, f"no answer within {sched.deadline_s:.0f} s"))
            sched.next_due = self._clock() + sched.delay_after(False)
            return
        if not sched.settle(rid):
            return
        err = box.get("error")
        latency = float(box.get("latency", 0.0))  # type: ignore[arg-type]
        result = PollResult(
            source=self.source.name, kind=self.source.kind, request_id=rid,
            started_at=started_wall, fetched_at=started_wall + latency, latency_s=latency,
            updates=box.get("updates", ()),  # type: ignore[arg-type]
            error=err if isinstance(err, SourceError) else None)
        retry = err.retry_after_s if isinstance(err, SourceError) else None
        sched.next_due = started + sched.delay_after(result.ok, retry)
        self._deliver(result)

    def _emit_error(self, rid: int, started_wall: float, err: SourceError) -> None:
        now = self._wall()
        self._deliver(PollResult(source=self.source.name, kind=self.source.kind, request_id=rid,
                                 started_at=started_wall, fetched_at=now,
                                 latency_s=now - started_wall, error=err))


class Poller:
    """Runs every source on its own schedule and hands each `PollResult` to ``deliver``.

    ``deliver`` is called from worker threads; the state engine puts results on its queue.
    """

    def __init__(self, sources: Sequence[Source], deliver: Callable[[PollResult], None], *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 deadline_s: dict[str, float] | None = None) -> None:
        self._workers = [
            _SourceWorker(src, Schedule(src.interval_s,
                                        deadline_s=(deadline_s or {}).get(src.name),
                                        seed=i), deliver, clock, wall)
            for i, src in enumerate(sources)
        ]

    @property
    def sources(self) -> list[Source]:
        return [w.source for w in self._workers]

    def schedule(self, name: str) -> Schedule:
        return next(w.schedule for w in self._workers if w.source.name == name)

    def dropped_late(self, name: str) -> int:
        return next(w.dropped_late for w in self._workers if w.source.name == name)

    def start(self) -> None:
        for w in self._workers:
            w.start()

    def poll_now(self, name: str | None = None) -> None:
        for w in self._workers:
            if name is None or w.source.name == name:
                w.poll_now()

    def stop(self, timeout_s: float = 2.0) -> None:
        for w in self._workers:
            w.stop()
        deadline = time.monotonic() + timeout_s
        for w in self._workers:
            if w.thread.ident is not None:  # never started: nothing to wait for
                w.thread.join(max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            try:
                w.source.close()
            except Exception:  # closing is best effort; a stuck socket must not block exit
                log.debug("closing %s failed", w.source.name, exc_info=True)

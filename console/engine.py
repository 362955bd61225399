"""The engine: sources -> poller -> single-writer state -> frames, behind one small interface.

The GUI, the headless commands and the benchmarks all talk to an `Engine`: `start`, `stop`,
`subscribe(callback)`, `latest_frame`, `wait_frames`, `poll_now`, `actions`. Frames are
immutable numpy-backed objects, so the same interface can later be served from a worker process
(DESIGN.md "Where the engine runs") without changing the callers.

Threads: one poller worker per source, and one engine thread that owns the `ClusterState`
(the single writer). Subscribers are called on the engine thread and must only hand the frame
on (the Qt bridge re-emits it as a queued signal).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from console.config import ClusterSettings, Settings, TenantSettings
from console.model import Frame
from console.polling import PollResult, Poller
from console.sources.base import Source
from console.state import ClusterState

log = logging.getLogger(__name__)

FrameCallback = Callable[[Frame], None]


def operator_name() -> str:
    """Who is at the console, for the audit journal and silence authors: the OS account."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers): still journal something honest
        return "unknown operator"


def _make_detector() -> object | None:
    try:
        from console.analytics.anomaly import AnomalyDetector
    except ImportError:
        return None
    return AnomalyDetector()


class EngineCommon:
    """What the in-process and the worker-process engine share: subscribers, the latest frame,
    blocking waits for frames (never call those on the GUI thread), and use as a context manager.

    Needs ``_lock`` and ``_cond`` (a Condition on it), ``_subscribers``, ``_latest``, ``_built()``
    (frames built so far), ``start`` and ``stop``; a failed engine overrides ``_raise_if_failed``.
    """

    _lock: threading.Lock
    _cond: threading.Condition
    _latest: Frame | None
    _subscribers: list[FrameCallback]

    def start(self) -> None:  # pragma: no cover - provided by the engine
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - provided by the engine
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def subscribe(self, callback: FrameCallback) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: FrameCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def latest_frame(self) -> Frame | None:
        with self._lock:
            return self._latest

    def _built(self) -> int:  # pragma: no cover - provided by the engine
        raise NotImplementedError

    def _raise_if_failed(self) -> None:
        """Raise when the engine can no longer produce frames (the worker process died)."""

    def _wait_built(self, target: int, deadline: float, timeout: float) -> Frame:
        with self._cond:
            while self._built() < target:
                self._raise_if_failed()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no frame within {timeout:.0f} s")
                self._cond.wait(left)
            assert self._latest is not None
            return self._latest

    def wait_frames(self, n: int = 1, timeout: float = 30.0) -> Frame:
        """Block until ``n`` more frames were built."""
        with self._cond:
            target = self._built() + n
        return self._wait_built(target, time.monotonic() + timeout, timeout)

    def wait_ready(self, timeout: float = 30.0) -> Frame:
        """Block until every source has answered (or failed) at least once."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.wait_frames(1, max(0.1, deadline - time.monotonic()))
            if all(s.last_attempt is not None for s in frame.sources):
                return frame
            if time.monotonic() >= deadline:
                return frame


class Engine(EngineCommon):
    """Runs one cluster's pipeline. Thread-safe public methods; callbacks on the engine thread."""

    def __init__(self, settings: Settings, *, cluster: str | None = None,
                 sources: Sequence[Source] | None = None, secrets: object | None = None,
                 refresh_s: float = 1.0, detect: bool = True) -> None:
        self.settings = settings
        self.cluster: ClusterSettings = settings.cluster(cluster)
        if sources is None:
            from console.sources.factory import build_sources

            sources = build_sources(self.cluster, secrets=secrets)
        self.sources = list(sources)
        extra: list[TenantSettings] = []
        for s in self.sources:
            sim = getattr(s, "cluster", None)
            for t in getattr(sim, "tenants", ()) or ():
                extra.append(TenantSettings(account=t.account, display=t.display,
                                            kind=getattr(t.kind, "value", str(t.kind)),
                                            subsidy=float(t.subsidy),
                                            price_per_gpu_hour=float(t.price_per_gpu_hour)))
        self.state = ClusterState(
            self.cluster, [(s.name, s.kind, s.interval_s) for s in self.sources],
            detector=_make_detector() if detect else None, extra_tenants=extra,
            history_hours=settings.history_hours)
        self._queue: queue.Queue[PollResult | None] = queue.Queue()
        self.poller = Poller(self.sources, self._queue.put)
        self._refresh_s = refresh_s
        self._subscribers: list[FrameCallback] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._latest: Frame | None = None
        self._frames_built = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-state", daemon=True)
        self._started = False
        self.last_build_s = 0.0
        self.actions = self._make_actions()

    def _make_actions(self) -> object | None:
        try:
            from console.actions import Actions
            from console.journal import Journal, default_journal_path
        except ImportError:
            return None
        try:
            return Actions(self.sources, Journal(default_journal_path()), operator=operator_name())
        except Exception:  # actions are optional; the dashboard must come up regardless
            log.exception("operator actions unavailable")
            return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._thread.start()
        self.poller.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self.poller.stop()
        if self._started:
            self._thread.join(timeout=5.0)
        shutdown = getattr(self.actions, "shutdown", None)
        if callable(shutdown):
            shutdown()

    # ------------------------------------------------------------------ frames

    def _built(self) -> int:
        return self._frames_built

    def poll_now(self) -> None:
        self.poller.poll_now()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=self._refresh_s)
            except queue.Empty:
                first = None
            batch = [first] if first is not None else []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            if self._stop.is_set():
                break
            changed = False
            for r in batch:
                changed |= self.state.apply(r)
            t0 = time.perf_counter()
            try:
                frame = self.state.build_frame(analyse=changed)
            except Exception:
                log.exception("building a frame failed")
                continue
            self.last_build_s = time.perf_counter() - t0
            with self._cond:
                self._latest = frame
                self._frames_built += 1
                subs = list(self._subscribers)
                self._cond.notify_all()
            for cb in subs:
                try:
                    cb(frame)
                except Exception:
                    log.exception("frame subscriber failed")


def run_sync(engine: Engine, polls: int) -> Frame:
    """Drive every source ``polls`` times on the calling thread, without the poller threads.

    For tests, benchmarks and scripts that need reproducible frames quickly (no waiting for
    intervals). Request ids still increase per source exactly as the poller would number them.
    """
    frame: Frame | None = None
    for i in range(polls):
        for src in engine.sources:
            t0 = time.time()
            try:
                updates, err = tuple(src.fetch()), None
            except Exception as e:  # classified by the source; anything else is internal
                from console.sources.base import ErrorKind, SourceError

                updates = ()
                err = e if isinstance(e, SourceError) else SourceError(ErrorKind.INTERNAL, str(e))
            t1 = time.time()
            engine.state.apply(PollResult(source=src.name, kind=src.kind, request_id=i + 1,
                                          started_at=t0, fetched_at=t1, latency_s=t1 - t0,
                                          updates=updates, error=err))
        frame = engine.state.build_frame()
    assert frame is not None
    return frame

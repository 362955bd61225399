"""The engine: sources -> poller -> single-writer state -> frames, behind one small interface.

The GUI, the headless commands and the benchmarks all talk to an engine through `EngineApi`:
`start`, `stop`, `subscribe(callback)`, `latest_frame`, `wait_frames`, `poll_now`, `actions`
(an `OperatorActions`), and `engine_status` / `subscribe_status` for the engine's own health, so
that a dead engine is said in words instead of leaving the last frame on screen looking calm.
Frames are immutable numpy-backed objects, so the same interface is served from a worker
process (`console.engine_process`) without changing the callers.

Threads: one poller worker per source, and one engine thread that owns the `ClusterState`
(the single writer). Subscribers are called on the engine thread and must only hand the frame
on (the Qt bridge re-emits it as a queued signal).
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from console.actions import ActionResult
from console.config import ClusterSettings, Settings, TenantSettings
from console.model import Alert, Frame, Matcher
from console.polling import PollResult, Poller, fetch_updates
from console.sources.base import Source
from console.state import ClusterState, FrameDetector

log = logging.getLogger(__name__)

FrameCallback = Callable[[Frame], None]


class EngineState(enum.Enum):
    """Whether the engine can produce frames: the GUI must never look calm while it cannot."""

    STARTING = "starting"  # started, no frame yet
    RUNNING = "running"  # frames are being built
    DOWN = "down"  # it died (a killed worker process); a restart is scheduled or under way
    STOPPED = "stopped"  # stopped on purpose


@dataclass(frozen=True)
class EngineStatus:
    """The engine's own health, in words an operator can act on, separate from the sources'.

    ``message`` says why it is down ("its worker process was killed (signal SIGKILL)"), never
    empty while down. ``down_since`` and ``retry_at`` are wall-clock times, so a banner can
    count the outage and the wait for the next restart without a new status.
    """

    state: EngineState
    message: str = ""
    pid: int | None = None
    restarts: int = 0
    down_since: float | None = None
    retry_at: float | None = None

    @property
    def down(self) -> bool:
        return self.state is EngineState.DOWN

    def words(self, now: float) -> str:
        """One line for a banner or ``status``: what happened, since when, what happens next."""
        if not self.down:
            return f"console engine {self.state.value}"
        text = "Console engine down"
        if self.down_since is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(self.down_since))
            text += f" since {stamp} ({_seconds(now - self.down_since)})"
        text += f": {self.message or 'no reason given'}"
        if self.retry_at is not None and self.retry_at > now:
            text += f"; restarting in {_seconds(self.retry_at - now)}"
        elif self.retry_at is not None:
            text += "; restarting now"
        if self.restarts:
            text += f" (restart {self.restarts})"
        return text


def _seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.0f} h"


StatusCallback = Callable[[EngineStatus], None]


@runtime_checkable
class OperatorActions(Protocol):
    """The operator actions as panels use them (`console.actions.Actions`, or the worker-process
    engine's proxy): every call returns at once with a future of an ``ActionResult`` that never
    raises. The seam between the GUI and the engine is typed with this, so a signature that
    drifts on either side is caught by the type checker and by the contract test."""

    def capabilities(self) -> dict[str, str | None]: ...

    def acknowledge(self, alert: Alert, comment: str, duration_s: float = 3600.0,
                    author: str | None = None) -> Future[ActionResult]: ...

    def create_silence(self, matchers: Sequence[Matcher], duration_s: float, author: str,
                       comment: str) -> Future[ActionResult]: ...

    def expire_silence(self, silence_id: str, *,
                       author: str | None = None) -> Future[ActionResult]: ...

    def drain_node(self, name: str, reason: str, *,
                   author: str | None = None) -> Future[ActionResult]: ...

    def resume_node(self, name: str, *, author: str | None = None) -> Future[ActionResult]: ...

    def cancel_job(self, job_id: int, *, author: str | None = None) -> Future[ActionResult]: ...


@runtime_checkable
class EngineApi(Protocol):
    """What the GUI, the headless commands and the fleet need of an engine, wherever it runs."""

    actions: OperatorActions | None

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def subscribe(self, callback: FrameCallback) -> None: ...

    def unsubscribe(self, callback: FrameCallback) -> None: ...

    def latest_frame(self) -> Frame | None: ...

    def wait_frames(self, n: int = 1, timeout: float = 30.0) -> Frame: ...

    def wait_ready(self, timeout: float = 30.0) -> Frame: ...

    def poll_now(self) -> None: ...

    def engine_status(self) -> EngineStatus: ...

    def subscribe_status(self, callback: StatusCallback) -> None: ...


def operator_name() -> str:
    """Who is at the console, for the audit journal and silence authors: the OS account."""
    import getpass

    try:
        return getpass.getuser()
    # No user database entry (a container): KeyError on 3.11, OSError from 3.13; no `pwd`
    # module at all (Windows without USERNAME): ImportError. Still journal something honest.
    except (ImportError, KeyError, OSError):
        return "unknown operator"


def _make_detector() -> FrameDetector | None:
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
    _status: EngineStatus
    _status_subscribers: list[StatusCallback]

    def start(self) -> None:  # pragma: no cover - provided by the engine
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - provided by the engine
        raise NotImplementedError

    def __enter__(self) -> Self:
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

    def engine_status(self) -> EngineStatus:
        """The engine's own health now (not the sources': those are in every frame)."""
        with self._lock:
            return self._status

    def subscribe_status(self, callback: StatusCallback) -> None:
        """``callback(status)`` on each change, from an engine thread (hand it on, as frames)."""
        with self._lock:
            self._status_subscribers.append(callback)

    def unsubscribe_status(self, callback: StatusCallback) -> None:
        with self._lock:
            if callback in self._status_subscribers:
                self._status_subscribers.remove(callback)

    def _publish_status(self, status: EngineStatus) -> None:
        """Record and announce a change of the engine's health (never under ``_lock``)."""
        with self._lock:
            if status == self._status:
                return
            self._status = status
            subs = list(self._status_subscribers)
        for cb in subs:
            try:
                cb(status)
            except Exception:  # noqa: BLE001 - one bad subscriber must not stop the others
                log.exception("engine status subscriber failed")

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
        own_sources = sources is None
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
        self._status = EngineStatus(EngineState.STARTING)
        self._status_subscribers: list[StatusCallback] = []
        self._frames_built = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-state", daemon=True)
        self._started = False
        self.last_build_s = 0.0
        from console.journal_engine import make_recorder  # the local journal, when asked for

        self.journal = make_recorder(settings, self.cluster)
        self.actions = self._make_actions()
        # Accounting (usage, cost, subsidy): read every few minutes in a thread of its own,
        # the view put on every frame; fed what the console sees of each job (its ledger).
        from console.accounting.service import make_service

        # Sources handed in (tests, harnesses) get no live accounting reader of their own.
        self.accounting = make_service(self.cluster, self.sources, self._set_accounting,
                                       extra=extra, secrets=secrets, live=own_sources)
        if self.accounting is not None:
            self.subscribe(self.accounting.observe)

    def _set_accounting(self, view: object) -> None:
        self.state.accounting = view

    def _make_actions(self) -> OperatorActions | None:
        try:
            from console.actions import Actions
            from console.journal_engine import audit_sink
        except ImportError:
            return None
        try:
            return Actions(self.sources, audit_sink(self.journal), operator=operator_name(),
                           read_only=self.cluster.read_only)
        except Exception:  # actions are optional; the dashboard must come up regardless
            log.exception("operator actions unavailable")
            return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.journal is not None:
            self.journal.start()
        self._thread.start()
        self.poller.start()
        if self.accounting is not None:
            self.accounting.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self.poller.stop()
        if self.accounting is not None:
            self.accounting.stop()
        if self._started:
            self._thread.join(timeout=5.0)
        if self.journal is not None:
            self.journal.stop()  # writes the minute under way
        self._publish_status(EngineStatus(EngineState.STOPPED))
        shutdown = getattr(self.actions, "shutdown", None)
        if callable(shutdown):
            shutdown()

    # ------------------------------------------------------------------ frames

    def _built(self) -> int:
        return self._frames_built

    def poll_now(self) -> None:
        self.poller.poll_now()

    def _run(self) -> None:
        from console.journal_engine import seed_history, with_journal_status

        seed_history(self.state, self.journal)  # the last day's plots at once, from the journal
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
                try:
                    changed |= self.state.apply(r)
                except Exception:  # one bad answer must not end the engine thread for good
                    log.exception("applying a %s poll result failed", r.source)
            t0 = time.perf_counter()
            try:
                frame = self.state.build_frame(analyse=changed)
            except Exception:
                log.exception("building a frame failed")
                continue
            self.last_build_s = time.perf_counter() - t0
            if self.journal is not None:
                self.journal.offer(frame)
                frame = with_journal_status(frame, self.journal)
            with self._cond:
                self._latest = frame
                self._frames_built += 1
                subs = list(self._subscribers)
                self._cond.notify_all()
            if self._status.state is not EngineState.RUNNING:
                self._publish_status(EngineStatus(EngineState.RUNNING))
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
            engine.state.apply(poll_once(src, i + 1))
        frame = engine.state.build_frame()
        if engine.journal is not None:
            engine.journal.offer(frame)  # written by the journal thread, or at stop()
    assert frame is not None
    return frame


def poll_once(source: Source, request_id: int) -> PollResult:
    """Fetch ``source`` once on the calling thread, as the poller would report it (the
    synchronous stepping of both engines; the poller adds deadlines and backoff)."""
    t0 = time.time()
    updates, err = fetch_updates(source)
    t1 = time.time()
    return PollResult(source=source.name, kind=source.kind, request_id=request_id,
                      started_at=t0, fetched_at=t1, latency_s=t1 - t0, updates=updates, error=err)

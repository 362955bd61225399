"""Several clusters at once: one engine per configured cluster, and a row of headline figures each.

A centre often runs more than one machine (a production cluster, a test partition, a simulated
one for training staff). The GUI shows one cluster in full and every cluster as a row of the
fleet overview, so nothing on the other machines goes unseen while the operator looks at one.

Each cluster keeps its own engine, chosen by `make_engine` as for a single cluster: small
simulations run in-process (a 384-node simulated cluster costs about 10 MiB and well under 1 % of
a core), live endpoints and big simulations in a worker process each, so one cluster's slow parse
never stalls the GUI or another cluster. Frames are never merged: a fleet is only a set of
engines under one name each, plus `fleet_rows`, a pure function over their newest frames.

No Qt here. Subscribers are called on the calling engine's thread (its engine thread, or the
receiver thread of a worker-process engine), with the cluster's name and the frame; like engine
subscribers they must only hand the frame on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from console.config import Settings
from console.engine import EngineApi, OperatorActions
from console.model import Frame, Severity, SourceState

log = logging.getLogger(__name__)

FleetCallback = Callable[[str, Frame], None]

#: Worst last: the order in which a source state hides the others in a one-word summary.
#: STALE is worse than FAILING: a stale source has failed (or been silent) for over 3 polls.
SOURCE_STATE_RANK: Mapping[SourceState, int] = {
    SourceState.OK: 0, SourceState.SLOW: 1, SourceState.WAITING: 2, SourceState.FAILING: 3,
    SourceState.STALE: 4,
}
_DATA_KINDS = ("telemetry", "scheduler", "alerts")


@dataclass(frozen=True)
class FleetRow:
    """One cluster's line in the fleet overview; NaN (PF) / None (counts) where a figure is
    unknown: no data yet, or its data is past the stale limit (never 0, README "status --json").

    ``source_state`` is the worst state over the cluster's sources and ``source_errors`` the
    error words of the sources in that state ("slurm: token rejected or expired"), so a row says
    why a cluster is blind without opening it. ``data_age_s`` is the age of the oldest kind of
    data the cluster shows, measured against the caller's clock (a dead engine's data keeps
    ageing). ``stale`` is True when any of its data is older than three polls. ``telemetry``,
    ``scheduler`` and ``alerts`` say whether that kind of data is there: "ok" (data received),
    "waiting" (a source provides it, nothing received yet) or "absent" (no source provides it),
    so a figure without data reads "no data", never 0.
    """

    name: str
    waiting: bool
    simulated: bool
    delivered_pf: float
    installed_pf: float
    precision: str
    gpus_healthy: int | None
    gpus_total: int | None
    jobs_running: int | None
    jobs_pending: int | None
    alerts_critical: int | None
    alerts_warning: int | None
    alerts_info: int | None
    source_state: SourceState
    source_errors: str
    data_age_s: float | None
    stale: bool
    telemetry: str = "waiting"
    scheduler: str = "waiting"
    alerts: str = "waiting"

    @property
    def alerts_firing(self) -> int | None:
        if self.alerts_critical is None or self.alerts_warning is None or self.alerts_info is None:
            return None
        return self.alerts_critical + self.alerts_warning + self.alerts_info

    @property
    def worst_severity(self) -> Severity | None:
        """The most severe level with at least one alert firing, or None when all is quiet."""
        for sev, n in ((Severity.CRITICAL, self.alerts_critical), (Severity.WARNING, self.alerts_warning),
                       (Severity.INFO, self.alerts_info)):
            if n:  # None (unknown) is not an alert firing
                return sev
        return None


def worst_source(frame: Frame) -> tuple[SourceState, str]:
    """(worst state, "name: error; name: error" of the sources in that state)."""
    if not frame.sources:
        return SourceState.WAITING, "no data sources"
    worst = max((s.state for s in frame.sources), key=SOURCE_STATE_RANK.__getitem__)
    words = [f"{s.name}: {s.error}" for s in frame.sources if s.state is worst and s.error]
    return worst, "; ".join(words)


def data_age(frame: Frame, now: float) -> float | None:
    """Age of the oldest kind of data shown, among the kinds a source of the cluster provides.

    A kind no source provides has no staleness limit (``stale_after_s`` infinite) and is left
    out; a provided kind with no data yet makes the whole age unknown (None).
    """
    ages: list[float] = []
    for kind in _DATA_KINDS:
        limit = frame.stale_after_s.get(kind, math.inf)
        if not math.isfinite(limit):
            continue
        t = frame.data_time.get(kind)
        if t is None:
            return None
        ages.append(max(0.0, now - t))
    return max(ages) if ages else None


def data_presence(frame: Frame, kind: str) -> str:
    """"ok", "waiting" or "absent" for one kind of data in a frame (see `FleetRow`)."""
    if not math.isfinite(frame.stale_after_s.get(kind, math.inf)):
        return "absent"
    return "waiting" if frame.data_time.get(kind) is None else "ok"


def _is_stale(frame: Frame, now: float) -> bool:
    for kind in _DATA_KINDS:
        limit = frame.stale_after_s.get(kind, math.inf)
        if not math.isfinite(limit):
            continue
        t = frame.data_time.get(kind)
        if t is None or now - t > limit:
            return True
    return False


def waiting_row(name: str, simulated: bool = False, error: str = "") -> FleetRow:
    """The row of a cluster whose engine has not delivered a frame yet (or has died)."""
    return FleetRow(name=name, waiting=True, simulated=simulated, delivered_pf=math.nan,
                    installed_pf=math.nan, precision="", gpus_healthy=None, gpus_total=None,
                    jobs_running=None, jobs_pending=None, alerts_critical=None,
                    alerts_warning=None, alerts_info=None, source_state=SourceState.WAITING,
                    source_errors=error, data_age_s=None, stale=bool(error))


def fleet_row(name: str, frame: Frame | None, now: float, *, simulated: bool = False,
              error: str = "") -> FleetRow:
    """One cluster's row; ``error`` is an engine failure (a dead worker process), if any."""
    if frame is None:
        return waiting_row(name, simulated, error)
    k = frame.kpis
    sev = k.alerts_by_severity
    state, words = worst_source(frame)
    if error:
        state, words = SourceState.FAILING, error + (f"; {words}" if words else "")

    def level(word: str) -> int | None:
        return None if sev is None else int(sev.get(word, 0))

    return FleetRow(
        name=name, waiting=False, simulated=bool(frame.simulated),
        delivered_pf=_pf(k.delivered_pf), installed_pf=_pf(k.installed_pf),
        precision=k.precision, gpus_healthy=_count(k.gpus_healthy), gpus_total=_count(k.gpus_total),
        jobs_running=_count(k.jobs_running), jobs_pending=_count(k.jobs_pending),
        alerts_critical=level("critical"), alerts_warning=level("warning"),
        alerts_info=level("info"), source_state=state, source_errors=words,
        data_age_s=data_age(frame, now), stale=_is_stale(frame, now) or bool(error),
        telemetry=data_presence(frame, "telemetry"), scheduler=data_presence(frame, "scheduler"),
        alerts=data_presence(frame, "alerts"))


def _pf(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _count(x: int | None) -> int | None:
    return None if x is None else int(x)


def fleet_rows(frames: Mapping[str, Frame | None], now: float, *,
               simulated: Mapping[str, bool] | None = None,
               errors: Mapping[str, str | None] | None = None) -> list[FleetRow]:
    """One row per cluster, in the mapping's order (the configuration's: rows never re-sort).

    ``simulated`` says which clusters are simulated before their first frame does;
    ``errors`` carries engine failures (a worker process that died) in words.
    """
    sim = simulated or {}
    errs = errors or {}
    return [fleet_row(name, frame, now, simulated=bool(sim.get(name, False)),
                      error=errs.get(name) or "")
            for name, frame in frames.items()]


class Fleet:
    """One engine per configured cluster, started and stopped together. Thread-safe.

    ``engine_factory(settings, cluster=name, secrets=..., mode=...)`` defaults to
    `console.engine_process.make_engine` (tests pass their own to build synchronous engines).
    """

    def __init__(self, settings: Settings, *, secrets: object | None = None, mode: str = "auto",
                 engine_factory: Callable[..., EngineApi] | None = None) -> None:
        if engine_factory is None:
            from console.engine_process import make_engine as engine_factory
        self.settings = settings
        self._lock = threading.Lock()
        self._latest: dict[str, Frame | None] = {}
        self._subscribers: list[FleetCallback] = []
        self._engines: dict[str, EngineApi] = {}
        self._started = False
        for c in settings.clusters:
            engine = engine_factory(settings, cluster=c.name, secrets=secrets, mode=mode)
            self._engines[c.name] = engine
            self._latest[c.name] = None
            engine.subscribe(self._callback_for(c.name))

    def __repr__(self) -> str:
        return f"Fleet({', '.join(self._engines)})"

    def _callback_for(self, name: str) -> Callable[[Frame], None]:
        def on_frame(frame: Frame) -> None:
            with self._lock:
                self._latest[name] = frame
                subs = list(self._subscribers)
            for cb in subs:
                try:
                    cb(name, frame)
                except Exception:  # one bad subscriber must not starve the others
                    log.exception("fleet subscriber failed")
        return on_frame

    # ------------------------------------------------------------------ access

    @property
    def names(self) -> tuple[str, ...]:
        """Cluster names in configuration order."""
        return tuple(self._engines)

    def engine(self, name: str) -> EngineApi:
        try:
            return self._engines[name]
        except KeyError:
            raise KeyError(f"no cluster named {name!r} in this fleet") from None

    def engines(self) -> dict[str, EngineApi]:
        return dict(self._engines)

    def actions(self) -> dict[str, OperatorActions | None]:
        """Each cluster's operator actions (None where unavailable)."""
        return {n: getattr(e, "actions", None) for n, e in self._engines.items()}

    def simulated(self) -> dict[str, bool]:
        return {c.name: c.simulated for c in self.settings.clusters}

    def subscribe(self, callback: FleetCallback) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: FleetCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def latest(self, name: str) -> Frame | None:
        with self._lock:
            if name not in self._latest:
                raise KeyError(f"no cluster named {name!r} in this fleet")
            return self._latest[name]

    def latest_frames(self) -> dict[str, Frame | None]:
        with self._lock:
            return dict(self._latest)

    def errors(self) -> dict[str, str | None]:
        """Engine failures in words (a worker process that died), per cluster."""
        return {n: getattr(e, "error", None) for n, e in self._engines.items()}

    def rows(self, now: float | None = None) -> list[FleetRow]:
        return fleet_rows(self.latest_frames(), time.time() if now is None else now,
                          simulated=self.simulated(), errors=self.errors())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for engine in self._engines.values():
            engine.start()

    def stop(self, timeout_s: float = 8.0) -> None:
        """Stop every engine at once (each may wait seconds for a fetch in flight), bounded.

        Worker-process engines escalate to SIGTERM and SIGKILL on their own within about
        5 s; an in-process engine gives its thread 5 s. After ``timeout_s`` we return anyway:
        the stopper threads are daemons and cannot keep the console from exiting.
        """
        if not self._started:
            return  # nothing runs yet (and an in-process engine cannot stop before it starts)
        self._started = False
        stoppers = [threading.Thread(target=self._stop_one, args=(name, engine), daemon=True,
                                     name=f"fleet-stop-{name}")
                    for name, engine in self._engines.items()]
        for t in stoppers:
            t.start()
        deadline = time.monotonic() + timeout_s
        for t in stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
        late = [t.name for t in stoppers if t.is_alive()]
        if late:
            log.warning("engines still stopping after %.0f s: %s", timeout_s, ", ".join(late))

    @staticmethod
    def _stop_one(name: str, engine: EngineApi) -> None:
        try:
            engine.stop()
        except Exception:
            log.exception("stopping the engine of %s failed", name)

    def __enter__(self) -> "Fleet":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Frame | None]:
        """Wait, for all clusters at once, until each has a frame in which every source has
        answered (or failed) once; a cluster with no frame by ``timeout`` maps to None.

        Never call this on the GUI thread.
        """
        out: dict[str, Frame | None] = {n: None for n in self._engines}

        def wait(name: str, engine: EngineApi) -> None:
            try:
                out[name] = engine.wait_ready(timeout=timeout)
            except Exception as exc:  # TimeoutError, or a worker process that failed
                log.info("cluster %s: no frame: %s", name, exc)
                out[name] = self.latest(name)

        waiters = [threading.Thread(target=wait, args=(n, e), daemon=True, name=f"fleet-wait-{n}")
                   for n, e in self._engines.items()]
        for t in waiters:
            t.start()
        deadline = time.monotonic() + timeout + 2.0
        for t in waiters:
            t.join(max(0.0, deadline - time.monotonic()))
        return out


__all__ = ["Fleet", "FleetCallback", "FleetRow", "SOURCE_STATE_RANK", "data_age", "data_presence",
           "fleet_row",
           "fleet_rows", "waiting_row", "worst_source"]

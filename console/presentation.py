"""What presentation mode may show: a small, redacted view of a frame, and the playlist clock.

Presentation scenes never see a `Frame`. They see a `PublicView`, built here from one: counts,
petaflops, health codes laid out by rack *position*, a delivered-PF series, tenants counted by
kind, ages. It has no field that can hold a tenant, user, job or node name (the only text it
carries is the centre's title, the precision, milestone labels and fixed words), so a scene
cannot leak a name by accident, whatever it draws; the redaction test renders every scene and
checks it all the same.

`Playlist` decides which scene is on screen from a clock it is handed, so the window's timer
and a test's fake clock drive it alike. No Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from console.deadman import SEEING, Verdict
from console.model import Frame, Health, SourceState
from console.presentation_settings import DEFAULT_PRESENTATION, Milestone, PresentationSettings, SceneSpec

#: How far back the delivered-compute scene looks.
WINDOW_S = 24 * 3600.0
#: The equivalence's assumption, stated on screen next to it.
WORLD_POPULATION = 8.1e9
EQUIVALENCE_ASSUMPTION = ("Assumes every one of the world's 8.1 billion people does one "
                          "calculation a second, without a break; PF counted at {precision}.")

KIND_PLURALS = {"university": "universities", "research institute": "research institutes",
                "company": "companies", "other": "other organisations"}
KIND_SINGULARS = {"university": "university", "research institute": "research institute",
                  "company": "company", "other": "other organisation"}

#: The data each scene is drawn from: its age and stale look follow these kinds.
SCENE_KINDS: dict[str, tuple[str, ...]] = {
    "headline": ("telemetry",),
    "health": ("telemetry",),
    "delivered": ("telemetry",),
    "tenants": ("scheduler",),
    "jobs": ("scheduler",),
}


@dataclass(frozen=True, eq=False)
class PublicView:
    """Everything a presentation scene may draw, and nothing it may not."""

    time: float  # wall clock of the frame (for the clock and ages)
    title: str  # the centre's name as configured for the public
    simulated: bool
    precision: str
    delivered_pf: float | None
    installed_pf: float | None
    milestones: tuple[Milestone, ...]
    gpus_total: int | None
    gpus_allocated: int | None
    gpus_by_health: dict[str, int] | None
    #: int8[n_nodes, gpus_per_node] Health codes, -1 where a node has no GPU in that slot;
    #: rows in map order (racks in turn), no names.
    health: np.ndarray
    #: int32[n_nodes] position of each row's rack (0, 1, 2 ...): which rows form a block.
    rack_of_row: np.ndarray
    history_t: np.ndarray  # float64 epoch seconds (the data's clock)
    history_delivered: np.ndarray  # float32 PF, NaN gaps
    history_installed: np.ndarray
    #: (kind word, count) of tenants with GPUs in use now or in the window; None unknown.
    tenants_by_kind: tuple[tuple[str, int], ...] | None
    jobs_running: int | None
    jobs_pending: int | None
    ages: dict[str, float | None]  # seconds, per kind of data
    stale: dict[str, bool]
    reconnecting: bool  # some source is failing (the engine keeps retrying)
    verdict: Verdict = SEEING

    def age_for(self, scene: str) -> tuple[float | None, bool]:
        """The oldest age of the data ``scene`` draws, and whether any of it is stale."""
        kinds = SCENE_KINDS.get(scene, ("telemetry",))
        ages = [self.ages.get(k) for k in kinds]
        known = [a for a in ages if a is not None]
        age = max(known) if known and len(known) == len(ages) else None
        return age, any(self.stale.get(k, True) for k in kinds)

    @property
    def tenants_served(self) -> int | None:
        return None if self.tenants_by_kind is None else sum(n for _, n in self.tenants_by_kind)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _map_rows(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Health per GPU slot, nodes ordered rack by rack, and each row's rack position."""
    topo = frame.topology
    gpn = max(1, int(topo.gpus_per_node))
    n = len(topo.node_names)
    rack = np.asarray(topo.node_rack, np.int64)[:n]
    order = np.argsort(rack, kind="stable")
    health = np.asarray(frame.gpu.health, np.int8)[: n * gpn].reshape(n, gpn).copy()
    counts = np.asarray(topo.node_gpu_count, np.int64)[:n]
    health[np.arange(gpn)[None, :] >= counts[:, None]] = -1
    _, position = np.unique(rack[order], return_inverse=True)
    return health[order], position.astype(np.int32)


def _tenants_by_kind(frame: Frame, since: float) -> tuple[tuple[str, int], ...] | None:
    if frame.is_stale("scheduler") and frame.data_time.get("scheduler") is None:
        return None
    t = frame.tenants
    served = np.asarray(t.gpus_in_use) > 0
    h = frame.history
    if h.tenant_gpus.size and h.tenant_gpus.shape[1] == len(t):
        recent = np.asarray(h.t) >= since
        if recent.any():
            served |= np.nan_to_num(h.tenant_gpus[recent]).max(axis=0) > 0
    counts: dict[str, int] = {}
    for kind, on in zip(t.kind, served):
        if on:
            key = kind if kind in KIND_PLURALS else "other"
            counts[key] = counts.get(key, 0) + 1
    return tuple((k, counts[k]) for k in KIND_PLURALS if k in counts)


def public_view(frame: Frame, settings: PresentationSettings = DEFAULT_PRESENTATION,
                verdict: Verdict = SEEING) -> PublicView:
    """The redacted view of ``frame`` for presentation scenes."""
    k = frame.kpis
    h = frame.history
    t = np.asarray(h.t, np.float64)
    end = float(t[-1]) if len(t) else frame.time
    keep = t >= end - WINDOW_S
    nan = np.full(int(keep.sum()), np.nan, np.float32)
    delivered = np.asarray(h.series.get("delivered_pf", nan), np.float32)
    installed = np.asarray(h.series.get("installed_pf", nan), np.float32)
    health, rack_of_row = _map_rows(frame)
    kinds = set(frame.stale_after_s) | {"telemetry", "scheduler", "alerts"}
    return PublicView(
        time=frame.time,
        title=settings.title or frame.cluster,
        simulated=frame.simulated,
        precision=k.precision,
        delivered_pf=_finite(k.delivered_pf),
        installed_pf=_finite(k.installed_pf),
        milestones=settings.milestones,
        gpus_total=k.gpus_total,
        gpus_allocated=k.gpus_allocated,
        gpus_by_health=None if k.gpus_by_health is None else {
            str(key): int(v) for key, v in k.gpus_by_health.items()},
        health=health,
        rack_of_row=rack_of_row,
        history_t=t[keep].copy(),
        history_delivered=delivered[keep].copy() if len(delivered) == len(t) else nan,
        history_installed=installed[keep].copy() if len(installed) == len(t) else nan,
        tenants_by_kind=_tenants_by_kind(frame, end - WINDOW_S),
        jobs_running=k.jobs_running,
        jobs_pending=k.jobs_pending,
        ages={kind: frame.age_s(kind) for kind in kinds},
        stale={kind: frame.is_stale(kind) for kind in kinds},
        reconnecting=any(s.state in (SourceState.FAILING, SourceState.STALE) for s in frame.sources),
        verdict=verdict,
    )


def equivalence(delivered_pf: float | None, precision: str) -> tuple[str, str] | None:
    """A plain-language sense of scale, and its assumption; None without a figure.

    One second of the machine at ``delivered_pf`` petaflops is ``pf x 10^15`` operations;
    everyone on Earth doing one a second needs that many divided by the population, in seconds.
    """
    if delivered_pf is None or delivered_pf <= 0:
        return None
    seconds = delivered_pf * 1e15 / WORLD_POPULATION
    years = seconds / (365.25 * 86400)
    if years >= 1.5:
        span = f"about {years:,.0f} years" if years >= 10 else f"about {years:.1f} years"
    else:
        span = f"about {seconds / 86400:,.0f} days"
    sentence = (f"What this machine computes in one second would take everyone on Earth "
                f"{span} by hand.")
    return sentence, EQUIVALENCE_ASSUMPTION.format(precision=precision)


def milestone_share(delivered_pf: float | None, milestone: Milestone) -> float | None:
    """Delivered as a fraction of a milestone's PF (may exceed 1); None when unknown."""
    if delivered_pf is None:
        return None
    return delivered_pf / milestone.pf


class Playlist:
    """The scene on screen, advanced when its duration has passed on the clock handed in."""

    def __init__(self, scenes: tuple[SceneSpec, ...], now: float) -> None:
        if not scenes:
            raise ValueError("a playlist needs at least one scene")
        self.scenes = scenes
        self.index = 0
        self.started = now

    @property
    def current(self) -> SceneSpec:
        return self.scenes[self.index]

    def due(self, now: float) -> bool:
        return now - self.started >= self.current.duration_s

    def tick(self, now: float) -> bool:
        """Advance one scene when the current one's time is up; True when it changed.

        One step per tick, timed from now: after a stall (a suspended laptop) the show goes
        on with the next scene instead of racing through the ones it missed.
        """
        if not self.due(now) or len(self.scenes) == 1:
            if self.due(now):
                self.started = now
            return False
        self.index = (self.index + 1) % len(self.scenes)
        self.started = now
        return True

    def show(self, name: str, now: float) -> bool:
        """Jump to the first scene called ``name``; False when the playlist has none."""
        for i, s in enumerate(self.scenes):
            if s.name == name:
                self.index, self.started = i, now
                return True
        return False


HEALTH_ORDER: tuple[Health, ...] = (Health.OK, Health.DEGRADED, Health.FAILED,
                                    Health.UNAVAILABLE, Health.NO_DATA)

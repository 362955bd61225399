"""Series-level detectors: change points on cluster / partition / tenant series, queue surges.

(Each node's own power and temperature series are judged in `node_series`.)

Series with a physical range go through the same `EnsembleDetector` that is scored on NAB
(the series detector and CAD OSE, `ensemble.live_settings`): the cluster's delivered,
available, allocated and busy petaflops lie in [0, installed PF] and a partition's delivered
petaflops in [0, that partition's peak]. Those bounds are the range CAD OSE quantises into,
where NAB hands it each file's minimum and maximum; when a bound moves materially (nodes added
or removed, a partition reshaped) that series' CAD OSE starts afresh (`PeerBank.set_range`).
The tenants' queues (and tenant efficiency, when on) have no physical bound, so they keep the
series detector alone: a range guessed from the past is the look at the future NAB allows and
the console does not have.

Every other series goes through the same `SeriesDetector`. Two filters keep
the console honest on busy clusters: a change must also be material (``min_rel_change`` of
the baseline, so a 0.3% wobble in delivered petaflops never pages anyone) and a queue surge
must add at least ``surge_min_jobs`` pending jobs. Columns are keyed by name; when the set of
tenants or partitions changes the affected bank starts again (rare, and safe).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from console.analytics.detectors.base import Finding
from console.analytics.detectors.context import FrameContext
from console.analytics.detectors.ensemble import EnsembleDetector, EnsembleSettings, live_settings
from console.analytics.detectors.series import SeriesDetector, SeriesSettings
from console.model import JobState, Severity, Subject

CLUSTER_SERIES = ("delivered_pf", "available_pf", "allocated_pf", "busy_pf")


@dataclass(frozen=True)
class WorkloadSettings:
    series: SeriesSettings = field(default_factory=SeriesSettings)
    min_rel_change: float = 0.25
    change_confirm_s: float = 180.0  # longer than a job's warm-up, so churn is not a change
    # Tenant efficiency (delivered TFLOPS per allocated GPU) moves with the tenant's job mix:
    # on the simulated fault-free day it raised ~12 false changes a day at 384 nodes, so it
    # is off by default; the tenants' queues are always watched.
    tenant_efficiency: bool = False
    tenant_min_gpus: int = 16  # tenant efficiency is judged only above this many GPUs in use
    # Delivered PF per partition, only for partitions this big: a debug partition of four nodes
    # moves by half whenever one job ends.
    partition_min_gpus: int = 64
    surge_min_jobs: int = 20
    surge_min_per_node: float = 0.1  # ... and at least this many jobs per node of the cluster
    surge_min_factor: float = 2.0  # pending must also reach this multiple of its median
    # The petaflops series use the ensemble (series detector + CAD OSE on physical bounds);
    # False = the series detector alone, as before.
    ensemble: bool = True
    # A series' CAD OSE starts afresh when a bound moves by more than this share of the range.
    range_tolerance: float = 0.05


class _Bank:
    """A detector over named columns, with the open/close bookkeeping of its findings: the
    `EnsembleDetector` when ``ensemble`` is given (its columns then need their physical
    ranges every step), else the `SeriesDetector` alone."""

    def __init__(self, settings: SeriesSettings, ensemble: EnsembleSettings | None = None,
                 range_tolerance: float = 0.05) -> None:
        self.settings = settings
        self.ensemble = ensemble
        self.tolerance = range_tolerance
        self.names: tuple[str, ...] = ()
        self.det: SeriesDetector | None = None  # the series detector (the ensemble's part)
        self.ens: EnsembleDetector | None = None
        self.open: dict[str, float] = {}  # name -> baseline median when it opened
        self.jump: dict[str, float] = {}  # name -> size of the jump when it opened

    def step(self, names: tuple[str, ...], values: np.ndarray,
             ranges: list[tuple[float, float]] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if names != self.names or self.det is None:
            self.names = names
            self.open = {}
            self.jump = {}
            if self.ensemble is not None and ranges is not None:
                self.ens = EnsembleDetector(len(names), self.ensemble, ranges)
                self.det = self.ens.series
            else:
                self.ens = None
                self.det = SeriesDetector(len(names), self.settings)
        elif self.ens is not None and self.ens.peers is not None and ranges is not None:
            for i, (lo, hi) in enumerate(ranges):
                self.ens.peers.set_range(i, lo, hi, self.tolerance)
        score = self.ens.step(values) if self.ens is not None else self.det.step(values)
        return score, self.det.last_z, self.det.last_median

    def peer_score(self, i: int) -> float:
        """CAD OSE's raw score of column ``i`` at the last step (NaN without an ensemble)."""
        return float(self.ens.last_peer[i]) if self.ens is not None else float("nan")


class WorkloadDetectors:
    def __init__(self, settings: WorkloadSettings | None = None) -> None:
        self.s = settings or WorkloadSettings()
        ens = live_settings(self.s.series) if self.s.ensemble else None
        self._cluster = _Bank(self.s.series, ens, self.s.range_tolerance)
        self._tenant_eff = _Bank(self.s.series)  # no physical bound: the series detector alone
        self._partition = _Bank(self.s.series, ens, self.s.range_tolerance)
        self._part_peak = np.zeros(0)
        self._part_key: tuple | None = None
        self._part_mask = np.zeros((0, 0), bool)
        self._part_names: tuple[str, ...] = ()
        # Queues: rises only; a surge is judged by its size too (surge_min_*), so the range rule
        # may start as soon as there is any history.
        # Queues also re-arm quickly: the surge hysteresis below decides how long one lasts, and
        # a second burst while the first is still queued is a second surge.
        up = replace(self.s.series, up_only=True, range_min_history=self.s.series.min_history,
                     refractory=self.s.series.min_history)
        self._pending = _Bank(up)
        self._last_t: float | None = None

    def run(self, ctx: FrameContext) -> list[Finding]:
        if self._last_t is not None and ctx.now <= self._last_t:
            return []
        self._last_t = ctx.now
        f = ctx.frame
        out: list[Finding] = []
        k = f.kpis
        vals = np.array([np.nan if getattr(k, n) is None else getattr(k, n) for n in CLUSTER_SERIES],
                        np.float64)
        installed = ctx.topo.installed_pf if ctx.n_gpus else float("nan")
        out += self._changes(self._cluster, CLUSTER_SERIES, vals,
                             lambda n: (Subject("cluster", "cluster"), f"cluster {n.replace('_', ' ')}"),
                             unit="PF", ranges=[(0.0, installed)] * len(CLUSTER_SERIES))
        out += self._partitions(ctx)
        # Tenant efficiency (delivered per allocated GPU), only for tenants big enough to judge.
        t = f.tenants
        if len(t) and self.s.tenant_efficiency:
            gpus = np.asarray(t.gpus_in_use, np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                eff = np.where(gpus >= self.s.tenant_min_gpus,
                               np.asarray(t.delivered_pf, np.float64) * 1000.0 / gpus, np.nan)
            names = tuple(t.account)
            out += self._changes(self._tenant_eff, names, eff,
                                 lambda n: (Subject("tenant", n), f"delivered TFLOPS per GPU of tenant {n}"),
                                 unit="TF/GPU", tenant=True)
        out += self._queue(ctx)
        return out

    def _partitions(self, ctx: FrameContext) -> list[Finding]:
        """Delivered PF of each partition big enough to judge (nodes may be in several)."""
        f = ctx.frame
        if not ctx.scheduler_ok or ctx.n_gpus == 0:
            return []
        key = (ctx.topo.node_names, f.nodes.partitions)
        if key != self._part_key:
            self._part_key = key
            names = sorted({p for ps in f.nodes.partitions for p in ps if p})
            mask = np.zeros((len(names), ctx.n_nodes), bool)
            col = {p: i for i, p in enumerate(names)}
            for n, ps in enumerate(f.nodes.partitions):
                for p in ps:
                    if p in col:
                        mask[col[p], n] = True
            gpus = mask @ np.asarray(ctx.topo.node_gpu_count, np.int64)
            keep = gpus >= self.s.partition_min_gpus
            self._part_names = tuple(p for p, k in zip(names, keep) if k)
            self._part_mask = mask[keep]
            node_peak = np.asarray(ctx.topo.gpu_peak_tflops, np.float64).reshape(ctx.n_nodes, ctx.gpn).sum(axis=1)
            self._part_peak = self._part_mask.astype(np.float64) @ node_peak / 1000.0
        if not self._part_names:
            return []
        tf = np.asarray(f.gpu.delivered_tflops, np.float64).reshape(ctx.n_nodes, ctx.gpn)
        seen = np.isfinite(tf).any(axis=1)
        node_pf = np.where(np.isfinite(tf), tf, 0.0).sum(axis=1) / 1000.0
        # A partition with a node unseen has no comparable total this tick.
        blind = (self._part_mask & ~seen[None, :]).any(axis=1)
        pf = np.where(blind, np.nan, self._part_mask.astype(np.float64) @ node_pf)
        return self._changes(self._partition, self._part_names, pf,
                             lambda n: (Subject("partition", n), f"delivered PF of partition {n}"), unit="PF",
                             ranges=[(0.0, float(p)) for p in self._part_peak])

    def _changes(self, bank: _Bank, names: tuple[str, ...], values: np.ndarray, describe, *,
                 unit: str, tenant: bool = False,
                 ranges: list[tuple[float, float]] | None = None) -> list[Finding]:
        score, z, med = bank.step(names, values, ranges)
        out = []
        det = bank.det
        for i, name in enumerate(names):
            x, m = values[i], med[i]
            if not (np.isfinite(x) and np.isfinite(m)):
                bank.open.pop(name, None)
                continue
            material = abs(x - m) >= self.s.min_rel_change * max(abs(m), 1e-9)
            starting = score[i] >= 0.5 and material
            going = name in bank.open and det is not None and det.quiet[i] and \
                abs(z[i]) >= det.settings.z_alarm / 2 and material
            if not (starting or going):
                bank.open.pop(name, None)
                continue
            bank.open.setdefault(name, float(m))
            subject, label = describe(name)
            peer = bank.peer_score(i)
            pattern = (f"; an unseen sequence for it (context score {peer:.2f})"
                       if bank.ensemble is not None and peer >= bank.ensemble.alarm else "")
            out.append(Finding(
                kind="series_change", subject=subject, score=float(min(1.0, abs(z[i]) / (2 * det.settings.z_alarm))),
                evidence=f"{label} {'rose' if x > m else 'fell'} to {x:.3g} {unit} from a median of {m:.3g} "
                         f"(robust z {z[i]:+.1f}{pattern})",
                severity=Severity.INFO, tenant=subject.key if tenant else None, confirm=2,
                confirm_s=self.s.change_confirm_s, series=name, detail=f"series={name}"))
        return out

    def _queue(self, ctx: FrameContext) -> list[Finding]:
        f = ctx.frame
        jobs = f.jobs
        t = f.tenants
        names: list[str] = []
        vals: list[float] = []
        if len(t):
            names += [f"tenant:{a}" for a in t.account]
            vals += [float(v) for v in np.asarray(t.jobs_pending)]
        if len(jobs):
            pend = np.asarray(jobs.state) == int(JobState.PENDING)
            counts = np.bincount(np.asarray(jobs.partition)[pend], minlength=len(jobs.partitions))
            names += [f"partition:{p}" for p in jobs.partitions if p]
            vals += [float(counts[i]) for i, p in enumerate(jobs.partitions) if p]
        names.append("cluster:cluster")
        vals.append(np.nan if f.kpis.jobs_pending is None else float(f.kpis.jobs_pending))
        values = np.array(vals, np.float64)
        bank = self._pending
        score, z, med = bank.step(tuple(names), values)
        det = bank.det
        out = []
        for i, name in enumerate(names):
            x, m = values[i], med[i]
            if not (np.isfinite(x) and np.isfinite(m)):
                bank.open.pop(name, None)
                continue
            base = bank.open.get(name, float(m))
            jump = x - base
            if name in bank.open:
                keep = jump >= max(self.s.surge_min_jobs / 2, 0.3 * bank.jump.get(name, 0.0))
            else:
                need = max(self.s.surge_min_jobs, self.s.surge_min_per_node * ctx.n_nodes)
                keep = (score[i] >= 0.5 and jump >= need
                        and x >= self.s.surge_min_factor * max(float(m), 1.0))
            if not keep:
                bank.open.pop(name, None)
                bank.jump.pop(name, None)
                continue
            if name not in bank.open:
                bank.open[name] = float(m)
                bank.jump[name] = float(jump)
            level, key = name.split(":", 1)
            out.append(Finding(
                kind="queue_surge", subject=Subject(level, key), score=float(min(1.0, abs(z[i]) / 12.0)),
                evidence=f"{int(x)} jobs pending for {level} {key}, up from a median of {int(base)} "
                         f"(+{int(jump)})",
                severity=Severity.WARNING, tenant=key if level == "tenant" else None, confirm=1,
                detail=f"jump={int(jump)}"))
        return out


"""The single writer: merges poll results into the cluster state and builds immutable frames.

Only the engine thread calls `apply` and `build_frame`, so nothing here takes a lock. Everything
per GPU is a numpy array on the topology's flat index; the topology is rebuilt (and its version
bumped) only when the set of nodes changes. Figures follow DESIGN.md "Key definitions".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

import numpy as np

from console import health as health_mod
from console.config import ClusterSettings, TenantSettings
from console.grouping import natural_key
from console.history import Ring, TieredHistory
from console.model import (ACTIVE_JOB_STATES, AVAILABLE_NODE_STATES, Alert, AlertsUpdate,
                           Anomaly, Cause, Frame, GpuFrame, Health, History, HistorySeed,
                           JobState, JobTable,
                           Kpis, NodeState, NodeTable, SchedulerUpdate, Severity, Silence,
                           SourceState, SourceStatus, TelemetryUpdate, TenantTable, Topology,
                           TELEMETRY_METRICS, freeze_arrays)
from console.peaks import boost_clock_mhz, model_from_gres, peak_tflops, precision_words
from console.polling import PollResult

log = logging.getLogger(__name__)
_T = TypeVar("_T")

KINDS = ("telemetry", "scheduler", "alerts")
SERIES = ("delivered_pf", "installed_pf", "available_pf", "allocated_pf", "busy_pf",
          "jobs_running", "jobs_pending", "gpus_pending")
_ACTIVE = np.array(sorted(ACTIVE_JOB_STATES), np.int8)
_AVAILABLE = np.array(sorted(AVAILABLE_NODE_STATES), np.int8)


class FrameDetector(Protocol):
    """What the state needs of the anomaly detector (`console.analytics.anomaly`): one step per
    frame, returning the open and lingering anomalies and the ranked causes. Typed here, at the
    seam, so the state never imports the analytics package's classes."""

    def step(self, frame: Frame) -> tuple[Sequence[Anomaly], Sequence[Cause]]: ...


@dataclass
class _SourceTrack:
    name: str
    kind: str
    interval_s: float
    last_rid: int = 0
    last_success: float | None = None
    last_attempt: float | None = None
    latency_s: float | None = None
    error: str | None = None
    error_kind: str | None = None
    failures: int = 0
    detail: str = ""
    warnings: tuple[str, ...] = ()


class ClusterState:
    """Merged view of one cluster. Lives in the engine thread."""

    def __init__(self, cluster: ClusterSettings, sources: Sequence[tuple[str, str, float]],
                 *, detector: FrameDetector | None = None, extra_tenants: Sequence[TenantSettings] = (),
                 history_raw_points: int = 2880, history_hours: float = 168.0,
                 wall: Callable[[], float] | None = None) -> None:
        import time as _time

        self.cluster = cluster
        self.detector = detector
        self._wall = wall or _time.time
        self._tracks = {n: _SourceTrack(n, k, i) for n, k, i in sources}
        self._seq = 0
        self._rack_of = self._expand_racks(cluster.racks)
        self._site = cluster.topology
        if not self._site and cluster.sim is not None:  # the simulator names its own
            from console.sim.site import sim_site

            self._site = sim_site(cluster.sim.nodes)
        # Topology and per-node data, in topology order.
        self._node_names: tuple[str, ...] = ()
        self._node_rack_hint: dict[str, str] = {}
        self._node_model_hint: dict[str, str] = {}  # the exporter's modelName, per node
        # A node's GPUs: Slurm's gres when it names any, else the columns its exporter has
        # reported (the most ever seen), else none - never a guessed slot count (issue 13).
        self._gres_gpus: dict[str, int] = {}
        self._gres_type: dict[str, str] = {}
        self._tel_gpus: dict[str, int] = {}
        # Where each node's GPU model came from when not the exporter: "gres"/"config" -> words.
        self._model_notes: dict[str, str] = {}
        self._gpn = 1  # slots per node; grows to the widest node any update reports
        self.topology = self._make_topology(0)
        self._tel = {k: np.zeros((0, self._gpn), np.float32) for k in TELEMETRY_METRICS}
        self._node_up = np.zeros(0, bool)
        self._row_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._nodes = NodeTable.empty()
        self._nodes_aligned = self._align_nodes()
        self._jobs = JobTable.empty()
        self._alerts: dict[str, AlertsUpdate] = {}
        self._merged_cache: tuple[tuple[AlertsUpdate, ...],
                                  tuple[tuple[Alert, ...], tuple[Silence, ...]]] = ((), ((), ()))
        self._data_time: dict[str, float | None] = {k: None for k in KINDS}
        self._data_now = 0.0
        # Tenants: configured first, then the ones the simulator describes, then discovered.
        self._tenants: list[TenantSettings] = list(cluster.tenants)
        known = {t.account for t in self._tenants}
        for t in extra_tenants:
            if t.account not in known:
                self._tenants.append(t)
                known.add(t.account)
        self._tenant_index = {t.account: i for i, t in enumerate(self._tenants)}
        coarse = max(60, int(history_hours * 60))
        self._history = TieredHistory(len(SERIES), raw_capacity=history_raw_points,
                                      coarse_capacity=coarse)
        self._tenant_pf = TieredHistory(len(self._tenants), raw_capacity=history_raw_points,
                                        coarse_capacity=coarse)
        self._tenant_gpus = TieredHistory(len(self._tenants), raw_capacity=history_raw_points,
                                          coarse_capacity=coarse)
        # GPUs each tenant's pending jobs ask for: the queue depth over time ("Why GPUs wait").
        self._tenant_pending = TieredHistory(len(self._tenants), raw_capacity=history_raw_points,
                                             coarse_capacity=coarse)
        # History rows built before any source delivered data (first, last): zeros, not data.
        self._pre_data: tuple[float, float] | None = None
        self.anomalies: tuple[Anomaly, ...] = ()
        self.causes: tuple[Cause, ...] = ()
        self.detector_error: str | None = None
        #: The newest accounting view (console/accounting/service.py sets it from its thread;
        #: one reference swap, so no lock), put on every frame until the next read.
        self.accounting: object | None = None

    # ------------------------------------------------------------------ merging

    def apply(self, result: PollResult) -> bool:
        """Merge one poll result; False if it was dropped (late or from an unknown source)."""
        tr = self._tracks.get(result.source)
        if tr is None or result.request_id <= tr.last_rid:
            return False
        tr.last_rid = result.request_id
        tr.last_attempt = result.fetched_at
        tr.latency_s = result.latency_s
        if result.error is not None:
            tr.failures += 1
            tr.error = result.error.message
            tr.error_kind = result.error.kind.value
            return True
        tr.failures = 0
        tr.error = tr.error_kind = None
        tr.last_success = result.fetched_at
        warnings: list[str] = []
        for u in result.updates:
            warnings.extend(getattr(u, "warnings", ()))
            if isinstance(u, TelemetryUpdate):
                self._apply_telemetry(u)
                self._data_time["telemetry"] = result.fetched_at
            elif isinstance(u, SchedulerUpdate):
                self._apply_scheduler(u)
                self._data_time["scheduler"] = result.fetched_at
                if u.api_version:
                    tr.detail = f"Slurm REST API {u.api_version}"
            elif isinstance(u, AlertsUpdate):
                self._alerts[result.source] = u
                self._data_time["alerts"] = result.fetched_at
            elif isinstance(u, HistorySeed):
                self.seed_history(u, result.fetched_at)
            self._data_now = max(self._data_now, float(getattr(u, "time", 0.0)))
        tr.warnings = tuple(dict.fromkeys(warnings))
        return True

    def _apply_telemetry(self, u: TelemetryUpdate) -> None:
        hints_changed = False
        reported = _reported_columns(u)
        for i, n in enumerate(u.nodes):
            if reported[i] > self._tel_gpus.get(n, 0):
                self._tel_gpus[n] = int(reported[i])
                hints_changed = True
            if u.node_rack and u.node_rack[i]:
                self._node_rack_hint[n] = u.node_rack[i]
            if u.node_model and u.node_model[i] and self._node_model_hint.get(n) != u.node_model[i]:
                self._node_model_hint[n] = u.node_model[i]
                hints_changed = True
        self._ensure_nodes(u.nodes, u.gpus_per_node, force=hints_changed)
        rows = self._rows_for(u.nodes)
        n, gpn = self.topology.n_nodes, self._gpn
        for key in TELEMETRY_METRICS:
            arr = np.full((n, gpn), np.nan, np.float32)
            src = u.metrics.get(key)
            if src is not None and len(u.nodes):
                arr[rows, : src.shape[1]] = src
            self._tel[key] = arr
        up = np.zeros(n, bool)
        up[rows] = u.node_up
        self._node_up = up
        # An unreachable exporter's GPUs are "no data", whatever stale numbers it sent last.
        if (~up).any():
            for key in TELEMETRY_METRICS:
                self._tel[key][~up] = np.nan

    def _apply_scheduler(self, u: SchedulerUpdate) -> None:
        if u.nodes is not None:
            # The scheduler's gres count wins over the telemetry's columns; no gres, no GPUs
            # from Slurm (a CPU or login node).
            gres = {n: int(g) for n, g in zip(u.nodes.names, u.nodes.gpus) if g > 0}
            types = {n: t for n, t in zip(u.nodes.names, u.nodes.gpu_types) if t}
            hints_changed = gres != self._gres_gpus or types != self._gres_type
            self._gres_gpus, self._gres_type = gres, types
            self._nodes = u.nodes
            self._ensure_nodes(u.nodes.names, max([self._gpn, *gres.values()]),
                               force=hints_changed)
            self._nodes_aligned = self._align_nodes()
        if u.jobs is not None:
            self._jobs = u.jobs
            for acc in u.jobs.accounts:
                if acc and acc not in self._tenant_index:
                    self._tenant_index[acc] = len(self._tenants)
                    self._tenants.append(TenantSettings(
                        account=acc, display=acc, kind="other",
                        price_per_gpu_hour=self.cluster.default_price_per_gpu_hour))

    def seed_history(self, seed: HistorySeed, now: float) -> None:
        """Write history a source read back (e.g. from Prometheus) where there is none of our own.

        A seed row is kept only in a one-minute bucket holding no row yet and older than the
        bucket of the newest data (where the next own row goes), so it never overwrites or
        reorders samples; unseeded series stay NaN there. Rows built before any source delivered
        data are all zeros, not measurements: they are dropped in favour of the seed.
        """
        step = self._history.coarse_step_s
        times = [np.asarray(t, np.float64) for t, _ in seed.series.values()]
        if not times:
            return
        st = np.unique(np.concatenate(times))
        old_t, _ = self._history.window()
        keep = np.ones(len(old_t), bool)
        if self._pre_data is not None:
            keep = (old_t < self._pre_data[0]) | (old_t > self._pre_data[1])
        old_b = np.floor(old_t[keep] / step)
        limit = np.floor((self._data_now or now) / step)  # the next own row's bucket at the earliest
        sb = np.floor(st / step)
        ok = ~np.isin(sb, old_b) & (sb < limit)
        if not ok.any():
            return
        st = st[ok]
        rows = np.full((len(st), len(SERIES)), np.nan, np.float32)
        for key, (t, v) in seed.series.items():
            if key in SERIES:
                t = np.asarray(t, np.float64)
                pos = np.searchsorted(st, t)
                hit = (pos < len(st)) & (st[np.minimum(pos, len(st) - 1)] == t)
                rows[pos[hit], SERIES.index(key)] = np.asarray(v, np.float32)[hit]
        self._history = _reseeded(self._history, keep, st, rows)
        self._tenant_pf = _reseeded(self._tenant_pf, keep, st, None)
        self._tenant_gpus = _reseeded(self._tenant_gpus, keep, st, None)
        self._tenant_pending = _reseeded(self._tenant_pending, keep, st, None)
        self._pre_data = None

    # ------------------------------------------------------------------ topology

    @staticmethod
    def _expand_racks(racks: dict[str, str] | object) -> dict[str, str]:
        out: dict[str, str] = {}
        if not racks:
            return out
        from console.hostlist import expand

        for rack, expr in dict(racks).items():  # type: ignore[arg-type]
            for n in expand(expr):
                out[n] = rack
        return out

    def _ensure_nodes(self, names: Sequence[str], gpn: int, force: bool = False) -> None:
        known = set(self._node_names)
        new = [n for n in names if n not in known]
        if not new and gpn <= self._gpn and not force:
            return
        old_names, old_gpn = self._node_names, self._gpn
        self._gpn = max(self._gpn, gpn)
        rack_of = lambda n: self._rack_of.get(n) or self._node_rack_hint.get(n) or "unracked"
        merged = sorted(set(old_names) | set(new), key=lambda n: (natural_key(rack_of(n)), natural_key(n)))
        self._node_names = tuple(merged)
        self.topology = self._make_topology(self.topology.version + 1)
        # Re-lay existing per-node arrays onto the new order.
        idx = {n: i for i, n in enumerate(merged)}
        old_rows = np.array([idx[n] for n in old_names], np.int64)
        for key, arr in self._tel.items():
            fresh = np.full((len(merged), self._gpn), np.nan, np.float32)
            if len(old_names):
                fresh[old_rows, :old_gpn] = arr
            self._tel[key] = fresh
        up = np.zeros(len(merged), bool)
        if len(old_names):
            up[old_rows] = self._node_up
        self._node_up = up
        self._row_cache.clear()
        self._nodes_aligned = self._align_nodes()

    def _make_topology(self, version: int) -> Topology:
        names = self._node_names
        rack_names: list[str] = []
        rack_idx: dict[str, int] = {}
        rack_source: list[str] = []  # where each rack's name came from (the map's legend says)
        node_rack = np.zeros(len(names), np.int32)
        models, counts = [], np.zeros(len(names), np.int16)
        for i, n in enumerate(names):
            r = self._rack_of.get(n) or self._node_rack_hint.get(n) or "unracked"
            node_rack[i] = rack_idx.setdefault(r, len(rack_names))
            if node_rack[i] == len(rack_names):
                rack_names.append(r)
                rack_source.append("config" if self._rack_of.get(n)
                                   else "label" if self._node_rack_hint.get(n) else "")
            counts[i] = min(self._gpu_count(n), self._gpn)
            models.append(self._gpu_model(n)[0] if counts[i] else "")
        self._model_notes = self._model_source_notes(names, counts)
        gpn = self._gpn
        exists = (np.arange(gpn)[None, :] < counts[:, None]).reshape(-1)
        per_model_peak = {m: peak_tflops(m, self.cluster.precision, self.cluster.peaks) for m in set(models)}
        per_model_clock = {m: boost_clock_mhz(m) for m in set(models)}
        peak = np.repeat(np.array([per_model_peak[m] for m in models], np.float32), gpn)
        clock = np.repeat(np.array([per_model_clock[m] for m in models], np.float32), gpn)
        peak[~exists] = 0.0
        return Topology(node_names=names, node_rack=node_rack, rack_names=tuple(rack_names),
                        gpus_per_node=gpn, node_gpu_count=counts, node_model=tuple(models),
                        gpu_peak_tflops=peak, gpu_max_clock_mhz=clock,
                        precision=precision_words(self.cluster.precision), version=version,
                        rack_source=tuple(rack_source),
                        **self._site.topology_fields(names, tuple(rack_names)))

    def _gpu_count(self, node: str) -> int:
        """Slurm's gres count when it names GPUs, else the exporter's reported columns, else 0."""
        return self._gres_gpus.get(node) or self._tel_gpus.get(node, 0)

    def _gpu_model(self, node: str) -> tuple[str, str]:
        """(model name, where from): the exporter's modelName, else the gres type, else the config."""
        model = self._node_model_hint.get(node)
        if model:
            return model, "exporter"
        model = model_from_gres(self._gres_type.get(node, ""))
        if model:
            return model, "gres"
        return self.cluster.gpu_model, "config"

    def _model_source_notes(self, names: Sequence[str], counts: np.ndarray) -> dict[str, str]:
        """Words for the source status saying which GPU models were not named by the exporter,
        so an operator can tell a figure priced on Slurm's word or the config's default."""
        by_source: dict[str, list[str]] = {"gres": [], "config": []}
        for n, c in zip(names, counts):
            if c:
                _, source = self._gpu_model(n)
                if source in by_source:
                    by_source[source].append(n)
        notes = {}
        gres_nodes = by_source["gres"]
        if gres_nodes:
            types = ", ".join(sorted({self._gres_type[n] for n in gres_nodes})[:3])
            notes["gres"] = (f"GPU model from Slurm gres for {len(gres_nodes):,} "
                             f"node{'s' if len(gres_nodes) != 1 else ''} ({types})")
        cfg_nodes = by_source["config"]
        if cfg_nodes:
            unknown = sorted({self._gres_type[n] for n in cfg_nodes if n in self._gres_type})[:3]
            why = f"; gres type {', '.join(unknown)} not known" if unknown else ""
            notes["config"] = (f"GPU model from the config for {len(cfg_nodes):,} "
                               f"node{'s' if len(cfg_nodes) != 1 else ''} "
                               f"({self.cluster.gpu_model}{why})")
        return notes

    def _rows_for(self, names: tuple[str, ...]) -> np.ndarray:
        rows = self._row_cache.get(names)
        if rows is None:
            idx = self.topology.node_index()
            rows = np.array([idx[n] for n in names], np.int64)
            self._row_cache = {names: rows}
        return rows

    def _align_nodes(self) -> NodeTable:
        """The scheduler's node table re-ordered onto the topology (unknown = UNKNOWN, known=False)."""
        n = self.topology.n_nodes
        src = self._nodes
        pos = {name: i for i, name in enumerate(src.names)}
        take = np.array([pos.get(name, -1) for name in self.topology.node_names], np.int64)
        have = take >= 0
        t = np.where(have, take, 0)
        def pick(arr: np.ndarray, fill, dtype) -> np.ndarray:
            out = np.full(n, fill, dtype)
            if len(src):
                out[have] = arr[t[have]]
            return out
        self._node_known = have
        return NodeTable(
            names=self.topology.node_names,
            state=pick(src.state, NodeState.UNKNOWN, np.int8),
            responding=pick(src.responding, True, bool),
            reason=tuple(src.reason[i] if ok else "" for i, ok in zip(t, have)),
            gpus=pick(src.gpus, 0, np.int16),
            gpus_alloc=pick(src.gpus_alloc, 0, np.int16),
            partitions=tuple(src.partitions[i] if ok else () for i, ok in zip(t, have)),
            gpu_types=(tuple(src.gpu_types[i] if ok else "" for i, ok in zip(t, have))
                       if src.gpu_types else ()),
        )

    # ------------------------------------------------------------------ frames

    def build_frame(self, now: float | None = None, *, analyse: bool = True) -> Frame:
        """A consistent frame of everything; ``analyse`` False reuses the last anomalies (no new data)."""
        now = self._wall() if now is None else now
        self._seq += 1
        topo = self.topology
        gpn, n_gpus = topo.gpus_per_node, topo.n_gpus
        exists = topo.gpu_exists()
        tel = {k: v.reshape(-1) for k, v in self._tel.items()}
        statuses = self._statuses(now)
        stale_after = self._stale_after()
        known = self._known(now, stale_after)
        tel_fresh = known["telemetry"]
        nodes = self._nodes_aligned
        node_known = getattr(self, "_node_known", np.zeros(topo.n_nodes, bool))

        # GPU -> job join, from the scheduler's allocation coordinates.
        jobs = self._jobs
        job_row = np.full(n_gpus, -1, np.int32)
        if len(jobs.alloc_job):
            idx = topo.node_index()
            node_rows = np.array([idx.get(n, -1) for n in jobs.alloc_node_names], np.int64)
            r = node_rows[jobs.alloc_node]
            ok = (r >= 0) & (jobs.alloc_gpu < gpn)
            g = r[ok] * gpn + jobs.alloc_gpu[ok]
            active = np.isin(jobs.state[jobs.alloc_job[ok]], _ACTIVE)
            job_row[g[active]] = jobs.alloc_job[ok][active]
        has_job = job_row >= 0
        job_id = np.zeros(n_gpus, np.int64)
        job_id[has_job] = jobs.job_id[job_row[has_job]]
        acc_to_tenant = np.array([self._tenant_index.get(a, -1) for a in jobs.accounts] or [-1], np.int16)
        tenant = np.full(n_gpus, -1, np.int16)
        tenant[has_job] = acc_to_tenant[jobs.account[job_row[has_job]]]

        # Delivered throughput: tensor activity x clock correction x peak (FACTS.md 1.4).
        with np.errstate(invalid="ignore", divide="ignore"):
            clock_factor = np.where(
                np.isfinite(tel["sm_clock"]) & (topo.gpu_max_clock_mhz > 0),
                np.clip(tel["sm_clock"] / np.where(topo.gpu_max_clock_mhz > 0, topo.gpu_max_clock_mhz, 1), 0, 1), 1.0)
            delivered = np.nan_to_num(tel["tensor"], nan=0.0) * clock_factor * topo.gpu_peak_tflops
        if not tel_fresh:  # unknown, not idle: no per-GPU figure, no tenant sum
            delivered = np.full_like(delivered, np.nan)
        delivered = delivered.astype(np.float32)

        health = health_mod.gpu_health(
            util=tel["util"], temp=tel["temp"], power=tel["power"], xid=tel["xid"],
            ecc_dbe=tel["ecc_dbe"], nvlink_crc=tel["nvlink_crc"], throttle=tel["throttle"],
            node_state=nodes.state, node_responding=nodes.responding, node_known=node_known,
            telemetry_fresh=tel_fresh, exists=exists, gpus_per_node=gpn,
            power_limit=tel["power_limit"], board_power=health_mod.gpu_board_power_w(topo))

        node_avail = np.isin(nodes.state, _AVAILABLE) & nodes.responding & node_known
        gpu_avail = np.repeat(node_avail, gpn) & exists & (health != Health.FAILED)
        busy = has_job & (np.nan_to_num(tel["util"], nan=0.0) >= self.cluster.busy_threshold_pct)
        peak = topo.gpu_peak_tflops.astype(np.float64)
        pf = lambda mask: float(peak[mask].sum()) / 1000.0

        js = jobs.state
        running = np.isin(js, _ACTIVE)
        pending = js == JobState.PENDING
        alerts, silences = self._merged_alerts()
        firing = [a for a in alerts if a.state == "firing"]
        sev_counts = {s.name.lower(): sum(1 for a in firing if a.severity == s) for s in Severity}
        health_counts = np.bincount(health[exists].astype(np.intp), minlength=len(Health))
        state_counts = np.bincount(nodes.state.astype(np.intp)[node_known], minlength=len(NodeState))
        # Each figure only from data that is known now (README, "status --json"): unknown is
        # None, never the 0 an empty array would sum to.
        k_tel, k_sch, k_alr = known["telemetry"], known["scheduler"], known["alerts"]
        k_inv = k_tel or k_sch  # the inventory (nodes, GPUs) comes from either
        kpis = Kpis(
            installed_pf=_known_or_none(k_inv, lambda: pf(exists)),
            available_pf=_known_or_none(k_sch, lambda: pf(gpu_avail)),
            allocated_pf=_known_or_none(k_sch, lambda: pf(has_job)),
            busy_pf=_known_or_none(k_tel and k_sch, lambda: pf(busy)),
            # A site whose exporter sends no tensor activity at all (metric not enabled) has
            # no delivered figure: unknown, not 0 PF.
            delivered_pf=_known_or_none(k_tel and bool(np.isfinite(tel["tensor"][exists]).any()),
                                        lambda: float(delivered.sum(dtype=np.float64)) / 1000.0),
            precision=topo.precision,
            gpus_total=_known_or_none(k_inv, lambda: int(exists.sum())),
            gpus_available=_known_or_none(k_sch, lambda: int(gpu_avail.sum())),
            gpus_healthy=_known_or_none(k_tel, lambda: int(health_counts[Health.OK])),
            gpus_allocated=_known_or_none(k_sch, lambda: int(has_job.sum())),
            gpus_busy=_known_or_none(k_tel and k_sch, lambda: int(busy.sum())),
            gpus_by_health=_known_or_none(
                k_tel, lambda: {h.name.lower(): int(health_counts[h]) for h in Health}),
            nodes_total=_known_or_none(k_inv, lambda: topo.n_nodes),
            nodes_by_state=_known_or_none(
                k_sch, lambda: {s.name: int(state_counts[s]) for s in NodeState if state_counts[s]}),
            jobs_running=_known_or_none(k_sch, lambda: int(running.sum())),
            jobs_pending=_known_or_none(k_sch, lambda: int(pending.sum())),
            gpus_pending=_known_or_none(k_sch, lambda: int(jobs.gpus[pending].sum())),
            alerts_firing=_known_or_none(k_alr, lambda: len(firing)),
            alerts_by_severity=_known_or_none(k_alr, lambda: sev_counts),
            anomalies_open=sum(1 for a in self.anomalies if a.ended_at is None),
        )

        tenants = self._tenant_table(jobs, running, pending, tenant, has_job, delivered, peak,
                                     int(exists.sum()))
        data_t = self._data_now or now
        self._history.append(data_t, np.array([_nan_if_none(getattr(kpis, key)) for key in SERIES],
                                              np.float32))
        nan_row = np.full(len(tenants), np.nan, np.float32)
        self._tenant_pf.append(data_t, tenants.delivered_pf if k_tel and k_sch else nan_row)
        self._tenant_gpus.append(data_t, tenants.gpus_in_use.astype(np.float32) if k_sch else nan_row)
        self._tenant_pending.append(data_t, tenants.gpus_pending.astype(np.float32) if k_sch else nan_row)
        if not self._data_now:
            self._pre_data = (self._pre_data or (data_t, data_t))[0], data_t
        ht, hv = self._history.window()
        _, tpf = self._tenant_pf.window()
        _, tg = self._tenant_gpus.window()
        _, tq = self._tenant_pending.window()
        history = History(t=ht, series={k: hv[:, i] for i, k in enumerate(SERIES)},
                          tenant_delivered_pf=_fit(tpf, len(tenants)),
                          tenant_gpus=_fit(tg, len(tenants)),
                          tenant_gpus_pending=_fit(tq, len(tenants)))

        gpu = GpuFrame(
            util=tel["util"], tensor=tel["tensor"], sm_clock=tel["sm_clock"], temp=tel["temp"],
            power=tel["power"], fb_used=tel["fb_used"], xid=tel["xid"], ecc_dbe=tel["ecc_dbe"],
            nvlink_crc=tel["nvlink_crc"], throttle=tel["throttle"], delivered_tflops=delivered,
            health=health, job_row=job_row, job_id=job_id, tenant=tenant,
            power_limit=tel["power_limit"])
        frame = Frame(
            seq=self._seq, time=now, cluster=self.cluster.name, topology=topo, gpu=gpu,
            nodes=nodes, node_health=health_mod.worst_per_node(health, gpn, exists), jobs=jobs,
            kpis=kpis, tenants=tenants, history=history, alerts=alerts, silences=silences,
            anomalies=self.anomalies, causes=self.causes, sources=statuses,
            data_time=dict(self._data_time), stale_after_s=stale_after,
            simulated=self.cluster.simulated, data_now=data_t, accounting=self.accounting)
        frame = self._with_analytics(frame, analyse)
        freeze_arrays(frame)  # published: read-only for every panel (model.freeze_arrays)
        return frame

    def _with_analytics(self, frame: Frame, analyse: bool) -> Frame:
        if self.detector is None:
            return frame
        if analyse:
            try:
                anomalies, causes = self.detector.step(frame)
                self.detector_error = None
                self.anomalies, self.causes = tuple(anomalies), tuple(causes)
            except Exception as e:  # a detector bug must never cost the operator the frame
                log.exception("anomaly detector failed")
                self.detector_error = f"anomaly detection failed: {type(e).__name__}"
        # Open anomalies on a GPU make an otherwise healthy GPU "degraded".
        health = frame.gpu.health
        gpn = frame.topology.gpus_per_node
        idx = frame.topology.node_index()
        for a in self.anomalies:
            if a.ended_at is None and a.node in idx and a.gpu is not None and a.gpu < gpn:
                g = idx[a.node] * gpn + a.gpu
                if health[g] == Health.OK:
                    health[g] = Health.DEGRADED
        open_n = sum(1 for a in self.anomalies if a.ended_at is None)
        return replace(frame, anomalies=self.anomalies, causes=self.causes,
                       kpis=replace(frame.kpis, anomalies_open=open_n),
                       node_health=health_mod.worst_per_node(health, gpn, frame.topology.gpu_exists()))

    def _tenant_table(self, jobs: JobTable, running: np.ndarray, pending: np.ndarray,
                      tenant: np.ndarray, has_job: np.ndarray, delivered: np.ndarray,
                      peak: np.ndarray, gpus_total: int) -> TenantTable:
        n = len(self._tenants)
        t_ok = tenant >= 0
        gpus = np.bincount(tenant[t_ok], minlength=n)[:n].astype(np.int32)
        dpf = (np.bincount(tenant[t_ok], weights=delivered[t_ok], minlength=n)[:n] / 1000.0)
        alloc_peak = np.bincount(tenant[t_ok], weights=peak[t_ok], minlength=n)[:n] / 1000.0
        acc_to_tenant = np.array([self._tenant_index.get(a, -1) for a in jobs.accounts] or [-1], np.int64)
        job_tenant = acc_to_tenant[jobs.account] if len(jobs) else np.zeros(0, np.int64)
        jt_ok = job_tenant >= 0
        def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
            m = mask & jt_ok
            w = None if weights is None else weights[m]
            return np.bincount(job_tenant[m], weights=w, minlength=n)[:n].astype(np.int32)
        price = np.array([t.price_per_gpu_hour for t in self._tenants], np.float32)
        subsidy = np.array([t.subsidy for t in self._tenants], np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            eff = np.where(alloc_peak > 0, dpf / np.where(alloc_peak > 0, alloc_peak, 1), np.nan)
        cost = price * gpus
        return TenantTable(
            account=tuple(t.account for t in self._tenants),
            display=tuple(t.display for t in self._tenants),
            kind=tuple(t.kind for t in self._tenants),
            subsidy=subsidy, price_per_gpu_hour=price, gpus_in_use=gpus,
            share=(gpus / max(gpus_total, 1)).astype(np.float32),
            delivered_pf=dpf.astype(np.float32), efficiency=eff.astype(np.float32),
            jobs_running=count(running), jobs_pending=count(pending),
            gpus_pending=count(pending, jobs.gpus.astype(np.float64)),
            cost_per_hour=cost.astype(np.float32), subsidy_per_hour=(cost * subsidy).astype(np.float32))

    def _merged_alerts(self) -> tuple[tuple[Alert, ...], tuple[Silence, ...]]:
        # Frames are built every second, alert sources answer every 10-15 s: merge only when an
        # update changed (tens of ms at 30,000 pending alerts). Updates are immutable; the cache
        # holds the very objects it was built from and compares them by identity.
        updates = tuple(self._alerts.values())
        cached_from, merged = self._merged_cache
        if len(cached_from) == len(updates) and all(a is b for a, b in zip(cached_from, updates)):
            return merged
        merged = self._merge_alerts()
        self._merged_cache = (updates, merged)
        return merged

    def _merge_alerts(self) -> tuple[tuple[Alert, ...], tuple[Silence, ...]]:
        seen: dict[str, Alert] = {}
        silences: dict[str, Silence] = {}
        for upd in self._alerts.values():
            for a in upd.alerts:
                old = seen.setdefault(a.fingerprint, a)
                if old.state == "pending" and a.state != "pending":
                    seen[a.fingerprint] = a  # Alertmanager's copy of an alert that has fired
            for s in upd.silences:
                silences.setdefault(s.id, s)
        alerts = sorted(_drop_covered_pending(list(seen.values())),
                        key=lambda a: (a.severity, -a.starts_at, a.name))
        return tuple(alerts), tuple(silences.values())

    def _known(self, now: float, stale_after: dict[str, float]) -> dict[str, bool]:
        """Per kind of data: has it arrived, and is it within its stale limit, on the wall
        clock (so a silent source's figures turn unknown even when no result arrives)?"""
        out = {}
        for kind in KINDS:
            t = self._data_time[kind]
            out[kind] = t is not None and now - t <= stale_after[kind]
        return out

    def _stale_after(self) -> dict[str, float]:
        out = {}
        for kind in KINDS:
            ivals = [t.interval_s for t in self._tracks.values() if t.kind in (kind, "simulator")]
            out[kind] = 3.0 * max(ivals) if ivals else float("inf")
        return out

    def _statuses(self, now: float) -> tuple[SourceStatus, ...]:
        out = []
        for t in self._tracks.values():
            age = None if t.last_success is None else now - t.last_success
            if t.last_attempt is None:
                state = SourceState.WAITING
            elif t.error is not None:
                state = SourceState.STALE if (age is None or age > 3 * t.interval_s) else SourceState.FAILING
            elif age is not None and age > 3 * t.interval_s:
                state = SourceState.STALE
            elif t.latency_s is not None and t.latency_s > t.interval_s:
                state = SourceState.SLOW
            else:
                state = SourceState.OK
            detail = t.detail
            notes = [self._model_notes[k] for k in self._model_note_kinds(t.kind) if k in self._model_notes]
            if notes:
                detail = "; ".join([detail, *notes] if detail else notes)
            if t.warnings:
                detail = (detail + "; " if detail else "") + "warnings: " + "; ".join(t.warnings[:3])
            out.append(SourceStatus(name=t.name, kind=t.kind, state=state, interval_s=t.interval_s,
                                    last_success=t.last_success, last_attempt=t.last_attempt,
                                    latency_s=t.latency_s, error=t.error, error_kind=t.error_kind,
                                    consecutive_failures=t.failures, detail=detail))
        return tuple(out)


    def _model_note_kinds(self, kind: str) -> tuple[str, ...]:
        """Which GPU-model notes a source of ``kind`` carries: the gres one on the scheduler
        (it named the model), the config one on the telemetry that did not (on the scheduler
        when there is no telemetry source)."""
        has_tel = any(t.kind == "telemetry" for t in self._tracks.values())
        if kind == "scheduler":
            return ("gres",) if has_tel else ("gres", "config")
        if kind == "telemetry":
            return ("config",)
        return ()


def _known_or_none(known: bool, value: Callable[[], _T]) -> _T | None:
    """``value()`` when its data is known, else None (unknown is never a number)."""
    return value() if known else None


def _nan_if_none(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def _reported_columns(u: TelemetryUpdate) -> np.ndarray:
    """int[len(nodes)]: per node, 1 + the highest GPU column any metric reports a value for
    (0 for a node whose exporter is down or reported nothing): the GPUs the exporter has seen,
    not the width of the update, which is the widest node's."""
    n = len(u.nodes)
    seen = np.zeros((n, max(u.gpus_per_node, 1)), bool)
    for arr in u.metrics.values():
        a = np.asarray(arr)
        if a.ndim == 2 and a.shape[0] == n:
            w = min(a.shape[1], seen.shape[1])
            seen[:, :w] |= np.isfinite(a[:, :w])
    seen &= np.asarray(u.node_up, bool).reshape(-1)[:, None]  # a down exporter reports none
    any_seen = seen.any(axis=1)
    last = seen.shape[1] - np.argmax(seen[:, ::-1], axis=1)
    return np.where(any_seen, last, 0)


def _drop_covered_pending(alerts: list[Alert]) -> list[Alert]:
    """Drop a pending alert (from Prometheus) that another source lists as firing, silenced or
    inhibited: same name, and that alert's labels include all of the pending one's.

    Why "include" rather than equal: Alertmanager's copy carries Prometheus' external labels
    (``cluster=...``) on top, so its fingerprint differs. Between the poll of Prometheus that
    still saw the alert pending and its next poll, Alertmanager may already list it as fired.
    One dict lookup per pending alert (labels projected per distinct name and label-name set),
    as a site can have thousands pending (an idle rule per GPU).
    """
    pending = [a for a in alerts if a.state == "pending" and a.labels]
    if not pending:
        return alerts
    others: dict[str, list[Alert]] = {}
    for a in alerts:
        if a.state != "pending":
            others.setdefault(a.name, []).append(a)
    projections: dict[tuple[str, tuple[str, ...]], set[tuple[str | None, ...]]] = {}
    covered: set[int] = set()
    for p in pending:
        candidates = others.get(p.name)
        if not candidates:
            continue
        keys = tuple(sorted(p.labels))
        proj = projections.get((p.name, keys))
        if proj is None:
            proj = projections[(p.name, keys)] = {tuple(c.labels.get(k) for k in keys)
                                                  for c in candidates}
        if tuple(p.labels[k] for k in keys) in proj:
            covered.add(id(p))
    return [a for a in alerts if id(a) not in covered] if covered else alerts


def _reseeded(hist: TieredHistory, keep: np.ndarray, seed_t: np.ndarray,
              seed_rows: np.ndarray | None) -> TieredHistory:
    """A new history holding ``hist``'s kept rows and the seed rows, in time order.

    Rebuilt rather than edited in place so both tiers stay consistent by construction: every
    complete bucket's mean is computed at once with numpy (a seed row alone in its bucket is
    its own mean; past the raw window the old rows already are one-minute means, one per
    bucket, and come out unchanged), and the rows of the newest bucket go through
    `TieredHistory.append` so that its running mean carries on as if nothing happened.
    """
    t, v = hist.window()
    t, v = t[keep], v[keep]
    width = v.shape[1]
    rows = np.full((len(seed_t), width), np.nan, np.float32) if seed_rows is None else seed_rows
    if rows.shape[1] < width:
        rows = np.pad(rows, ((0, 0), (0, width - rows.shape[1])), constant_values=np.nan)
    all_t = np.concatenate([t, seed_t])
    order = np.argsort(all_t, kind="stable")
    all_t, all_v = all_t[order], np.concatenate([v, rows[:, :width]])[order]
    step = hist.coarse_step_s
    out = TieredHistory(width, raw_capacity=hist.raw.capacity, coarse_capacity=hist.coarse.capacity,
                        coarse_step_s=step)
    buckets = np.floor(all_t / step)
    split = int(np.searchsorted(buckets, buckets[-1])) if len(buckets) else 0
    if split:
        ub, inv = np.unique(buckets[:split], return_inverse=True)
        ok = np.isfinite(all_v[:split])
        sums = np.zeros((len(ub), width))
        counts = np.zeros((len(ub), width))
        np.add.at(sums, inv, np.where(ok, all_v[:split], 0.0))
        np.add.at(counts, inv, ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)
        _fill(out.coarse, ub * step + step / 2, means)
        _fill(out.raw, all_t[:split], all_v[:split])
    for i in range(split, len(all_t)):
        out.append(float(all_t[i]), all_v[i])
    return out


def _fill(ring: Ring, t: np.ndarray, v: np.ndarray) -> None:
    """Load an empty ring with time-ordered rows, keeping the newest ``capacity``."""
    t, v = t[-ring.capacity:], v[-ring.capacity:]
    ring.t[: len(t)] = t
    ring.v[: len(t), :] = v
    ring.n = len(t)
    ring.head = len(t) % ring.capacity


def _fit(values: np.ndarray, width: int) -> np.ndarray:
    if values.shape[1] >= width:
        return values[:, :width]
    return np.pad(values, ((0, 0), (0, width - values.shape[1])), constant_values=np.nan)

"""`SimCluster`: the simulated AI supercomputing centre behind the console's demo mode.

It ties the workload (jobs and the scheduler), the GPU physics, the fault injector and the
alert rules together, advances them in sub-steps of at most ``tick_s`` simulated seconds,
and hands out the same typed updates the real sources produce. It is stepped from a poller
thread while operator actions (silence, drain, cancel) arrive from another thread, so every
public method takes one re-entrant lock.
"""

from __future__ import annotations

import math
import threading
import time as _time

import numpy as np

from console.model import (
    AlertsUpdate, JobState, Matcher, NodeState, NodeTable, SchedulerUpdate, Silence,
    TelemetryUpdate, Topology,
)
from console.sim.alerts import AlertBook
from console.sim.config import SimConfig
from console.sim.faults import FaultInjector, FaultRecord
from console.sim.jobs import JobStore
from console.sim.site import sim_site
from console.sim.telemetry import FaultEffects, GpuPhysics
from console.sim.tenants import TenantInfo, default_profiles
from console.sim.workload import PARTITION_KIND, Partition, Workload

PARTITION_NAMES = ("training", "inference", "debug")


class SimCluster:
    """A seeded, deterministic simulated cluster. Same config + same steps = same state."""

    def __init__(self, config: SimConfig | None = None, *, t0: float | None = None) -> None:
        cfg = config or SimConfig()
        self.config = cfg
        start = cfg.t0 if cfg.t0 is not None else (t0 if t0 is not None else _time.time())
        self.time = float(start)
        self._lock = threading.RLock()
        r_work, r_phys, r_fault = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(3))

        n, gpn = cfg.nodes, cfg.gpus_per_node
        self.node_names: tuple[str, ...] = tuple(f"n{i + 1:04d}" for i in range(n))
        n_racks = math.ceil(n / cfg.nodes_per_rack)
        self.rack_names: tuple[str, ...] = tuple(f"R{r + 1:02d}" for r in range(n_racks))
        self.node_rack = (np.arange(n) // cfg.nodes_per_rack).astype(np.int32)
        #: Rows, PDUs and leaf switches (console/sim/site.py), as Topology fields.
        self.site = sim_site(n, cfg.nodes_per_rack)
        self.site_fields = self.site.topology_fields(self.node_names, self.rack_names)
        self.partitions = self._make_partitions()
        self.node_partitions: tuple[tuple[str, ...], ...] = tuple(
            tuple(p.name for p in self.partitions if p.mask[i]) for i in range(n))

        self.profiles = default_profiles()
        self.tenants: list[TenantInfo] = [p.info for p in self.profiles]
        self.accounts: tuple[str, ...] = tuple(t.account for t in self.tenants)

        self.drain = np.zeros(n, bool)
        self.drain_by_sim = np.zeros(n, bool)
        self.drain_reason: list[str] = [""] * n
        self.down = np.zeros(n, bool)
        self.not_responding = np.zeros(n, bool)

        self.workload = Workload(r_work, self.profiles, self.partitions, self.node_names, gpn)
        self.phys = GpuPhysics(r_phys, self.node_rack, n_racks, gpn, cfg.boost_clock_mhz,
                               cfg.power_cap_w, cfg.fb_total_mib)
        self.fx = FaultEffects((n, gpn), n_racks)
        self.fx.reset(cfg.power_cap_w)
        self.alerts = AlertBook(cfg.seed, cfg.cluster_name)
        self.workload.warm_start(self.time, self.usable_nodes())
        self.faults = FaultInjector(self, r_fault)
        self.phys.step(self.time, 900.0, self.workload.gpu_job, self.workload.store, self.fx)
        self._publish()

    # -- layout -------------------------------------------------------------------------------
    def _make_partitions(self) -> list[Partition]:
        cfg = self.config
        n, gpn = cfg.nodes, cfg.gpus_per_node
        masks = []
        if n < 3:
            masks = [np.ones(n, bool)] * 3
        else:
            n_debug = max(1, n // 96)
            n_infer = max(1, n // 10)
            n_train = n - n_debug - n_infer
            idx = np.arange(n)
            masks = [idx < n_train, (idx >= n_train) & (idx < n_train + n_infer), idx >= n_train + n_infer]
        parts = []
        for name, kind, mask in zip(PARTITION_NAMES, PARTITION_KIND, masks):
            nodes = int(mask.sum())
            max_size = min(512, max(gpn, (nodes // 3) * gpn)) if name == "training" else gpn
            parts.append(Partition(name, kind, mask.copy(), nodes * gpn, max_size))
        return parts

    def topology(self) -> Topology:
        cfg = self.config
        n, gpn = cfg.nodes, cfg.gpus_per_node
        return Topology(
            node_names=self.node_names, node_rack=self.node_rack.copy(), rack_names=self.rack_names,
            gpus_per_node=gpn, node_gpu_count=np.full(n, gpn, np.int16),
            node_model=(cfg.gpu_model,) * n,
            gpu_peak_tflops=np.full(n * gpn, cfg.peak_tflops, np.float32),
            gpu_max_clock_mhz=np.full(n * gpn, cfg.boost_clock_mhz, np.float32), **self.site_fields)

    def group_nodes(self, kind: str) -> dict[str, list[int]]:
        """Node indices of each PDU (``kind="pdu"``) or leaf switch (``"switch"``)."""
        f = self.site_fields
        off, members = f["group_offsets"], f["group_nodes"]
        return {name: members[off[i]:off[i + 1]].tolist()
                for i, (k, name) in enumerate(zip(f["group_kinds"], f["group_names"])) if k == kind}

    # -- stepping -----------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance ``dt`` simulated seconds in sub-steps of at most ``tick_s``."""
        if dt < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            remaining = float(dt)
            while remaining > 1e-9:
                h = min(remaining, self.config.tick_s)
                self._substep(h)
                remaining -= h
            self._publish()

    def _substep(self, h: float) -> None:
        t = self.time + h
        self.time = t
        wl = self.workload
        wl.complete_due(t)
        self.faults.step(t, h)
        wl.housekeeping(t)
        wl.arrivals(t, h)
        self._apply_faults()
        wl.schedule(t, self.usable_nodes())
        self.phys.step(t, h, wl.gpu_job, wl.store, self.fx)

    def _apply_faults(self) -> None:
        self.fx.reset(self.config.power_cap_w)
        self.faults.apply(self.fx)

    def usable_nodes(self) -> np.ndarray:
        """Nodes that may take new jobs (a node whose GPU is gone fails Slurm's health check)."""
        return ~(self.drain | self.down | self.not_responding | self.fx.dead.any(axis=1))

    def _publish(self) -> None:
        self._apply_faults()
        self._metrics = self.phys.metrics(self.fx)
        self._node_up = ~self.fx.noexport
        alloc = (self.workload.gpu_job >= 0).sum(axis=1)
        gpn = self.config.gpus_per_node
        st = np.full(len(alloc), int(NodeState.IDLE), np.int8)
        st[(alloc > 0) & (alloc < gpn)] = int(NodeState.MIXED)
        st[alloc >= gpn] = int(NodeState.ALLOCATED)
        st[self.drain & (alloc > 0)] = int(NodeState.DRAINING)
        st[self.drain & (alloc == 0)] = int(NodeState.DRAINED)
        st[self.down] = int(NodeState.DOWN)
        self._node_state = st
        self._node_alloc = alloc.astype(np.int16)
        self.alerts.evaluate(self, self.time)

    # -- outputs ------------------------------------------------------------------------------
    def telemetry_update(self) -> TelemetryUpdate:
        with self._lock:
            cfg = self.config
            return TelemetryUpdate(
                time=self.time, nodes=self.node_names, gpus_per_node=cfg.gpus_per_node,
                metrics={k: v.copy() for k, v in self._metrics.items()},
                node_up=self._node_up.copy(), node_model=(cfg.gpu_model,) * cfg.nodes,
                node_rack=tuple(self.rack_names[r] for r in self.node_rack))

    def node_table(self) -> NodeTable:
        with self._lock:
            reasons = []
            for i in range(len(self.node_names)):
                if self.down[i]:
                    reasons.append("Not responding")
                elif self.drain[i]:
                    reasons.append(self.drain_reason[i])
                else:
                    reasons.append("")
            return NodeTable(
                names=self.node_names, state=self._node_state.copy(),
                responding=~self.not_responding, reason=tuple(reasons),
                gpus=np.full(len(self.node_names), self.config.gpus_per_node, np.int16),
                gpus_alloc=self._node_alloc.copy(), partitions=self.node_partitions)

    def job_table(self):  # -> JobTable
        with self._lock:
            return self.workload.store.table(self.accounts, tuple(p.name for p in self.partitions),
                                             self.workload.gpu_job, self.node_names)

    def scheduler_update(self) -> SchedulerUpdate:
        with self._lock:
            return SchedulerUpdate(time=self.time, nodes=self.node_table(), jobs=self.job_table(),
                                   partitions=tuple(p.name for p in self.partitions),
                                   api_version="simulator")

    def alerts_update(self) -> AlertsUpdate:
        with self._lock:
            return AlertsUpdate(time=self.time, alerts=tuple(self.alerts.current),
                                silences=tuple(self.alerts.silences(self.time)))

    def updates(self) -> list:
        """One consistent [TelemetryUpdate, SchedulerUpdate, AlertsUpdate] at ``self.time``."""
        with self._lock:
            return [self.telemetry_update(), self.scheduler_update(), self.alerts_update()]

    @property
    def ground_truth(self) -> list[FaultRecord]:
        with self._lock:
            return self.faults.ground_truth()

    def inject_fault(self, kind: str) -> FaultRecord | None:
        """Start a fault of ``kind`` now (evaluation and tests); None when no victim fits."""
        with self._lock:
            rec = self.faults.inject(kind)
            self._publish()
            return rec

    # -- operator actions ---------------------------------------------------------------------
    def _node(self, name: str) -> int:
        try:
            return self.node_names.index(name)
        except ValueError:
            raise KeyError(f"unknown node {name!r}") from None

    def set_drain(self, n: int, reason: str, *, by_sim: bool) -> None:
        self.drain[n] = True
        self.drain_by_sim[n] = by_sim
        self.drain_reason[n] = reason

    def resume_if_sim_drained(self, n: int) -> None:
        if self.drain[n] and self.drain_by_sim[n]:
            self.drain[n] = False
            self.drain_by_sim[n] = False
            self.drain_reason[n] = ""

    def drain_node(self, name: str, reason: str) -> None:
        with self._lock:
            self.set_drain(self._node(name), reason or "drained by operator", by_sim=False)
            self._publish()

    def resume_node(self, name: str) -> None:
        with self._lock:
            n = self._node(name)
            self.drain[n] = False
            self.drain_by_sim[n] = False
            self.drain_reason[n] = ""
            self._publish()

    def cancel_job(self, job_id: int) -> None:
        with self._lock:
            slot = self.workload.store.slot_of(job_id)
            if slot is None:
                raise KeyError(f"unknown job {job_id}")
            self.workload.end(slot, self.time, JobState.CANCELLED, 0)
            self._publish()

    def create_silence(self, matchers: tuple[Matcher, ...], starts_at: float, ends_at: float,
                       created_by: str, comment: str) -> str:
        with self._lock:
            sid = self.alerts.create_silence(self.time, tuple(matchers), starts_at, ends_at,
                                             created_by, comment)
            self._publish()
            return sid

    def expire_silence(self, silence_id: str) -> None:
        with self._lock:
            self.alerts.expire_silence(self.time, silence_id)
            self._publish()

    @property
    def silences(self) -> list[Silence]:
        with self._lock:
            return self.alerts.silences(self.time)

    @property
    def store(self) -> JobStore:
        return self.workload.store

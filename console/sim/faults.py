"""Injected faults with ground truth, so detectors and cause analysis can be scored.

Each fault picks a plausible victim (a busy GPU, a running multi-GPU job, a rack...), changes
what the telemetry and the scheduler show in the way the real failure does (FACTS 4), runs a
short timeline (the job dies, Slurm drains the node, the node is rebooted...) and ends by
itself so the demo cluster does not degrade forever. Every fault leaves a `FaultRecord`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from console.model import JobState
from console.sim.config import FAULT_KINDS
from console.sim.telemetry import FaultEffects

if TYPE_CHECKING:
    from console.sim.cluster import SimCluster

MIN = 60.0
_OUTAGES = ("node_down", "pdu_trip", "switch_down")  # faults that take nodes down / off the network


@dataclass(frozen=True)
class FaultRecord:
    """Ground truth of one injected fault (``end`` None while it lasts)."""

    id: str
    kind: str
    start: float
    end: float | None
    nodes: tuple[str, ...]
    gpus: tuple[tuple[str, int], ...]
    rack: str | None
    job_ids: tuple[int, ...]
    tenants: tuple[str, ...]
    description: str
    group: str | None = None  # the PDU or switch of a pdu_trip / switch_down


@dataclass
class ActiveFault:
    id: str
    kind: str
    start: float
    until: float  # when it ends unless something ends it earlier
    nodes: list[int]
    gpus: list[tuple[int, int]]
    rack: int | None = None
    job_slots: list[int] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    description: str = ""
    timeline: list[tuple[float, str]] = field(default_factory=list)
    end: float | None = None
    value: float = 0.0  # kind-specific magnitude (cap watts, heat degrees...)
    rates: np.ndarray | None = None
    drained_by_sim: bool = False
    group: str | None = None


#: Scripted first hour of ``faults="default"``: (offset seconds, kind), so a new user sees
#: the console react within minutes to every kind of fault (random ones follow at their rates).
FIRST_HOUR: tuple[tuple[float, str], ...] = (
    (2 * MIN, "straggler"), (7 * MIN, "exporter_down"), (13 * MIN, "xid79"),
    (20 * MIN, "rack_cooling"), (25 * MIN, "queue_surge"), (30 * MIN, "job_hang"),
    (35 * MIN, "node_down"), (40 * MIN, "power_cap"), (45 * MIN, "ecc_dbe"),
    (50 * MIN, "nvlink"), (53 * MIN, "switch_down"), (56 * MIN, "pdu_trip"),
)
#: Ended faults stay in the ground truth for a simulated week, and at most this many of them:
#: a demo left running for months would otherwise keep every fault it ever injected (each with
#: its victims' job lists; a queue surge names a third of the nodes' worth of jobs). A week
#: covers what evaluation scores (bench_detection.py runs a simulated day) with room.
RECORD_KEEP_S = 7 * 24 * 3600.0
MAX_RECORDS = 2000
#: Random fault arrivals per simulated hour at 384 nodes, by kind (scaled by fault_rate).
RATES_PER_HOUR = {
    "xid79": 0.25, "rack_cooling": 0.08, "nvlink": 0.15, "job_hang": 0.3, "straggler": 0.3,
    "power_cap": 0.12, "node_down": 0.15, "exporter_down": 0.2, "queue_surge": 0.08, "ecc_dbe": 0.12,
    "pdu_trip": 0.05, "switch_down": 0.05,
}


class FaultInjector:
    """Schedules, applies and ends faults; driven by SimCluster.step under its lock.

    ``records`` holds the active faults and the ended ones of the last ``keep_s`` simulated
    seconds, at most ``max_records`` of those (the oldest go first); ids keep counting.
    """

    def __init__(self, sim: "SimCluster", rng: np.random.Generator, *,
                 keep_s: float = RECORD_KEEP_S, max_records: int = MAX_RECORDS) -> None:
        self.sim = sim
        self.rng = rng
        self.keep_s = float(keep_s)
        self.max_records = int(max_records)
        self.active: list[ActiveFault] = []
        self.records: list[ActiveFault] = []
        self.started = 0  # faults started so far (ids and surge marks count on, never reused)
        self._forget_at = sim.time + 3600.0
        self.script: list[tuple[float, str]] = []
        cfg = sim.config
        t0 = sim.time
        if cfg.faults == "default":
            self.script = [(t0 + off, kind) for off, kind in FIRST_HOUR]
        elif cfg.faults == "all":
            self.script = [(t0 + MIN + i * 5 * MIN, kind) for i, kind in enumerate(FAULT_KINDS)]
        scale = cfg.fault_rate * math.sqrt(cfg.nodes / 384.0) if cfg.faults == "default" else 0.0
        self.rates = {k: v * scale / 3600.0 for k, v in RATES_PER_HOUR.items()}

    # -- public ------------------------------------------------------------------------------
    def ground_truth(self) -> list[FaultRecord]:
        s = self.sim
        out = []
        for f in self.records:
            out.append(FaultRecord(
                id=f.id, kind=f.kind, start=f.start, end=f.end,
                nodes=tuple(s.node_names[i] for i in f.nodes),
                gpus=tuple((s.node_names[n], int(g)) for n, g in f.gpus),
                rack=None if f.rack is None else s.rack_names[f.rack],
                job_ids=tuple(f.job_ids), tenants=tuple(f.tenants), description=f.description,
                group=f.group))
        return out

    def inject(self, kind: str, t: float | None = None) -> FaultRecord | None:
        """Start a fault of ``kind`` now (tests and evaluation use this); None if no victim."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        f = self._start(kind, self.sim.time if t is None else t)
        return None if f is None else self.ground_truth()[self.records.index(f)]

    def step(self, t: float, dt: float) -> None:
        while self.script and self.script[0][0] <= t:
            _, kind = self.script.pop(0)
            self._start(kind, t)
        for kind, rate in self.rates.items():
            if rate > 0 and self.rng.random() < -math.expm1(-rate * dt):
                self._start(kind, t)
        for f in list(self.active):
            self._advance(f, t)
        self._forget(t)

    def _forget(self, t: float) -> None:
        """Drop ended records older than ``keep_s``, then the oldest ended ones beyond
        ``max_records`` (looked at once per simulated hour, or at once when over the cap)."""
        if t < self._forget_at and len(self.records) <= self.max_records:
            return
        self._forget_at = t + 3600.0
        keep = [f for f in self.records if f.end is None or t - f.end <= self.keep_s]
        extra = sum(1 for f in keep if f.end is not None) - self.max_records
        if extra > 0:  # the oldest ended ones (records are in order of start)
            drop = {id(f) for f in [f for f in keep if f.end is not None][:extra]}
            keep = [f for f in keep if id(f) not in drop]
        self.records = keep

    def apply(self, fx: FaultEffects) -> None:
        """Write the effects of all active faults into the per-step modifier arrays."""
        for f in self.active:
            k = f.kind
            if k == "xid79":
                for n, g in f.gpus:
                    fx.dead[n, g] = True
            elif k in ("exporter_down", "node_down", "pdu_trip", "switch_down"):
                fx.noexport[f.nodes] = True
            elif k == "rack_cooling" and f.rack is not None:
                fx.rack_heat[f.rack] = f.value
            elif k == "power_cap":
                fx.power_cap[f.nodes] = f.value
            elif k == "nvlink" and f.rates is not None:
                fx.nvlink_rate[f.nodes[0]] = f.rates
                fx.tensor_factor[f.nodes[0]] *= 0.7
            elif k == "straggler":
                n, g = f.gpus[0]
                fx.tensor_factor[n, g] *= 0.35
                fx.util_factor[n, g] *= 0.6
                fx.clock_factor[n, g] *= 0.72
                peers = self.sim.workload.alloc.get(f.job_slots[0])
                if peers is not None:  # the others wait for it in every collective
                    fx.tensor_factor[peers[0], peers[1]] *= 0.85
                    fx.tensor_factor[n, g] /= 0.85

    # -- victims -----------------------------------------------------------------------------
    def _busy_nodes(self) -> set[int]:
        return {n for f in self.active for n in f.nodes}

    def _healthy_nodes(self) -> np.ndarray:
        s = self.sim
        ok = s.usable_nodes().copy()
        ok[list(self._busy_nodes())] = False
        return np.flatnonzero(ok)

    def _pick_job(self, min_gpus: int) -> int | None:
        s = self.sim
        c = s.workload.store.c
        busy = self._busy_nodes()
        run = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)) & (c["gpus"] >= min_gpus)
                             & ~c["hung"] & (s.time - c["start"] > 5 * MIN))
        cands = [int(x) for x in run if not (set(s.workload.alloc[int(x)][0].tolist()) & busy)]
        if not cands:
            return None
        return cands[int(self.rng.integers(len(cands)))]

    def _pick_busy_gpu(self) -> tuple[int, int] | None:
        slot = self._pick_job(1)
        if slot is None:
            return None
        nodes, gpus = self.sim.workload.alloc[slot]
        k = int(self.rng.integers(len(nodes)))
        return int(nodes[k]), int(gpus[k])

    def _job_facts(self, f: ActiveFault, slots: list[int]) -> None:
        c = self.sim.workload.store.c
        accts = self.sim.accounts
        for slot in slots:
            f.job_slots.append(slot)
            f.job_ids.append(int(c["job_id"][slot]))
            a = accts[int(c["account"][slot])]
            if a not in f.tenants:
                f.tenants.append(a)

    def _jobs_on(self, nodes: list[int]) -> list[int]:
        gj = self.sim.workload.gpu_job[nodes]
        return sorted({int(x) for x in gj[gj >= 0].tolist()})

    # -- start -------------------------------------------------------------------------------
    def _start(self, kind: str, t: float) -> ActiveFault | None:
        s, rng = self.sim, self.rng
        nth = self.started  # ids and surge marks never repeat, however many records are kept
        fid = f"F{nth + 1:04d}"
        dur = lambda lo, hi: t + float(rng.uniform(lo, hi)) * MIN  # noqa: E731
        f: ActiveFault | None = None
        if kind in ("xid79", "ecc_dbe"):
            pick = self._pick_busy_gpu()
            if pick is None:
                return None
            n, g = pick
            f = ActiveFault(fid, kind, t, dur(25, 50) if kind == "xid79" else dur(15, 30), [n], [(n, g)])
            self._job_facts(f, [int(s.workload.gpu_job[n, g])])
            name = s.node_names[n]
            if kind == "xid79":
                s.phys.xid[n, g] = 79
                f.description = f"GPU {g} of {name} fell off the bus (XID 79); its job fails, the node is drained and rebooted"
                f.timeline = [(t + 20, "kill_gpu_job"), (t + 90, "drain")]
            else:
                s.phys.xid[n, g] = 48
                s.phys.ecc_dbe[n, g] += float(rng.integers(1, 3))
                f.description = f"double-bit ECC error on GPU {g} of {name} (XID 48); its job fails, the GPU is reset"
                f.timeline = [(t + 10, "kill_gpu_job"), (t + 60, "drain")]
        elif kind == "rack_cooling":
            racks = [r for r in range(len(s.rack_names))
                     if not any(f2.rack == r for f2 in self.active)]
            if not racks:
                return None
            r = racks[int(rng.integers(len(racks)))]
            nodes = np.flatnonzero(s.node_rack == r).tolist()
            f = ActiveFault(fid, kind, t, dur(30, 60), nodes, [], rack=r, value=float(rng.uniform(26, 34)))
            self._job_facts(f, self._jobs_on(nodes))
            f.description = f"cooling failure in rack {s.rack_names[r]}: inlet air heats up, GPUs throttle"
        elif kind == "nvlink":
            nodes = self._healthy_nodes()
            if len(nodes) == 0:
                return None
            n = int(nodes[int(rng.integers(len(nodes)))])
            rates = np.zeros(s.config.gpus_per_node, np.float32)
            bad = rng.choice(s.config.gpus_per_node, size=int(rng.integers(2, s.config.gpus_per_node + 1)), replace=False)
            rates[bad] = rng.uniform(300, 3000, len(bad))
            f = ActiveFault(fid, kind, t, dur(20, 40), [n], [(n, int(g)) for g in sorted(bad)], rates=rates)
            self._job_facts(f, self._jobs_on([n]))
            f.description = f"NVLink CRC errors on {s.node_names[n]}"
            if rng.random() < 0.5:
                g = int(bad[0])
                s.phys.xid[n, g] = 74
                f.description += f" with XID 74 on GPU {g}; the node is drained"
                f.timeline = [(t + 5 * MIN, "drain")]
        elif kind in ("job_hang", "straggler"):
            slot = self._pick_job(8 if kind == "job_hang" else 2)
            if slot is None:
                return None
            nodes, gpus = s.workload.alloc[slot]
            jid = int(s.workload.store.c["job_id"][slot])
            if kind == "job_hang":
                f = ActiveFault(fid, kind, t, dur(15, 40), sorted(set(nodes.tolist())),
                                [(int(a), int(b)) for a, b in zip(nodes, gpus)])
                s.workload.store.c["hung"][slot] = True
                f.description = f"job {jid} hangs: all {len(gpus)} GPUs idle while allocated; its owner cancels it"
            else:
                k = int(rng.integers(len(nodes)))
                f = ActiveFault(fid, kind, t, dur(30, 60), [int(nodes[k])], [(int(nodes[k]), int(gpus[k]))])
                f.description = f"straggler: GPU {int(gpus[k])} of {s.node_names[int(nodes[k])]} runs far slower than its peers in job {jid}"
            self._job_facts(f, [slot])
        elif kind == "power_cap":
            nodes = self._healthy_nodes()
            if len(nodes) == 0:
                return None
            n = int(nodes[int(rng.integers(len(nodes)))])
            rack = None
            if rng.random() < 0.4:
                rack = int(s.node_rack[n])
                target = np.flatnonzero(s.node_rack == rack).tolist()
            else:
                target = [n]
            f = ActiveFault(fid, kind, t, dur(20, 45), target, [], rack=rack, value=400.0)
            self._job_facts(f, self._jobs_on(target))
            where = f"rack {s.rack_names[rack]}" if rack is not None else s.node_names[n]
            f.description = f"power capped at 400 W per GPU on {where}; clocks drop"
        elif kind in ("node_down", "exporter_down"):
            nodes = self._healthy_nodes()
            if len(nodes) == 0:
                return None
            n = int(nodes[int(rng.integers(len(nodes)))])
            if kind == "node_down":
                f = ActiveFault(fid, kind, t, dur(15, 30), [n], [])
                self._job_facts(f, self._jobs_on([n]))
                f.description = f"{s.node_names[n]} stops responding; Slurm marks it DOWN and its jobs fail"
                f.timeline = [(t + 60, "not_responding"), (t + 120, "down")]
            else:
                f = ActiveFault(fid, kind, t, dur(10, 30), [n], [])
                f.description = f"the GPU exporter of {s.node_names[n]} stops answering; Slurm still sees the node"
        elif kind in ("pdu_trip", "switch_down"):
            f = self._start_group(fid, kind, t, dur)
        elif kind == "queue_surge":
            tenant = int(rng.integers(len(s.accounts)))
            f = ActiveFault(fid, kind, t, t + 180 * MIN, [], [])
            part = s.workload.parts[0]
            count = max(20, s.config.nodes // 3)
            slots = []
            for _ in range(count):
                slots.extend(s.workload.submit(t, part, tenant, surge=nth, allow_extras=False))
            f.job_slots = slots
            f.job_ids = [int(s.workload.store.c["job_id"][x]) for x in slots]
            f.tenants = [s.accounts[tenant]]
            f.value = float(nth)
            f.description = f"queue surge: {len(slots)} jobs from {s.accounts[tenant]} in one burst"
        if f is None:
            return None
        self.active.append(f)
        self.records.append(f)
        self.started += 1
        return f

    def _start_group(self, fid: str, kind: str, t: float,
                     dur: Callable[[float, float], float]) -> ActiveFault | None:
        """A PDU trips (its nodes lose power) or a leaf switch dies (its nodes are cut off)."""
        s = self.sim
        # A group clear of other faults is preferred (so each fault keeps its own ground truth),
        # then one clear of other outages; a switch spans 32 nodes, so on a small cluster it may
        # have to overlap one (`_finish` only restores nodes no other outage holds).
        busy = self._busy_nodes()
        taken = {n for f in self.active if f.kind in _OUTAGES for n in f.nodes}
        every = [(name, m) for name, m in s.group_nodes("pdu" if kind == "pdu_trip" else "switch").items()
                 if m and not any(f.group == name for f in self.active)]
        groups = ([(name, m) for name, m in every if not busy.intersection(m)]
                  or [(name, m) for name, m in every if not taken.intersection(m)] or every)
        if not groups:
            return None
        name, nodes = groups[int(self.rng.integers(len(groups)))]
        where = ", ".join(dict.fromkeys(s.rack_names[int(s.node_rack[n])] for n in nodes))
        if kind == "pdu_trip":
            f = ActiveFault(fid, kind, t, dur(15, 30), list(nodes), [], group=name)
            f.description = (f"PDU {name} trips: its {len(nodes)} nodes ({where}) lose power, Slurm "
                             "marks them DOWN and their jobs fail; power is restored and they reboot")
            f.timeline = [(t + 30, "not_responding_all"), (t + 120, "down_all")]
        else:
            f = ActiveFault(fid, kind, t, dur(10, 25), list(nodes), [], group=name)
            f.description = (f"leaf switch {name} fails: its {len(nodes)} nodes ({where}) stop answering "
                             "Slurm and Prometheus; their GPUs keep running their jobs")
            f.timeline = [(t + 30, "not_responding_all")]
        self._job_facts(f, self._jobs_on(list(nodes)))
        return f

    # -- progress and end ---------------------------------------------------------------------
    def _advance(self, f: ActiveFault, t: float) -> None:
        s = self.sim
        wl = s.workload
        c = wl.store.c
        while f.timeline and f.timeline[0][0] <= t:
            when, what = f.timeline.pop(0)
            if what == "kill_gpu_job":
                n, g = f.gpus[0]
                slot = int(wl.gpu_job[n, g])
                if slot >= 0:
                    wl.end(slot, when, JobState.FAILED, 1, "NonZeroExitCode")
            elif what == "drain":
                n = f.nodes[0]
                if not s.drain[n]:
                    label = {"xid79": "XID 79", "ecc_dbe": "XID 48", "nvlink": "XID 74"}[f.kind]
                    g = f.gpus[0][1]
                    s.set_drain(n, f"{label} on GPU {g}", by_sim=True)
                    f.drained_by_sim = True
            elif what == "not_responding":
                s.not_responding[f.nodes[0]] = True
            elif what == "not_responding_all":
                s.not_responding[f.nodes] = True
            elif what == "down_all":
                s.down[f.nodes] = True
                for slot in self._jobs_on(f.nodes):
                    wl.end(slot, when, JobState.NODE_FAIL, -1, "NodeDown")
            elif what == "down":
                n = f.nodes[0]
                s.down[n] = True
                for slot in self._jobs_on([n]):
                    wl.end(slot, when, JobState.NODE_FAIL, -1, "NodeDown")
        ended = t >= f.until
        if f.kind in ("job_hang", "straggler"):
            slot = f.job_slots[0]
            if c["state"][slot] != int(JobState.RUNNING):
                ended = True
            elif ended and f.kind == "job_hang":
                wl.end(slot, t, JobState.CANCELLED, 0)
        elif f.kind == "queue_surge":
            pend = [x for x in f.job_slots if c["live"][x] and c["surge"][x] == int(f.value)
                    and c["state"][x] == int(JobState.PENDING)]
            if not pend:
                ended = True
            elif ended:
                for x in pend:  # the tenant gives up on what is still queued
                    wl.end(x, t, JobState.CANCELLED, 0)
        if ended:
            self._finish(f, t)

    def _finish(self, f: ActiveFault, t: float) -> None:
        s = self.sim
        for n, g in f.gpus:
            if f.kind in ("xid79", "ecc_dbe", "nvlink"):
                s.phys.xid[n, g] = 0
            if f.kind == "ecc_dbe":
                s.phys.ecc_dbe[n, g] = 0  # volatile counter resets with the GPU
        if f.kind in _OUTAGES:
            held = {n for g in self.active if g is not f and g.kind in _OUTAGES for n in g.nodes}
            free = [n for n in f.nodes if n not in held]
            s.down[free] = False
            s.not_responding[free] = False
        if f.kind == "job_hang" and f.job_slots:
            s.workload.store.c["hung"][f.job_slots[0]] = False
        if f.drained_by_sim:
            s.resume_if_sim_drained(f.nodes[0])
        f.end = t
        self.active.remove(f)

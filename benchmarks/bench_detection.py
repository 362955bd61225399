"""Detection quality and cost on the simulated cluster, scored against its ground truth.

    python benchmarks/bench_detection.py [--nodes 384 4096] [--hours 24] [--tick 30]
                                         [--fault-rate 1.0] [--clean-hours 24] [--seed 7]
                                         [--cost-nodes 4096] [--skip-cost]

For each cluster size it runs the simulator with injected faults of every kind (the scripted
first hour, then random arrivals at ``--fault-rate``) through the real state engine and the
live `AnomalyDetector`, one poll every ``--tick`` simulated seconds (30 s by default, coarser
than the live 2-15 s so a day fits in minutes), and prints per fault kind:

- recall: share of injected faults for which an anomaly of a matching kind touched the fault's
  subject (its GPUs, nodes, rack, jobs or tenant) while the fault lasted (+ 2 polls of grace);
- precision: share of causes of that kind whose subject overlapped a fault of that kind;
- median detection delay (from the fault start to the first matching anomaly), in seconds and
  in polls;
- top-1: for each detected fault, whether the most confident cause touching its subject while
  it lasted had the fault's kind.

Then a fault-free day (``--clean-hours``): every anomaly opened counts as false, reported per
1,000 GPUs per hour. Finally the cost of one detection step at ``--cost-nodes`` x 8 GPUs
(median of repeated steps on real frames). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from console.analytics.anomaly import AnomalyDetector
from console.config import ClusterSettings, SimSettings
from console.model import Anomaly, Cause, Frame
from console.polling import PollResult
from console.sim.cluster import SimCluster
from console.sim.config import FAULT_KINDS, SimConfig
from console.sim.faults import FaultRecord
from console.state import ClusterState

T0 = 1_780_000_000.0  # a fixed epoch: runs are reproducible

#: Which anomaly kinds count as detecting each fault kind.
DETECTS: dict[str, set[str]] = {
    "xid79": {"xid"},
    "ecc_dbe": {"xid", "ecc_dbe"},
    "rack_cooling": {"rack_thermal", "thermal_trend"},
    "nvlink": {"nvlink", "xid"},
    "job_hang": {"job_stall"},
    "straggler": {"straggler"},
    "power_cap": {"power_cap"},
    "node_down": {"node_down", "exporter_silent"},
    "exporter_down": {"exporter_silent"},
    "queue_surge": {"queue_surge"},
    "pdu_trip": {"node_down", "exporter_silent"},
    "switch_down": {"node_down", "exporter_silent"},
}
HARD = ("xid79", "node_down", "exporter_down")


class SimDriver:
    """Simulator -> ClusterState -> detector, synchronously, with simulated time throughout."""

    def __init__(self, nodes: int, seed: int, tick_s: float, faults: str, fault_rate: float,
                 detector: AnomalyDetector | None = None) -> None:
        self.tick = tick_s
        cfg = SimConfig(seed=seed, nodes=nodes, tick_s=min(tick_s, 10.0), t0=T0, faults=faults,
                        fault_rate=fault_rate)
        self.sim = SimCluster(cfg)
        settings = ClusterSettings(name="bench", sim=SimSettings(seed=seed, nodes=nodes, faults=faults,
                                                                 interval_s=tick_s))
        from console.config import TenantSettings

        extra = [TenantSettings(account=t.account, display=t.display, kind=getattr(t.kind, "value", str(t.kind)),
                                subsidy=float(t.subsidy), price_per_gpu_hour=float(t.price_per_gpu_hour))
                 for t in self.sim.tenants]
        self.detector = detector if detector is not None else AnomalyDetector()
        self.state = ClusterState(settings, [("simulator", "simulator", tick_s)], detector=self.detector,
                                  extra_tenants=extra, history_hours=2.0, wall=lambda: self.sim.time)
        self.rid = 0
        self.detect_s: list[float] = []

    def poll(self) -> Frame:
        if self.rid:
            self.sim.step(self.tick)
        self.rid += 1
        t = self.sim.time
        ups = tuple(self.sim.updates())
        self.state.apply(PollResult(source="simulator", kind="simulator", request_id=self.rid,
                                    started_at=t, fetched_at=t, latency_s=0.0, updates=ups))
        return self.state.build_frame(now=t)


@dataclass
class Seen:
    """Everything the detector said during a run, by id, with the times it said it."""

    anomalies: dict[str, Anomaly] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    causes: list[tuple[float, tuple[Cause, ...]]] = field(default_factory=list)
    cause_kind_seen: dict[tuple[str, str], tuple[Cause, float, float]] = field(default_factory=dict)

    def record(self, frame: Frame) -> None:
        t = frame.data_now or frame.time
        for a in frame.anomalies:
            if a.ended_at is not None:
                continue
            self.anomalies[a.id] = a
            self.first.setdefault(a.id, t)
            self.last[a.id] = t
        self.causes.append((t, frame.causes))
        for c in frame.causes:
            k = (c.id, c.kind)
            prev = self.cause_kind_seen.get(k)
            self.cause_kind_seen[k] = (c, prev[1] if prev else t, t)


def touches(rec: FaultRecord, *, node: str | None = None, gpu: int | None = None, job: int | None = None,
            rack: str | None = None, tenant: str | None = None, subject_level: str = "",
            subject_key: str = "") -> bool:
    if node is not None and node in rec.nodes:
        if gpu is None or not rec.gpus or (node, gpu) in rec.gpus or rec.kind not in ("xid79", "ecc_dbe", "straggler"):
            return True
    if job is not None and job in rec.job_ids:
        return True
    if rack is not None and rec.rack is not None and rack == rec.rack:
        return True
    if subject_level == "rack" and rec.rack is not None and subject_key == rec.rack:
        return True
    if subject_level == "tenant" and subject_key in rec.tenants and rec.kind == "queue_surge":
        return True  # a tenant-wide hypothesis cannot explain one GPU's or node's fault
    if rec.kind == "queue_surge" and subject_level in ("cluster", "partition"):
        return True
    if tenant is not None and rec.kind == "queue_surge" and tenant in rec.tenants:
        return True
    return False


def cause_touches(rec: FaultRecord, c: Cause) -> bool:
    lvl, key = c.subject.level, c.subject.key
    if lvl == "gpu":
        node, _, g = key.rpartition("/")
        return touches(rec, node=node, gpu=int(g) if g.isdigit() else None)
    if lvl == "node":
        return touches(rec, node=key) or (rec.rack is not None and bool(set(c.nodes) & set(rec.nodes)) and rec.kind in ("rack_cooling", "power_cap"))
    if lvl == "job":
        return touches(rec, job=int(key)) if key.isdigit() else False
    if lvl in ("rack", "row", "pdu", "switch"):  # a group cause touches the faults on its nodes
        return (lvl == "rack" and rec.rack == key) or (rec.group is not None and rec.group == key) \
            or bool(set(c.nodes) & set(rec.nodes))
    return touches(rec, subject_level=lvl, subject_key=key)


def score_run(truth: list[FaultRecord], seen: Seen, end_t: float, tick: float,
              verbose: bool = False) -> dict:
    grace = 2 * tick
    per_kind: dict[str, dict] = defaultdict(lambda: {"n": 0, "hit": 0, "delays": [], "top1": 0, "top1_n": 0,
                                                      "causes": 0, "causes_ok": 0})
    for rec in truth:
        k = per_kind[rec.kind]
        k["n"] += 1
        end = (rec.end if rec.end is not None else end_t) + grace
        best = None
        for aid, a in seen.anomalies.items():
            if a.kind not in DETECTS[rec.kind]:
                continue
            t1, t2 = seen.first[aid], seen.last[aid]
            if t2 < rec.start or t1 > end:
                continue
            if touches(rec, node=a.node, gpu=a.gpu, job=a.job_id, rack=a.rack, tenant=a.tenant,
                       subject_level=a.subject.level, subject_key=a.subject.key):
                d = max(0.0, t1 - rec.start)
                best = d if best is None else min(best, d)
        if best is None and verbose:
            print(f"  missed {rec.id} {rec.kind} at +{(rec.start - T0) / 60:.0f} min: {rec.description}")
        if best is not None:
            k["hit"] += 1
            k["delays"].append(best)
            # top-1: the most confident cause touching this fault, at each time it had any.
            votes = []
            for t, causes in seen.causes:
                if t < rec.start or t > end:
                    continue
                touching = [c for c in causes if cause_touches(rec, c)]
                if touching:
                    top = max(touching, key=lambda c: (c.confidence, -int(c.severity)))
                    votes.append(top.kind == rec.kind)
            k["top1_n"] += 1
            if votes and sum(votes) * 2 >= len(votes):
                k["top1"] += 1
            elif verbose:
                print(f"  top-1 wrong for {rec.id} {rec.kind}: {rec.description}")
    # precision, per cause kind (a cause counts once per id and kind)
    for (cid, kind), (c, t1, t2) in seen.cause_kind_seen.items():
        if kind not in FAULT_KINDS:
            continue
        k = per_kind[kind]
        k["causes"] += 1
        ok = any(r.kind == kind and t2 >= r.start - grace and t1 <= (r.end if r.end is not None else end_t) + grace
                 and cause_touches(r, c) for r in truth)
        k["causes_ok"] += int(ok)
        if not ok and verbose:
            print(f"  false cause {kind} at +{(t1 - T0) / 60:.0f} min for {(t2 - t1) / 60:.1f} min: {c.title}; "
                  f"{' | '.join(c.evidence[:3])}")
    return per_kind


def run_faulty(nodes: int, hours: float, tick: float, seed: int, fault_rate: float,
               verbose: bool = False) -> None:
    drv = SimDriver(nodes, seed, tick, "default", fault_rate)
    seen = Seen()
    polls = int(hours * 3600 / tick)
    t_start = time.perf_counter()
    det_cost: list[float] = []
    for _ in range(polls):
        frame = drv.poll()
        seen.record(frame)
    wall = time.perf_counter() - t_start
    truth = drv.sim.ground_truth
    per_kind = score_run(truth, seen, drv.sim.time, tick, verbose)
    n_gpus = nodes * drv.sim.config.gpus_per_node
    print(f"\n== {nodes} nodes ({n_gpus} GPUs), {hours:g} h simulated at {tick:g} s polls, "
          f"{len(truth)} faults injected, run in {wall:.0f} s ==")
    print(f"{'fault kind':<15}{'faults':>7}{'recall':>8}{'precision':>11}{'causes':>8}"
          f"{'median delay s':>16}{'polls':>7}{'top-1':>8}")
    tot = {"top1": 0, "top1_n": 0, "hit": 0, "n": 0}
    for kind in FAULT_KINDS:
        k = per_kind.get(kind)
        if not k or (k["n"] == 0 and k["causes"] == 0):
            print(f"{kind:<15}{0:>7}{'-':>8}{'-':>11}{0:>8}{'-':>16}{'-':>7}{'-':>8}")
            continue
        rec = k["hit"] / k["n"] if k["n"] else float("nan")
        prec = k["causes_ok"] / k["causes"] if k["causes"] else float("nan")
        med = statistics.median(k["delays"]) if k["delays"] else float("nan")
        top1 = k["top1"] / k["top1_n"] if k["top1_n"] else float("nan")
        for key in tot:
            tot[key] += k[key]
        print(f"{kind:<15}{k['n']:>7}{rec:>8.2f}{prec:>11.2f}{k['causes']:>8}{med:>16.0f}"
              f"{med / tick:>7.1f}{top1:>8.2f}")
    print(f"{'all':<15}{tot['n']:>7}{tot['hit'] / max(tot['n'], 1):>8.2f}{'':>11}{'':>8}{'':>16}{'':>7}"
          f"{tot['top1'] / max(tot['top1_n'], 1):>8.2f}")
    other = defaultdict(int)
    for (cid, kind), _ in seen.cause_kind_seen.items():
        if kind not in FAULT_KINDS:
            other[kind] += 1
    if other:
        print("other causes raised: " + ", ".join(f"{k} {v}" for k, v in sorted(other.items())))
    # Series changes are anomalies, not causes: report how many each level raised and, for nodes,
    # how many fell on a node while a fault injected there lasted (the rest would be false).
    levels: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for aid, a in seen.anomalies.items():
        if a.kind != "series_change":
            continue
        lv = levels[a.subject.level]
        lv[0] += 1
        t0, t1 = seen.first[aid], seen.last[aid]
        lv[1] += any(touches(r, node=a.node) and r.start <= t1 and (r.end is None or r.end + 2 * tick >= t0)
                     for r in truth) if a.node else 0
    if levels:
        print("series changes raised: " + ", ".join(
            f"{k} {v[0]}" + (f" ({v[1]} on a node during a fault there)" if k == "node" else "")
            for k, v in sorted(levels.items())))


def run_clean(nodes: int, hours: float, tick: float, seed: int) -> None:
    drv = SimDriver(nodes, seed, tick, "none", 0.0)
    seen = Seen()
    polls = int(hours * 3600 / tick)
    t0 = time.perf_counter()
    for _ in range(polls):
        seen.record(drv.poll())
    wall = time.perf_counter() - t0
    n_gpus = nodes * drv.sim.config.gpus_per_node
    kinds = defaultdict(int)
    for a in seen.anomalies.values():
        kinds[a.kind] += 1
    rate = len(seen.anomalies) / (n_gpus / 1000.0) / hours
    print(f"\n== fault-free: {nodes} nodes, {hours:g} h at {tick:g} s polls (run in {wall:.0f} s) ==")
    print(f"false anomalies: {len(seen.anomalies)} = {rate:.2f} per 1,000 GPUs per hour "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'})")


def run_cost(nodes: int, seed: int, steps: int = 30) -> None:
    drv = SimDriver(nodes, seed, 15.0, "default", 1.0, detector=None)
    drv.state.detector = None
    frames = []
    for _ in range(8):
        frames.append(drv.poll())
    det = AnomalyDetector()
    from dataclasses import replace

    costs = []
    t = frames[-1].data_now or frames[-1].time
    # Warm up first: the per-node baselines judge nothing until they hold min_blocks blocks of
    # block_s each (16 minutes at 15 s polls); the steady state is what costs.
    ns = det.config.node_series
    warm = int(ns.min_blocks * ns.block_s / 15.0) + 8
    for i in range(warm + steps):
        f = replace(frames[i % len(frames)], data_now=t + 15.0 * (i + 1))
        t0 = time.perf_counter()
        det.step(f)
        costs.append(time.perf_counter() - t0)
    costs = costs[warm:]
    print(f"\n== detection cost at {nodes} nodes x 8 = {nodes * 8} GPUs: median {1000 * statistics.median(costs):.1f} ms, "
          f"max {1000 * max(costs):.1f} ms per poll ({len(costs)} steps) ==")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[384, 4096])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--clean-hours", type=float, default=24.0)
    ap.add_argument("--tick", type=float, default=30.0)
    ap.add_argument("--fault-rate", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cost-nodes", type=int, default=4096)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-clean", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="list missed faults and false causes")
    args = ap.parse_args(argv)
    np.seterr(all="ignore")
    for n in args.nodes:
        run_faulty(n, args.hours, args.tick, args.seed, args.fault_rate, args.verbose)
    if not args.skip_clean:
        for n in args.nodes:
            run_clean(n, args.clean_hours, args.tick, args.seed)
    if not args.skip_cost:
        run_cost(args.cost_nodes, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cause analysis: from many open anomalies to a few ranked hypotheses with a blast radius.

Anomalies are symptoms; an operator wants the thing behind them. The rules here follow the
topology and the workload (FACTS 7.3, "blame the parent"), in order of how conclusive the
evidence is, and each hypothesis *absorbs* the symptoms it explains so that one fault gives
one cause, not thirty:

0. where the site config names PDUs and switches: the nodes of one PDU (or one switch) down or
   silent together, while nodes elsewhere are fine, are that PDU's lost power (or that switch's
   failure), one hypothesis absorbing every node's symptoms;
1. a node Slurm marks down explains everything seen on that node and its jobs' stalls;
2. a fatal XID explains its GPU's silence and its job's stall (XID 79 -> fell off the bus,
   XID 48 / ECC DBE -> memory, XID 74 -> NVLink, which joins the node's CRC errors);
3. hot GPUs concentrated in one rack, or a rack hotter than the others at the same load,
   is the rack's cooling, not 31 separate GPUs; several hot racks of one row (rows named in the
   site config) while other rows are fine are the row's cooling;
4. power capping on several nodes of one rack is the rack's power feed; on one node, the node;
5. an exporter silent while Slurm still sees the node is a monitoring fault (after
   ``exporter_confirm_s``: a dying node also starts with a silent exporter, and Slurm needs a
   moment to mark it not responding);
6. a job whose GPUs all stall is a hung job; a slow GPU among its peers is a straggler;
7. a pending-queue jump of one tenant is that tenant's surge.

Confidence is a prior per rule raised a little by corroborating symptoms. The blast radius
counts GPUs, nodes, jobs and tenants touched, and the GPU-hours at risk: for each affected
job, its GPUs times the hours it has run (work lost if it dies without a checkpoint), each
job capped at ``gpu_hours_cap_h``.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from console.analytics import xid as xid_catalogue
from console.model import Anomaly, Cause, Frame, Severity, Subject


@dataclass(frozen=True)
class CauseSettings:
    rack_min_gpus: int = 4  # hot GPUs needed in a rack to blame the rack
    rack_min_share: float = 0.25  # ... and this share of the rack's GPUs
    rack_concentration: float = 5.0  # ... and this many times the hot GPUs of an average other rack
    exporter_confirm_s: float = 60.0
    power_rack_min_nodes: int = 2
    group_min_nodes: int = 2  # nodes of a PDU / switch down or silent needed to blame it
    group_min_share: float = 0.75  # ... and this share of its nodes ("nearly all")
    group_max_elsewhere: float = 0.25  # ... while at most this share of the other nodes are
    row_min_racks: int = 2  # hot racks needed in a row to blame the row
    row_min_share: float = 0.5  # ... and this share of the row's racks
    gpu_hours_cap_h: float = 24.0
    max_causes: int = 50


PRIOR: Mapping[str, float] = {
    "node_down": 0.95, "xid79": 0.95, "ecc_dbe": 0.9, "nvlink": 0.85, "rack_cooling": 0.8,
    "power_cap": 0.8, "exporter_down": 0.7, "job_hang": 0.8, "straggler": 0.7, "queue_surge": 0.75,
    "xid": 0.6, "gpu_thermal": 0.5, "node_flap": 0.6, "gpu_outlier": 0.4,
    "pdu_trip": 0.9, "switch_down": 0.85, "row_cooling": 0.8,
}

ACTIONS: Mapping[str, str] = {
    "node_down": "Check the node's BMC/console and power; when it is back, resume it in Slurm "
                 "(scontrol update state=RESUME) and requeue the failed jobs",
    "rack_cooling": "Check the rack's cooling (CDU, rear-door heat exchanger, fans, inlet temperature); "
                    "drain the rack's nodes if temperatures keep rising",
    "power_cap": "Check the PDU / power-brake events and the enforced power limit (nvidia-smi -q -d POWER); "
                 "restore the limit or move work off the capped nodes",
    "exporter_down": "Restart dcgm-exporter on the node and check its scrape target in Prometheus; "
                     "the node's jobs are unaffected but unmonitored",
    "job_hang": "Tell the job owner (NCCL timeout or a stuck checkpoint are the usual suspects); "
                "cancel or requeue the job if it stays idle",
    "straggler": "Check the slow GPU (clocks, throttle reasons, PCIe/NVLink, dcgmi diag); drain the node "
                 "after the job if it stays slow",
    "queue_surge": "Check the tenant's submissions (a runaway script or array?) and their fair-share; "
                   "contact the tenant before other tenants starve",
    "gpu_thermal": "Check the GPU's fans/heatsink and the node's airflow; drain if it reaches the limit",
    "node_flap": "Drain the node and check its network and slurmd; a flapping node kills jobs",
    "gpu_outlier": "Compare the GPU with its peers in the drill-down; run dcgmi diag if it persists",
    "pdu_trip": "Check the PDU and what feeds it (tripped breaker, overload, UPS or input failure); when "
                "power is back, check the nodes boot, resume them in Slurm and requeue the failed jobs",
    "switch_down": "Check the switch (power, console, uplinks, recent changes) and fail over or replace it; "
                   "the nodes behind it may still be running their jobs, so do not reboot them",
    "row_cooling": "Check the row's cooling (CRAH/CRAC units, chilled-water loop, aisle containment); "
                   "drain the row's hottest racks if temperatures keep rising",
}

GROUP_CAUSE = {"pdu": "pdu_trip", "switch": "switch_down"}


@dataclass
class _Hyp:
    kind: str
    subject: Subject
    title: str
    action: str
    anomalies: list[Anomaly] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)
    gpus: set[tuple[str, int]] = field(default_factory=set)
    jobs: set[int] = field(default_factory=set)
    severity: Severity = Severity.WARNING
    support: int = 0  # corroborating symptoms absorbed

    def add(self, a: Anomaly, *, support: bool = False) -> None:
        self.anomalies.append(a)
        self.evidence.append(a.evidence)
        if a.node:
            self.nodes.add(a.node)
        if a.node and a.gpu is not None:
            self.gpus.add((a.node, a.gpu))
        if a.job_id:
            self.jobs.add(int(a.job_id))
        self.severity = min(self.severity, a.severity)
        if support:
            self.support += 1


class _Blast:
    """Jobs, tenants and GPU-hours touched by a set of nodes / GPUs / jobs, from the frame."""

    def __init__(self, frame: Frame, now: float, cap_h: float) -> None:
        self.frame = frame
        self.now = now
        self.cap_h = cap_h
        topo = frame.topology
        self.gpn = topo.gpus_per_node
        self.index = _TOPO.get(topo).index
        self.job_id = np.asarray(frame.gpu.job_id)
        self.job_row = np.asarray(frame.gpu.job_row)
        jobs = frame.jobs
        self.row_of_job = {int(j): i for i, j in enumerate(jobs.job_id)} if len(jobs) else {}

    def gpu_indices(self, nodes: Iterable[str], gpus: Iterable[tuple[str, int]]) -> np.ndarray:
        out: list[np.ndarray] = []
        for n in nodes:
            i = self.index.get(n)
            if i is not None:
                out.append(np.arange(i * self.gpn, (i + 1) * self.gpn))
        for n, g in gpus:
            i = self.index.get(n)
            if i is not None and 0 <= g < self.gpn:
                out.append(np.array([i * self.gpn + g]))
        return np.unique(np.concatenate(out)) if out else np.zeros(0, np.int64)

    def measure(self, h: _Hyp, whole_nodes: bool) -> tuple[int, tuple[int, ...], tuple[str, ...], float]:
        exists = self.frame.topology.gpu_exists()
        idx = self.gpu_indices(h.nodes if whole_nodes else (), h.gpus)
        idx = idx[exists[idx]] if idx.size else idx
        jobs = set(h.jobs)
        rows = self.job_row[idx] if idx.size else np.zeros(0, np.int64)
        jobs.update(int(self.job_id[i]) for i in idx if self.job_id[i] > 0)
        all_rows = {int(r) for r in rows if r >= 0} | {self.row_of_job[j] for j in jobs if j in self.row_of_job}
        fj = self.frame.jobs
        tenants: set[str] = set()
        hours = 0.0
        for r in all_rows:
            acct = fj.accounts[int(fj.account[r])] if len(fj.accounts) else ""
            if acct:
                tenants.add(acct)
            st = float(fj.start_time[r])
            if np.isfinite(st):
                hours += float(fj.gpus[r]) * min(max(self.now - st, 0.0) / 3600.0, self.cap_h)
        gpus = int(idx.size) if idx.size else len(h.gpus)
        return gpus, tuple(sorted(jobs)), tuple(sorted(tenants)), hours


class _TopoCache:
    """Name lookups that only change with the topology: built once per topology object."""

    def __init__(self) -> None:
        self.key: object = None
        self.index: dict[str, int] = {}
        self.rack_of: dict[str, str] = {}
        self.rack_nodes: dict[str, set[str]] = {}
        self.row_of: dict[str, str] = {}  # rack -> row
        self.row_racks: dict[str, list[str]] = {}
        self.groups: list[tuple[str, str, frozenset[str]]] = []  # (kind, name, node names)

    def get(self, topo) -> "_TopoCache":
        if self.key is not topo:
            self.key = topo
            self.index = topo.node_index()
            racks = topo.rack_names
            self.rack_of = ({n: racks[int(topo.node_rack[i])] for n, i in self.index.items()}
                            if len(racks) else {})
            self.rack_nodes = {}
            for n, r in self.rack_of.items():
                self.rack_nodes.setdefault(r, set()).add(n)
            rows = getattr(topo, "row_names", ())
            rack_row = np.asarray(getattr(topo, "rack_row", np.zeros(0, np.int32)))
            self.row_of = {r: rows[int(k)] for r, k in zip(racks, rack_row.tolist()) if 0 <= k < len(rows)}
            self.row_racks = {}
            for r, row in self.row_of.items():
                self.row_racks.setdefault(row, []).append(r)
            names = topo.node_names
            self.groups = [(kind, name, frozenset(names[int(i)] for i in topo.group_members(g)))
                           for g, (kind, name) in enumerate(zip(getattr(topo, "group_kinds", ()),
                                                                getattr(topo, "group_names", ())))]
        return self


_TOPO = _TopoCache()


def _xid_code(a: Anomaly, details: Mapping[str, str]) -> int:
    d = details.get(a.id, "")
    if d.startswith("xid="):
        try:
            return int(d.split("=", 1)[1].split(",")[0])
        except ValueError:
            return 0
    return 0


def _hhmm(t: float) -> str:
    return _time.strftime("%H:%M", _time.localtime(t))


def analyse(anomalies: Sequence[Anomaly], frame: Frame, now: float,
            settings: CauseSettings | None = None,
            details: Mapping[str, str] | None = None) -> tuple[Cause, ...]:
    """Rank hypotheses for the open anomalies; ``details`` maps anomaly id to its detector hint."""
    s = settings or CauseSettings()
    details = details or {}
    open_ = [a for a in anomalies if a.ended_at is None]
    if not open_:
        return ()
    used: set[str] = set()
    hyps: list[_Hyp] = []
    by_kind: dict[str, list[Anomaly]] = {}
    for a in open_:
        by_kind.setdefault(a.kind, []).append(a)
    topo = frame.topology
    tc = _TOPO.get(topo)
    rack_of = tc.rack_of
    job_nodes: dict[int, set[str]] = {}
    fj = frame.jobs
    stalled = {int(a.job_id) for a in open_ if a.kind == "job_stall" and a.job_id}
    if stalled and len(fj.alloc_job):
        # Only the stalled jobs' nodes are needed: no Python loop over every allocation.
        jids = fj.job_id[fj.alloc_job]
        pick = np.flatnonzero(np.isin(jids, np.fromiter(stalled, np.int64)))
        for j, n in zip(jids[pick].tolist(), fj.alloc_node[pick].tolist()):
            job_nodes.setdefault(int(j), set()).add(fj.alloc_node_names[n])

    def absorb(h: _Hyp, pred) -> None:
        for a in open_:
            if a.id not in used and pred(a):
                h.add(a, support=True)
                used.add(a.id)

    def on_nodes(nodes: set[str], kinds: set[str] | None = None):
        def pred(a: Anomaly) -> bool:
            if kinds is not None and a.kind not in kinds:
                return False
            if a.node in nodes:
                return True
            return a.kind == "job_stall" and a.job_id is not None and bool(job_nodes.get(a.job_id, set()) & nodes)
        return pred

    # 0. PDUs and switches: (nearly) all of one group's nodes down or silent, the rest fine
    if tc.groups:
        _groups(open_, tc, topo.n_nodes, s, hyps, used, absorb, on_nodes)

    # 1. nodes down
    for a in by_kind.get("node_down", []):
        if a.id in used:
            continue
        h = _Hyp("node_down", Subject("node", a.node or a.subject.key),
                 f"node {a.node} is down", ACTIONS["node_down"])
        h.add(a)
        used.add(a.id)
        absorb(h, on_nodes({a.node or ""}))
        hyps.append(h)

    # 2. XIDs and ECC, per GPU
    for a in by_kind.get("xid", []) + by_kind.get("ecc_dbe", []):
        if a.id in used:
            continue
        code = _xid_code(a, details) if a.kind == "xid" else 48
        if code == 74:
            continue  # joins the node's NVLink hypothesis below
        info = xid_catalogue.info(code)
        if code == 79:
            kind, title = "xid79", f"node {a.node} GPU {a.gpu} fell off the bus (XID 79): drain and reboot"
        elif code in (48, 94, 95, 140, 63, 64, 92):
            kind, title = "ecc_dbe", f"node {a.node} GPU {a.gpu}: uncorrectable memory error ({xid_catalogue.describe(code)})"
        elif info.fatal:
            kind, title = f"xid{code}", f"node {a.node} GPU {a.gpu}: fatal {xid_catalogue.describe(code)}"
        else:
            kind, title = "xid", f"node {a.node} GPU {a.gpu}: {xid_catalogue.describe(code)}"
        h = _Hyp(kind, Subject("gpu", f"{a.node}/{a.gpu}"), title, info.action)
        h.add(a)
        used.add(a.id)
        gpu_key = (a.node, a.gpu)
        absorb(h, lambda b, k=gpu_key: (b.node, b.gpu) == k and b.kind in ("xid", "ecc_dbe"))
        absorb(h, lambda b, j=a.job_id: j is not None and b.job_id == j and b.kind in ("job_stall", "straggler"))
        absorb(h, lambda b, n=a.node: b.node == n and b.kind == "xid_burst")
        if kind in ("xid79", "ecc_dbe") or info.fatal:
            h.severity = Severity.CRITICAL
        hyps.append(h)

    # 3. NVLink per node (CRC errors and XID 74)
    nv_nodes: dict[str, _Hyp] = {}
    for a in by_kind.get("nvlink", []) + [x for x in by_kind.get("xid", []) if _xid_code(x, details) == 74]:
        if a.id in used or not a.node:
            continue
        h = nv_nodes.get(a.node)
        if h is None:
            h = _Hyp("nvlink", Subject("node", a.node), f"NVLink errors on node {a.node}",
                     xid_catalogue.info(74).action)
            nv_nodes[a.node] = h
            hyps.append(h)
        h.add(a, support=bool(h.anomalies))
        used.add(a.id)
    for n, h in nv_nodes.items():
        absorb(h, on_nodes({n}, {"straggler", "gpu_outlier", "job_stall", "xid_burst"}))
    if len(nv_nodes) >= 3:
        for h in nv_nodes.values():
            h.evidence.append(f"{len(nv_nodes)} nodes report NVLink errors at once: suspect the NVSwitch fabric")

    # 4. racks: cooling
    thermal_kinds = {"thermal_trend", "gpu_outlier"}
    hot = [a for a in open_ if a.id not in used and a.kind == "thermal_trend"]
    hot_by_rack: dict[str, list[Anomaly]] = {}
    for a in hot:
        r = a.rack or rack_of.get(a.node or "")
        if r:
            hot_by_rack.setdefault(r, []).append(a)
    rack_gpus = {}
    if len(topo.rack_names):
        counts = np.bincount(np.asarray(topo.node_rack, np.int64), weights=np.asarray(topo.node_gpu_count, np.float64),
                             minlength=len(topo.rack_names))
        rack_gpus = {r: int(c) for r, c in zip(topo.rack_names, counts)}
    rack_hyp: dict[str, _Hyp] = {}
    racks_flagged = {a.rack or a.subject.key: a for a in by_kind.get("rack_thermal", [])}
    n_racks = max(len(topo.rack_names), 1)
    row_hyp = _rows(hot_by_rack, racks_flagged, tc, s, absorb, used) if tc.row_of else {}
    hyps.extend(row_hyp.values())
    in_hot_row = {r for row in row_hyp for r in tc.row_racks.get(row, [])}
    for r, lst in hot_by_rack.items():
        if r in in_hot_row:
            continue
        # Concentrated: enough of the rack, and far above what an average rack shows elsewhere.
        elsewhere = (len(hot) - len(lst)) / max(n_racks - 1, 1)
        if (r not in racks_flagged and len(lst) >= s.rack_min_gpus
                and len(lst) >= s.rack_min_share * max(rack_gpus.get(r, 0), 1)
                and len(lst) >= s.rack_concentration * max(elsewhere, 1.0)):
            racks_flagged[r] = lst[0]
    for r, a0 in racks_flagged.items():
        if r in in_hot_row:
            continue
        h = _Hyp("rack_cooling", Subject("rack", r), f"rack {r} cooling", ACTIONS["rack_cooling"])
        if a0.kind == "rack_thermal":
            h.add(a0)
            used.add(a0.id)
        h.nodes |= tc.rack_nodes.get(r, set())
        absorb(h, lambda b, r=r: (b.rack or rack_of.get(b.node or "")) == r
               and b.kind in thermal_kinds | {"straggler", "power_cap"})
        n_hot = sum(1 for b in h.anomalies if b.kind == "thermal_trend")
        if a0.kind == "rack_thermal":
            d = details.get(a0.id, "")
            if d.startswith("hot_gpus="):
                n_hot = max(n_hot, int(d.split("=", 1)[1]))
        elsewhere = sum(len(v) for k, v in hot_by_rack.items() if k != r)
        h.evidence.insert(0, f"{n_hot} GPUs in {r} hot or heating, {elsewhere} elsewhere")
        rack_hyp[r] = h
        hyps.append(h)
    for a in hot:
        if a.id in used:
            continue
        h = _Hyp("gpu_thermal", Subject("gpu", f"{a.node}/{a.gpu}"),
                 f"node {a.node} GPU {a.gpu} overheating", ACTIONS["gpu_thermal"])
        h.add(a)
        used.add(a.id)
        hyps.append(h)

    # 5. power capping, by rack when several nodes of one rack are capped
    caps = [a for a in by_kind.get("power_cap", []) if a.id not in used]
    cap_by_rack: dict[str, list[Anomaly]] = {}
    for a in caps:
        cap_by_rack.setdefault(a.rack or rack_of.get(a.node or "", "") or "", []).append(a)
    for r, lst in cap_by_rack.items():
        groups = [lst] if (r and len(lst) >= s.power_rack_min_nodes) else [[a] for a in lst]
        for g in groups:
            if len(g) > 1:
                h = _Hyp("power_cap", Subject("rack", r),
                         f"rack {r} power capped ({len(g)} nodes): PDU or power brake", ACTIONS["power_cap"])
            else:
                h = _Hyp("power_cap", Subject("node", g[0].node or ""), f"node {g[0].node} power capped",
                         ACTIONS["power_cap"])
            for a in g:
                h.add(a, support=len(h.anomalies) > 0)
                used.add(a.id)
            absorb(h, on_nodes({a.node or "" for a in g}, {"straggler", "gpu_outlier"}))
            hyps.append(h)

    # 6. exporters
    for a in by_kind.get("exporter_silent", []):
        if a.id in used or now - a.started_at < s.exporter_confirm_s:
            continue
        h = _Hyp("exporter_down", Subject("node", a.node or ""),
                 f"GPU exporter on {a.node} is down (the node itself is up in Slurm)", ACTIONS["exporter_down"])
        h.add(a)
        used.add(a.id)
        hyps.append(h)

    # 7. jobs
    for a in by_kind.get("job_stall", []):
        if a.id in used:
            continue
        h = _Hyp("job_hang", Subject("job", str(a.job_id)),
                 f"job {a.job_id} hung ({a.evidence.split(' of job')[0].replace('all ', 'all ')} stalled since "
                 f"{_hhmm(a.started_at)}, NCCL or checkpoint)", ACTIONS["job_hang"])
        h.add(a)
        used.add(a.id)
        h.nodes |= job_nodes.get(int(a.job_id or 0), set())
        absorb(h, lambda b, j=a.job_id: b.job_id == j and b.kind in ("straggler", "gpu_outlier"))
        hyps.append(h)
    for a in by_kind.get("straggler", []):
        if a.id in used:
            continue
        h = _Hyp("straggler", Subject("gpu", f"{a.node}/{a.gpu}"),
                 f"straggler: node {a.node} GPU {a.gpu} slows job {a.job_id}", ACTIONS["straggler"])
        h.add(a)
        used.add(a.id)
        absorb(h, lambda b, k=(a.node, a.gpu): (b.node, b.gpu) == k and b.kind == "gpu_outlier")
        hyps.append(h)

    # 8. queue surges: the tenant explains its partition's and the cluster's jump
    surges = [a for a in by_kind.get("queue_surge", []) if a.id not in used]
    tenants = [a for a in surges if a.subject.level == "tenant"]
    for a in tenants + [a for a in surges if a.subject.level != "tenant"]:
        if a.id in used:
            continue
        h = _Hyp("queue_surge", a.subject, f"queue surge from {a.subject.level} {a.subject.key}",
                 ACTIONS["queue_surge"])
        h.add(a)
        used.add(a.id)
        if a.subject.level == "tenant":
            absorb(h, lambda b: b.kind == "queue_surge" and b.subject.level != "tenant")
        hyps.append(h)

    # 9. what is left: flapping nodes, lone outliers, XID bursts
    for a in open_:
        if a.id in used or a.kind in ("series_change", "exporter_silent"):
            continue
        kind = {"node_flap": "node_flap", "xid_burst": "xid", "gpu_outlier": "gpu_outlier"}.get(a.kind)
        if kind is None:
            continue
        h = _Hyp(kind, a.subject, a.evidence, ACTIONS.get(kind, "Investigate in the drill-down"))
        h.add(a)
        used.add(a.id)
        hyps.append(h)

    # Blast radius and ranking.
    blast = _Blast(frame, now, s.gpu_hours_cap_h)
    out: list[Cause] = []
    for h in hyps:
        whole = h.kind in ("node_down", "rack_cooling", "power_cap", "nvlink", "exporter_down", "node_flap",
                           "pdu_trip", "switch_down", "row_cooling")
        if h.kind == "job_hang":
            whole = False
        gpus, jobs, tenants_, hours = blast.measure(h, whole)
        if h.kind == "job_hang" and jobs:
            r = blast.row_of_job.get(jobs[0])
            if r is not None:
                gpus = int(frame.jobs.gpus[r])
        conf = min(0.99, PRIOR.get(h.kind, 0.6) + 0.02 * min(h.support, 5))
        if h.kind == "rack_cooling":
            n_hot = sum(1 for b in h.anomalies if b.kind in ("thermal_trend", "rack_thermal"))
            conf = min(0.99, conf + (0.1 if any(b.kind == "rack_thermal" for b in h.anomalies) and n_hot > 1 else 0.0))
        title = h.title
        if h.kind in ("rack_cooling", "row_cooling"):
            title = (f"{h.subject.level} {h.subject.key} cooling: {h.evidence[0]}; {len(jobs)} jobs, "
                     f"{len(tenants_)} tenants, {hours:.0f} GPU-hours at risk")
        elif h.kind in ("pdu_trip", "switch_down"):
            title = f"{h.title}; {len(jobs)} jobs, {len(tenants_)} tenants, {hours:.0f} GPU-hours at risk"
        evidence = tuple(dict.fromkeys(h.evidence))[:20]
        started = min(a.started_at for a in h.anomalies) if h.anomalies else now
        out.append(Cause(
            id=f"C:{h.kind}:{h.subject.level}:{h.subject.key}", title=title, kind=h.kind,
            confidence=float(conf), subject=h.subject, evidence=evidence, action=h.action,
            started_at=float(started), gpus=int(gpus), nodes=tuple(sorted(h.nodes)), jobs=jobs,
            tenants=tenants_, gpu_hours_at_risk=float(hours),
            anomaly_ids=tuple(a.id for a in h.anomalies), severity=h.severity))
    out.sort(key=lambda c: (int(c.severity), -c.confidence, -c.gpus, c.started_at))
    return tuple(out[: s.max_causes])


def _groups(open_: Sequence[Anomaly], tc: _TopoCache, n_nodes: int, s: CauseSettings, hyps: list[_Hyp],
            used: set[str], absorb: Callable[..., None], on_nodes: Callable[..., Callable]) -> None:
    """One hypothesis per PDU / switch whose nodes are (nearly) all down or silent, others fine.

    The group explaining the most nodes goes first, so a switch's outage is not also blamed on
    the PDUs inside it; a later group only counts nodes no earlier group explained.
    """
    down = {a.node for a in open_ if a.node and a.kind == "node_down"}
    silent = {a.node for a in open_ if a.node and a.kind == "exporter_silent"}
    affected = down | silent
    if len(affected) < s.group_min_nodes:
        return
    cands = []
    for kind, name, members in tc.groups:
        hit = members & affected
        k, m = len(hit), len(members)
        if k < s.group_min_nodes or k < s.group_min_share * m:
            continue
        elsewhere = len(affected - members)
        if elsewhere > s.group_max_elsewhere * max(n_nodes - m, 0):
            continue
        cands.append((k, kind, name, members, hit, elsewhere))
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    explained: set[str] = set()
    for k, kind, name, members, hit, elsewhere in cands:
        fresh = hit - explained
        if len(fresh) < s.group_min_nodes or len(fresh) < s.group_min_share * len(members - explained):
            continue
        explained |= hit
        m = len(members)
        n_down = len(hit & down)
        cause = GROUP_CAUSE.get(kind, f"{kind}_down")
        if cause == "pdu_trip":
            title = f"PDU {name} lost power: {k} nodes down, {m - k} others fed by it up"
            what = f"{k} of the {m} nodes fed by {name}"
        else:
            title = f"switch {name} unreachable: {k} nodes not responding, exporters silent"
            if m > k:
                title += f" ({m - k} others behind it fine)"
            what = f"{k} of the {m} nodes behind {name}"
        h = _Hyp(cause, Subject(kind, name), title, ACTIONS[cause])
        h.evidence.append(f"{what} down or silent at once ({n_down} down or not responding in Slurm, "
                          f"{k - n_down} with only the exporter silent), {elsewhere} nodes elsewhere")
        h.nodes |= hit
        absorb(h, on_nodes(set(hit)))
        hyps.append(h)


def _rows(hot_by_rack: Mapping[str, list[Anomaly]], racks_flagged: Mapping[str, Anomaly], tc: _TopoCache,
          s: CauseSettings, absorb: Callable[..., None], used: set[str]) -> dict[str, _Hyp]:
    """Rows where several racks run hot at once while the other rows do not: the row's cooling."""
    out: dict[str, _Hyp] = {}
    n_rows = max(len(tc.row_racks), 1)
    row_hot = {row: sum(len(hot_by_rack.get(r, ())) for r in racks) for row, racks in tc.row_racks.items()}
    total = sum(row_hot.values())
    for row, racks in tc.row_racks.items():
        hot_racks = [r for r in racks if r in racks_flagged or len(hot_by_rack.get(r, ())) >= s.rack_min_gpus]
        if len(hot_racks) < s.row_min_racks or len(hot_racks) < s.row_min_share * len(racks):
            continue
        per_other_row = (total - row_hot[row]) / max(n_rows - 1, 1)
        if row_hot[row] < s.rack_concentration * max(per_other_row, 1.0):
            continue
        h = _Hyp("row_cooling", Subject("row", row), f"row {row} cooling", ACTIONS["row_cooling"])
        in_row = set(racks)
        for r in racks:
            a0 = racks_flagged.get(r)
            if a0 is not None and a0.kind == "rack_thermal" and a0.id not in used:
                h.add(a0, support=True)
                used.add(a0.id)
            h.nodes |= tc.rack_nodes.get(r, set())
        absorb(h, lambda b, in_row=in_row: (b.rack or tc.rack_of.get(b.node or "")) in in_row
               and b.kind in {"thermal_trend", "gpu_outlier", "straggler", "power_cap", "rack_thermal"})
        n_hot = row_hot[row]
        h.evidence.insert(0, f"{n_hot} GPUs in {len(hot_racks)} of the {len(racks)} racks of row {row} "
                             f"hot or heating, {total - n_hot} elsewhere")
        out[row] = h
    return out

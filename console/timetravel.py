"""A past moment as a `Frame`, rebuilt from the journal, so every panel can show it unchanged.

Why a frame: the panels already know how to show a frame, so "move every panel back to 06:12"
needs no panel to learn anything new. The frame is built on the live frame's topology (racks,
GPU slots) with what the journal kept of that moment:

- the headline figures of the minute (their minute means; None where unknown then),
- each node's Slurm state and health that minute (health per GPU is the node's; per-GPU
  readings were not kept, so they are NaN: unknown, never 0),
- tenant figures of the minute,
- the alerts, anomalies and probable causes open at that moment, replayed from their events,
- the plots cut at that moment.

Jobs are not kept one by one: the job table of a past frame is empty, and `PastFrame.missing`
says so in words. A past frame's ``seq`` is negative so nothing mistakes it for a live one.
No Qt here; reading is quick (indexed), but callers on the GUI thread keep windows small.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from console.journal_store import JournalStore
from console.model import (Alert, Anomaly, Cause, Frame, Health, History, JobTable, Kpis,
                           NodeState, NodeTable, Severity, Subject, TenantTable)

#: How far back events are replayed to find what was open at a moment.
REPLAY_S = 7 * 86400.0
_OPEN_ALERT = {"alert.firing": "firing", "alert.silenced": "silenced",
               "alert.acknowledged": "silenced", "alert.inhibited": "inhibited"}
_INT_FIGURES = ("gpus_total", "gpus_available", "gpus_healthy", "gpus_allocated", "gpus_busy",
                "nodes_total", "jobs_running", "jobs_pending", "gpus_pending", "alerts_firing",
                "anomalies_open")


@dataclass(frozen=True, eq=False)
class PastFrame:
    """A rebuilt frame, the moment it shows, and what the journal could not give back."""

    frame: Frame
    at: float
    found: bool  # the journal had figures for that minute
    missing: tuple[str, ...]


def _int(v: Any) -> int | None:
    return None if v is None or not math.isfinite(float(v)) else int(round(float(v)))


def _float(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def past_kpis(row: Mapping[str, Any] | None, precision: str) -> Kpis:
    """The headline figures of a journal minute (every one None when there is no minute)."""
    r: Mapping[str, Any] = row or {}
    detail: Mapping[str, Any] = r.get("detail") or {}
    vals: dict[str, Any] = {}
    for name in ("installed_pf", "available_pf", "allocated_pf", "busy_pf", "delivered_pf"):
        vals[name] = _float(r.get(name))
    for name in _INT_FIGURES:
        vals[name] = _int(r.get(name))
    return Kpis(precision=str(detail.get("precision") or precision),
                gpus_by_health=detail.get("gpus_by_health"),
                nodes_by_state=detail.get("nodes_by_state"),
                alerts_by_severity=detail.get("alerts_by_severity"), **vals)


def _severity(word: Any) -> Severity:
    return Severity.parse(str(word or ""))


def open_alerts(store: JournalStore, at: float) -> tuple[Alert, ...]:
    """The alerts firing (or silenced) at ``at``: the last event of each, replayed."""
    last: dict[str, Mapping[str, Any]] = {}
    kinds: dict[str, str] = {}
    for e in store.events(at - REPLAY_S, at, kinds=["alert."]):
        last[e.subject] = e.data
        kinds[e.subject] = e.kind
    out = []
    for subject, d in last.items():
        state = _OPEN_ALERT.get(kinds[subject])
        if state is None:
            continue
        silences = tuple(str(s.get("id")) for s in d.get("silences") or () if isinstance(s, dict))
        out.append(Alert(
            fingerprint=str(d.get("fingerprint") or subject), name=str(d.get("name") or "alert"),
            severity=_severity(d.get("severity")), state=state,
            starts_at=float(d.get("starts_at") or at),
            labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
            annotations={"summary": str(d.get("summary") or "")}, silenced_by=silences,
            source=str(d.get("source") or "alertmanager"), node=d.get("node"), gpu=d.get("gpu"),
            job_id=d.get("job_id"), rack=d.get("rack"), tenant=d.get("tenant")))
    return tuple(sorted(out, key=lambda a: (a.severity, -a.starts_at, a.name)))


def open_anomalies(store: JournalStore, at: float) -> tuple[Anomaly, ...]:
    last: dict[str, tuple[str, Mapping[str, Any], float]] = {}
    for e in store.events(at - REPLAY_S, at, kinds=["anomaly."]):
        last[e.subject] = (e.kind, e.data, e.time)
    out = []
    for kind, d, t in last.values():
        if kind == "anomaly.closed":
            continue
        score = d.get("score")
        out.append(Anomaly(id=str(d.get("id")), kind=str(d.get("kind") or ""),
                           subject=Subject(str(d.get("level") or ""), str(d.get("key") or "")),
                           score=float(score) if score is not None else math.nan,
                           started_at=float(d.get("started_at") or t), last_seen=t,
                           evidence=str(d.get("evidence") or ""),
                           severity=_severity(d.get("severity")), node=d.get("node"),
                           gpu=d.get("gpu"), job_id=d.get("job_id"), rack=d.get("rack"),
                           tenant=d.get("tenant")))
    return tuple(out)


def open_causes(store: JournalStore, at: float) -> tuple[Cause, ...]:
    last: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for e in store.events(at - REPLAY_S, at, kinds=["cause."]):
        last[e.subject] = (e.kind, e.data)
    out = []
    for kind, d in last.values():
        if kind == "cause.closed":
            continue
        out.append(Cause(id=str(d.get("id")), title=str(d.get("title") or ""),
                         kind=str(d.get("kind") or ""), confidence=float(d.get("confidence") or 0.0),
                         subject=Subject(str(d.get("level") or ""), str(d.get("key") or "")),
                         evidence=tuple(str(x) for x in d.get("evidence") or ()),
                         action=str(d.get("action") or ""),
                         started_at=float(d.get("started_at") or at), gpus=int(d.get("gpus") or 0),
                         nodes=tuple(str(x) for x in d.get("nodes") or ()),
                         jobs=tuple(int(x) for x in d.get("jobs") or ()),
                         tenants=tuple(str(x) for x in d.get("tenants") or ()),
                         gpu_hours_at_risk=float(d.get("gpu_hours_at_risk") or 0.0),
                         anomaly_ids=tuple(str(x) for x in d.get("anomaly_ids") or ()),
                         severity=_severity(d.get("severity"))))
    return tuple(sorted(out, key=lambda c: -c.confidence))


def _cut_history(h: History, at: float) -> History:
    keep = h.t <= at
    return History(t=h.t[keep], series={k: v[keep] for k, v in h.series.items()},
                   tenant_delivered_pf=h.tenant_delivered_pf[keep], tenant_gpus=h.tenant_gpus[keep],
                   tenant_gpus_pending=(h.tenant_gpus_pending[keep]
                                        if len(h.tenant_gpus_pending) == len(keep)
                                        else h.tenant_gpus_pending))


def _past_tenants(live: TenantTable, groups: Mapping[str, Mapping[str, float | None]]) -> TenantTable:
    """The tenants the journal knew that minute; a tenant whose figures were unknown is left
    out rather than shown with zeros."""
    rows = [i for i, a in enumerate(live.account)
            if groups.get(a, {}).get("gpus_in_use") is not None]

    def col(name: str, dtype: Any) -> np.ndarray:
        vals = [groups[live.account[i]].get(name) for i in rows]
        if np.dtype(dtype).kind == "f":
            return np.array([np.nan if v is None else v for v in vals], dtype)
        return np.array([0 if v is None else round(v) for v in vals], dtype)

    gpus = col("gpus_in_use", np.int32)
    total = max(int(gpus.sum()), 1)
    price = live.price_per_gpu_hour[rows] if rows else np.zeros(0, np.float32)
    subsidy = live.subsidy[rows] if rows else np.zeros(0, np.float32)
    cost = (price * gpus).astype(np.float32)
    return TenantTable(
        account=tuple(live.account[i] for i in rows), display=tuple(live.display[i] for i in rows),
        kind=tuple(live.kind[i] for i in rows), subsidy=subsidy, price_per_gpu_hour=price,
        gpus_in_use=gpus, share=(gpus / total).astype(np.float32),
        delivered_pf=col("delivered_pf", np.float32),
        efficiency=np.full(len(rows), np.nan, np.float32),
        jobs_running=col("jobs_running", np.int32), jobs_pending=col("jobs_pending", np.int32),
        gpus_pending=col("gpus_pending", np.int32), cost_per_hour=cost,
        subsidy_per_hour=(cost * subsidy).astype(np.float32))


def past_frame(live: Frame, store: JournalStore, at: float) -> PastFrame:
    """``live`` as it was at ``at``, from the journal (see the module's words for what)."""
    row = store.cluster_at(at)
    nodes_min = store.nodes_at(at)
    topo = live.topology
    n, gpn = topo.n_nodes, topo.gpus_per_node
    exists = topo.gpu_exists()
    state = np.full(n, int(NodeState.UNKNOWN), np.int8)
    node_health = np.full(n, int(Health.NO_DATA), np.int8)
    known_nodes = np.zeros(n, bool)
    if nodes_min is not None:
        idx = topo.node_index()
        rows = np.array([idx.get(name, -1) for name in nodes_min.names], np.int64)
        ok = rows >= 0
        st = nodes_min.arrays["state"][ok]
        hl = nodes_min.arrays["health"][ok]
        state[rows[ok]] = np.where(st >= 0, st, int(NodeState.UNKNOWN))
        node_health[rows[ok]] = np.where(hl >= 0, hl, int(Health.NO_DATA))
        known_nodes[rows[ok]] = st >= 0
    gpu_health = np.repeat(node_health, gpn).astype(np.int8)
    gpu_health[~exists] = int(Health.NO_DATA)
    nan = np.full(topo.n_gpus, np.nan, np.float32)
    gpu = dataclasses.replace(
        live.gpu, util=nan, tensor=nan, sm_clock=nan, temp=nan, power=nan, fb_used=nan, xid=nan,
        ecc_dbe=nan, nvlink_crc=nan, throttle=nan, delivered_tflops=nan, health=gpu_health,
        job_row=np.full(topo.n_gpus, -1, np.int32), job_id=np.zeros(topo.n_gpus, np.int64),
        tenant=np.full(topo.n_gpus, -1, np.int16),
        power_limit=None if live.gpu.power_limit is None else nan)
    nt = live.nodes
    nodes = NodeTable(names=nt.names, state=state, responding=np.ones(n, bool),
                      reason=("",) * n, gpus=nt.gpus, gpus_alloc=np.zeros(n, np.int16),
                      partitions=nt.partitions, gpu_types=nt.gpu_types)
    kpis = past_kpis(row, live.kpis.precision)
    anomalies = open_anomalies(store, at)
    kpis = dataclasses.replace(kpis, anomalies_open=len(anomalies))
    groups = store.groups_at("tenant", at)
    known = row is not None
    data_time: dict[str, float | None] = {
        "telemetry": at if known and kpis.gpus_healthy is not None else None,
        "scheduler": at if known and kpis.jobs_running is not None else None,
        "alerts": at if known and kpis.alerts_firing is not None else None}
    frame = dataclasses.replace(
        live, seq=-abs(live.seq) - 1, time=at, data_now=at, gpu=gpu, nodes=nodes,
        node_health=node_health, jobs=JobTable.empty(), kpis=kpis,
        tenants=_past_tenants(live.tenants, groups), history=_cut_history(live.history, at),
        alerts=open_alerts(store, at), silences=(), anomalies=anomalies,
        causes=open_causes(store, at), data_time=data_time,
        jobs_known=False,  # the journal keeps no job list: the queue says so, not "0 jobs"
        accounting=None)  # usage and money are read live; the past shows them as unknown
    missing = ["individual jobs (the journal keeps job events and minute totals)",
               "per-GPU readings (the journal keeps each node's minute)"]
    if not known:
        missing.insert(0, "the headline figures (no journal minute at that time)")
    if nodes_min is None:
        missing.append("node states (no journal minute at that time)")
    return PastFrame(frame, at, known, tuple(missing))


__all__ = ["PastFrame", "REPLAY_S", "open_alerts", "open_anomalies", "open_causes",
           "past_frame", "past_kpis"]

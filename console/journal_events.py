"""What happened between two frames, as journal events: the diff of consecutive frames.

Why a differ of its own rather than hooks in the state: the state is the single writer of the
live picture and must stay fast and simple; everything the journal needs (an alert fired, a node
was drained and why, a job failed, an XID, an anomaly opened, a source went down) is visible in
two consecutive frames. Each kind of data is compared only while it is *known*: an alert list
that went stale is not "every alert resolved", and a scheduler outage is not "every job ended".
The differ keeps its own last-known picture per kind, so a gap in one kind of data does not
hide the changes made during it (they show as one change when the data returns).

Vectorised with numpy where frames are large (4,096 nodes, 50,000 jobs). No Qt, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from console.journal_store import Event
from console.model import (Alert, Anomaly, Cause, Frame, JobState, NodeState, Silence,
                           SourceState)

#: Source states that count as an outage, and as working.
_BAD = (SourceState.FAILING, SourceState.STALE)
_GOOD = (SourceState.OK, SourceState.SLOW)
#: A cause's confidence must move this much to be journalled as a change.
CONFIDENCE_STEP = 0.15
#: Job states a job can appear in already finished: journalled even without a transition.
_ENDED = np.array([s for s in JobState if s >= JobState.COMPLETED and s != JobState.REQUEUED],
                  np.int8)
#: Node states between which a node moves as jobs come and go: such moves are the scheduler's
#: routine, not events (4,096 nodes would file thousands an hour); any other change is one.
ROUTINE_NODE_STATES = frozenset({NodeState.IDLE, NodeState.MIXED, NodeState.ALLOCATED,
                                 NodeState.COMPLETING})
_ROUTINE = np.array(sorted(ROUTINE_NODE_STATES), np.int8)
#: Said of what was already open when the console started (it did not begin then).
_ALREADY = " (open when the console started)"
#: Names of the journal's own pseudo-sources: never diffed as data sources.
OWN_SOURCES = frozenset({"journal"})


def event_time(frame: Frame) -> float:
    """The time an event seen in ``frame`` is filed under: the wall clock of the frame, so that
    "the last two hours" means the same on the command line, in the timeline and in the
    audit trail (a simulator under ``--speed`` runs its data clock ahead of it)."""
    return float(frame.time)


def _alert_data(a: Alert) -> dict[str, Any]:
    return {"fingerprint": a.fingerprint, "name": a.name, "severity": a.severity.name.lower(),
            "state": a.state, "starts_at": a.starts_at, "summary": a.summary,
            "labels": dict(a.labels), "source": a.source, "node": a.node, "gpu": a.gpu,
            "job_id": a.job_id, "rack": a.rack, "tenant": a.tenant}


def _where(a: Alert) -> str:
    parts = [p for p in (a.node and f"on {a.node}", a.gpu is not None and f"GPU {a.gpu}",
                         a.job_id and f"job {a.job_id}") if p]
    return (" " + " ".join(str(p) for p in parts)) if parts else ""


def anomaly_data(a: Anomaly) -> dict[str, Any]:
    return {"id": a.id, "kind": a.kind, "level": a.subject.level, "key": a.subject.key,
            "score": a.score if math.isfinite(a.score) else None, "started_at": a.started_at,
            "evidence": a.evidence, "severity": a.severity.name.lower(), "node": a.node,
            "gpu": a.gpu, "job_id": a.job_id, "rack": a.rack, "tenant": a.tenant}


def cause_data(c: Cause) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "kind": c.kind, "confidence": round(c.confidence, 3),
            "level": c.subject.level, "key": c.subject.key, "evidence": list(c.evidence),
            "action": c.action, "started_at": c.started_at, "gpus": c.gpus,
            "nodes": list(c.nodes), "jobs": [int(j) for j in c.jobs],
            "tenants": list(c.tenants), "gpu_hours_at_risk": round(c.gpu_hours_at_risk, 1),
            "anomaly_ids": list(c.anomaly_ids), "severity": c.severity.name.lower()}


def _state_name(code: int, enum: type[NodeState] | type[JobState]) -> str:
    try:
        return enum(int(code)).name
    except ValueError:
        return f"code {int(code)}"


@dataclass
class _Nodes:
    names: tuple[str, ...]
    state: np.ndarray
    reason: tuple[str, ...]


@dataclass
class _Jobs:
    ids: np.ndarray  # sorted
    state: np.ndarray  # aligned with ids


class FrameDiffer:
    """Turns a stream of frames into events; call `diff` with each frame in order.

    The first frame is the baseline: nothing is reported for it (what was already firing when
    the console started did not *happen* then), except that currently open incidents are
    recorded once with ``data.already_open`` so a timeline has them.
    """

    def __init__(self) -> None:
        self._alerts: dict[str, Alert] | None = None
        self._silences: dict[str, Silence] = {}
        self._nodes: _Nodes | None = None
        self._jobs: _Jobs | None = None
        self._xid: tuple[int, np.ndarray] | None = None  # (topology version, xid per GPU)
        self._anomalies: dict[str, Anomaly] | None = None
        self._causes: dict[str, Cause] | None = None
        self._sources: dict[str, _SourceMemo] = {}

    # ------------------------------------------------------------------ the entry point

    def diff(self, frame: Frame) -> list[Event]:
        t = event_time(frame)
        out: list[Event] = []
        self._diff_sources(frame, t, out)
        if frame.kpis.alerts_firing is not None:
            self._diff_alerts(frame, t, out)
        if frame.kpis.nodes_by_state is not None:
            self._diff_nodes(frame, t, out)
        if frame.kpis.jobs_running is not None:
            self._diff_jobs(frame, t, out)
        if frame.kpis.gpus_healthy is not None:
            self._diff_xid(frame, t, out)
        self._diff_anomalies(frame, t, out)
        self._diff_causes(frame, t, out)
        return out

    # ------------------------------------------------------------------ alerts

    def _diff_alerts(self, frame: Frame, t: float, out: list[Event]) -> None:
        for s in frame.silences:
            self._silences[s.id] = s
        now = {a.fingerprint: a for a in frame.alerts if a.state != "pending"}
        before = self._alerts
        self._alerts = now
        if before is None:
            return
        for fp, a in now.items():
            old = before.get(fp)
            if old is not None and old.state == a.state:
                continue
            data = _alert_data(a)
            if a.state in ("silenced", "inhibited") and a.silenced_by:
                sil = [self._silences[i] for i in a.silenced_by if i in self._silences]
                ack = any(s.is_ack for s in sil)
                data["silences"] = [{"id": s.id, "created_by": s.created_by,
                                     "comment": s.comment, "ends_at": s.ends_at} for s in sil]
                comment = "; ".join(s.comment for s in sil)
                by = ", ".join(dict.fromkeys(s.created_by for s in sil if s.created_by))
                kind = "alert.acknowledged" if ack else "alert.silenced"
                word = "acknowledged" if ack else "silenced"
                summary = (f"{a.name}{_where(a)} {word}" + (f" by {by}" if by else "")
                           + (f": {comment}" if comment else ""))
            elif a.state == "inhibited":
                kind, summary = "alert.inhibited", f"{a.name}{_where(a)} inhibited"
            elif a.state == "silenced":
                kind, summary = "alert.silenced", f"{a.name}{_where(a)} silenced"
            else:
                kind = "alert.firing"
                again = " again" if old is not None else ""
                summary = f"{a.severity.name.lower()} alert {a.name}{_where(a)} firing{again}: {a.summary}"
            out.append(Event(t, kind, f"alert:{fp}", summary, data))
        for fp, a in before.items():
            if fp not in now:
                data = _alert_data(a)
                data["state"] = "resolved"
                out.append(Event(t, "alert.resolved", f"alert:{fp}",
                                 f"{a.name}{_where(a)} resolved", data))

    # ------------------------------------------------------------------ nodes

    def _diff_nodes(self, frame: Frame, t: float, out: list[Event]) -> None:
        nt = frame.nodes
        cur = _Nodes(nt.names, np.asarray(nt.state), nt.reason)
        before, self._nodes = self._nodes, cur
        if before is None:
            return
        if before.names == cur.names:
            old_state, new_state = before.state, cur.state
            reason_moved = (np.zeros(len(cur.names), bool) if before.reason == cur.reason
                            else np.array([a != b for a, b in zip(before.reason, cur.reason)], bool))
            pairs = np.arange(len(cur.names))
            prev_rows = pairs
        else:
            pos = {n: i for i, n in enumerate(before.names)}
            both = [(pos[n], i) for i, n in enumerate(cur.names) if n in pos]
            prev_rows = np.array([j for j, _ in both], np.int64)
            pairs = np.array([i for _, i in both], np.int64)
            old_state, new_state = before.state[prev_rows], cur.state[pairs]
            reason_moved = np.array([before.reason[j] != cur.reason[i] for j, i in both], bool)
        routine = np.isin(old_state, _ROUTINE) & np.isin(new_state, _ROUTINE)
        moved = ((old_state != new_state) & ~routine) | reason_moved
        for k in np.flatnonzero(moved):
            j, i = int(prev_rows[k]), int(pairs[k])
            name = cur.names[i]
            old_s, new_s = int(before.state[j]), int(cur.state[i])
            old_r, new_r = before.reason[j], cur.reason[i]
            data = {"node": name, "from": _state_name(old_s, NodeState),
                    "to": _state_name(new_s, NodeState), "reason": new_r or None,
                    "previous_reason": old_r or None}
            if old_s != new_s:
                summary = f"{name}: {data['from']} \u2192 {data['to']}"
                if new_r:
                    summary += f" ({new_r})"
                out.append(Event(t, "node.state", f"node:{name}", summary, data))
            else:
                summary = (f"{name}: reason now {new_r!r}" if new_r
                           else f"{name}: reason {old_r!r} cleared")
                out.append(Event(t, "node.reason", f"node:{name}", summary, data))

    # ------------------------------------------------------------------ jobs

    def _diff_jobs(self, frame: Frame, t: float, out: list[Event]) -> None:
        jobs = frame.jobs
        ids = np.asarray(jobs.job_id, np.int64)
        order = np.argsort(ids, kind="stable")
        cur = _Jobs(ids[order], np.asarray(jobs.state, np.int8)[order])
        before, self._jobs = self._jobs, cur
        if before is None or not len(cur.ids):
            return
        if len(before.ids):
            pos = np.searchsorted(before.ids, cur.ids)
            posc = np.minimum(pos, len(before.ids) - 1)
            known = before.ids[posc] == cur.ids
            old_state = np.where(known, before.state[posc], -1)
        else:
            known = np.zeros(len(cur.ids), bool)
            old_state = np.full(len(cur.ids), -1, np.int8)
        moved = known & (old_state != cur.state)
        appeared_ended = ~known & np.isin(cur.state, _ENDED)
        rows = np.flatnonzero(moved | appeared_ended)
        if not len(rows):
            return
        for k in rows:
            job_id = int(cur.ids[k])
            r = int(order[k])  # the row in the frame's table
            new = _state_name(int(cur.state[k]), JobState)
            old = None if old_state[k] < 0 else _state_name(int(old_state[k]), JobState)
            account = jobs.accounts[int(jobs.account[r])] if len(jobs.accounts) else ""
            exit_code = int(jobs.exit_code[r])
            data = {"job_id": job_id, "from": old, "to": new, "name": str(jobs.name[r]),
                    "user": str(jobs.user[r]), "account": account, "gpus": int(jobs.gpus[r]),
                    "nodes": str(jobs.node_list[r]),
                    "exit_code": None if exit_code < 0 else exit_code}
            summary = f"job {job_id} ({account}): {old + ' → ' if old else ''}{new}"
            if new in ("FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT", "BOOT_FAIL") and \
                    exit_code >= 0:
                summary += f", exit code {exit_code}"
            out.append(Event(t, "job.state", f"job:{job_id}", summary, data))

    # ------------------------------------------------------------------ XIDs

    def _diff_xid(self, frame: Frame, t: float, out: list[Event]) -> None:
        xid = np.nan_to_num(np.asarray(frame.gpu.xid, np.float32), nan=0.0)
        version = frame.topology.version
        before, self._xid = self._xid, (version, xid)
        if before is None or before[0] != version or before[1].shape != xid.shape:
            return
        new = np.flatnonzero((xid > 0) & (xid != before[1]))
        gpn = frame.topology.gpus_per_node
        for g in new[:200]:  # an exporter glitch must not flood the journal
            node = frame.topology.node_names[int(g) // gpn]
            gpu = int(g) % gpn
            code = int(xid[g])
            out.append(Event(t, "gpu.xid", f"gpu:{node}/{gpu}",
                             f"XID {code} on {node} GPU {gpu}",
                             {"node": node, "gpu": gpu, "xid": code}))

    # ------------------------------------------------------------------ anomalies, causes

    def _diff_anomalies(self, frame: Frame, t: float, out: list[Event]) -> None:
        now = {a.id: a for a in frame.anomalies if a.ended_at is None}
        before, self._anomalies = self._anomalies, now
        first = before is None
        before = before or {}
        for i, a in now.items():
            old = before.get(i)
            data = anomaly_data(a)
            if old is None:
                data["already_open"] = first
                out.append(Event(t, "anomaly.opened", f"anomaly:{i}",
                                 f"{a.kind} on {a.subject.level} {a.subject.key}: {a.evidence}"
                                 + (_ALREADY if first else ""), data))
            elif old.severity != a.severity:
                out.append(Event(t, "anomaly.changed", f"anomaly:{i}",
                                 f"{a.kind} on {a.subject.level} {a.subject.key} now "
                                 f"{a.severity.name.lower()}: {a.evidence}", data))
        for i, a in before.items():
            if i not in now:
                out.append(Event(t, "anomaly.closed", f"anomaly:{i}",
                                 f"{a.kind} on {a.subject.level} {a.subject.key} ended",
                                 anomaly_data(a)))

    def _diff_causes(self, frame: Frame, t: float, out: list[Event]) -> None:
        now = {c.id: c for c in frame.causes}
        before, self._causes = self._causes, now
        first = before is None
        before = before or {}
        for i, c in now.items():
            old = before.get(i)
            data = cause_data(c)
            if old is None:
                data["already_open"] = first
                out.append(Event(t, "cause.opened", f"cause:{i}",
                                 f"probable cause: {c.title} ({c.confidence:.0%})"
                                 + (_ALREADY if first else ""), data))
            elif (old.severity != c.severity or set(old.nodes) != set(c.nodes)
                  or abs(old.confidence - c.confidence) >= CONFIDENCE_STEP):
                # Not on the title alone: it carries running figures ("3,310 GPU-hours at
                # risk") that change every poll.
                out.append(Event(t, "cause.changed", f"cause:{i}",
                                 f"probable cause now: {c.title} ({c.confidence:.0%})", data))
            else:
                now[i] = old  # keep the journalled version as the reference for drift
        for i, c in before.items():
            if i not in now:
                out.append(Event(t, "cause.closed", f"cause:{i}",
                                 f"probable cause closed: {c.title}", cause_data(c)))

    # ------------------------------------------------------------------ sources

    def _diff_sources(self, frame: Frame, t: float, out: list[Event]) -> None:
        for s in frame.sources:
            if s.name in OWN_SOURCES:
                continue
            old = self._sources.get(s.name)
            self._sources[s.name] = _SourceMemo(s.state, s.error, t if old is None or
                                                  _flip(old.state, s.state) else old.since)
            if old is None:
                continue
            if old.state not in _BAD and s.state in _BAD and old.state is not SourceState.WAITING:
                out.append(Event(t, "source.outage", f"source:{s.name}",
                                 f"{s.name} {s.state.value}: {s.error or 'no data'}",
                                 {"source": s.name, "kind": s.kind, "state": s.state.value,
                                  "error": s.error, "error_kind": s.error_kind}))
            elif old.state in _BAD and s.state in _GOOD:
                out.append(Event(t, "source.recovered", f"source:{s.name}",
                                 f"{s.name} answers again after {_duration(t - old.since)}",
                                 {"source": s.name, "kind": s.kind, "state": s.state.value,
                                  "outage_s": round(t - old.since, 1)}))


@dataclass
class _SourceMemo:
    state: SourceState
    error: str | None
    since: float


def _flip(old: SourceState, new: SourceState) -> bool:
    return (old in _BAD) != (new in _BAD)


def _duration(s: float) -> str:
    s = max(0.0, s)
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def related(event: Event, *, nodes: frozenset[str] = frozenset(),
            jobs: frozenset[int] = frozenset(), subjects: frozenset[str] = frozenset()) -> bool:
    """True when ``event`` concerns one of the nodes, jobs or subjects (an incident's scope):
    its subject, or the node / job its details name."""
    if event.subject in subjects:
        return True
    d: Mapping[str, Any] = event.data
    if nodes and (d.get("node") in nodes or any(n in nodes for n in d.get("nodes") or ()
                                                 if isinstance(d.get("nodes"), list))):
        return True
    job = d.get("job_id")
    if jobs and isinstance(job, int) and job in jobs:
        return True
    return event.kind.startswith("note") and bool(subjects & set(d.get("about") or ()))


__all__ = ["CONFIDENCE_STEP", "FrameDiffer", "anomaly_data", "cause_data", "event_time",
           "related"]

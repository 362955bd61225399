"""Events from consecutive frames: what happened, and nothing invented when data is unknown."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from console.journal_aggregates import MinuteAggregator
from console.journal_events import FrameDiffer, related
from console.journal_store import Event
from console.model import (Alert, Frame, JobState, NodeState, NodeTable, Severity, Silence,
                           SourceState, Matcher)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "widgets"))
from frames import NOW, make_test_frame  # noqa: E402 - the hand-built frames of the panel tests


def with_nodes(f: Frame, states: list[int], reasons: tuple[str, ...]) -> Frame:
    n = f.nodes
    return dataclasses.replace(f, nodes=NodeTable(n.names, np.array(states, np.int8), n.responding,
                                                  reasons, n.gpus, n.gpus_alloc, n.partitions))


def alert(state: str, silenced_by: tuple[str, ...] = ()) -> Alert:
    return Alert("fp1", "GpuXid", Severity.CRITICAL, state, NOW - 100,
                 {"alertname": "GpuXid", "Hostname": "n0002"}, {"summary": "XID 79"},
                 silenced_by=silenced_by, node="n0002", gpu=3)


def kinds(events) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(e.kind, e.summary) for e in events]


def test_first_frame_is_the_baseline_except_open_incidents() -> None:
    d = FrameDiffer()
    ev = d.diff(make_test_frame())
    assert {e.kind for e in ev} <= {"anomaly.opened", "cause.opened"}
    assert all(e.data["already_open"] for e in ev)
    assert d.diff(make_test_frame(seq=2, now=NOW + 5)) == []  # nothing changed


def test_alert_fires_is_acknowledged_with_its_comment_and_resolves() -> None:
    d = FrameDiffer()
    base = make_test_frame(alert_list=())
    d.diff(base)
    ack = Silence("s1", (Matcher("alertname", "GpuXid"),), NOW, NOW + 3600, "alice",
                  "ACK! swapping the GPU tonight", "active")
    f1 = dataclasses.replace(base, alerts=(alert("firing"),), time=NOW + 10, data_now=NOW + 10)
    f2 = dataclasses.replace(base, alerts=(alert("silenced", ("s1",)),), silences=(ack,),
                             time=NOW + 20, data_now=NOW + 20)
    f3 = dataclasses.replace(base, alerts=(), time=NOW + 30, data_now=NOW + 30)
    out = d.diff(f1) + d.diff(f2) + d.diff(f3)
    assert kinds(out) == [
        ("alert.firing", "critical alert GpuXid on n0002 GPU 3 firing: XID 79"),
        ("alert.acknowledged",
         "GpuXid on n0002 GPU 3 acknowledged by alice: ACK! swapping the GPU tonight"),
        ("alert.resolved", "GpuXid on n0002 GPU 3 resolved")]
    assert [e.time for e in out] == [NOW + 10, NOW + 20, NOW + 30]
    assert out[1].data["silences"][0]["comment"] == "ACK! swapping the GPU tonight"
    assert out[0].subject == "alert:fp1" and out[0].data["node"] == "n0002"


def test_unknown_alerts_are_not_resolved_alerts() -> None:
    d = FrameDiffer()
    base = make_test_frame(alert_list=(alert("firing"),))
    d.diff(base)
    unknown = dataclasses.replace(base, alerts=(),
                                  kpis=dataclasses.replace(base.kpis, alerts_firing=None))
    assert [e for e in d.diff(unknown) if e.kind.startswith("alert")] == []
    # Back with the alert still firing: nothing happened.
    assert [e for e in d.diff(base) if e.kind.startswith("alert")] == []


def test_node_drain_with_reason_but_not_routine_allocation() -> None:
    d = FrameDiffer()
    base = make_test_frame()
    d.diff(base)
    churn = with_nodes(base, [NodeState.IDLE, NodeState.ALLOCATED, NodeState.MIXED,
                              NodeState.MIXED], ("",) * 4)
    assert [e for e in d.diff(churn) if e.kind.startswith("node")] == []
    drained = with_nodes(base, [NodeState.IDLE, NodeState.DRAINED, NodeState.MIXED,
                                NodeState.MIXED], ("", "XID 79 on GPU 3", "", ""))
    ev = [e for e in d.diff(drained) if e.kind.startswith("node")]
    assert kinds(ev) == [("node.state", "n0002: ALLOCATED → DRAINED (XID 79 on GPU 3)")]
    assert ev[0].data == {"node": "n0002", "from": "ALLOCATED", "to": "DRAINED",
                          "reason": "XID 79 on GPU 3", "previous_reason": None}


def test_job_failure_and_xid() -> None:
    d = FrameDiffer()
    base = make_test_frame()
    d.diff(base)
    jobs = base.jobs
    state = np.array(jobs.state)
    exit_code = np.array(jobs.exit_code)
    state[0], exit_code[0] = JobState.FAILED, 137
    xid = np.array(base.gpu.xid)
    xid[8 + 3] = 79  # n0002 GPU 3
    f = dataclasses.replace(base, jobs=dataclasses.replace(jobs, state=state, exit_code=exit_code),
                            gpu=dataclasses.replace(base.gpu, xid=xid))
    ev = [e for e in d.diff(f) if e.kind in ("job.state", "gpu.xid")]
    assert kinds(ev) == [("job.state", "job 101 (hku): RUNNING → FAILED, exit code 137"),
                         ("gpu.xid", "XID 79 on n0002 GPU 3")]


def test_source_outage_and_recovery_with_its_length() -> None:
    d = FrameDiffer()
    base = make_test_frame()
    d.diff(base)
    src = base.sources[0]
    down = dataclasses.replace(src, state=SourceState.FAILING, error="connection refused")
    f1 = dataclasses.replace(base, sources=(down,), time=NOW + 10, data_now=NOW + 10)
    f2 = dataclasses.replace(base, sources=(src,), time=NOW + 190, data_now=NOW + 190)
    ev = [e for e in d.diff(f1) + d.diff(f2) if e.kind.startswith("source")]
    assert kinds(ev) == [("source.outage", "simulator failing: connection refused"),
                         ("source.recovered", "simulator answers again after 3 min")]
    assert ev[1].data["outage_s"] == 180.0


def test_causes_open_and_close_and_relate_to_their_nodes() -> None:
    d = FrameDiffer()
    base = make_test_frame(cause_list=())
    d.diff(base)
    full = make_test_frame(now=NOW + 5)
    opened = [e for e in d.diff(full) if e.kind == "cause.opened"]
    assert opened and not opened[0].data["already_open"]
    closed = [e for e in d.diff(base) if e.kind == "cause.closed"]
    assert [e.subject for e in closed] == [e.subject for e in opened]
    nodes = frozenset(opened[0].data["nodes"])
    assert related(opened[0], subjects=frozenset({opened[0].subject}))
    assert related(Event(0, "node.state", f"node:{next(iter(nodes))}", "",
                         {"node": next(iter(nodes))}), nodes=nodes)
    assert not related(Event(0, "node.state", "node:elsewhere", "", {"node": "elsewhere"}),
                       nodes=nodes)


def test_minute_figures_are_means_and_unknown_stays_none() -> None:
    agg = MinuteAggregator()
    base = make_test_frame(now=600.0)
    half = dataclasses.replace(base, time=630.0, data_now=630.0,
                               kpis=dataclasses.replace(base.kpis, delivered_pf=16.0,
                                                        alerts_firing=None))
    assert agg.feed(dataclasses.replace(base, data_now=600.0)) == ([], [], [])
    assert agg.feed(half) == ([], [], [])
    rows, groups, nodes = agg.feed(dataclasses.replace(base, time=661.0, data_now=661.0))
    (row,) = rows
    assert row["t"] == 630.0  # the minute's centre, as the history's coarse tier
    assert row["delivered_pf"] == 14.0  # (12 + 16) / 2
    assert row["alerts_firing"] == 4.0  # the unknown sample is left out, not counted as 0
    assert row["detail"]["nodes_by_state"] == {"mixed": 4}
    hku = next(g for g in groups if g["level"] == "tenant" and g["key"] == "hku")
    assert hku["gpus_in_use"] == 16.0
    training = next(g for g in groups if g["level"] == "partition" and g["key"] == "training")
    assert training["gpus_in_use"] == 17.0 and training["jobs_pending"] == 2.0
    (nm,) = nodes
    assert nm.names == ("n0001", "n0002", "n0003", "n0004")
    assert nm.arrays["state"].tolist() == [2, 2, 1, 1]
    assert nm.arrays["util"].tolist() == [50.0] * 4


def test_a_minute_without_any_known_figure_is_all_none() -> None:
    agg = MinuteAggregator()
    base = make_test_frame(now=600.0)
    blank = dataclasses.replace(base, data_now=600.0, kpis=dataclasses.replace(
        base.kpis, delivered_pf=None, installed_pf=None, jobs_running=None))
    agg.feed(blank)
    (row,), _, _ = agg.flush()
    assert row["delivered_pf"] is None and row["installed_pf"] is None
    assert row["jobs_running"] is None

"""Operator actions on the simulator (silences, drain, resume, cancel) and matcher semantics."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from console.matchers import matches
from console.model import JobState, Matcher, NodeState
from console.sim import SimCluster, SimConfig

T0 = 1_800_000_000.0


def firing_cluster() -> tuple[SimCluster, str, int]:
    c = SimCluster(SimConfig(seed=9, nodes=32, t0=T0, faults="none"))
    c.step(60)
    rec = c.inject_fault("xid79")
    assert rec is not None
    c.step(5)
    node, gpu = rec.gpus[0]
    return c, node, gpu


def alert(c: SimCluster, name: str):
    return next(a for a in c.alerts_update().alerts if a.name == name)


def test_silence_hides_matching_alert_until_expired() -> None:
    c, node, gpu = firing_cluster()
    a = alert(c, "GpuFellOffBus")
    assert a.state == "firing" and a.silenced_by == ()
    fp, started = a.fingerprint, a.starts_at
    sid = c.create_silence((Matcher("alertname", "GpuFellOffBus"), Matcher("Hostname", node)),
                           c.time, c.time + 3600, "ops", "ACK! looking")
    a = alert(c, "GpuFellOffBus")
    assert a.state == "silenced" and a.silenced_by == (sid,)
    assert a.fingerprint == fp and a.starts_at == started, "fingerprint and start are stable"
    sil, = c.silences
    assert sil.id == sid and sil.state == "active" and sil.is_ack
    assert c.alerts_update().silences == (sil,)
    c.step(10)
    assert alert(c, "GpuFellOffBus").state == "silenced"
    c.expire_silence(sid)
    assert alert(c, "GpuFellOffBus").state == "firing"
    assert c.silences[0].state == "expired"
    with pytest.raises(KeyError):
        c.expire_silence("no-such-silence")


def test_silence_ids_are_deterministic_and_states_follow_time() -> None:
    ids = []
    for _ in range(2):
        c, node, _gpu = firing_cluster()
        ids.append(c.create_silence((Matcher("Hostname", node),), c.time + 60, c.time + 120, "a", "later"))
    assert ids[0] == ids[1] and len(ids[0]) == 36
    c.step(30)
    assert c.silences[0].state == "pending"
    assert alert(c, "GpuFellOffBus").state == "firing"
    c.step(40)
    assert c.silences[0].state == "active"
    c.step(60)
    assert c.silences[0].state == "expired"
    with pytest.raises(ValueError):
        c.create_silence((), c.time, c.time + 1, "a", "no matchers")
    with pytest.raises(ValueError):
        c.create_silence((Matcher("a", "b"),), c.time, c.time - 1, "a", "backwards")


def test_drain_resume_and_cancel() -> None:
    c = SimCluster(SimConfig(seed=9, nodes=32, t0=T0, faults="none"))
    nodes = c.node_table()
    n = int(np.flatnonzero(nodes.gpus_alloc > 0)[0])
    name = c.node_names[n]
    c.drain_node(name, "bad fan")
    nodes = c.node_table()
    assert nodes.state[n] == NodeState.DRAINING and nodes.reason[n] == "bad fan"
    jobs = c.job_table()
    on_node = np.unique(jobs.job_id[jobs.alloc_job[jobs.alloc_node == n]])
    for jid in on_node:
        c.cancel_job(int(jid))
    c.step(60)
    nodes, jobs = c.node_table(), c.job_table()
    assert nodes.state[n] == NodeState.DRAINED and nodes.gpus_alloc[n] == 0, "no new work on a drained node"
    for jid in on_node:
        assert jobs.state[jobs.job_id == jid][0] == JobState.CANCELLED
    c.resume_node(name)
    c.step(60)
    nodes = c.node_table()
    assert nodes.reason[n] == "" and nodes.state[n] != NodeState.DRAINED
    with pytest.raises(KeyError):
        c.drain_node("n9999", "x")
    with pytest.raises(KeyError):
        c.cancel_job(1)
    pend = jobs.job_id[jobs.state == JobState.PENDING]
    c.cancel_job(int(pend[0]))
    jobs = c.job_table()
    assert jobs.state[jobs.job_id == pend[0]][0] == JobState.CANCELLED


def test_actions_from_another_thread_while_stepping() -> None:
    c = SimCluster(SimConfig(seed=2, nodes=32, t0=T0, tick_s=30.0, faults="none"))
    done = threading.Event()
    errors: list[BaseException] = []

    def operator() -> None:
        try:
            for i in range(50):
                c.drain_node(c.node_names[i % 32], "x")
                c.resume_node(c.node_names[i % 32])
                c.create_silence((Matcher("alertname", "GpuHot"),), c.time, c.time + 60, "op", str(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=operator)
    t.start()
    while not done.is_set():
        c.step(30.0)
    t.join()
    assert errors == []
    assert len(c.silences) == 50
    assert not c.drain.any()


@pytest.mark.parametrize(("matchers", "labels", "expected"), [
    ((Matcher("a", "x"),), {"a": "x"}, True),
    ((Matcher("a", "x"),), {"a": "xy"}, False),
    ((Matcher("a", "x", is_regex=True),), {"a": "xy"}, False),  # anchored
    ((Matcher("a", "x.*", is_regex=True),), {"a": "xy"}, True),
    ((Matcher("a", "x|y", is_regex=True),), {"a": "y"}, True),
    ((Matcher("a", "x", is_equal=False),), {"a": "y"}, True),
    ((Matcher("a", "x", is_equal=False),), {}, True),
    ((Matcher("a", ""),), {}, True),  # a missing label is the empty string
    ((Matcher("a", ".+", is_regex=True),), {}, False),
    ((Matcher("a", ".+", is_regex=True, is_equal=False),), {}, True),
    ((Matcher("a", "x"), Matcher("b", "y")), {"a": "x", "b": "z"}, False),
    ((Matcher("a", "(", is_regex=True),), {"a": "("}, False),  # invalid regex matches nothing
    ((), {"a": "x"}, False),
])
def test_matchers_follow_alertmanager(matchers, labels, expected) -> None:
    assert matches(matchers, labels) is expected

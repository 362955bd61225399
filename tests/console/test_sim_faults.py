"""Each injected fault shows its signature in telemetry, the scheduler or the alerts, leaves
ground truth behind, and ends by itself."""

from __future__ import annotations

import numpy as np
import pytest

from console.model import JobState, NodeState
from console.sim import FAULT_KINDS, FaultRecord, SimCluster, SimConfig

T0 = 1_800_000_000.0


def cluster(**kw) -> SimCluster:
    base = dict(seed=5, nodes=64, t0=T0, faults="none", tick_s=10.0)
    base.update(kw)
    c = SimCluster(SimConfig(**base))
    c.step(60.0)
    return c


def inject(c: SimCluster, kind: str) -> FaultRecord:
    rec = c.inject_fault(kind)
    assert rec is not None, f"no victim for {kind}"
    assert rec.kind == kind and rec.start == c.time and rec.end is None
    assert rec in c.ground_truth and rec.description
    return rec


def node_i(c: SimCluster, name: str) -> int:
    return c.node_names.index(name)


def alert_names(c: SimCluster, node: str) -> set[str]:
    return {a.name for a in c.alerts_update().alerts if a.node == node}


def job_state(c: SimCluster, job_id: int) -> JobState:
    jobs = c.job_table()
    return JobState(int(jobs.state[jobs.job_id == job_id][0]))


def test_xid79_gpu_falls_off_the_bus() -> None:
    c = cluster()
    rec = inject(c, "xid79")
    (node, gpu), = rec.gpus
    n = node_i(c, node)
    c.step(10.0)
    m = c.telemetry_update().metrics
    assert m["xid"][n, gpu] == 79
    assert np.isnan(m["util"][n, gpu]) and np.isnan(m["temp"][n, gpu])
    assert "GpuFellOffBus" in alert_names(c, node)
    alert = next(a for a in c.alerts_update().alerts if a.name == "GpuFellOffBus")
    assert (alert.node, alert.gpu, alert.labels["gpu"]) == (node, gpu, str(gpu))
    assert alert.job_id == rec.job_ids[0] and alert.tenant == rec.tenants[0]
    c.step(120.0)
    assert job_state(c, rec.job_ids[0]) == JobState.FAILED
    nodes = c.node_table()
    assert nodes.state[n] in (NodeState.DRAINING, NodeState.DRAINED)
    assert "XID 79" in nodes.reason[n]


def test_ecc_dbe_fails_the_job_and_raises_xid48() -> None:
    c = cluster()
    rec = inject(c, "ecc_dbe")
    (node, gpu), = rec.gpus
    n = node_i(c, node)
    c.step(70.0)
    m = c.telemetry_update().metrics
    assert m["ecc_dbe"][n, gpu] >= 1 and m["xid"][n, gpu] == 48
    assert "GpuEccDbe" in alert_names(c, node)
    assert job_state(c, rec.job_ids[0]) == JobState.FAILED
    assert c.node_table().state[n] in (NodeState.DRAINING, NodeState.DRAINED)


def test_rack_cooling_heats_and_throttles_a_rack() -> None:
    c = cluster()
    before = c.telemetry_update().metrics["temp"].copy()
    rec = inject(c, "rack_cooling")
    assert rec.rack is not None
    rows = [node_i(c, x) for x in rec.nodes]
    assert len(rows) == c.config.nodes_per_rack
    c.step(20 * 60.0)
    m = c.telemetry_update().metrics
    assert np.nanmean(m["temp"][rows]) > np.nanmean(before[rows]) + 15
    others = np.setdiff1d(np.arange(c.config.nodes), rows)
    assert np.nanmean(m["temp"][others]) < np.nanmean(before[others]) + 3
    bits = m["throttle"][rows].astype(int)
    assert np.any(bits & 0x20) and np.any(bits & 0x40)
    busy = m["util"][rows] > 50
    assert np.median(m["sm_clock"][rows][busy]) < 1800
    assert any(a.name == "GpuHot" and a.rack == rec.rack for a in c.alerts_update().alerts)


def test_nvlink_crc_errors_on_one_node() -> None:
    c = cluster()
    rec = inject(c, "nvlink")
    n = node_i(c, rec.nodes[0])
    c.step(20.0)
    m = c.telemetry_update().metrics
    bad = [g for _, g in rec.gpus]
    assert np.all(m["nvlink_crc"][n, bad] > 100)
    assert np.all(np.delete(m["nvlink_crc"], n, axis=0) == 0)
    assert "NvlinkCrcErrors" in alert_names(c, rec.nodes[0])


def test_job_hang_idles_all_gpus_of_an_allocated_job() -> None:
    c = cluster()
    rec = inject(c, "job_hang")
    c.step(30.0)
    m = c.telemetry_update().metrics
    rows = np.array([node_i(c, x) for x, _ in rec.gpus])
    cols = np.array([g for _, g in rec.gpus])
    assert len(rows) >= 8
    assert np.all(m["util"][rows, cols] == 0) and np.all(m["tensor"][rows, cols] == 0)
    assert np.all(m["fb_used"][rows, cols] > 0), "memory stays allocated"
    jobs = c.job_table()
    row = int(np.flatnonzero(jobs.job_id == rec.job_ids[0])[0])
    assert jobs.state[row] == JobState.RUNNING
    assert np.sum(jobs.alloc_job == row) == len(rows)


def test_straggler_runs_slower_than_its_peers() -> None:
    c = cluster()
    rec = inject(c, "straggler")
    (node, gpu), = rec.gpus
    c.step(30.0)
    m = c.telemetry_update().metrics
    jobs = c.job_table()
    row = int(np.flatnonzero(jobs.job_id == rec.job_ids[0])[0])
    sel = jobs.alloc_job == row
    peers = [(n, g) for n, g in zip(jobs.alloc_node[sel], jobs.alloc_gpu[sel]) if (n, g) != (node_i(c, node), gpu)]
    peer_tensor = np.median([m["tensor"][n, g] for n, g in peers])
    assert m["tensor"][node_i(c, node), gpu] < 0.6 * peer_tensor
    assert m["sm_clock"][node_i(c, node), gpu] < 0.8 * np.median([m["sm_clock"][n, g] for n, g in peers])


def test_power_cap_clamps_power_and_clocks() -> None:
    c = cluster()
    rec = inject(c, "power_cap")
    rows = [node_i(c, x) for x in rec.nodes]
    c.step(30.0)
    m = c.telemetry_update().metrics
    assert np.nanmax(m["power"][rows]) <= 400.0
    busy = m["tensor"][rows] > 0.3
    if busy.any():
        assert np.all(m["throttle"][rows][busy].astype(int) & 0x4)
        assert np.all(m["sm_clock"][rows][busy] < 1980)


def test_node_down_marks_slurm_down_and_fails_its_jobs() -> None:
    c = cluster()
    rec = inject(c, "node_down")
    n = node_i(c, rec.nodes[0])
    c.step(10.0)
    tel = c.telemetry_update()
    assert not tel.node_up[n] and np.all(np.isnan(tel.metrics["power"][n]))
    c.step(130.0)
    nodes = c.node_table()
    assert nodes.state[n] == NodeState.DOWN and not nodes.responding[n]
    assert nodes.gpus_alloc[n] == 0
    for jid in rec.job_ids:
        assert job_state(c, jid) == JobState.NODE_FAIL
    assert {"NodeDown", "ExporterDown"} <= alert_names(c, rec.nodes[0])


def test_exporter_down_hides_telemetry_but_not_the_node() -> None:
    c = cluster()
    rec = inject(c, "exporter_down")
    n = node_i(c, rec.nodes[0])
    c.step(200.0)
    tel = c.telemetry_update()
    assert not tel.node_up[n] and np.all(np.isnan(tel.metrics["util"][n]))
    assert tel.node_up.sum() == c.config.nodes - 1
    nodes = c.node_table()
    assert nodes.responding[n] and nodes.state[n] != NodeState.DOWN
    assert alert_names(c, rec.nodes[0]) == {"ExporterDown"}


def test_queue_surge_floods_the_queue_from_one_tenant() -> None:
    c = cluster()
    def pending_of(tenant: str) -> int:
        jobs = c.job_table()
        acct = jobs.accounts.index(tenant)
        return int(np.sum((jobs.state == JobState.PENDING) & (jobs.account == acct)))
    rec = inject(c, "queue_surge")
    tenant, = rec.tenants
    c.step(10.0)
    assert len(rec.job_ids) >= 20
    assert pending_of(tenant) >= 15


@pytest.mark.parametrize("mode", ["all", "default"])
def test_every_fault_ends(mode: str) -> None:
    c = SimCluster(SimConfig(seed=11, nodes=64, t0=T0, faults=mode, tick_s=60.0, fault_rate=0.0))
    c.step(5 * 3600.0)
    truth = c.ground_truth
    kinds = {r.kind for r in truth}
    if mode == "all":
        assert kinds == set(FAULT_KINDS)
    else:
        assert len(kinds) >= 5, "several kinds within the first hour"
        assert max(r.start for r in truth) <= T0 + 3600
    assert all(r.end is not None and r.end > r.start for r in truth)
    m = c.telemetry_update().metrics
    assert np.all(np.nan_to_num(m["xid"]) == 0) and np.all(np.nan_to_num(m["ecc_dbe"]) == 0)
    assert c.telemetry_update().node_up.all()
    nodes = c.node_table()
    assert not np.any(nodes.state == NodeState.DOWN)
    assert not np.any(np.isin(nodes.state, (NodeState.DRAINED, NodeState.DRAINING)))


def test_unknown_fault_kind_is_refused() -> None:
    c = cluster()
    with pytest.raises(ValueError):
        c.inject_fault("meteor")


def test_the_simulator_names_rows_pdus_and_leaf_switches() -> None:
    c = cluster()
    topo = c.topology()
    assert topo.row_names == ("A",) and topo.rack_row.tolist() == [0] * 8  # 64 nodes = 8 racks = one row
    groups = {name: [topo.node_names[i] for i in topo.group_members(g)]
              for g, name in enumerate(topo.group_names)}
    assert groups["R01-PDU-A"] == ["n0001", "n0002", "n0003", "n0004"]
    assert groups["R08-PDU-B"] == ["n0061", "n0062", "n0063", "n0064"]
    assert groups["leaf-02"] == [f"n{i:04d}" for i in range(33, 65)]
    assert topo.group_kinds.count("pdu") == 16 and topo.group_kinds.count("switch") == 2


def test_pdu_trip_takes_every_node_it_feeds_down() -> None:
    c = cluster()
    rec = inject(c, "pdu_trip")
    assert rec.group is not None and rec.group.endswith(("-PDU-A", "-PDU-B")) and len(rec.nodes) == 4
    assert rec.nodes == c.site.pdus[rec.group] and rec.job_ids and rec.tenants
    idx = [node_i(c, n) for n in rec.nodes]
    c.step(10.0)
    tel = c.telemetry_update()
    assert not tel.node_up[idx].any() and np.all(np.isnan(tel.metrics["util"][idx]))
    assert tel.node_up.sum() == c.config.nodes - 4
    c.step(130.0)
    nodes = c.node_table()
    assert np.all(nodes.state[idx] == NodeState.DOWN) and not nodes.responding[idx].any()
    assert int(np.sum(nodes.state == NodeState.DOWN)) == 4
    for jid in rec.job_ids:
        assert job_state(c, jid) == JobState.NODE_FAIL
    c.step(3600.0)
    (done,) = [r for r in c.ground_truth if r.id == rec.id]
    assert done.end is not None and c.node_table().responding.all() and c.telemetry_update().node_up.all()


def test_switch_down_cuts_its_nodes_off_but_their_jobs_run_on() -> None:
    c = cluster()
    rec = inject(c, "switch_down")
    assert rec.group in ("leaf-01", "leaf-02") and len(rec.nodes) == 32
    idx = [node_i(c, n) for n in rec.nodes]
    running = [j for j in rec.job_ids if job_state(c, j) == JobState.RUNNING]
    assert running
    c.step(60.0)
    tel = c.telemetry_update()
    assert not tel.node_up[idx].any() and tel.node_up.sum() == c.config.nodes - 32
    nodes = c.node_table()
    assert not nodes.responding[idx].any() and nodes.responding.sum() == c.config.nodes - 32
    assert not np.any(nodes.state[idx] == NodeState.DOWN)
    assert all(job_state(c, j) in (JobState.RUNNING, JobState.COMPLETED) for j in running)
    c.step(3600.0)
    assert c.node_table().responding.all() and c.telemetry_update().node_up.all()


def test_ended_faults_are_forgotten_after_keep_s_and_ids_count_on() -> None:
    c = cluster()
    c.faults.keep_s = 2 * 3600.0
    first = inject(c, "exporter_down")  # lasts 10 to 30 minutes
    c.step(3600.0)
    (done,) = [r for r in c.ground_truth if r.id == first.id]
    assert done.end is not None
    c.step(3 * 3600.0)  # more than keep_s after its end, and past the hourly look
    assert c.ground_truth == []
    assert inject(c, "exporter_down").id == "F0002"  # ids are never reused


def test_at_most_max_records_ended_faults_are_kept_oldest_dropped_first_active_never() -> None:
    c = cluster()
    c.faults.max_records = 1
    rack = inject(c, "rack_cooling")  # lasts 30 to 60 minutes
    outs = [inject(c, "exporter_down").id for _ in range(3)]  # 10 to 30 minutes each
    assert len(c.ground_truth) == 4  # all active: nothing is dropped
    c.step(1810.0)
    truth = {r.id: r for r in c.ground_truth}
    assert truth[rack.id].end is None  # still active: kept although it is the oldest
    assert [i for i in truth if i != rack.id] == outs[-1:]  # of the ended, only the newest
    assert truth[outs[-1]].end is not None

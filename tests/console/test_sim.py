"""The simulated cluster: determinism, conservation, telemetry that follows the jobs, layout."""

from __future__ import annotations

import numpy as np
import pytest

from console.model import JobState, NodeState, TELEMETRY_METRICS
from console.sim import SimCluster, SimConfig, SimulatedSource
from console.hostlist import compress
from console.sources.base import Source

T0 = 1_800_000_000.0


def small(**kw) -> SimCluster:
    base = dict(seed=3, nodes=48, t0=T0)
    base.update(kw)
    return SimCluster(SimConfig(**base))


def snapshot(c: SimCluster) -> tuple:
    tel, sch, al = c.updates()
    jobs = sch.jobs
    cols = tuple(getattr(jobs, f) for f in ("job_id", "state", "reason", "gpus", "submit_time",
                                              "start_time", "end_time", "node_list", "alloc_job",
                                              "alloc_node", "alloc_gpu", "account", "user"))
    return tel, sch, al, cols


def test_same_seed_and_steps_give_identical_state() -> None:
    a, b = small(faults="all"), small(faults="all")
    for dt in (5.0, 5.0, 12.5, 300.0, 3600.0):
        a.step(dt)
        b.step(dt)
    ta, sa, aa, ca = snapshot(a)
    tb, sb, ab, cb = snapshot(b)
    assert ta.time == tb.time == T0 + 3922.5
    for key in TELEMETRY_METRICS:
        assert np.array_equal(ta.metrics[key], tb.metrics[key], equal_nan=True), key
    for x, y in zip(ca, cb):
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    assert [x.fingerprint for x in aa.alerts] == [x.fingerprint for x in ab.alerts]
    assert a.ground_truth == b.ground_truth
    assert len(a.ground_truth) >= 5


def test_different_seed_gives_a_different_cluster() -> None:
    a, b = small(seed=1), small(seed=2)
    a.step(60)
    b.step(60)
    assert not np.array_equal(a.telemetry_update().metrics["power"], b.telemetry_update().metrics["power"])


def _check_conservation(c: SimCluster) -> None:
    gpn = c.config.gpus_per_node
    nodes = c.node_table()
    jobs = c.job_table()
    pairs = jobs.alloc_node.astype(np.int64) * gpn + jobs.alloc_gpu
    assert len(np.unique(pairs)) == len(pairs), "a GPU is held by two jobs"
    assert len(pairs) <= c.config.nodes * gpn
    assert np.all(jobs.alloc_gpu < gpn) and np.all(jobs.alloc_gpu >= 0)
    per_node = np.bincount(jobs.alloc_node, minlength=len(nodes))
    assert np.array_equal(per_node, nodes.gpus_alloc)
    assert np.all(nodes.gpus_alloc <= nodes.gpus)
    per_job = np.bincount(jobs.alloc_job, minlength=len(jobs))
    running = jobs.state == int(JobState.RUNNING)
    assert np.array_equal(per_job[running], jobs.gpus[running])
    assert np.all(per_job[~running] == 0), "only running jobs hold GPUs"
    assert not np.any(nodes.gpus_alloc[nodes.state == int(NodeState.DOWN)])
    assert len(np.unique(jobs.job_id)) == len(jobs)


def test_allocations_are_conserved_through_faults_and_actions() -> None:
    c = small(faults="all", tick_s=30.0)
    _check_conservation(c)
    for i in range(60):
        c.step(120.0)
        if i == 10:
            running = c.job_table()
            jid = int(running.job_id[running.state == int(JobState.RUNNING)][0])
            c.cancel_job(jid)
        if i == 20:
            c.drain_node("n0003", "maintenance")
        _check_conservation(c)


def test_default_cluster_is_busy_with_a_queue() -> None:
    c = SimCluster(SimConfig(t0=T0))
    c.step(1800)
    nodes, jobs = c.node_table(), c.job_table()
    share = nodes.gpus_alloc.sum() / nodes.gpus.sum()
    assert 0.8 <= share <= 1.0
    pending = jobs.state == int(JobState.PENDING)
    assert pending.sum() >= 10
    reasons = {jobs.reasons[r] for r in jobs.reason[pending]}
    assert reasons & {"Priority", "Resources"}
    sizes = jobs.gpus[jobs.state == int(JobState.RUNNING)]
    assert sizes.min() >= 1 and sizes.max() <= 512
    assert np.all(sizes[sizes > 8] % 8 == 0), "multi-node jobs take whole nodes"
    assert np.any(jobs.array_task_id >= 0), "job arrays exist"


def test_finished_jobs_stay_bounded() -> None:
    c = small(faults="none", tick_s=60.0)
    c.step(36 * 3600.0)
    jobs = c.job_table()
    done = ~np.isin(jobs.state, (int(JobState.PENDING), int(JobState.RUNNING)))
    assert 0 < done.sum() <= 500
    states = {JobState(int(s)) for s in jobs.state[done]}
    assert JobState.COMPLETED in states
    assert states & {JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED}
    assert np.all(np.isfinite(jobs.end_time[done]))


def test_running_jobs_have_hostlists_and_expected_end() -> None:
    c = small()
    jobs = c.job_table()
    run = np.flatnonzero(jobs.state == int(JobState.RUNNING))
    assert len(run) > 0
    for r in run[:20]:
        names = sorted({jobs.alloc_node_names[n] for n in jobs.alloc_node[jobs.alloc_job == r]})
        assert jobs.node_list[r] == compress(names)
    np.testing.assert_allclose(jobs.end_time[run], jobs.start_time[run] + jobs.time_limit_s[run])
    pend = jobs.state == int(JobState.PENDING)
    assert np.all(np.isnan(jobs.start_time[pend])) and np.all(jobs.node_list[pend] == "")


def test_telemetry_follows_jobs() -> None:
    c = small(faults="none")
    for name in ("n0001", "n0002"):  # keep two nodes idle: drain them and end their jobs
        c.drain_node(name, "test")
    before = c.job_table()
    on_drained = np.isin(before.alloc_node, (0, 1))
    for jid in np.unique(before.job_id[before.alloc_job[on_drained]]):
        c.cancel_job(int(jid))
    c.step(600)
    tel = c.telemetry_update()
    jobs = c.job_table()
    busy = np.zeros((c.config.nodes, 8), bool)
    busy[jobs.alloc_node, jobs.alloc_gpu] = True
    m = tel.metrics
    idle = ~busy
    assert idle.any() and busy.any()
    assert np.all(m["tensor"][idle] == 0) and np.all(m["util"][idle] == 0)
    assert np.all(m["fb_used"][idle] == 0)
    assert np.all(m["power"][idle] < 100)
    assert np.median(m["power"][busy]) > 300
    assert np.median(m["tensor"][busy]) > 0.1
    assert np.all(m["power"] <= c.config.power_cap_w)
    assert np.all((m["throttle"][idle].astype(int) & 0x1) == 1)
    assert m["util"].dtype == np.float32 and m["util"].shape == (48, 8)
    assert tel.node_up.all() and set(tel.node_model) == {"NVIDIA H800 80GB HBM3"}


def test_layout_names_partitions_and_tenants() -> None:
    c = small()
    assert c.node_names[:3] == ("n0001", "n0002", "n0003")
    assert c.rack_names[:2] == ("R01", "R02") and len(c.rack_names) == 6
    tel = c.telemetry_update()
    assert tel.node_rack[0] == "R01" and tel.node_rack[8] == "R02"
    nodes = c.node_table()
    parts = [p for ps in nodes.partitions for p in ps]
    assert parts.count("training") > parts.count("inference") >= parts.count("debug") >= 1
    assert 10 <= len(c.tenants) <= 20
    assert {t.kind for t in c.tenants} == {"university", "research institute", "company"}
    assert all(0.0 <= t.subsidy <= 0.7 and t.price_per_gpu_hour > 0 for t in c.tenants)
    assert {"hku", "cuhk", "hkust"} <= {t.account for t in c.tenants}
    topo = c.topology()
    assert topo.n_gpus == 48 * 8
    assert topo.installed_pf == pytest.approx(48 * 8 * 989.5 / 1000, rel=1e-6)


def test_source_time_warp_and_protocol() -> None:
    src = SimulatedSource(SimConfig(nodes=16, t0=T0, speed=10.0, tick_s=5.0), interval_s=1.5)
    assert isinstance(src, Source)
    assert (src.name, src.kind, src.interval_s) == ("simulator", "simulator", 1.5)
    first = src.fetch()
    assert [type(u).__name__ for u in first] == ["TelemetryUpdate", "SchedulerUpdate", "AlertsUpdate"]
    assert all(u.time == T0 for u in first)
    second = src.fetch()
    assert all(u.time == T0 + 50.0 for u in second)
    hints = src.topology_hints()
    assert hints["n0001"] == "R01" and hints["n0009"] == "R02"
    src.close()


def test_4096_nodes_work() -> None:
    c = SimCluster(SimConfig(nodes=4096, t0=T0))
    c.step(10.0)
    tel = c.telemetry_update()
    assert tel.metrics["temp"].shape == (4096, 8)
    assert len(c.rack_names) == 512
    _check_conservation(c)
    assert c.node_table().gpus_alloc.sum() > 0.8 * 4096 * 8


def test_hostlist_compress() -> None:
    assert compress(["n0001", "n0002", "n0003", "n0005"]) == "n[0001-0003,0005]"
    assert compress(["n0007"]) == "n0007"
    assert compress(["gpu01", "gpu02", "login"]) == "gpu[01-02],login"


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SimConfig(nodes=0)
    with pytest.raises(ValueError):
        SimConfig(faults="some")
    with pytest.raises(ValueError):
        SimConfig(speed=0)

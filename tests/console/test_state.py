"""The state's figures, computed by hand for a known small cluster."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from console.config import ClusterSettings, TenantSettings
from console.model import (Alert, AlertsUpdate, Health, JobState, JobTable, NodeState, NodeTable,
                           SchedulerUpdate, Severity, SourceState, TelemetryUpdate,
                           TELEMETRY_METRICS)
from console.polling import PollResult
from console.sources.base import ErrorKind, SourceError
from console.state import ClusterState

PEAK = 989.5  # H800 BF16 dense TFLOPS
CLOCK = 1980.0


def _telemetry(t: float, tensor: list[list[float]], sm_clock: list[list[float]],
               util: list[list[float]], up=(True, True, True)) -> TelemetryUpdate:
    nodes = ("n01", "n02", "n03")
    shape = (3, 2)
    metrics = {k: np.zeros(shape, np.float32) for k in TELEMETRY_METRICS}
    metrics["tensor"] = np.array(tensor, np.float32)
    metrics["sm_clock"] = np.array(sm_clock, np.float32)
    metrics["util"] = np.array(util, np.float32)
    metrics["temp"] = np.full(shape, 50.0, np.float32)
    metrics["power"] = np.full(shape, 300.0, np.float32)
    return TelemetryUpdate(time=t, nodes=nodes, gpus_per_node=2, metrics=metrics,
                           node_up=np.array(up), node_model=("NVIDIA H800 80GB HBM3",) * 3,
                           node_rack=("R1", "R1", "R2"))


def _scheduler(t: float) -> SchedulerUpdate:
    nodes = NodeTable(
        names=("n01", "n02", "n03"),
        state=np.array([NodeState.MIXED, NodeState.ALLOCATED, NodeState.DRAINED], np.int8),
        responding=np.array([True, True, True]),
        reason=("", "", "maintenance"),
        gpus=np.array([2, 2, 2], np.int16), gpus_alloc=np.array([1, 2, 0], np.int16),
        partitions=(("gpu",),) * 3)
    jobs = JobTable.build(
        [dict(job_id=101, account="hku", partition="gpu", state=JobState.RUNNING, gpus=3,
              nodes=2, submit_time=t - 600, start_time=t - 300, reason="None"),
         dict(job_id=102, account="cuhk", partition="gpu", state=JobState.PENDING, gpus=4,
              nodes=2, submit_time=t - 100, reason="Resources"),
         dict(job_id=103, account="startup", partition="gpu", state=JobState.PENDING, gpus=1,
              nodes=1, submit_time=t - 50, reason="Priority")],
        alloc=[(0, "n01", 1), (0, "n02", 0), (0, "n02", 1)])
    return SchedulerUpdate(time=t, nodes=nodes, jobs=jobs, api_version="v0.0.38")


def _state() -> ClusterState:
    cluster = ClusterSettings(name="lab", tenants=(
        TenantSettings("hku", "HKU", "university", 0.7, 10.0),
        TenantSettings("cuhk", "CUHK", "university", 0.5, 10.0)))
    return ClusterState(cluster, [("prom", "telemetry", 10.0), ("slurm", "scheduler", 10.0),
                                  ("am", "alerts", 10.0)], wall=lambda: 1000.0)


def _ok(source: str, kind: str, rid: int, t: float, *updates) -> PollResult:
    return PollResult(source=source, kind=kind, request_id=rid, started_at=t, fetched_at=t,
                      latency_s=0.1, updates=tuple(updates))


def _loaded_state() -> ClusterState:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(
        995.0, tensor=[[0.0, 0.5], [0.4, 0.2], [0.0, 0.0]],
        sm_clock=[[1980, 990], [1980, 1980], [1980, 1980]],
        util=[[0, 90], [80, 60], [0, 0]])))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(996.0)))
    alert = Alert(fingerprint="f1", name="GpuHot", severity=Severity.WARNING, state="firing",
                  starts_at=900.0, node="n02")
    silenced = Alert(fingerprint="f2", name="NodeDown", severity=Severity.CRITICAL,
                     state="silenced", starts_at=900.0)
    s.apply(_ok("am", "alerts", 1, 997.0, AlertsUpdate(time=997.0, alerts=(alert, silenced))))
    return s


def test_capacity_waterfall_and_delivered_pf_by_hand() -> None:
    f = _loaded_state().build_frame(now=1000.0)
    k = f.kpis
    assert k.gpus_total == 6
    assert k.installed_pf == pytest.approx(6 * PEAK / 1000)
    # n03 is DRAINED: its 2 GPUs are not available.
    assert k.gpus_available == 4
    assert k.available_pf == pytest.approx(4 * PEAK / 1000)
    # Job 101 holds n01/1, n02/0, n02/1.
    assert k.gpus_allocated == 3
    assert k.allocated_pf == pytest.approx(3 * PEAK / 1000)
    assert k.gpus_busy == 3  # util 90, 80, 60 >= 5 %
    # tensor x clock factor x peak: n01/1 at half clock counts half.
    delivered_tf = (0.5 * 0.5 + 0.4 * 1.0 + 0.2 * 1.0) * PEAK
    assert k.delivered_pf == pytest.approx(delivered_tf / 1000, rel=1e-6)
    assert k.precision == "BF16 dense"
    assert k.jobs_running == 1 and k.jobs_pending == 2 and k.gpus_pending == 5
    assert k.alerts_firing == 1
    assert k.alerts_by_severity == {"critical": 0, "warning": 1, "info": 0}
    assert k.gpus_by_health["unavailable"] == 2 and k.gpus_healthy == 4


def test_gpu_job_tenant_join_and_tenant_table() -> None:
    f = _loaded_state().build_frame(now=1000.0)
    topo = f.topology
    assert topo.node_names == ("n01", "n02", "n03")
    assert topo.rack_names == ("R1", "R2")
    assert list(f.gpu.job_id) == [0, 101, 101, 101, 0, 0]
    hku = f.tenants.index("hku")
    assert list(f.gpu.tenant) == [-1, hku, hku, hku, -1, -1]
    t = f.tenants
    assert t.account == ("hku", "cuhk", "startup")  # configured first, then discovered
    assert t.display[2] == "startup" and t.kind[2] == "other"
    assert list(t.gpus_in_use) == [3, 0, 0]
    assert list(t.jobs_running) == [1, 0, 0]
    assert list(t.jobs_pending) == [0, 1, 1]
    assert list(t.gpus_pending) == [0, 4, 1]
    assert t.delivered_pf[hku] == pytest.approx(f.kpis.delivered_pf, rel=1e-6)
    assert t.efficiency[hku] == pytest.approx(f.kpis.delivered_pf / (3 * PEAK / 1000), rel=1e-5)
    assert np.isnan(t.efficiency[1])
    assert t.cost_per_hour[hku] == pytest.approx(30.0)
    assert t.subsidy_per_hour[hku] == pytest.approx(21.0)
    assert t.share[hku] == pytest.approx(0.5)


def test_exporter_down_is_no_data_not_idle() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(
        995.0, tensor=[[0.3, 0.3], [0.3, 0.3], [0.0, 0.0]], sm_clock=[[1980] * 2] * 3,
        util=[[50, 50], [50, 50], [0, 0]], up=(True, False, True))))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(996.0)))
    f = s.build_frame(now=1000.0)
    assert list(f.gpu.health[2:4]) == [Health.NO_DATA, Health.NO_DATA]
    assert np.isnan(f.gpu.util[2:4]).all()
    assert f.kpis.delivered_pf == pytest.approx(0.6 * PEAK / 1000, rel=1e-6)


def test_stale_telemetry_is_shown_as_no_data_with_its_age() -> None:
    s = _loaded_state()
    f = s.build_frame(now=1000.0 + 31.0)  # 36 s after the fetch, 3 intervals = 30 s
    assert f.is_stale("telemetry")
    assert f.age_s("telemetry") == pytest.approx(36.0)
    assert (f.gpu.health[f.topology.gpu_exists()] != Health.OK).all()
    # Past its stale limit the figure is unknown (None), not 0, and so is the per-GPU figure.
    assert f.kpis.delivered_pf is None and f.kpis.gpus_healthy is None
    assert np.isnan(f.gpu.delivered_tflops).all()
    prom = next(x for x in f.sources if x.name == "prom")
    assert prom.state is SourceState.STALE


def test_failures_are_reported_in_words_and_keep_the_last_data() -> None:
    s = _loaded_state()
    s.apply(PollResult(source="slurm", kind="scheduler", request_id=2, started_at=1001.0,
                       fetched_at=1001.0, latency_s=0.0,
                       error=SourceError(ErrorKind.AUTH, "token rejected or expired")))
    f = s.build_frame(now=1002.0)
    slurm = next(x for x in f.sources if x.name == "slurm")
    assert slurm.state is SourceState.FAILING
    assert slurm.error == "token rejected or expired" and slurm.error_kind == "auth"
    assert slurm.consecutive_failures == 1
    assert f.kpis.jobs_running == 1  # last good data kept
    assert slurm.detail == "Slurm REST API v0.0.38"


def test_late_result_is_dropped() -> None:
    s = _loaded_state()
    assert s.apply(_ok("slurm", "scheduler", 1, 999.0, _scheduler(999.0))) is False
    assert s.apply(_ok("unknown", "scheduler", 5, 999.0, _scheduler(999.0))) is False


def test_new_nodes_bump_the_topology_version_and_keep_data() -> None:
    s = _loaded_state()
    v = s.topology.version
    f1 = s.build_frame(now=1000.0)
    tel = _telemetry(1001.0, tensor=[[0.1, 0.1]] * 3, sm_clock=[[1980] * 2] * 3, util=[[9, 9]] * 3)
    bigger = TelemetryUpdate(time=1001.0, nodes=tel.nodes + ("n00",), gpus_per_node=2,
                             metrics={k: np.vstack([a, a[:1]]) for k, a in tel.metrics.items()},
                             node_up=np.ones(4, bool), node_rack=("R1", "R1", "R2", "R1"))
    s.apply(_ok("prom", "telemetry", 2, 1001.0, bigger))
    f2 = s.build_frame(now=1002.0)
    assert f2.topology.version == v + 1
    assert f2.topology.node_names == ("n00", "n01", "n02", "n03")
    assert f1.topology.node_names == ("n01", "n02", "n03")  # the old frame is untouched
    assert list(f2.gpu.job_id[2:8]) == [0, 101, 101, 101, 0, 0]


def test_history_is_bounded_and_time_ordered() -> None:
    s = ClusterState(ClusterSettings(name="x"), [("prom", "telemetry", 1.0)],
                     history_raw_points=5, history_hours=1.0)
    for i in range(12):
        t = 1000.0 + i
        s.apply(_ok("prom", "telemetry", i + 1, t, _telemetry(
            t, tensor=[[0.1, 0.1]] * 3, sm_clock=[[1980] * 2] * 3, util=[[1, 1]] * 3)))
        f = s.build_frame(now=t)
    assert len(f.history.t) <= 5 + 1
    assert np.all(np.diff(f.history.t) > 0)
    assert f.history.t[-1] == 1011.0


def test_frame_pickles_compactly() -> None:
    f = _loaded_state().build_frame(now=1000.0)
    blob = pickle.dumps(f, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(blob)
    assert back.kpis == f.kpis
    assert np.array_equal(back.gpu.job_id, f.gpu.job_id)


def test_an_empty_state_builds_a_frame_that_says_it_has_no_data() -> None:
    f = _state().build_frame(now=1000.0)
    k = f.kpis
    # Nothing answered yet: every figure is unknown (None), never 0; keys stay.
    assert k.gpus_total is None and k.installed_pf is None and k.nodes_total is None
    assert k.delivered_pf is None and k.jobs_running is None and k.alerts_firing is None
    assert k.gpus_by_health is None and k.nodes_by_state is None and k.alerts_by_severity is None
    assert k.anomalies_open == 0  # the console's own figure is always known
    assert all(s.state is SourceState.WAITING for s in f.sources)
    assert f.is_stale("telemetry") and f.age_s("scheduler") is None

"""Fixtures for the widget tests: an off-screen Qt platform, isolated settings, known frames.

`make_frame` builds a small, fully known Frame by hand (2 racks x 2 nodes x 8 GPUs) so that
tests can assert exact texts and colours; every number in it is chosen here, not computed.
"""

from __future__ import annotations

import os

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from console.model import (  # noqa: E402
    Alert,
    Frame,
    GpuFrame,
    Health,
    History,
    JobState,
    JobTable,
    Kpis,
    NodeState,
    NodeTable,
    Severity,
    SourceState,
    SourceStatus,
    TenantTable,
    Topology,
)

#: The frame's clock: a fixed instant so that ages and time axes are exact.
NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
GPN = 8
NODES = ("n00", "n01", "n02", "n03")


def _topology(version: int = 1) -> Topology:
    n_gpus = len(NODES) * GPN
    return Topology(
        node_names=NODES,
        node_rack=np.array([0, 0, 1, 1], np.int32),
        rack_names=("R01", "R02"),
        gpus_per_node=GPN,
        node_gpu_count=np.full(len(NODES), GPN, np.int16),
        node_model=("H800",) * len(NODES),
        gpu_peak_tflops=np.full(n_gpus, 989.5, np.float32),
        gpu_max_clock_mhz=np.full(n_gpus, 1980.0, np.float32),
        precision="BF16 dense",
        version=version,
    )


def _jobs() -> JobTable:
    rows = [
        dict(job_id=101, name="llama-pretrain", user="alice", account="hku", partition="training",
             state=JobState.RUNNING, reason="None", gpus=8, nodes=1, submit_time=NOW - 4000,
             start_time=NOW - 3600, end_time=NOW + 3600, time_limit_s=7200.0, node_list="n00"),
        dict(job_id=102, name="eval", user="bob", account="cuhk", partition="inference",
             state=JobState.RUNNING, reason="None", gpus=4, nodes=1, submit_time=NOW - 700,
             start_time=NOW - 600, end_time=NOW + 600, time_limit_s=1200.0, node_list="n01"),
        dict(job_id=103, name="sweep", user="carol", account="hku", partition="training",
             state=JobState.PENDING, reason="Resources", gpus=16, nodes=2, submit_time=NOW - 300),
    ]
    alloc = [(0, "n00", g) for g in range(8)] + [(1, "n01", g) for g in range(4)]
    return JobTable.build(rows, alloc)


def build_frame(*, telemetry_age: float | None = 3.0, scheduler_age: float | None = 4.0,
                alerts_age: float | None = 5.0, simulated: bool = True, seq: int = 1,
                topology_version: int = 1, scheduler_failing: bool = False,
                now: float = NOW) -> Frame:
    """A known frame. GPU 0 OK, 1 degraded, 2 failed, 3 out of service, 4 no data (NaN), the
    whole of node n03 (GPUs 24..31) no data; jobs 101 (hku, n00 GPUs 0-7) and 102 (cuhk, n01
    GPUs 0-3) running, 103 pending on Resources."""
    topo = _topology(topology_version)
    n = topo.n_gpus
    g = np.arange(n, dtype=np.float32)
    util = (g * 3.0) % 101.0
    tensor = ((g % 10) / 10.0).astype(np.float32)
    temp = (40.0 + g).astype(np.float32)
    power = (300.0 + 10.0 * g).astype(np.float32)
    health = np.zeros(n, np.int8)
    health[1], health[2], health[3], health[4] = Health.DEGRADED, Health.FAILED, Health.UNAVAILABLE, Health.NO_DATA
    health[24:] = Health.NO_DATA
    nan_mask = health == Health.NO_DATA
    metrics = {}
    for key, arr in dict(util=util, tensor=tensor, sm_clock=np.full(n, 1755.0), temp=temp, power=power,
                         fb_used=np.full(n, 40960.0), xid=np.zeros(n), ecc_dbe=np.zeros(n),
                         nvlink_crc=np.zeros(n), throttle=np.zeros(n)).items():
        a = np.asarray(arr, np.float32).copy()
        a[nan_mask] = np.nan
        metrics[key] = a
    metrics["xid"][2] = 79.0
    delivered = np.nan_to_num(metrics["tensor"] * (1755.0 / 1980.0) * 989.5).astype(np.float32)
    jobs = _jobs()
    job_row = np.full(n, -1, np.int32)
    job_id = np.zeros(n, np.int64)
    tenant = np.full(n, -1, np.int16)
    job_row[0:8], job_id[0:8], tenant[0:8] = 0, 101, 0
    job_row[8:12], job_id[8:12], tenant[8:12] = 1, 102, 1
    gpu = GpuFrame(delivered_tflops=delivered, health=health, job_row=job_row, job_id=job_id,
                   tenant=tenant, **metrics)
    nodes = NodeTable(
        names=NODES,
        state=np.array([NodeState.ALLOCATED, NodeState.MIXED, NodeState.IDLE, NodeState.DOWN], np.int8),
        responding=np.array([True, True, True, False]),
        reason=("", "", "", "Not responding"),
        gpus=np.full(4, 8, np.int16),
        gpus_alloc=np.array([8, 4, 0, 0], np.int16),
        partitions=(("training",),) * 4,
    )
    kpis = Kpis(
        installed_pf=31.664, available_pf=23.748, allocated_pf=11.874, busy_pf=9.9,
        delivered_pf=7.25, precision="BF16 dense", gpus_total=32, gpus_available=24,
        gpus_healthy=23, gpus_allocated=12, gpus_busy=10,
        gpus_by_health={"ok": 23, "degraded": 1, "failed": 1, "unavailable": 1, "no_data": 6},
        nodes_total=4, nodes_by_state={"allocated": 1, "mixed": 1, "idle": 1, "down": 1},
        jobs_running=2, jobs_pending=1, gpus_pending=16, alerts_firing=3,
        alerts_by_severity={"critical": 1, "warning": 2, "info": 0},
    )
    tenants = TenantTable(
        account=("hku", "cuhk"), display=("HKU", "CUHK"), kind=("university", "university"),
        subsidy=np.array([0.5, 0.3], np.float32), price_per_gpu_hour=np.array([2.0, 2.0], np.float32),
        gpus_in_use=np.array([8, 4], np.int32), share=np.array([0.25, 0.125], np.float32),
        delivered_pf=np.array([4.5, 2.75], np.float32), efficiency=np.array([0.57, 0.69], np.float32),
        jobs_running=np.array([1, 1], np.int32), jobs_pending=np.array([1, 0], np.int32),
        gpus_pending=np.array([16, 0], np.int32), cost_per_hour=np.array([16.0, 8.0], np.float32),
        subsidy_per_hour=np.array([8.0, 2.4], np.float32),
    )
    t = now - np.arange(9, -1, -1, dtype=np.float64) * 60.0
    k = np.arange(10, dtype=np.float32)
    delivered_series = (5.0 + 0.25 * k).astype(np.float32)
    delivered_series[3] = np.nan  # a gap: a missed scrape
    history = History(
        t=t,
        series={
            "delivered_pf": delivered_series,
            "installed_pf": np.full(10, 31.664, np.float32),
            "available_pf": np.full(10, 23.748, np.float32),
            "allocated_pf": (10.0 + 0.2 * k).astype(np.float32),
            "busy_pf": (8.0 + 0.2 * k).astype(np.float32),
            "jobs_pending": np.full(10, 1.0, np.float32),
        },
        tenant_delivered_pf=np.zeros((10, 2), np.float32),
        tenant_gpus=np.zeros((10, 2), np.float32),
    )
    alerts = (
        Alert("f1", "GpuFellOffBus", Severity.CRITICAL, "firing", now - 120,
              annotations={"summary": "GPU 2 on n00 fell off the bus (XID 79)"}, node="n00", gpu=2),
        Alert("f2", "NodeDown", Severity.WARNING, "firing", now - 600, node="n03"),
        Alert("f3", "HighTemp", Severity.WARNING, "firing", now - 60, node="n01"),
    )

    def ts(age: float | None) -> float | None:
        return None if age is None else now - age

    sched_status = SourceStatus(
        name="slurm", kind="scheduler",
        state=SourceState.FAILING if scheduler_failing else SourceState.OK,
        interval_s=10.0, last_success=ts(scheduler_age), last_attempt=now - 1.0,
        latency_s=None if scheduler_failing else 0.120,
        error="cannot connect to slurm.example:6820 (connection refused)" if scheduler_failing else None,
        error_kind="unreachable" if scheduler_failing else None,
        consecutive_failures=7 if scheduler_failing else 0, detail="Slurm REST v0.0.38",
    )
    sources = (
        SourceStatus(name="prometheus", kind="telemetry", state=SourceState.OK, interval_s=10.0,
                     last_success=ts(telemetry_age), last_attempt=ts(telemetry_age), latency_s=0.045,
                     error=None, error_kind=None, detail="Prometheus 2.42.0"),
        sched_status,
        SourceStatus(name="alertmanager", kind="alerts", state=SourceState.OK, interval_s=15.0,
                     last_success=ts(alerts_age), last_attempt=ts(alerts_age), latency_s=0.012,
                     error=None, error_kind=None, detail="Alertmanager 0.25.0"),
    )
    return Frame(
        seq=seq, time=now, cluster="Test Cluster", topology=topo, gpu=gpu, nodes=nodes,
        node_health=np.array([Health.FAILED, Health.OK, Health.OK, Health.NO_DATA], np.int8),
        jobs=jobs, kpis=kpis, tenants=tenants, history=history, alerts=alerts, silences=(),
        anomalies=(), causes=(), sources=sources,
        data_time={"telemetry": ts(telemetry_age), "scheduler": ts(scheduler_age), "alerts": ts(alerts_age)},
        stale_after_s={"telemetry": 30.0, "scheduler": 30.0, "alerts": 45.0},
        simulated=simulated,
    )


#: The off-screen platform warns about window-manager requests it cannot honour; they say
#: nothing about the console, and every other Qt warning still fails a test.
OFFSCREEN_NOISE = (
    r"This plugin does not support propagateSizeHints\(\)",
    r"This plugin does not support raise\(\)",
    r"This plugin does not support grabbing the keyboard",
)


def pytest_collection_modifyitems(config, items) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE))


@pytest.fixture
def make_frame() -> Callable[..., Frame]:
    return build_frame


@pytest.fixture(autouse=True)
def _themed_app(qapp):
    """Every widget test runs under the real dark theme, as the console does."""
    from widgets import theme

    # Re-applying a stylesheet re-polishes every live widget: only do it when it changed.
    if theme.current() != theme.Theme() or qapp.styleSheet() != theme.stylesheet(theme.Theme()):
        theme.apply(qapp, theme.Theme())
    yield qapp


@pytest.fixture
def qsettings(tmp_path: Path):
    """A QSettings in a temp INI file: tests never read or write the user's real settings."""
    from PySide6.QtCore import QSettings

    s = QSettings(str(tmp_path / "aisc-console-test.ini"), QSettings.Format.IniFormat)
    yield s
    s.sync()


@pytest.fixture
def context():
    from widgets.panel import PanelContext

    return PanelContext()


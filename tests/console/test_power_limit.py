"""Power capping seen through the enforced power limit (DCGM field 164), end to end.

A cap below a GPU's board power is invisible in power draw and clocks while the GPU's job draws
less than the cap; the enforced limit shows it at once. These tests follow the limit from the
simulator and its exporter, through the Prometheus source and the state, to the detector, the
causes and the health words.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from test_sources_http import ReplayServer, server  # noqa: F401  (fixture)
from test_sources_prometheus import QueryServer, _series, _vector

from console import health as health_mod
from console.analytics.anomaly import AnomalyDetector
from console.analytics.anomaly_frames import FrameBuilder
from console.config import ClusterSettings
from console.model import (
    TELEMETRY_METRICS,
    Frame,
    GpuFrame,
    Health,
    NodeState,
    NodeTable,
    SchedulerUpdate,
    TelemetryUpdate,
)
from console.peaks import board_power_w
from console.polling import PollResult
from console.sim import SimCluster, SimConfig
from console.sim.exporter import render_metrics, serve_exporter
from console.sources.prometheus import (
    MetricMap,
    PrometheusClient,
    PrometheusTelemetrySource,
)
from console.state import ClusterState

T0 = 1_700_000_000.0
DT = 30.0
LIMIT = "DCGM_FI_DEV_ENFORCED_POWER_LIMIT"


# ---- contract -------------------------------------------------------------------------------


def test_power_limit_is_a_telemetry_metric_and_an_optional_gpu_frame_field() -> None:
    assert TELEMETRY_METRICS["power_limit"] == "W"
    assert list(TELEMETRY_METRICS)[-1] == "power_limit"  # added at the end, order kept
    names = list(GpuFrame.__dataclass_fields__)
    assert names[-1] == "power_limit" and names[:3] == ["util", "tensor", "sm_clock"]
    assert GpuFrame.__dataclass_fields__["power_limit"].default is None


@pytest.mark.parametrize("model,watts", [
    ("NVIDIA H800 80GB HBM3", 700.0), ("NVIDIA H100 80GB HBM3", 700.0), ("NVIDIA H200", 700.0),
    ("NVIDIA H100 PCIe", 350.0), ("NVIDIA A100-SXM4-80GB", 400.0), ("NVIDIA L40S", 350.0),
    ("NVIDIA B200", 1000.0), ("NVIDIA GB200", 1200.0), ("AMD Instinct MI300X", 750.0),
    ("NVIDIA H20", 400.0),
])
def test_board_power_per_model(model: str, watts: float) -> None:
    assert board_power_w(model) == watts


def test_unknown_model_has_no_board_power() -> None:
    assert np.isnan(board_power_w("Tesla V100-SXM2-32GB")) and np.isnan(board_power_w(""))


# ---- simulator and exporter -----------------------------------------------------------------


def _sim() -> SimCluster:
    return SimCluster(SimConfig(seed=3, nodes=16, t0=T0, faults="none"))


def test_sim_reports_the_board_limit_and_the_cap_of_a_power_cap_fault() -> None:
    c = _sim()
    m = c.telemetry_update().metrics
    assert m["power_limit"].dtype == np.float32 and m["power_limit"].shape == (16, 8)
    assert np.all(m["power_limit"] == 700.0)
    rec = c.inject_fault("power_cap")
    assert rec is not None
    c.step(30.0)
    lim = c.telemetry_update().metrics["power_limit"]
    rows = [c.node_names.index(n) for n in rec.nodes]
    others = [i for i in range(16) if i not in rows]
    assert np.all(lim[rows] == 400.0) and np.all(lim[others] == 700.0)


def test_sim_exporter_serves_the_enforced_limit() -> None:
    c = _sim()
    rec = c.inject_fault("power_cap")
    assert rec is not None
    capped = set(rec.nodes)
    srv, _thread = serve_exporter(c)
    try:
        text = requests.get(f"http://127.0.0.1:{srv.server_address[1]}/metrics", timeout=5).text
    finally:
        srv.shutdown()
        srv.server_close()
    assert text == render_metrics(c)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    fam = fams[LIMIT]
    assert fam.type == "gauge" and len(fam.samples) == 16 * 8
    for s in fam.samples:
        assert s.value == (400.0 if s.labels["Hostname"] in capped else 700.0)


# ---- Prometheus source ----------------------------------------------------------------------


def test_prometheus_source_asks_for_and_parses_the_limit(server: ReplayServer) -> None:  # noqa: F811
    assert MetricMap().power_limit == LIMIT
    src = PrometheusTelemetrySource(PrometheusClient.from_url(server.url))
    qs = QueryServer(server)
    qs.set(MetricMap().util, _vector([_series("U", "n01", 0, 90.0), _series("U", "n01", 1, 91.0)]))
    qs.set(LIMIT, _vector([_series(LIMIT, "n01", 0, 400.0), _series(LIMIT, "n01", 1, 700.0)]))
    (u,) = src.fetch()
    sent = [r["query"]["query"][0] for r in server.requests]
    assert LIMIT in sent
    np.testing.assert_array_equal(u.metrics["power_limit"], np.array([[400.0, 700.0]], np.float32))


def test_missing_limit_is_nan_and_no_warning(server: ReplayServer) -> None:  # noqa: F811
    src = PrometheusTelemetrySource(PrometheusClient.from_url(server.url))
    qs = QueryServer(server)
    qs.set(MetricMap().util, _vector([_series("U", "n01", 0, 90.0)]))
    (u,) = src.fetch()
    assert np.isnan(u.metrics["power_limit"]).all()
    assert not any(LIMIT in w for w in u.warnings)
    assert any("DCGM_FI_DEV_POWER_USAGE" in w for w in u.warnings)  # a required one still warns


def test_limit_query_can_be_switched_off(server: ReplayServer) -> None:  # noqa: F811
    src = PrometheusTelemetrySource(PrometheusClient.from_url(server.url),
                                    metrics=MetricMap(power_limit=""))
    qs = QueryServer(server)
    qs.set(MetricMap().util, _vector([_series("U", "n01", 0, 90.0)]))
    (u,) = src.fetch()
    assert LIMIT not in [r["query"]["query"][0] for r in server.requests]
    assert np.isnan(u.metrics["power_limit"]).all()


# ---- state and health -----------------------------------------------------------------------


def _state_frame(limit: np.ndarray | None) -> Frame:
    nodes = ("n01", "n02")
    shape = (2, 4)
    metrics = {k: np.zeros(shape, np.float32) for k in TELEMETRY_METRICS if k != "power_limit"}
    metrics["util"] = np.full(shape, 90.0, np.float32)
    metrics["temp"] = np.full(shape, 55.0, np.float32)
    metrics["power"] = np.full(shape, 220.0, np.float32)  # a light job, well under any cap
    metrics["sm_clock"] = np.full(shape, 1980.0, np.float32)
    if limit is not None:
        metrics["power_limit"] = limit
    st = ClusterState(ClusterSettings(name="lab"), [("sim", "simulator", 10.0)], wall=lambda: 1000.0)
    nt = NodeTable(names=nodes, state=np.full(2, NodeState.ALLOCATED, np.int8),
                   responding=np.ones(2, bool), reason=("", ""), gpus=np.full(2, 4, np.int16),
                   gpus_alloc=np.full(2, 4, np.int16), partitions=(("gpu",),) * 2)
    st.apply(PollResult(source="sim", kind="simulator", request_id=1, started_at=999.0,
                        fetched_at=999.0, latency_s=0.0, updates=(
                            TelemetryUpdate(time=999.0, nodes=nodes, gpus_per_node=4, metrics=metrics,
                                            node_up=np.ones(2, bool),
                                            node_model=("NVIDIA H800 80GB HBM3",) * 2),
                            SchedulerUpdate(time=999.0, nodes=nt, jobs=None))))
    return st.build_frame(now=1000.0)


def test_state_carries_the_limit_and_a_capped_gpu_is_degraded_with_words() -> None:
    limit = np.full((2, 4), 700.0, np.float32)
    limit[1, 2] = 400.0
    limit[0, 1] = 680.0  # within 5 % of the board power: firmware jitter, not a cap
    f = _state_frame(limit)
    assert f.gpu.power_limit is not None
    np.testing.assert_array_equal(f.gpu.power_limit, limit.reshape(-1))
    capped = 1 * 4 + 2
    expected = np.full(8, Health.OK, np.int8)
    expected[capped] = Health.DEGRADED
    np.testing.assert_array_equal(f.gpu.health, expected)
    assert f.node_health.tolist() == [Health.OK, Health.DEGRADED]
    assert health_mod.explain(f, capped) == ["power capped at 400 W (board limit 700 W)"]
    assert health_mod.explain(f, 1) == []


def test_without_a_reported_limit_health_is_as_before() -> None:
    f = _state_frame(None)
    assert f.gpu.power_limit is not None and np.isnan(f.gpu.power_limit).all()
    assert (f.gpu.health == Health.OK).all()
    assert all(health_mod.explain(f, g) == [] for g in range(8))


def test_zero_or_nan_limits_and_unknown_models_are_not_caps() -> None:
    limit = np.array([0.0, np.nan, 400.0, 400.0], np.float32)
    board = np.array([700.0, 700.0, np.nan, 700.0], np.float32)
    assert health_mod.power_capped(limit, board).tolist() == [False, False, False, True]
    assert health_mod.power_capped(None, board) is None


# ---- detector and causes --------------------------------------------------------------------


def _busy(nodes: int = 16) -> FrameBuilder:
    b = FrameBuilder(nodes=nodes)
    b.one_job_per_node(start=T0 - 3600)
    return b


def _with_limit(frame: Frame, limit: np.ndarray | None) -> Frame:
    return replace(frame, gpu=replace(frame.gpu, power_limit=None if limit is None else limit.copy()))


def _caps(anomalies) -> list:
    return [a for a in anomalies if a.kind == "power_cap" and a.ended_at is None]


def test_a_light_job_under_a_cap_opens_power_cap_at_once() -> None:
    """The case statistics missed: 220 W under a 400 W cap, full clocks, no throttle bit."""
    det = AnomalyDetector()
    b = _busy()
    limit = np.full(b.nodes * b.gpn, 700.0, np.float32)
    sl = slice(b.gpu(9, 0), b.gpu(10, 0))
    anomalies, _ = det.step(_with_limit(b.build(T0), limit))
    assert _caps(anomalies) == []
    b.power[sl] = 220.0
    limit[sl] = 400.0
    anomalies, causes = det.step(_with_limit(b.build(T0 + DT), limit))
    caps = _caps(anomalies)
    assert [a.node for a in caps] == ["n0010"] and caps[0].started_at == T0 + DT
    assert "power limit 400 W of 700 W" in caps[0].evidence and "8 GPU(s)" in caps[0].evidence
    assert causes[0].kind == "power_cap" and causes[0].subject.key == "n0010"
    limit[sl] = 700.0  # the cap is lifted: the anomaly ends by itself
    det.step(_with_limit(b.build(T0 + 2 * DT), limit))
    anomalies, _ = det.step(_with_limit(b.build(T0 + 3 * DT), limit))
    assert _caps(anomalies) == [] and any(a.kind == "power_cap" and a.ended_at for a in anomalies)


def test_one_capped_gpu_on_an_idle_node_is_found_too() -> None:
    det = AnomalyDetector()
    b = FrameBuilder(nodes=8)  # no jobs at all
    limit = np.full(b.nodes * b.gpn, 700.0, np.float32)
    limit[b.gpu(2, 5)] = 300.0
    anomalies, _ = det.step(_with_limit(b.build(T0), limit))
    caps = _caps(anomalies)
    assert [a.node for a in caps] == ["n0003"]
    assert "1 GPU(s) of n0003 power-capped: power limit 300 W of 700 W" in caps[0].evidence


def test_quiet_at_the_default_limit_even_with_the_cap_bit_and_low_clocks() -> None:
    """A known board-default limit rules a cap out: the throttle-based guess stays silent."""
    det = AnomalyDetector()
    b = _busy()
    limit = np.full(b.nodes * b.gpn, 700.0, np.float32)
    sl = slice(b.gpu(9, 0), b.gpu(10, 0))
    b.throttle[:] = 0x4
    b.sm_clock[sl] = 1300.0
    b.power[sl] = 400.0
    for i in range(6):
        anomalies, _ = det.step(_with_limit(b.build(T0 + i * DT), limit))
        assert _caps(anomalies) == []


def test_unknown_limit_keeps_the_throttle_based_inference() -> None:
    det = AnomalyDetector()
    b = _busy()
    limit = np.full(b.nodes * b.gpn, np.nan, np.float32)
    sl = slice(b.gpu(9, 0), b.gpu(10, 0))
    b.throttle[:] = 0x4
    b.sm_clock[sl] = 1300.0
    b.power[sl] = 400.0
    anomalies, _ = det.step(_with_limit(b.build(T0), limit))
    assert _caps(anomalies) == []  # a guess waits for confirmation
    for i in range(1, 3):
        anomalies, _ = det.step(_with_limit(b.build(T0 + i * DT), limit))
    caps = _caps(anomalies)
    assert [a.node for a in caps] == ["n0010"] and "clocks 1300 MHz" in caps[0].evidence


def test_a_power_brake_at_the_default_limit_is_still_inferred() -> None:
    det = AnomalyDetector()
    b = _busy()
    limit = np.full(b.nodes * b.gpn, 700.0, np.float32)
    sl = slice(b.gpu(4, 0), b.gpu(5, 0))
    b.throttle[sl] = 0x80  # HW power brake: an external signal the limit never shows
    b.sm_clock[sl] = 1000.0
    b.power[sl] = 300.0
    for i in range(3):
        anomalies, _ = det.step(_with_limit(b.build(T0 + i * DT), limit))
    assert [a.node for a in _caps(anomalies)] == ["n0005"]


def test_a_rack_wide_cap_is_one_rack_cause() -> None:
    det = AnomalyDetector()
    b = _busy()  # racks of 4 nodes
    limit = np.full(b.nodes * b.gpn, 700.0, np.float32)
    limit[b.gpu(4, 0):b.gpu(8, 0)] = 400.0  # all of R02
    anomalies, causes = det.step(_with_limit(b.build(T0), limit))
    assert sorted(a.node for a in _caps(anomalies)) == ["n0005", "n0006", "n0007", "n0008"]
    pc = [c for c in causes if c.kind == "power_cap"]
    assert len(pc) == 1 and pc[0].subject.level == "rack" and pc[0].subject.key == "R02"
    assert pc[0].gpus == 32 and pc[0].nodes == ("n0005", "n0006", "n0007", "n0008")

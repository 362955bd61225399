"""AnomalyDetector on hand-built frames: each detector fires on its fault and not on a healthy
cluster; anomalies keep their ids, end by themselves, survive topology changes and NaN."""

from __future__ import annotations

import numpy as np

from console.analytics.anomaly import AnomalyDetector
from console.analytics.anomaly_frames import FrameBuilder
from console.model import Anomaly, NodeState, Severity

T0 = 1_700_000_000.0
DT = 30.0


def busy_cluster(nodes: int = 16) -> FrameBuilder:
    b = FrameBuilder(nodes=nodes)
    b.one_job_per_node(start=T0 - 3600)
    return b


def run(det: AnomalyDetector, b: FrameBuilder, ticks: int, start: int = 0):
    out = None
    for i in range(start, start + ticks):
        out = det.step(b.build(T0 + i * DT))
    return out


def open_kinds(anomalies: tuple[Anomaly, ...]) -> set[str]:
    return {a.kind for a in anomalies if a.ended_at is None}


def test_healthy_cluster_raises_nothing() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    rng = np.random.default_rng(5)
    for i in range(60):
        b.temp = (65 + rng.normal(0, 1, b.temp.size)).astype(np.float32)
        b.util = (95 + rng.normal(0, 1, b.util.size)).astype(np.float32)
        anomalies, causes = det.step(b.build(T0 + i * DT))
        assert anomalies == () and causes == ()


def test_xid79_opens_at_first_sighting_with_reboot_advice() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    run(det, b, 3)
    g = b.gpu(5, 3)
    b.xid[g] = 79
    for arr in (b.util, b.tensor, b.temp, b.power, b.sm_clock):
        arr[g] = np.nan  # a GPU off the bus reports nothing else
    anomalies, causes = det.step(b.build(T0 + 3 * DT))
    xid = [a for a in anomalies if a.kind == "xid"]
    assert len(xid) == 1 and xid[0].node == "n0006" and xid[0].gpu == 3
    assert xid[0].severity == Severity.CRITICAL and xid[0].started_at == T0 + 3 * DT
    top = causes[0]
    assert top.kind == "xid79" and top.subject.key == "n0006/3"
    assert "fell off the bus" in top.title and "reboot" in top.action
    assert top.jobs == (1005,)


def test_node_down_explains_its_silent_exporter() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    run(det, b, 3)
    b.node_state[2] = int(NodeState.DOWN)
    b.responding[2] = False
    for arr in (b.util, b.tensor, b.temp, b.power, b.sm_clock):
        arr[b.gpu(2, 0):b.gpu(3, 0)] = np.nan
    anomalies, causes = run(det, b, 4, start=3)
    assert {"node_down"} <= open_kinds(anomalies)
    assert "exporter_silent" not in open_kinds(anomalies)  # Slurm says down: not a monitoring fault
    assert [c.kind for c in causes] == ["node_down"]
    assert causes[0].subject.key == "n0003"


def test_exporter_silent_while_slurm_sees_node_up() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    run(det, b, 3)
    for arr in (b.util, b.tensor, b.temp, b.power, b.sm_clock, b.xid):
        arr[b.gpu(7, 0):b.gpu(8, 0)] = np.nan
    anomalies, causes = det.step(b.build(T0 + 3 * DT))
    silent = [a for a in anomalies if a.kind == "exporter_silent"]
    assert [a.node for a in silent] == ["n0008"]
    assert causes == ()  # a dying node starts the same way: wait before blaming the exporter
    anomalies, causes = run(det, b, 2, start=4)
    assert [c.kind for c in causes] == ["exporter_down"]


def test_most_exporters_silent_is_a_source_failure_not_per_node_anomalies() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    for arr in (b.util, b.tensor, b.temp, b.power, b.sm_clock, b.xid, b.ecc_dbe, b.nvlink_crc, b.throttle):
        arr[:] = np.nan
    anomalies, causes = run(det, b, 5)
    assert anomalies == () and causes == ()


def test_job_stall_opens_and_ends_by_itself() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    run(det, b, 3)
    sl = slice(b.gpu(4, 0), b.gpu(5, 0))
    b.util[sl] = 0.0
    b.tensor[sl] = 0.0
    anomalies, causes = run(det, b, 3, start=3)
    stall = [a for a in anomalies if a.kind == "job_stall"]
    assert len(stall) == 1 and stall[0].job_id == 1004 and stall[0].ended_at is None
    assert stall[0].started_at == T0 + 3 * DT
    assert causes[0].kind == "job_hang" and "job 1004 hung" in causes[0].title
    first_id = stall[0].id
    anomalies, _ = run(det, b, 2, start=6)
    assert [a.id for a in anomalies if a.kind == "job_stall"] == [first_id]  # stable id
    b.util[sl] = 95.0
    b.tensor[sl] = 0.5
    anomalies, causes = run(det, b, 2, start=8)
    ended = [a for a in anomalies if a.kind == "job_stall"]
    assert len(ended) == 1 and ended[0].id == first_id and ended[0].ended_at == T0 + 9 * DT
    assert causes == ()


def test_job_not_yet_warmed_up_is_not_stalled() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    b.jobs[1004] = (b.jobs[1004][0], b.jobs[1004][1], T0)  # starts now: loading data
    sl = slice(b.gpu(4, 0), b.gpu(5, 0))
    b.util[sl] = 0.0
    b.tensor[sl] = 0.0
    anomalies, _ = run(det, b, 6)
    assert "job_stall" not in open_kinds(anomalies)


def test_straggler_in_a_multi_node_job() -> None:
    det = AnomalyDetector()
    b = FrameBuilder(nodes=16)
    b.jobs[77] = ("beta", list(range(0, 32)), T0 - 3600)
    g = b.gpu(2, 6)
    b.tensor[g] *= 0.35
    b.util[g] *= 0.6
    b.sm_clock[g] *= 0.72
    anomalies, causes = run(det, b, 4)
    strag = [a for a in anomalies if a.kind == "straggler"]
    assert [(a.node, a.gpu, a.job_id) for a in strag] == [("n0003", 6, 77)]
    assert causes[0].kind == "straggler" and causes[0].subject.key == "n0003/6"


def test_power_cap_needs_the_bit_and_a_low_clock() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    sl = slice(b.gpu(9, 0), b.gpu(10, 0))
    b.throttle[:] = 0x4  # the bit alone: normal under heavy load
    anomalies, _ = run(det, b, 4)
    assert "power_cap" not in open_kinds(anomalies)
    b.sm_clock[sl] = 1300.0
    b.power[sl] = 400.0
    anomalies, causes = run(det, b, 3, start=4)
    caps = [a for a in anomalies if a.kind == "power_cap"]
    assert [a.node for a in caps] == ["n0010"]
    assert causes[0].kind == "power_cap"


def test_nvlink_crc_above_dcgm_limit() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    b.nvlink_crc[b.gpu(1, 2)] = 50.0  # below the 100/s limit
    anomalies, _ = run(det, b, 2)
    assert "nvlink" not in open_kinds(anomalies)
    b.nvlink_crc[b.gpu(1, 5)] = 900.0
    anomalies, causes = run(det, b, 1, start=2)
    nv = [a for a in anomalies if a.kind == "nvlink"]
    assert [a.node for a in nv] == ["n0002"] and "GPU(s) 5" in nv[0].evidence
    assert causes[0].kind == "nvlink"


def test_ecc_dbe_with_xid48_is_one_memory_cause() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    g = b.gpu(3, 1)
    b.ecc_dbe[g] = 2
    b.xid[g] = 48
    anomalies, causes = run(det, b, 1)
    assert open_kinds(anomalies) == {"ecc_dbe", "xid"}
    assert [c.kind for c in causes] == ["ecc_dbe"]
    assert len(causes[0].anomaly_ids) == 2


def test_thermal_trend_warns_before_the_limit_not_on_steady_heat() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    b.temp[:] = 65.0
    b.temp[b.gpu(0, 0)] = 82.0  # hot but steady
    g = b.gpu(6, 4)
    for i in range(12):
        b.temp[g] = 70.0 + 1.5 * i  # 3 °C/min at 30 s polls
        anomalies, _ = det.step(b.build(T0 + i * DT))
    trends = [a for a in anomalies if a.kind == "thermal_trend"]
    assert [(a.node, a.gpu) for a in trends] == [("n0007", 4)]
    assert trends[0].started_at < T0 + 11 * DT


def test_rack_hotter_than_the_others_at_same_load() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    rack2 = slice(b.gpu(4, 0), b.gpu(8, 0))  # nodes 5-8 = rack R02
    for i in range(8):
        b.temp[:] = 65.0 + np.random.default_rng(i).normal(0, 1, b.temp.size)
        b.temp[rack2] += min(3.0 * i, 15.0)
        anomalies, causes = det.step(b.build(T0 + i * DT))
    racks = [a for a in anomalies if a.kind == "rack_thermal"]
    assert [a.subject.key for a in racks] == ["R02"]
    assert causes[0].kind == "rack_cooling" and causes[0].subject.key == "R02"


def test_queue_surge_of_one_tenant() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    rng = np.random.default_rng(3)
    for i in range(60):
        b.pending = {"alpha": int(rng.integers(0, 4)), "beta": 2}
        det.step(b.build(T0 + i * DT))
    b.pending = {"alpha": 80, "beta": 2}
    anomalies, causes = det.step(b.build(T0 + 60 * DT))
    surge = [a for a in anomalies if a.kind == "queue_surge" and a.subject.level == "tenant"]
    assert [a.subject.key for a in surge] == ["alpha"]
    assert causes[0].kind == "queue_surge" and causes[0].subject.key == "alpha"


def test_same_data_time_returns_the_same_answer_without_advancing() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    b.xid[b.gpu(0, 0)] = 79
    first = det.step(b.build(T0))
    again = det.step(b.build(T0))
    assert again is first


def test_topology_change_keeps_open_anomalies_by_name() -> None:
    det = AnomalyDetector()
    b = busy_cluster(nodes=8)
    b.xid[b.gpu(1, 1)] = 79
    a1, _ = run(det, b, 2)
    xid_id = [a.id for a in a1 if a.kind == "xid"]
    bigger = busy_cluster(nodes=12)
    bigger.version = 2
    bigger.xid[bigger.gpu(1, 1)] = 79
    a2, _ = det.step(bigger.build(T0 + 2 * DT))
    assert [a.id for a in a2 if a.kind == "xid"] == xid_id
    a3, _ = run(det, bigger, 3, start=3)
    assert open_kinds(a3) == {"xid"}


def test_a_lingering_xid_value_ends_after_the_hold_time_but_a_new_one_reopens() -> None:
    from console.analytics.anomaly import DetectorConfig
    from console.analytics.detectors.gpu import GpuSettings

    det = AnomalyDetector(DetectorConfig(gpu=GpuSettings(xid_hold_s=120.0)))
    b = busy_cluster()
    g = b.gpu(2, 2)
    b.xid[g] = 13  # DCGM keeps reporting the last XID while the GPU works on
    anomalies, _ = run(det, b, 4)
    assert open_kinds(anomalies) == {"xid"}
    anomalies, _ = run(det, b, 4, start=4)
    assert open_kinds(anomalies) == set()
    b.xid[g] = 31
    anomalies, _ = run(det, b, 1, start=8)
    assert [a.evidence.split(" (")[0] for a in anomalies if a.ended_at is None] == ["XID 31"]


def test_gpu_settling_after_a_load_step_is_not_a_thermal_trend() -> None:
    # First-order approach to 84 °C (time constant 90 s): fast at first, then slowing down.
    det = AnomalyDetector()
    b = busy_cluster()
    b.temp[:] = 65.0
    g = b.gpu(3, 3)
    for i in range(14):
        b.temp[g] = 84.0 - 30.0 * np.exp(-(i * DT) / 90.0)
        anomalies, _ = det.step(b.build(T0 + i * DT))
        assert "thermal_trend" not in open_kinds(anomalies)


def test_a_thermally_throttled_gpu_is_not_called_power_capped() -> None:
    det = AnomalyDetector()
    b = busy_cluster()
    sl = slice(b.gpu(9, 0), b.gpu(10, 0))
    b.throttle[sl] = 0x4 | 0x20  # demand above the limit, but the clock drop is for heat
    b.sm_clock[sl] = 1200.0
    b.power[sl] = 420.0
    anomalies, _ = run(det, b, 4)
    assert "power_cap" not in open_kinds(anomalies)


def test_straggler_in_a_two_gpu_job_is_judged_against_the_other_gpu() -> None:
    # Two GPUs: their median is their mean, half made of the straggler itself (0.35 against
    # 0.85 is 58 % of that mean, too close to the 60 % line to hold every poll); the
    # other GPU is the reference.
    det = AnomalyDetector()
    b = FrameBuilder(nodes=4)
    b.jobs[88] = ("beta", [b.gpu(1, 0), b.gpu(1, 1)], T0 - 3600)
    g, peer = b.gpu(1, 0), b.gpu(1, 1)
    b.tensor[g] = 0.5 * 0.35 / 0.85 * 1.04  # the straggler, a little noise up
    b.tensor[peer] = 0.5 * 0.96  # the other waits for it in every collective, noise down
    b.util[g] *= 0.6
    b.sm_clock[g] *= 0.72
    anomalies, _ = run(det, b, 4)
    strag = [a for a in anomalies if a.kind == "straggler"]
    assert [(a.node, a.gpu, a.job_id) for a in strag] == [("n0002", 0, 88)]

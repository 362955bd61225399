"""Cause ranking on hand-built incidents: the parent is blamed, symptoms are absorbed, the blast
radius is counted, and the suggested action comes from the XID catalogue."""

from __future__ import annotations

from console.analytics import xid as xid_catalogue
from console.analytics.anomaly_frames import FrameBuilder
from console.analytics.causes import analyse
from console.model import Anomaly, Severity, Subject

NOW = 1_700_000_000.0


def gpu_anomaly(aid: str, kind: str, node: str, gpu: int, *, rack: str | None = None, job: int | None = None,
                started: float = NOW - 300, severity: Severity = Severity.WARNING, evidence: str = "") -> Anomaly:
    return Anomaly(id=aid, kind=kind, subject=Subject("gpu", f"{node}/{gpu}"), score=0.8, started_at=started,
                   last_seen=NOW, evidence=evidence or f"{kind} on {node}/{gpu}", severity=severity, node=node,
                   gpu=gpu, job_id=job, rack=rack)


def cluster_32_nodes() -> tuple[FrameBuilder, object]:
    b = FrameBuilder(nodes=32, per_rack=4)
    b.one_job_per_node(start=NOW - 2 * 3600)
    return b, b.build(NOW)


def test_rack_wide_heat_is_the_rack_not_31_gpus() -> None:
    b, frame = cluster_32_nodes()
    # Rack R07 = nodes n0025..n0028: 31 of its 32 GPUs heating, nothing elsewhere.
    anomalies = []
    k = 0
    for n in range(24, 28):
        for g in range(8):
            if k < 31:
                anomalies.append(gpu_anomaly(f"A{k}", "thermal_trend", f"n{n + 1:04d}", g, rack="R07",
                                             job=1000 + n))
                k += 1
    causes = analyse(anomalies, frame, NOW)
    assert len(causes) == 1
    top = causes[0]
    assert top.kind == "rack_cooling" and top.subject == Subject("rack", "R07")
    assert top.title.startswith("rack R07 cooling: 31 GPUs in R07 hot or heating, 0 elsewhere; 4 jobs, 3 tenants")
    assert top.gpus == 32 and set(top.nodes) == {"n0025", "n0026", "n0027", "n0028"}
    assert top.jobs == (1024, 1025, 1026, 1027)
    assert len(top.tenants) == 3
    assert top.gpu_hours_at_risk == 4 * 8 * 2.0  # 4 jobs x 8 GPUs x 2 h run so far
    assert len(top.anomaly_ids) == 31


def test_a_few_hot_gpus_spread_over_racks_stay_gpu_level() -> None:
    _, frame = cluster_32_nodes()
    anomalies = [gpu_anomaly("A1", "thermal_trend", "n0001", 2, rack="R01"),
                 gpu_anomaly("A2", "thermal_trend", "n0013", 5, rack="R04")]
    causes = analyse(anomalies, frame, NOW)
    assert sorted(c.kind for c in causes) == ["gpu_thermal", "gpu_thermal"]
    assert {c.subject.key for c in causes} == {"n0001/2", "n0013/5"}


def test_xid79_absorbs_the_stall_of_its_job_and_ranks_first() -> None:
    _, frame = cluster_32_nodes()
    xid = gpu_anomaly("A1", "xid", "n0006", 3, job=1005, severity=Severity.CRITICAL,
                      evidence="XID 79 on GPU 3 of n0006")
    stall = Anomaly(id="A2", kind="job_stall", subject=Subject("job", "1005"), score=1.0, started_at=NOW - 200,
                    last_seen=NOW, evidence="all 8 reporting GPUs of job 1005 idle", job_id=1005)
    other = gpu_anomaly("A3", "straggler", "n0020", 1, job=1019)
    causes = analyse([other, stall, xid], frame, NOW, details={"A1": "xid=79"})
    assert [c.kind for c in causes] == ["xid79", "straggler"]
    top = causes[0]
    assert top.title == "node n0006 GPU 3 fell off the bus (XID 79): drain and reboot"
    assert top.action == xid_catalogue.info(79).action
    assert set(top.anomaly_ids) == {"A1", "A2"}
    assert top.severity == Severity.CRITICAL and top.confidence > causes[1].confidence


def test_node_down_absorbs_exporter_silence_and_stalls_on_the_node() -> None:
    _, frame = cluster_32_nodes()
    down = Anomaly(id="A1", kind="node_down", subject=Subject("node", "n0010"), score=1.0, started_at=NOW - 120,
                   last_seen=NOW, evidence="Slurm shows n0010 DOWN", severity=Severity.CRITICAL, node="n0010")
    silent = Anomaly(id="A2", kind="exporter_silent", subject=Subject("node", "n0010"), score=0.8,
                     started_at=NOW - 180, last_seen=NOW, evidence="no GPU telemetry", node="n0010")
    stall = Anomaly(id="A3", kind="job_stall", subject=Subject("job", "1009"), score=1.0, started_at=NOW - 100,
                    last_seen=NOW, evidence="all 8 GPUs of job 1009 idle", job_id=1009)
    causes = analyse([silent, stall, down], frame, NOW)
    assert len(causes) == 1
    c = causes[0]
    assert c.kind == "node_down" and c.subject.key == "n0010"
    assert set(c.anomaly_ids) == {"A1", "A2", "A3"}
    assert c.jobs == (1009,) and c.gpus == 8
    assert c.started_at == NOW - 180


def test_job_hang_title_names_the_job_and_its_gpus() -> None:
    b = FrameBuilder(nodes=16)
    b.jobs[4812] = ("alpha", list(range(64)), NOW - 3600)
    frame = b.build(NOW)
    stall = Anomaly(id="A1", kind="job_stall", subject=Subject("job", "4812"), score=1.0, started_at=NOW - 600,
                    last_seen=NOW, evidence="all 64 reporting GPUs of job 4812 idle (util < 5%, no tensor "
                    "activity) while allocated", job_id=4812, tenant="alpha")
    (c,) = analyse([stall], frame, NOW)
    assert c.kind == "job_hang" and c.subject == Subject("job", "4812")
    assert c.title.startswith("job 4812 hung (all 64 reporting GPUs stalled since ")
    assert c.title.endswith(", NCCL or checkpoint)")
    assert c.gpus == 64 and c.tenants == ("alpha",) and c.gpu_hours_at_risk == 64.0


def test_power_cap_on_two_nodes_of_a_rack_is_the_rack() -> None:
    _, frame = cluster_32_nodes()
    caps = [Anomaly(id=f"A{i}", kind="power_cap", subject=Subject("node", n), score=0.7, started_at=NOW - 60,
                    last_seen=NOW, evidence=f"{n} capped", node=n, rack="R03")
            for i, n in enumerate(("n0009", "n0010"))]
    lone = Anomaly(id="A9", kind="power_cap", subject=Subject("node", "n0030"), score=0.7, started_at=NOW - 60,
                   last_seen=NOW, evidence="n0030 capped", node="n0030", rack="R08")
    causes = analyse(caps + [lone], frame, NOW)
    assert sorted((c.kind, c.subject.level, c.subject.key) for c in causes) == [
        ("power_cap", "node", "n0030"), ("power_cap", "rack", "R03")]


def test_tenant_surge_explains_the_cluster_queue_jump() -> None:
    _, frame = cluster_32_nodes()
    tenant = Anomaly(id="A1", kind="queue_surge", subject=Subject("tenant", "beta"), score=0.9, started_at=NOW,
                     last_seen=NOW, evidence="200 jobs pending", tenant="beta")
    cluster = Anomaly(id="A2", kind="queue_surge", subject=Subject("cluster", "cluster"), score=0.9,
                      started_at=NOW, last_seen=NOW, evidence="230 jobs pending")
    (c,) = analyse([cluster, tenant], frame, NOW)
    assert c.kind == "queue_surge" and c.subject == Subject("tenant", "beta")
    assert set(c.anomaly_ids) == {"A1", "A2"}


def test_ended_anomalies_make_no_causes_and_ids_are_stable() -> None:
    _, frame = cluster_32_nodes()
    a = gpu_anomaly("A1", "straggler", "n0002", 4, job=1001)
    c1 = analyse([a], frame, NOW)
    c2 = analyse([a], frame, NOW + 30)
    assert c1[0].id == c2[0].id == "C:straggler:gpu:n0002/4"
    ended = Anomaly(**{**a.__dict__, "ended_at": NOW})
    assert analyse([ended], frame, NOW) == ()


def test_xid_catalogue_actions_follow_facts() -> None:
    assert "reboot" in xid_catalogue.info(79).action.lower()
    assert xid_catalogue.severity(79) == Severity.CRITICAL
    assert xid_catalogue.severity(43) == Severity.INFO
    assert xid_catalogue.info(48).fatal and xid_catalogue.info(48).devastating
    assert "RMA" in xid_catalogue.info(64).action
    assert xid_catalogue.info(9999).mnemonic == "XID 9999"

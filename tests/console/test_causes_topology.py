"""Cause ranking above the rack: a PDU's or a switch's nodes failing together are one cause, a row
running hot is the row's cooling; without the site topology nothing changes."""

from __future__ import annotations

from dataclasses import replace

from console.analytics.anomaly_frames import FrameBuilder
from console.analytics.causes import ACTIONS, analyse
from console.config import SiteTopology
from console.model import Anomaly, Frame, Severity, Subject

NOW = 1_700_000_000.0

#: 64 nodes in racks of 8 (R01..R08), rows of two racks, one PDU per pair of racks (16 nodes,
#: the shape the issue describes), one leaf switch per 32 nodes.
SITE = SiteTopology(
    rows={"A": ("R01", "R02"), "B": ("R03", "R04"), "C": ("R05", "R06"), "D": ("R07", "R08")},
    pdus={f"R{2 * k + 1:02d}-PDU-A": tuple(f"n{i + 1:04d}" for i in range(16 * k, 16 * k + 16)) for k in range(4)},
    switches={"leaf-01": tuple(f"n{i + 1:04d}" for i in range(32)),
              "leaf-02": tuple(f"n{i + 1:04d}" for i in range(32, 64))})


def frame(site: SiteTopology | None = SITE) -> Frame:
    b = FrameBuilder(nodes=64, per_rack=8)
    b.one_job_per_node(start=NOW - 2 * 3600)
    topo = b.topology()
    if site is not None:
        topo = replace(topo, **site.topology_fields(topo.node_names, topo.rack_names))
    return b.build(NOW, topo)


def node_down(i: int, node: str, *, started: float = NOW - 90, words: str = "DOWN") -> Anomaly:
    return Anomaly(id=f"D{i}", kind="node_down", subject=Subject("node", node), score=1.0, started_at=started,
                   last_seen=NOW, evidence=f"Slurm shows {node} {words}", severity=Severity.CRITICAL, node=node)


def silent(i: int, node: str, *, started: float = NOW - 20) -> Anomaly:
    return Anomaly(id=f"S{i}", kind="exporter_silent", subject=Subject("node", node), score=0.8,
                   started_at=started, last_seen=NOW, evidence=f"no GPU telemetry from {node}", node=node)


def hot(i: int, node: str, gpu: int, rack: str) -> Anomaly:
    return Anomaly(id=f"H{i}", kind="thermal_trend", subject=Subject("gpu", f"{node}/{gpu}"), score=0.8,
                   started_at=NOW - 300, last_seen=NOW, evidence=f"{node}/{gpu} heating", node=node, gpu=gpu,
                   rack=rack)


PDU_NODES = [f"n{i + 1:04d}" for i in range(48, 64)]  # R07-PDU-A feeds racks R07 and R08


def test_a_pdus_16_nodes_down_are_the_pdu_not_16_nodes() -> None:
    anomalies = [node_down(i, n) for i, n in enumerate(PDU_NODES)]
    anomalies += [silent(i, n, started=NOW - 100) for i, n in enumerate(PDU_NODES[:5])]
    causes = analyse(anomalies, frame(), NOW)
    assert len(causes) == 1
    (c,) = causes
    assert c.kind == "pdu_trip" and c.subject == Subject("pdu", "R07-PDU-A")
    assert c.title == ("PDU R07-PDU-A lost power: 16 nodes down, 0 others fed by it up; "
                       "16 jobs, 3 tenants, 256 GPU-hours at risk")
    assert c.action == ACTIONS["pdu_trip"]
    assert c.evidence[0] == ("16 of the 16 nodes fed by R07-PDU-A down or silent at once (16 down or not "
                             "responding in Slurm, 0 with only the exporter silent), 0 nodes elsewhere")
    assert set(c.nodes) == set(PDU_NODES) and c.gpus == 128
    assert c.jobs == tuple(range(1048, 1064)) and len(c.tenants) == 3
    assert c.gpu_hours_at_risk == 16 * 8 * 2.0
    assert len(c.anomaly_ids) == 21 and c.severity == Severity.CRITICAL
    assert c.confidence == 0.99  # prior 0.9 raised by the corroborating nodes, capped
    assert c.started_at == NOW - 100


def test_the_same_nodes_down_without_the_pdu_in_the_config_stay_node_causes() -> None:
    anomalies = [node_down(i, n) for i, n in enumerate(PDU_NODES)]
    causes = analyse(anomalies, frame(site=None), NOW)
    assert len(causes) == 16
    assert {c.kind for c in causes} == {"node_down"}
    assert {c.subject.key for c in causes} == set(PDU_NODES)
    # and a site config that names only rows changes nothing either
    causes = analyse(anomalies, frame(site=SiteTopology(rows=SITE.rows)), NOW)
    assert [c.kind for c in causes] == ["node_down"] * 16


def test_a_pdu_with_a_few_of_its_nodes_down_is_not_blamed() -> None:
    anomalies = [node_down(i, n) for i, n in enumerate(PDU_NODES[:6])]
    causes = analyse(anomalies, frame(), NOW)
    assert [c.kind for c in causes] == ["node_down"] * 6


def test_many_nodes_down_everywhere_is_not_one_pdu() -> None:
    names = [f"n{i + 1:04d}" for i in range(64) if i % 4]  # 48 of 64 nodes, every PDU 75 %
    causes = analyse([node_down(i, n) for i, n in enumerate(names)], frame(), NOW)
    assert {c.kind for c in causes} == {"node_down"} and len(causes) == 48


def test_a_switchs_nodes_silent_and_not_responding_are_the_switch() -> None:
    nodes = [f"n{i + 1:04d}" for i in range(32)]
    anomalies = [node_down(i, n, words="ALLOCATED, NOT_RESPONDING") for i, n in enumerate(nodes[:20])]
    anomalies += [silent(i, n) for i, n in enumerate(nodes[20:])]
    anomalies.append(node_down(99, "n0050"))  # an unrelated node elsewhere
    causes = analyse(anomalies, frame(), NOW)
    assert [(c.kind, c.subject.key) for c in causes] == [("switch_down", "leaf-01"), ("node_down", "n0050")]
    c = causes[0]
    assert c.subject == Subject("switch", "leaf-01")
    assert c.title.startswith("switch leaf-01 unreachable: 32 nodes not responding, exporters silent; 32 jobs")
    assert c.evidence[0].startswith("32 of the 32 nodes behind leaf-01 down or silent at once (20 down or not "
                                    "responding in Slurm, 12 with only the exporter silent), 1 nodes elsewhere")
    assert len(c.anomaly_ids) == 32 and c.gpus == 256
    assert c.action == ACTIONS["switch_down"]
    # the PDUs inside the switch's nodes (R01-PDU-A, R03-PDU-A) are not blamed as well
    assert not any(c.kind == "pdu_trip" for c in causes)


def test_a_racks_of_one_row_hot_are_the_row() -> None:
    anomalies = []
    for k, n in enumerate(range(32, 48)):  # racks R05 and R06 = row C, 6 GPUs of each node
        for g in range(6):
            anomalies.append(hot(k * 8 + g, f"n{n + 1:04d}", g, "R05" if n < 40 else "R06"))
    anomalies.append(hot(999, "n0002", 3, "R01"))  # one hot GPU in row A
    causes = analyse(anomalies, frame(), NOW)
    assert [(c.kind, c.subject) for c in causes] == [("row_cooling", Subject("row", "C")),
                                                     ("gpu_thermal", Subject("gpu", "n0002/3"))]
    c = causes[0]
    assert c.title == ("row C cooling: 96 GPUs in 2 of the 2 racks of row C hot or heating, 1 elsewhere; "
                       "16 jobs, 3 tenants, 256 GPU-hours at risk")
    assert len(c.anomaly_ids) == 96 and len(c.nodes) == 16 and c.gpus == 128
    assert c.action == ACTIONS["row_cooling"]


def test_one_hot_rack_in_a_row_stays_the_rack() -> None:
    anomalies = [hot(k * 8 + g, f"n{n + 1:04d}", g, "R05") for k, n in enumerate(range(32, 40)) for g in range(6)]
    causes = analyse(anomalies, frame(), NOW)
    assert [(c.kind, c.subject) for c in causes] == [("rack_cooling", Subject("rack", "R05"))]
    # and without rows in the config two hot racks are two rack causes
    anomalies += [hot(500 + k * 8 + g, f"n{n + 1:04d}", g, "R06") for k, n in enumerate(range(40, 48))
                  for g in range(6)]
    causes = analyse(anomalies, frame(site=None), NOW)
    assert sorted(c.subject.key for c in causes) == ["R05", "R06"]
    assert {c.kind for c in causes} == {"rack_cooling"}

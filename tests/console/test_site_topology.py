"""Rows, PDUs and switches reach the frame's topology: from the site config for live sources, from
the simulator's own layout for a simulated cluster; none when nobody names them."""

from __future__ import annotations

import pickle

import numpy as np

from console.config import ClusterSettings, SimSettings, SiteTopology
from console.model import TELEMETRY_METRICS, TelemetryUpdate
from console.polling import PollResult
from console.sim import SimCluster, SimConfig
from console.sim.site import sim_site
from console.state import ClusterState

T0 = 1_800_000_000.0


def _telemetry(t: float) -> TelemetryUpdate:
    nodes = ("gpu03", "gpu01", "gpu02", "gpu04")
    metrics = {k: np.zeros((4, 2), np.float32) for k in TELEMETRY_METRICS}
    return TelemetryUpdate(time=t, nodes=nodes, gpus_per_node=2, metrics=metrics, node_up=np.ones(4, bool),
                           node_model=("NVIDIA H800 80GB HBM3",) * 4, node_rack=("R2", "R1", "R1", "R2"))


def _topology(cluster: ClusterSettings):
    s = ClusterState(cluster, [("prom", "telemetry", 10.0)], wall=lambda: T0)
    s.apply(PollResult(source="prom", kind="telemetry", request_id=1, started_at=T0, fetched_at=T0,
                       latency_s=0.1, updates=(_telemetry(T0),)))
    return s.build_frame(now=T0, analyse=False).topology


def test_live_topology_carries_the_configured_rows_pdus_and_switches() -> None:
    site = SiteTopology(rows={"A": ("R1",), "B": ("R2",)},
                        pdus={"P1": ("gpu01", "gpu02"), "P2": ("gpu03", "gpu04", "gpu99")},
                        switches={"leaf-01": ("gpu01", "gpu02", "gpu03", "gpu04"), "leaf-09": ("gpu99",)})
    topo = _topology(ClusterSettings(name="lab", topology=site))
    assert topo.node_names == ("gpu01", "gpu02", "gpu03", "gpu04") and topo.rack_names == ("R1", "R2")
    assert topo.row_names == ("A", "B") and topo.rack_row.tolist() == [0, 1]
    assert topo.group_kinds == ("pdu", "pdu", "switch")  # leaf-09 has no known node yet
    assert topo.group_names == ("P1", "P2", "leaf-01")
    assert [topo.group_members(i).tolist() for i in range(3)] == [[0, 1], [2, 3], [0, 1, 2, 3]]
    again = pickle.loads(pickle.dumps(topo))
    assert again.group_nodes.tolist() == topo.group_nodes.tolist() and again.row_names == ("A", "B")


def test_without_a_site_topology_the_fields_stay_empty() -> None:
    topo = _topology(ClusterSettings(name="lab"))
    assert topo.row_names == () and topo.rack_row.size == 0
    assert topo.group_names == () and topo.group_offsets.tolist() == [0] and topo.group_nodes.size == 0


def test_a_simulated_cluster_gets_the_simulators_layout() -> None:
    sim = SimCluster(SimConfig(seed=3, nodes=48, t0=T0, faults="none"))
    s = ClusterState(ClusterSettings(name="demo", sim=SimSettings(nodes=48)), [("simulator", "simulator", 2.0)],
                     wall=lambda: T0)
    s.apply(PollResult(source="simulator", kind="simulator", request_id=1, started_at=T0, fetched_at=T0,
                       latency_s=0.0, updates=tuple(sim.updates())))
    topo = s.build_frame(now=T0, analyse=False).topology
    own = sim.topology()
    assert topo.node_names == own.node_names and topo.rack_names == own.rack_names
    assert topo.group_names == own.group_names and topo.group_kinds == own.group_kinds
    assert topo.group_nodes.tolist() == own.group_nodes.tolist()
    assert topo.row_names == own.row_names == ("A",)
    assert topo.group_names[-2:] == ("leaf-01", "leaf-02")


def test_the_simulated_layout() -> None:
    site = sim_site(400)  # 50 racks: rows A..F of 8 racks and a row G of 2
    assert list(site.rows) == ["A", "B", "C", "D", "E", "F", "G"] and site.rows["G"] == ("R49", "R50")
    assert len(site.pdus) == 100 and site.pdus["R50-PDU-B"] == ("n0397", "n0398", "n0399", "n0400")
    assert len(site.switches) == 13 and site.switches["leaf-13"] == tuple(f"n{i:04d}" for i in range(385, 401))
    odd = sim_site(10, nodes_per_rack=3)  # a half-filled last rack keeps only the PDU that feeds something
    assert odd.pdus["R04-PDU-A"] == ("n0010",) and "R04-PDU-B" not in odd.pdus

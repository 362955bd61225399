"""Health-map blocks without racks: host-name groups on realistic name sets, exact labels."""

from __future__ import annotations

import numpy as np

from console.grouping import (BLOCK, UNRACKED, auto_groups, group_nodes, group_topology, natural_key,
                              row_labels, short_name)
from console.model import Topology


def _groups(names: list[str]) -> dict[str, list[str]]:
    """{group label: its names in natural order}, from `auto_groups`."""
    labels, _how = auto_groups(names)
    out: dict[str, list[str]] = {}
    for name, label in zip(names, labels):
        out.setdefault(label, []).append(name)
    return {k: sorted(v, key=natural_key) for k, v in out.items()}


def _unracked(names: tuple[str, ...], rack_source: tuple[str, ...] = ("",)) -> Topology:
    n = len(names)
    return Topology(node_names=names, node_rack=np.zeros(n, np.int32), rack_names=(UNRACKED,),
                    gpus_per_node=8, node_gpu_count=np.full(n, 8, np.int16), node_model=("",) * n,
                    gpu_peak_tflops=np.ones(n * 8, np.float32), gpu_max_clock_mhz=np.ones(n * 8, np.float32),
                    rack_source=rack_source)


def test_a_small_cluster_is_grouped_by_hostname_prefix():
    names = ["gpu01", "gpu02", "gpu03", "gpu04", "cpu01", "login1"]
    assert _groups(names) == {"gpu": ["gpu01", "gpu02", "gpu03", "gpu04"], "cpu": ["cpu01"],
                              "login": ["login1"]}
    g = group_topology(_unracked(tuple(names)))
    assert g.names == ("cpu", "gpu", "login")  # natural order, whatever the node order
    assert g.node_group.tolist() == [1, 1, 1, 1, 0, 2]
    assert g.how == "grouped by hostname prefix (no rack labels)"
    assert g.members(1).tolist() == [0, 1, 2, 3]


def test_4096_numbered_nodes_are_blocks_of_32_consecutive_numbers():
    names = [f"n{i:04d}" for i in range(1, 4097)]
    groups = _groups(names)
    assert len(groups) == 4096 // BLOCK == 128
    assert groups["n0001\u20130032"] == [f"n{i:04d}" for i in range(1, 33)]
    assert groups["n0033\u20130064"][0] == "n0033" and groups["n4065\u20134096"][-1] == "n4096"
    assert all(len(v) == BLOCK for v in groups.values())
    assert auto_groups(names)[1] == "grouped by hostname prefix, up to 32 nodes per block"


def test_a_prefix_that_fits_one_block_keeps_its_plain_name():
    assert set(_groups([f"gpu{i:02d}" for i in range(1, 33)])) == {"gpu"}
    assert set(_groups([f"gpu{i:03d}" for i in range(1, 34)])) == {"gpu001\u2013032", "gpu033"}


def test_mixed_prefixes_dashes_and_zero_based_numbers():
    names = ([f"dgx-a-{i:03d}" for i in range(1, 5)] + [f"dgx-b-{i:03d}" for i in range(1, 3)]
             + [f"node{i:03d}" for i in range(0, 40)] + ["mgmt", "login1", "login2"])
    groups = _groups(names)
    assert groups["dgx-a"] == ["dgx-a-001", "dgx-a-002", "dgx-a-003", "dgx-a-004"]
    assert groups["dgx-b"] == ["dgx-b-001", "dgx-b-002"]
    # numbered from 0: node000..node031 is the first block, not node000..node032
    assert groups["node000\u2013031"] == [f"node{i:03d}" for i in range(32)]
    assert groups["node032\u2013039"] == [f"node{i:03d}" for i in range(32, 40)]
    assert groups["mgmt"] == ["mgmt"] and groups["login"] == ["login1", "login2"]


def test_domains_are_dropped_and_addresses_kept_whole():
    names = ["gpu01.cluster.local", "gpu02.cluster.local", "cpu01.cluster.local"]
    assert _groups(names) == {"gpu": ["gpu01.cluster.local", "gpu02.cluster.local"],
                              "cpu": ["cpu01.cluster.local"]}
    assert short_name("gpu01.cluster.local") == "gpu01" and short_name("10.1.2.3") == "10.1.2.3"
    assert _groups(["10.1.0.7", "10.1.0.8", "10.1.1.2"]) == {"10.1.0": ["10.1.0.7", "10.1.0.8"],
                                                              "10.1.1": ["10.1.1.2"]}
    assert row_labels(names) == ("gpu01", "gpu02", "cpu01")
    # short names that would collide stay whole: two rows never carry the same name
    assert row_labels(["gpu01.a.local", "gpu01.b.local"]) == ("gpu01.a.local", "gpu01.b.local")


def test_names_with_no_shared_pattern_fall_back_to_name_order():
    few = ["venus", "mars", "earth", "jupiter", "saturn"]
    labels, how = auto_groups(few)
    assert set(labels) == {"nodes"} and how == "in one block, one row per node"
    many = [f"host-{c}{d}" for c in "abcdefghij" for d in "klmnopq"]  # 70 names, no numbers
    groups = _groups(many)
    # 7 names a letter: a..d and ek..en are the first 32, then eo..jk, then jl..jq
    assert list(groups) == ["host-ak\u2013host-en", "host-eo\u2013host-jk", "host-jl\u2013host-jq"]
    assert [len(v) for v in groups.values()] == [32, 32, 6]


def test_groups_do_not_depend_on_order_and_nodes_keep_their_block_as_others_appear():
    names = [f"gpu{i:03d}" for i in range(1, 41)] + ["cpu01", "cpu02"]
    rng = np.random.default_rng(5)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    assert _groups(names) == _groups(shuffled)
    # nodes appear one at a time: once gpu001..gpu040 are cut into blocks, every later node
    # leaves the members of the existing blocks as they were
    before = _groups(names)
    after = _groups(names + [f"gpu{i:03d}" for i in range(41, 70)])
    assert after["gpu001\u2013032"] == before["gpu001\u2013032"]
    assert after["gpu033\u2013064"][:8] == before["gpu033\u2013040"]


def test_a_rack_from_config_or_label_always_wins():
    names = ("gpu01", "gpu02", "gpu03", "gpu04", "cpu01")
    topo = Topology(node_names=names, node_rack=np.array([0, 0, 1, 1, 2], np.int32),
                    rack_names=("R1", "R2", UNRACKED), gpus_per_node=8,
                    node_gpu_count=np.full(5, 8, np.int16), node_model=("",) * 5,
                    gpu_peak_tflops=np.ones(40, np.float32), gpu_max_clock_mhz=np.ones(40, np.float32),
                    rack_source=("config", "label", ""))
    g = group_topology(topo)
    assert g.names == ("R1", "R2", "cpu")
    assert g.node_group.tolist() == [0, 0, 1, 1, 2]
    assert g.how == ("racks from config; racks from the exporter's rack label; "
                     "1 node without a rack grouped by hostname prefix")
    racked = group_nodes(names[:4], np.array([0, 0, 1, 1]), ("R1", "R2"), ("config", "config"))
    assert racked.names == ("R1", "R2") and racked.how == "racks from config"
    sim = group_nodes(names[:4], np.array([0, 0, 1, 1]), ("R01", "R02"), ("label", "label"), simulated=True)
    assert sim.how == "racks from the simulator"


def test_a_topology_without_rack_sources_treats_only_unracked_as_no_rack():
    # built by hand (tests, other tools): racks are racks unless named "unracked"
    topo = _unracked(("gpu01", "gpu02"), rack_source=())
    assert group_topology(topo).names == ("gpu",)
    named = Topology(node_names=("a1", "a2"), node_rack=np.array([0, 1], np.int32),
                     rack_names=("R01", "R02"), gpus_per_node=1, node_gpu_count=np.ones(2, np.int16),
                     node_model=("", ""), gpu_peak_tflops=np.ones(2, np.float32),
                     gpu_max_clock_mhz=np.ones(2, np.float32))
    g = group_topology(named)
    assert g.names == ("R01", "R02") and g.how == "by rack"


def test_no_nodes_no_groups():
    g = group_topology(_unracked(()))
    assert g.names == () and g.node_group.shape == (0,)
    assert auto_groups([]) == ([], "")


def _state_topology(racks: dict[str, str], labels: tuple[str, ...] | None) -> Topology:
    """The topology the cluster state builds from one telemetry update of four nodes."""
    from console.config import ClusterSettings
    from console.model import TELEMETRY_METRICS, TelemetryUpdate
    from console.polling import PollResult
    from console.state import ClusterState

    nodes = ("gpu01", "gpu02", "gpu03", "login1")
    state = ClusterState(ClusterSettings(name="lab", racks=racks), [("prom", "telemetry", 10.0)],
                         wall=lambda: 1000.0)
    metrics = {k: np.zeros((4, 2), np.float32) for k in TELEMETRY_METRICS}
    update = TelemetryUpdate(time=1000.0, nodes=nodes, gpus_per_node=2, metrics=metrics,
                             node_up=np.ones(4, bool), node_rack=labels or ())
    state.apply(PollResult(source="prom", kind="telemetry", request_id=1, started_at=1000.0,
                           fetched_at=1000.0, latency_s=0.1, updates=(update,)))
    return state.topology


def test_the_state_records_where_each_rack_name_came_from():
    bare = _state_topology({}, None)
    assert bare.rack_names == (UNRACKED,) and bare.rack_source == ("",)
    g = group_topology(bare)
    assert g.names == ("gpu", "login") and g.how == "grouped by hostname prefix (no rack labels)"
    mixed = _state_topology({"A1": "gpu[01-02]"}, ("", "", "B7", ""))
    assert dict(zip(mixed.rack_names, mixed.rack_source)) == {"A1": "config", "B7": "label", UNRACKED: ""}
    g = group_topology(mixed)
    group_of = {n: g.names[int(k)] for n, k in zip(mixed.node_names, g.node_group)}
    assert group_of == {"gpu01": "A1", "gpu02": "A1", "gpu03": "B7", "login1": "login"}
    assert g.how == ("racks from config; racks from the exporter's rack label; "
                     "1 node without a rack grouped by hostname prefix")


def test_natural_key_orders_numbers_as_numbers_and_survives_odd_digits() -> None:
    """gpu2 before gpu10, and a name with a superscript digit (a digit to Python, not a
    number) sorts instead of raising."""
    names = ["gpu10", "gpu2", "²", "gpu²", "gpu1"]
    assert sorted(names, key=natural_key)[:3] == ["gpu1", "gpu2", "gpu10"]
    assert set(sorted(names, key=natural_key)) == set(names)

"""Settings from TOML: typed, validated, with errors that name the key; no secrets in files."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import build_parser, resolve_settings
from console.config import ConfigError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]

FULL = """
schema_version = 1
history_hours = 24
[ui]
font_scale = 1.5
[[clusters]]
name = "aisc"
precision = "fp8_dense"
gpu_model = "NVIDIA H800 80GB HBM3"
nominal_pf = 3000
racks = { R01 = "gpu[001-008]" }
peaks = { H800 = 1000.0 }
[clusters.prometheus]
url = "https://prom.example:9090"
interval_s = 15
verify = "/etc/ssl/site-ca.pem"
auth = "bearer"
rack_label = "rack"
metrics = { tensor = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" }
[clusters.alertmanager]
urls = ["http://am1:9093", "http://am2:9093"]
[clusters.slurm]
url = "http://slurm:6820"
auth = "slurm_jwt"
user = "console"
[[clusters.tenants]]
account = "hku"
display = "University of Hong Kong"
kind = "university"
subsidy = 0.7
price_per_gpu_hour = 18.5
"""


def test_a_full_config_parses_into_typed_settings(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(FULL)
    s = load_settings(p)
    c = s.cluster("aisc")
    assert s.history_hours == 24.0 and s.ui.font_scale == 1.5
    assert c.precision == "fp8_dense" and c.nominal_pf == 3000.0
    assert c.prometheus is not None and c.prometheus.interval_s == 15.0
    assert c.prometheus.verify == "/etc/ssl/site-ca.pem" and c.prometheus.auth == "bearer"
    assert c.prometheus.metrics == {"tensor": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"}
    assert c.alertmanager is not None and c.alertmanager.urls == ("http://am1:9093", "http://am2:9093")
    assert c.slurm is not None and c.slurm.user == "console" and c.slurm.verify is True
    assert c.tenants[0].subsidy == 0.7 and c.tenants[0].kind == "university"
    assert c.racks == {"R01": "gpu[001-008]"} and not c.simulated


def test_the_shipped_example_config_is_valid() -> None:
    s = load_settings(ROOT / "resources" / "config.example.toml")
    assert s.clusters[0].prometheus is not None
    topo = s.clusters[0].topology
    assert topo.rows == {"A": ("R01", "R02")} and topo.switches["leaf-01"][-1] == "gpu016"
    assert not s.clusters[1].topology


TOPOLOGY = FULL.replace('[clusters.prometheus]', '''[clusters.topology]
rows = { A = "R[01-02]", B = ["R03", "R04"] }
pdus = { "R01-PDU-A" = "gpu[001-004]", "R01-PDU-B" = ["gpu[005-006]", "gpu007,gpu008"] }
switches = { "leaf-01" = "gpu[001-032]" }
[clusters.prometheus]''', 1)


def test_site_topology_parses_into_expanded_groups(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(TOPOLOGY)
    topo = load_settings(p).cluster("aisc").topology
    assert topo.rows == {"A": ("R01", "R02"), "B": ("R03", "R04")}
    assert topo.pdus == {"R01-PDU-A": ("gpu001", "gpu002", "gpu003", "gpu004"),
                         "R01-PDU-B": ("gpu005", "gpu006", "gpu007", "gpu008")}
    assert len(topo.switches["leaf-01"]) == 32
    fields = topo.topology_fields(("gpu001", "gpu005", "gpu033"), ("R02", "R09"))
    assert fields["row_names"] == ("A", "B") and fields["rack_row"].tolist() == [0, -1]
    assert fields["group_kinds"] == ("pdu", "pdu", "switch")
    assert fields["group_names"] == ("R01-PDU-A", "R01-PDU-B", "leaf-01")
    assert fields["group_offsets"].tolist() == [0, 1, 2, 4] and fields["group_nodes"].tolist() == [0, 1, 0, 1]


def test_no_site_topology_adds_nothing_to_the_topology() -> None:
    c = parse_settings({"clusters": [{"name": "a", "sim": {}}]}).clusters[0]
    assert not c.topology and c.topology.topology_fields(("n1",), ("R01",)) == {}


@pytest.mark.parametrize("table, words", [
    ({"row": {"A": "R01"}}, "clusters[0].topology: unknown key(s): row"),
    ({"pdus": {"P1": "gpu[001-004"}}, "clusters[0].topology.pdus.P1: unbalanced '['"),
    ({"switches": {"leaf-01": "gpu[004-001]"}}, "clusters[0].topology.switches.leaf-01: descending range"),
    ({"pdus": {"P1": 4}}, "clusters[0].topology.pdus.P1: expected a hostlist string or a list"),
    ({"pdus": {"P1": ""}}, "clusters[0].topology.pdus.P1: names nothing"),
    ({"rows": {"A": "R[01-02]", "B": "R02"}}, "clusters[0].topology.rows.B: rack R02 is already in row A"),
    ({"rows": ["R01"]}, "clusters[0].topology.rows: expected dict, got list"),
])
def test_bad_site_topology_is_refused_with_the_key_named(table: dict, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_settings({"clusters": [{"name": "a", "sim": {}, "topology": table}]})
    assert words in str(e.value)


@pytest.mark.parametrize("snippet, words", [
    ('[[clusters]]\nname="a"\n[clusters.slurm]\nurl="http://x"\ntoken="abc"\nauth="bearer"',
     "secrets do not belong in the config file"),
    ('[[clusters]]\nname="a"\nprecison="fp8_dense"\n[clusters.sim]\n', "unknown key(s): precison"),
    ('[[clusters]]\nname="a"\n[clusters.slurm]\nurl="http://x"\nauth="slurm_jwt"', "Slurm user name is required"),
    ('[[clusters]]\nname="a"\n[clusters.prometheus]\nurl="prom:9090"', "must start with http"),
    ('[[clusters]]\nname="a"\n[[clusters.tenants]]\naccount="x"\nsubsidy=0.9\n[clusters.sim]\n', "between 0 and 0.7"),
    ('schema_version = 9\n[[clusters]]\nname="a"\n[clusters.sim]\n', "schema_version 9 is not supported"),
    ('[[clusters]]\nname="a"', "configure at least one of"),
    ('[[clusters]]\nname="a"\ninterval_s="x"\n[clusters.sim]\n', "unknown key(s): interval_s"),
    ('[[clusters]]\nname="a"\n[clusters.prometheus]\nurl="http://x"\ninterval_s="fast"', "expected float, got str"),
])
def test_bad_configs_are_refused_with_the_key_named(tmp_path: Path, snippet: str, words: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(snippet)
    with pytest.raises(ConfigError) as e:
        load_settings(p)
    assert words in str(e.value)


def test_invalid_toml_and_missing_file_say_so(tmp_path: Path) -> None:
    p = tmp_path / "broken.toml"
    p.write_text("[[clusters]\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_no_config_means_the_simulated_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("AISC_CONSOLE_CONFIG", raising=False)
    args = build_parser().parse_args(["status", "--seed", "3", "--nodes", "16", "--speed", "60"])
    s = resolve_settings(args)
    c = s.clusters[0]
    assert c.sim is not None and (c.sim.seed, c.sim.nodes, c.sim.speed) == (3, 16, 60.0)


def test_node_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("AISC_CONSOLE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="between 1 and 4096"):
        resolve_settings(build_parser().parse_args(["--nodes", "5000"]))


def test_unknown_cluster_name_lists_the_configured_ones() -> None:
    s = parse_settings({"clusters": [{"name": "a", "sim": {}}, {"name": "b", "sim": {}}]})
    with pytest.raises(ConfigError, match="configured: a, b"):
        s.cluster("c")

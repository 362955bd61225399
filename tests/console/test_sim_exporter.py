"""The simulator's dcgm-exporter endpoint serves parseable text with DCGM names and labels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from console.sim import SimCluster, SimConfig, SimulatedSource
from console.sim.exporter import METRICS, render_metrics, serve_exporter

T0 = 1_800_000_000.0


@pytest.fixture
def sim() -> SimCluster:
    return SimCluster(SimConfig(seed=4, nodes=4, t0=T0, faults="none"))


def _serve(*args, **kw) -> tuple[str, object]:
    server, _thread = serve_exporter(*args, **kw)
    return f"http://127.0.0.1:{server.server_address[1]}/metrics", server


@pytest.fixture
def stop() -> Iterator[list]:
    servers: list = []
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


def _samples(text: str) -> dict[str, list]:
    """Samples by metric family (the parser appends ``_total`` to counter sample names)."""
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def test_serves_every_dcgm_metric_with_labels(sim: SimCluster, stop: list) -> None:
    url, server = _serve(sim, node_names={"n0001": "gpu01", "n0002": "gpu02", "n0003": "gpu03", "n0004": "gpu04"},
                         hpc_job=True)
    stop.append(server)
    r = requests.get(url, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    samples = _samples(r.text)
    names = {m for m, *_ in METRICS}
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"} <= names
    assert set(samples) == names
    for metric in names:
        assert len(samples[metric]) == 4 * 8, metric
        assert f"\n{metric}{{gpu=" in r.text, "served under the exact dcgm-exporter name"
    util = samples["DCGM_FI_DEV_GPU_UTIL"]
    labels = util[0].labels
    assert {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"} <= set(labels)
    assert labels["modelName"] == "NVIDIA H800 80GB HBM3"
    assert labels["UUID"].startswith("GPU-")
    assert {s.labels["Hostname"] for s in util} == {"gpu01", "gpu02", "gpu03", "gpu04"}
    assert {s.labels["gpu"] for s in util} == {str(g) for g in range(8)}
    tel = sim.telemetry_update()
    by_key = {(s.labels["Hostname"], int(s.labels["gpu"])): s.value for s in util}
    assert by_key[("gpu02", 3)] == pytest.approx(float(tel.metrics["util"][1, 3]), rel=1e-5)
    jobs = sim.job_table()
    held = {(jobs.alloc_node_names[n], int(g)): int(jobs.job_id[j])
            for j, n, g in zip(jobs.alloc_job, jobs.alloc_node, jobs.alloc_gpu)}
    for s in util:
        host = "n000" + s.labels["Hostname"][-1]
        key = (host, int(s.labels["gpu"]))
        assert s.labels.get("hpc_job") == (str(held[key]) if key in held else None)


def test_node_filter_and_scrape_advance(sim: SimCluster, stop: list) -> None:
    url, server = _serve(sim, node_filter=["n0002"], advance="scrape")
    stop.append(server)
    t_before = sim.time
    text = requests.get(url, timeout=5).text
    assert sim.time == t_before + sim.config.tick_s
    hosts = {s.labels["Hostname"] for s in _samples(text)["DCGM_FI_DEV_GPU_TEMP"]}
    assert hosts == {"n0002"}


def test_exporter_down_answers_503_and_lost_gpu_drops_out(stop: list) -> None:
    sim = SimCluster(SimConfig(seed=4, nodes=8, t0=T0, faults="none"))
    sim.step(600)
    down = sim.inject_fault("exporter_down")
    lost = sim.inject_fault("xid79")
    assert down is not None and lost is not None
    sim.step(5)
    url, server = _serve(sim, node_filter=[down.nodes[0]])
    stop.append(server)
    assert requests.get(url, timeout=5).status_code == 503
    text = render_metrics(SimulatedSource(cluster=sim).cluster)
    assert text is not None
    samples = _samples(text)
    (node, gpu), = lost.gpus
    temp_keys = {(s.labels["Hostname"], s.labels["gpu"]) for s in samples["DCGM_FI_DEV_GPU_TEMP"]}
    assert (node, str(gpu)) not in temp_keys
    assert down.nodes[0] not in {h for h, _ in temp_keys}
    xid = {(s.labels["Hostname"], s.labels["gpu"]): s for s in samples["DCGM_FI_DEV_XID_ERRORS"]}
    assert xid[(node, str(gpu))].value == 79 and xid[(node, str(gpu))].labels["err_code"] == "79"


def test_unknown_path_and_bad_arguments(sim: SimCluster, stop: list) -> None:
    url, server = _serve(SimulatedSource(cluster=sim))
    stop.append(server)
    assert requests.get(url.replace("/metrics", "/nope"), timeout=5).status_code == 404
    with pytest.raises(ValueError):
        serve_exporter(sim, node_filter=["n9999"])
    with pytest.raises(TypeError):
        serve_exporter(object())


def test_lowercase_hostname_label(sim: SimCluster) -> None:
    text = render_metrics(sim, hostname_label="hostname")
    assert text is not None
    s = _samples(text)["DCGM_FI_DEV_POWER_USAGE"][0]
    assert "hostname" in s.labels and "Hostname" not in s.labels
    assert np.isfinite(s.value)

"""The simulator's dcgm-exporter endpoint serves parseable text with DCGM names and labels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from console.sim import SimCluster, SimConfig, SimulatedSource
from console.sim.exporter import METRICS, STALE_JOB_BASE, _pairs, render_metrics, serve_exporter
from console.sim.exporter import main as exporter_main

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


H100 = "NVIDIA H100 80GB HBM3"


def test_node_sizes_and_models_differ_per_node(sim: SimCluster) -> None:
    """A 4-GPU node serves GPUs 0-3 only, and each node names its own model."""
    text = render_metrics(sim, node_names={"n0001": "gpu01", "n0002": "gpu05"}, node_filter=["n0001", "n0002"],
                          node_gpus={"gpu05": 4}, node_models={"gpu05": H100, "gpu01": "NVIDIA H800"})
    assert text is not None
    for metric, samples in _samples(text).items():
        gpus = {(s.labels["Hostname"], s.labels["gpu"]) for s in samples}
        assert gpus == {("gpu01", str(g)) for g in range(8)} | {("gpu05", str(g)) for g in range(4)}, metric
    models = {s.labels["Hostname"]: s.labels["modelName"] for s in _samples(text)["DCGM_FI_DEV_GPU_UTIL"]}
    assert models == {"gpu01": "NVIDIA H800", "gpu05": H100}
    tel = sim.telemetry_update()
    util = {(s.labels["Hostname"], int(s.labels["gpu"])): s.value for s in _samples(text)["DCGM_FI_DEV_GPU_UTIL"]}
    assert util[("gpu05", 3)] == pytest.approx(float(tel.metrics["util"][1, 3]), rel=1e-5)


def test_hpc_job_duplicates_repeat_allocated_gpus_with_a_stale_job(sim: SimCluster) -> None:
    plain = render_metrics(sim, hpc_job=True)
    doubled = render_metrics(sim, hpc_job=True, hpc_job_duplicates=True)
    assert plain is not None and doubled is not None
    once = _samples(plain)["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"]
    twice = _samples(doubled)["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"]
    allocated = [s for s in once if "hpc_job" in s.labels]
    assert allocated  # the simulated workload holds GPUs from the start
    assert len(twice) == len(once) + len(allocated)
    by_gpu: dict[tuple[str, str], list] = {}
    for s in twice:
        by_gpu.setdefault((s.labels["Hostname"], s.labels["gpu"]), []).append(s)
    current = {(s.labels["Hostname"], s.labels["gpu"]): s.labels["hpc_job"] for s in allocated}
    for key, series in by_gpu.items():
        if key not in current:
            assert len(series) == 1 and "hpc_job" not in series[0].labels, key
            continue
        assert len(series) == 2, key
        assert len({s.value for s in series}) == 1, key  # the same reading, twice
        jobs = {s.labels["hpc_job"] for s in series}
        assert current[key] in jobs and len(jobs) == 2, key
        (stale,) = jobs - {current[key]}
        assert int(stale) >= STALE_JOB_BASE


def test_command_line_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad:
        exporter_main(["--node-gpus", "gpu01=four", "--port", "0"])
    assert bad.value.code == 2
    assert "NAME=N" in capsys.readouterr().err
    assert _pairs("a=NVIDIA H800, b=NVIDIA H100 80GB HBM3,") == {"a": "NVIDIA H800", "b": H100}
    with pytest.raises(ValueError):
        _pairs("gpu01")

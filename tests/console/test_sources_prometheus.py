"""Prometheus client and telemetry source, replaying real Prometheus / VictoriaMetrics answers."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import numpy as np
import pytest
from test_sources_http import ReplayServer, capture, recorded_stack, server  # noqa: F401  (fixture)

from console.sources.base import ErrorKind, SourceError
from console.sources.prometheus import (MetricMap, PrometheusClient, PrometheusTelemetrySource,
                                        cluster_delivered_pf_query)

Q = "/api/v1/query"


def _series(name: str, host: str, gpu: int, value: float, **extra: str) -> dict:
    m = {"__name__": name, "Hostname": host, "gpu": str(gpu), "instance": f"{host}:9400",
         "job": "dcgm", "modelName": "NVIDIA H800", **extra}
    return {"metric": m, "value": [1795935495.0, repr(value)]}


def _vector(result: list[dict], warnings: list[str] | None = None) -> dict:
    body: dict = {"status": "success", "data": {"resultType": "vector", "result": result}}
    if warnings:
        body["warnings"] = warnings
    return body


class QueryServer:
    """Routes /api/v1/query by the ``query`` parameter (the replay server routes by path)."""

    def __init__(self, server: ReplayServer) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.default = (200, json.dumps(_vector([])).encode())

        def handle(h) -> None:
            q = server.requests[-1]["query"].get("query", [""])[0]
            status, body = self.answers.get(q, self.default)
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        server.add_handler("GET", Q, handle)

    def set(self, query: str, body: object, status: int = 200) -> None:
        self.answers[query] = (status, body if isinstance(body, bytes) else json.dumps(body).encode())


def test_query_instant_vector_capture(server: ReplayServer) -> None:
    server.add("GET", Q, 200, capture("prom_query_instant_vector.200.json"))
    r = PrometheusClient.from_url(server.url).query('DCGM_FI_DEV_GPU_TEMP{hostname="gpu01"}')
    # The stack's exporter duplicates series by hpc_job, as a job-labelling exporter does: each
    # of gpu01's 8 GPUs comes twice, with two different hpc_job values.
    assert r.result_type == "vector" and len(r.result) == 16 and r.warnings == ()
    jobs: dict[int, set[str]] = {}
    for s in r.result:
        jobs.setdefault(int(s["metric"]["gpu"]), set()).add(s["metric"]["hpc_job"])
    assert sorted(jobs) == list(range(8)) and all(len(v) == 2 for v in jobs.values())
    assert {s["metric"]["hostname"] for s in r.result} == {"gpu01"}
    assert server.requests[0]["query"]["query"] == ['DCGM_FI_DEV_GPU_TEMP{hostname="gpu01"}']


@pytest.mark.parametrize("name", ["prom_query_scalar.200.json", "vmcmp_query_scalar.200.json"])
def test_scalar_from_prometheus_and_victoriametrics(server: ReplayServer, name: str) -> None:
    server.add("GET", Q, 200, capture(name))
    expected = json.loads(capture(name))["data"]["result"]
    expected = float(expected[1] if isinstance(expected[0], (int, float)) else expected[0]["value"][1])
    assert PrometheusClient.from_url(server.url).query_scalar("scalar(max(x))") == expected


@pytest.mark.parametrize("name,status,etype", [
    ("prom_query_syntax_error.400.json", 400, "bad_data"),
    ("vmcmp_query_syntax_error.422.json", 422, "422"),
    ("prom_query_exec_error_many_to_many.422.json", 422, "execution"),
    ("prom_query_unknown_func.400.json", 400, "bad_data"),
])
def test_status_error_with_error_type_is_query_kind(server: ReplayServer, name: str, status: int,
                                                    etype: str) -> None:
    server.add("GET", Q, status, capture(name))
    e = pytest.raises(SourceError, PrometheusClient.from_url(server.url).query, "x").value
    assert e.kind is ErrorKind.QUERY and e.status == status
    assert e.message.startswith(f"query rejected by 127.0.0.1:{server.url.rsplit(':', 1)[1]} ({etype}): ")
    assert json.loads(capture(name))["error"][:40] in e.message


def test_range_too_many_points(server: ReplayServer) -> None:
    server.add("GET", "/api/v1/query_range", 400, capture("prom_query_range_too_many_points.400.json"))
    e = pytest.raises(SourceError, PrometheusClient.from_url(server.url).query_range, "up", 0, 1e9, 1).value
    assert e.kind is ErrorKind.QUERY and "exceeded maximum resolution" in e.message


def test_server_timeout_error_type_is_timeout(server: ReplayServer) -> None:
    server.add("GET", Q, 503, {"status": "error", "errorType": "timeout", "error": "query timed out"})
    e = pytest.raises(SourceError, PrometheusClient.from_url(server.url).query, "x").value
    assert e.kind is ErrorKind.TIMEOUT and "query timed out" in e.message


def test_wrong_shape_is_bad_payload(server: ReplayServer) -> None:
    server.add("GET", Q, 200, {"data": [1, 2, 3]})
    e = pytest.raises(SourceError, PrometheusClient.from_url(server.url).query, "x").value
    assert e.kind is ErrorKind.BAD_PAYLOAD and "not a Prometheus API envelope" in e.message
    server.add("GET", Q, 200, {"status": "success", "data": {"resultType": "vector", "result": {}}})
    e = pytest.raises(SourceError, PrometheusClient.from_url(server.url).query, "x").value
    assert e.kind is ErrorKind.BAD_PAYLOAD and "not a list" in e.message


def test_buildinfo_targets_labels_series(server: ReplayServer) -> None:
    for path, name in [("/api/v1/status/buildinfo", "prom_buildinfo.200.json"),
                       ("/api/v1/targets", "prom_targets.200.json"),
                       ("/api/v1/labels", "prom_labels.200.json"),
                       ("/api/v1/series", "prom_series.200.json")]:
        server.add("GET", path, 200, capture(name))
    c = PrometheusClient.from_url(server.url)
    assert c.buildinfo()["version"] == "2.42.0+ds"
    # the exporter serving every node, and the declared one of a node whose exporter is down
    targets = c.targets()
    down = recorded_stack()["exporter_down_node"]
    assert sorted((t["labels"].get("hostname", ""), t["health"]) for t in targets) == [
        ("", "up"), (down, "down")]
    assert {"hostname", "hpc_job", "modelName", "gpu"} <= set(c.labels())
    series = c.series(['DCGM_FI_DEV_XID_ERRORS{hostname="gpu01"}'])
    assert len(series) == 16 and {s["hostname"] for s in series} == {"gpu01"}
    server.add("GET", "/api/v1/status/buildinfo", 200, capture("vmcmp_buildinfo.200.json"))
    assert c.buildinfo() == {}


# ---- telemetry source ----------------------------------------------------------------------


def _source(server: ReplayServer, **kw) -> tuple[PrometheusTelemetrySource, QueryServer]:
    qs = QueryServer(server)
    src = PrometheusTelemetrySource(PrometheusClient.from_url(server.url), **kw)
    return src, qs


def test_telemetry_grid_dedupes_hpc_job_duplicates(server: ReplayServer) -> None:
    src, qs = _source(server)
    mm = MetricMap()
    qs.set(mm.util, _vector([
        _series("U", "n02", 0, 50.0),
        _series("U", "n01", 1, 90.0, hpc_job="11"),
        _series("U", "n01", 1, 90.0, hpc_job="12"),  # same GPU, second job: must not double
        _series("U", "n01", 0, 10.0),
    ]))
    qs.set(mm.temp, _vector([_series("T", "n01", 0, 60.0), _series("T", "n02", 0, 70.0, rack="R2")]))
    qs.set(mm.up, _vector([{"metric": {"instance": "n01:9400", "job": "dcgm"}, "value": [0, "1"]},
                           {"metric": {"instance": "n02:9400", "job": "dcgm"}, "value": [0, "1"]}]))
    (u,) = src.fetch(now=1795935495.0)
    assert u.nodes == ("n01", "n02") and u.gpus_per_node == 2
    np.testing.assert_array_equal(u.metrics["util"], np.array([[10, 90], [50, np.nan]], np.float32))
    assert u.metrics["util"].dtype == np.float32
    assert np.isnan(u.metrics["power"]).all()
    assert u.node_up.tolist() == [True, True]
    assert u.node_model == ("NVIDIA H800", "NVIDIA H800")
    assert u.node_rack == ("", "R2")
    assert "no series for DCGM_FI_DEV_POWER_USAGE" in u.warnings
    assert not any("ECC" in w for w in u.warnings)  # optional counters are off by default


def test_lowercase_hostname_label(server: ReplayServer) -> None:
    src, qs = _source(server)
    s = _series("U", "x", 3, 42.0)
    s["metric"]["hostname"] = s["metric"].pop("Hostname")
    qs.set(MetricMap().util, _vector([s]))
    (u,) = src.fetch()
    assert u.nodes == ("x",) and u.gpus_per_node == 4 and u.metrics["util"][0, 3] == 42.0


def _temps_by_gpu() -> dict[int, float]:
    """gpu01's recorded temperatures, one per GPU (its hpc_job duplicates agree)."""
    rows = json.loads(capture("prom_query_instant_vector.200.json"))["data"]["result"]
    temps: dict[int, set[float]] = {}
    for r in rows:
        temps.setdefault(int(r["metric"]["gpu"]), set()).add(float(r["value"][1]))
    assert all(len(v) == 1 for v in temps.values())
    return {g: v.pop() for g, v in temps.items()}


def _up_without_host_label() -> tuple[bytes, str]:
    """The recorded ``up`` with the down target's host label taken off, as a target declared
    without labels gives; and that target's instance."""
    body = json.loads(capture("prom_query_up.200.json"))
    (down,) = [r["metric"] for r in body["data"]["result"] if r["value"][1] == "0"]
    down.pop("hostname")
    return json.dumps(body).encode(), down["instance"]


def test_down_exporter_is_unreachable_node_not_idle(server: ReplayServer) -> None:
    """The real answer: the exporter target declared for the down node is down."""
    down = recorded_stack()["exporter_down_node"]
    src, qs = _source(server, node_rack={down: "r2"})
    qs.set(MetricMap().temp, capture("prom_query_instant_vector.200.json"))
    qs.set(MetricMap().up, capture("prom_query_up.200.json"))
    (u,) = src.fetch()
    assert u.nodes == ("gpu01", down)
    assert u.node_up.tolist() == [True, False]
    assert np.isnan(u.metrics["temp"][1]).all()
    temps = _temps_by_gpu()
    assert u.metrics["temp"][0].tolist() == [temps[g] for g in range(8)]
    assert u.node_rack == ("", "r2")


def test_down_exporter_without_host_label_is_learned_from_a_look_back(server: ReplayServer) -> None:
    up, inst = _up_without_host_label()
    src, qs = _source(server)
    qs.set(MetricMap().temp, capture("prom_query_instant_vector.200.json"))
    qs.set(MetricMap().up, up)
    escaped = re.escape(inst).replace("\\", "\\\\")
    look = ('count by (instance, Hostname, hostname) (last_over_time(DCGM_FI_DEV_GPU_TEMP'
            f'{{instance=~"{escaped}"}}[1h]))')
    qs.set(look, _vector([{"metric": {"instance": inst, "hostname": "gpu09"}, "value": [0, "8"]}]))
    (u,) = src.fetch()
    assert u.nodes == ("gpu01", "gpu09") and u.node_up.tolist() == [True, False]
    assert np.isnan(u.metrics["temp"][1]).all()


def test_down_exporter_with_unknown_node_is_a_warning(server: ReplayServer) -> None:
    up, inst = _up_without_host_label()
    src, qs = _source(server)
    qs.set(MetricMap().temp, capture("prom_query_instant_vector.200.json"))
    qs.set(MetricMap().up, up)
    (u,) = src.fetch()
    assert u.nodes == ("gpu01",)
    assert any(f"exporter {inst} is down and its node is unknown" in w for w in u.warnings)


def test_empty_result_everywhere_is_an_error(server: ReplayServer) -> None:
    src, qs = _source(server)
    qs.default = (200, capture("prom_query_empty_result.200.json"))
    e = pytest.raises(SourceError, src.fetch).value
    assert e.kind is ErrorKind.QUERY and "returned no GPU series" in e.message


def test_partial_results_surface_warnings(server: ReplayServer) -> None:
    src, qs = _source(server)
    qs.set(MetricMap().util, _vector([_series("U", "n1", 0, 1.0)],
                                     warnings=["store gateway unreachable: partial data"]))
    (u,) = src.fetch()
    assert "util: store gateway unreachable: partial data" in u.warnings


def test_query_error_propagates_from_source(server: ReplayServer) -> None:
    src, qs = _source(server)
    qs.set(MetricMap().util, capture("prom_query_syntax_error.400.json"), status=400)
    e = pytest.raises(SourceError, src.fetch).value
    assert e.kind is ErrorKind.QUERY


def test_selector_is_added_to_bare_metric_names() -> None:
    mm = MetricMap(selector='cluster="lab"')
    assert mm.expr("util") == 'DCGM_FI_DEV_GPU_UTIL{cluster="lab"}'
    assert mm.expr("nvlink_crc") == mm.nvlink_crc  # expressions are left alone


def test_delivered_pf_query_and_history(server: ReplayServer) -> None:
    q = cluster_delivered_pf_query({"H800": 989.5}, boost_clock_mhz={"H800": 1980})
    assert q == ('((sum(max by (Hostname, hostname, gpu) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE'
                 '{modelName=~".*H800.*"}) * on(Hostname, hostname, gpu) clamp_max(max by (Hostname, '
                 'hostname, gpu) (DCGM_FI_DEV_SM_CLOCK{modelName=~".*H800.*"}) / 1980, 1)) * 989.5 '
                 '/ 1000) or vector(0))')
    server.add("GET", "/api/v1/query_range", 200, {"status": "success", "data": {
        "resultType": "matrix", "result": [{"metric": {}, "values": [[100, "1.5"], [120, "2"]]}]}})
    src = PrometheusTelemetrySource(PrometheusClient.from_url(server.url), peak_tflops={"H800": 989.5})
    t, v = src.history(100, 130, 10)
    assert t.tolist() == [100, 110, 120, 130]
    np.testing.assert_array_equal(v, np.array([1.5, np.nan, 2.0, np.nan], np.float32))
    assert server.requests[0]["query"]["query"] == [cluster_delivered_pf_query({"H800": 989.5})]
    assert quote("x") == "x"


def test_large_instant_answer_grid(server: ReplayServer) -> None:
    """4,096 nodes x 8 GPUs, each series duplicated by hpc_job: one fetch builds the grid."""
    src, qs = _source(server)
    result = []
    for n in range(4096):
        for g in range(8):
            result.append(_series("U", f"n{n:04d}", g, float(g), hpc_job="1"))
            result.append(_series("U", f"n{n:04d}", g, float(g), hpc_job="2"))
    qs.set(MetricMap().util, _vector(result))
    (u,) = src.fetch()
    assert u.metrics["util"].shape == (4096, 8)
    assert u.metrics["util"].sum(dtype=np.float64) == 4096 * sum(range(8))

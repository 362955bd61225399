"""Every parser of a server's answer, fuzzed: hostile input gives a valid result or a worded error.

An endpoint the console does not control (a broken proxy, a half-upgraded server, an attacker)
can send anything. The property checked here for each parser: whatever arrives, the result is
either valid (array lengths agree, counts are non-negative, nothing unknown becomes a number)
or a typed error with words (`SourceError`, `HostlistError`, `ConfigError`), never another
exception, which the poller could only show as an internal error.

Inputs are real answers (Prometheus and Alertmanager shapes as the servers send them, the
recorded slurmrestd answers of every API version under tests/fixtures/slurm and a v0.0.38 one)
with a few random mutations each: keys removed, values replaced by nulls, wrong types, NaN and
Inf (as strings and as the JSON literals Python's decoder accepts), huge and negative numbers,
unicode digits, empty lists, or the whole body replaced.

Runs are reproducible (``derandomize``, no example database); set ``AISC_FUZZ_SCALE`` (e.g. 10)
for a deeper local run. The regression tests at the end pin each bug the fuzzing found.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import hostlist
from console.config import ConfigError, load_settings, parse_settings
from console.model import AlertsUpdate, SchedulerUpdate, TelemetryUpdate
from console.sources import slurm_parse as sp
from console.sources.alertmanager import AlertmanagerClient, AlertmanagerSource, parse_time
from console.sources.base import SourceError
from console.sources.http import Auth
from console.sources.prometheus import MetricMap, PrometheusClient, PrometheusTelemetrySource
from console.sources.prometheus_alerts import PrometheusAlertsSource
from console.sources.slurm import SlurmClient, SlurmSchedulerSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
SCALE = float(os.environ.get("AISC_FUZZ_SCALE", "1"))

settings.register_profile(
    "fuzz", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])


def fuzz(examples: int) -> Callable[[Any], Any]:
    """The fuzz profile with ``examples`` examples (times AISC_FUZZ_SCALE)."""
    return settings(settings.get_profile("fuzz"), max_examples=max(1, int(examples * SCALE)))


# ---------------------------------------------------------------------------------------------
# Mutations of real answers
# ---------------------------------------------------------------------------------------------

#: Text a hostile or broken server might put where a parser expects something sane.
HOSTILE_TEXT = ["", " ", "NaN", "+Inf", "-Inf", "inf", "1e400", "-1", "0", "²", "٣", "1²",
                "9" * 5000, "gpu", "gpu:", "gpu:h100:99999999999", "gpu:h100:-8",
                "gpu:8(IDX:0-99999999999)", "gpu:8(IDX:3-1)", "gpu:²(IDX:²)", "gres/gpu=²",
                "gres/gpu=99999999999999999999", "n[1-99999999]", "n[²-3]", "n[1-3",
                "n[1-2][1-2]", "[]", "n[]", "n[0001-0003]", "RUNNING", "DRAIN",
                "COMPLETING", "2026-13-45T99:99:99Z", "0000-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999999+23:59", "<html>nope</html>", "\u0000",
                "\ud7ff\ufffd", "ñódé-ü", "a" * 300]
HOSTILE = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**15, 2**31, 2**63, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
    st.lists(st.sampled_from(HOSTILE_TEXT[:12]), max_size=3),
    st.dictionaries(st.sampled_from(["set", "infinite", "number", "x"]),
                    st.one_of(st.booleans(), st.integers(-(2**64), 2**64), st.none(),
                              st.floats(allow_nan=True)), max_size=3),
    st.just([]), st.just({}),
)


def _paths(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def mutated(draw: st.DrawFn, base: Any, most: int = 4) -> Any:
    """``base`` (a JSON value) with 1..``most`` random mutations anywhere in it."""
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, most))):
        path = draw(st.sampled_from(list(_paths(obj))))
        op = draw(st.sampled_from(("replace", "replace", "replace", "delete", "wrap", "dup",
                                   "empty", "text")))
        if op == "replace" or not path:
            new = draw(HOSTILE)
        else:
            old = _get(obj, path)
            if op == "delete":
                parent = _get(obj, path[:-1])
                del parent[path[-1]]
                continue
            if op == "wrap":
                new = [old] if draw(st.booleans()) else {"value": old}
            elif op == "dup" and isinstance(old, list) and old:
                new = old + old[: draw(st.integers(1, len(old)))]
            elif op == "empty":
                new = type(old)() if isinstance(old, (list, dict, str)) else None
            elif op == "text" and isinstance(old, str):
                at = draw(st.integers(0, len(old)))
                new = old[:at] + draw(st.sampled_from(HOSTILE_TEXT)) + old[at:]
            else:
                new = draw(HOSTILE)
        if not path:
            obj = new
        else:
            _get(obj, path[:-1])[path[-1]] = new
    return obj


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeHttp:
    """Stands in for `HttpClient`: answers each request with ``answer(method, path, params)``.

    The transport (sizes, deadlines, bytes that are not JSON) is tested against real sockets
    elsewhere; here the decoded body is what varies.
    """

    def __init__(self, answer: Callable[[str, str, Any], Any]) -> None:
        self.answer = answer
        self.host = "fuzz.invalid:1"
        self.base_url = "http://fuzz.invalid:1"
        self.name = "fuzz"
        self.auth = Auth()
        self.timeout = (1.0, 1.0)
        self.error_mapper = None
        self.warnings = ()

    def get_json(self, path: str, params: Any = None, **_: Any) -> Any:
        return self.answer("GET", path, params)

    def request(self, method: str, path: str, *, params: Any = None, data: Any = None,
                decoder: Callable[[bytes], Any] | None = None, **_: Any) -> Any:
        body = self.answer(method, path, params if data is None else data)
        # A typed decoder sees the bytes the server would send (NaN and Infinity as the
        # literals Python writes, which it hands back to json.loads).
        return body if decoder is None else decoder(json.dumps(body).encode())

    def close(self) -> None:
        pass


def _no_nan_counts(*arrays: np.ndarray) -> None:
    for a in arrays:
        assert a.dtype.kind in "iub", a.dtype
        assert (a >= 0).all(), a


# ---------------------------------------------------------------------------------------------
# Prometheus: instant vectors (telemetry), matrices (history), rule alerts
# ---------------------------------------------------------------------------------------------


def _series(host: str, gpu: int, value: Any, **extra: str) -> dict:
    return {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": host, "gpu": str(gpu),
                       "UUID": f"GPU-{host}-{gpu}", "instance": f"{host}:9400", "job": "dcgm",
                       "modelName": "NVIDIA H100 80GB HBM3", "rack": "R01", **extra},
            "value": [1795935495.123, value]}


VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    _series("gpu01", 0, "61"), _series("gpu01", 1, "NaN"), _series("gpu02", 0, "+Inf"),
    _series("gpu02", 0, "12", hpc_job="4812"), _series("gpu10", 7, "0")]}}
UP = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"__name__": "up", "instance": "gpu01:9400", "job": "dcgm", "Hostname": "gpu01"},
     "value": [1795935495.1, "1"]},
    {"metric": {"__name__": "up", "instance": "10.0.0.9:9400", "job": "dcgm"},
     "value": [1795935495.1, "0"]},
    {"metric": {"__name__": "up", "instance": "gpu03:9400", "job": "dcgm"},
     "value": [1795935495.1, "0"]}]}}
MATRIX = {"status": "success", "warnings": ["partial answer"], "data": {
    "resultType": "matrix", "result": [{"metric": {}, "values": [
        [1795935000, "1.5"], [1795935060, "NaN"], [1795935120.5, "2"], [1795935300, "3"]]}]}}
RULE_ALERTS = {"status": "success", "data": {"alerts": [
    {"labels": {"alertname": "GpuHot", "severity": "warning", "Hostname": "gpu03", "gpu": "2"},
     "annotations": {"summary": "GPU 2 of gpu03 at 91 C"}, "state": "pending",
     "activeAt": "2026-11-30T08:01:02.123456789Z", "value": "9.1e+01"},
    {"labels": {"alertname": "XidFatal", "severity": "critical", "instance": "gpu04:9400",
                "hpc_job": "4812", "account": "acme"},
     "annotations": {}, "state": "firing", "activeAt": "2026-11-30T07:00:00Z", "value": "79"}]}}


def _check_telemetry(u: TelemetryUpdate) -> None:
    n = len(u.nodes)
    assert n >= 1 and len(set(u.nodes)) == n and all(isinstance(x, str) and x for x in u.nodes)
    assert 1 <= u.gpus_per_node <= 1024
    assert u.node_up.shape == (n,) and u.node_up.dtype == bool
    assert len(u.node_model) == n and all(isinstance(x, str) for x in u.node_model)
    assert len(u.node_rack) in (0, n) and all(isinstance(x, str) for x in u.node_rack)
    for a in u.metrics.values():
        assert a.shape == (n, u.gpus_per_node) and a.dtype == np.float32
        assert np.isnan(a[~u.node_up]).all()  # a down exporter never shows numbers
    assert all(isinstance(w, str) for w in u.warnings)


@fuzz(400)
@given(vector=mutated(VECTOR), up=mutated(UP, most=2), use_post=st.booleans())
def test_fuzz_prometheus_telemetry(vector: Any, up: Any, use_post: bool) -> None:
    def answer(method: str, path: str, params: Any) -> Any:
        q = params.get("query", "") if isinstance(params, Mapping) else ""
        return copy.deepcopy(up if q.startswith("up") else vector)

    metrics = MetricMap(reduce_labels=use_post)
    src = PrometheusTelemetrySource(PrometheusClient(FakeHttp(answer)), metrics=metrics)
    try:
        updates = src.fetch(now=1795935500.0)
    except SourceError as e:
        assert e.message and e.kind
        return
    (u,) = updates
    assert isinstance(u, TelemetryUpdate)
    _check_telemetry(u)


@fuzz(500)
@given(body=mutated(MATRIX), step=st.sampled_from([60.0, 15.0, 0.5]))
def test_fuzz_prometheus_history_matrix(body: Any, step: float) -> None:
    src = PrometheusTelemetrySource(PrometheusClient(FakeHttp(lambda m, p, q: copy.deepcopy(body))))
    start, end = 1795935000.0, 1795935300.0
    try:
        t, v = src.history(start, end, step, expr="x")
    except SourceError as e:
        assert e.message
        return
    n = int(math.floor((end - start) / step)) + 1
    assert t.shape == v.shape == (n,) and t.dtype == np.float64 and v.dtype == np.float32
    assert np.all(np.diff(t) > 0)


@fuzz(300)
@given(body=mutated({"status": "success", "data": {"resultType": "scalar",
                                                   "result": [1795935495.1, "4"]}}))
def test_fuzz_prometheus_scalar(body: Any) -> None:
    client = PrometheusClient(FakeHttp(lambda m, p, q: copy.deepcopy(body)))
    try:
        v = client.query_scalar("scalar(x)")
    except SourceError as e:
        assert e.message
        return
    assert v is None or isinstance(v, float)


@fuzz(500)
@given(body=mutated(RULE_ALERTS), include_firing=st.booleans())
def test_fuzz_prometheus_rule_alerts(body: Any, include_firing: bool) -> None:
    src = PrometheusAlertsSource(PrometheusClient(FakeHttp(lambda m, p, q: copy.deepcopy(body))),
                                 include_firing=include_firing)
    try:
        (u,) = src.fetch()
    except SourceError as e:
        assert e.message
        return
    assert isinstance(u, AlertsUpdate)
    _check_alerts(u)


# ---------------------------------------------------------------------------------------------
# Alertmanager: alerts, silences, groups
# ---------------------------------------------------------------------------------------------

AM_ALERT = {
    "annotations": {"summary": "XID 79 on gpu04 GPU 2", "runbook_url": "https://wiki/xid79"},
    "endsAt": "2026-11-30T09:05:00.000Z", "fingerprint": "3f0c5a1d2b6e7f80",
    "receivers": [{"name": "ops"}],
    "startsAt": "2026-11-30T08:01:02.123456789Z",
    "status": {"inhibitedBy": [], "silencedBy": ["7d1e"], "mutedBy": [], "state": "suppressed"},
    "updatedAt": "2026-11-30T08:05:00.000+01:00",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
    "labels": {"alertname": "XidFatal", "severity": "critical", "Hostname": "gpu04", "gpu": "2",
               "hpc_job": "4812", "account": "acme", "rack": "R01", "instance": "gpu04:9400"}}
AM_ALERTS = [AM_ALERT, {**AM_ALERT, "fingerprint": "aa", "status": {"state": "active"},
                        "labels": {"alertname": "NodeDown", "instance": "[::1]:9100"}}]
AM_SILENCES = [{
    "id": "7d1e", "status": {"state": "active"}, "comment": "ACK! looking", "createdBy": "ops",
    "startsAt": "2026-11-30T08:00:00Z", "endsAt": "2026-11-30T09:00:00Z",
    "updatedAt": "2026-11-30T08:00:00Z",
    "matchers": [{"name": "alertname", "value": "XidFatal", "isRegex": False, "isEqual": True},
                 {"name": "Hostname", "value": "gpu0[0-9]", "isRegex": True}]}]
AM_GROUPS = [{"labels": {"alertname": "XidFatal"}, "receiver": {"name": "ops"},
              "alerts": AM_ALERTS}]


def _check_alerts(u: AlertsUpdate) -> None:
    for a in u.alerts:
        assert isinstance(a.name, str) and isinstance(a.fingerprint, str)
        assert a.state in ("firing", "pending", "silenced", "inhibited")
        assert isinstance(a.starts_at, float)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in a.labels.items())
        assert a.gpu is None or (isinstance(a.gpu, int) and a.gpu >= 0)
        assert a.job_id is None or (isinstance(a.job_id, int) and a.job_id >= 0)
        assert a.node is None or isinstance(a.node, str)
    for s in u.silences:
        assert isinstance(s.id, str) and isinstance(s.starts_at, float)
        assert all(isinstance(m.name, str) and isinstance(m.value, str) for m in s.matchers)


@fuzz(500)
@given(alerts=mutated(AM_ALERTS), silences=mutated(AM_SILENCES, most=2))
def test_fuzz_alertmanager_alerts_and_silences(alerts: Any, silences: Any) -> None:
    def answer(method: str, path: str, params: Any) -> Any:
        return copy.deepcopy(silences if path.endswith("silences") else alerts)

    src = AlertmanagerSource(AlertmanagerClient(FakeHttp(answer)))
    try:
        (u,) = src.fetch()
    except SourceError as e:
        assert e.message
        return
    _check_alerts(u)


@fuzz(200)
@given(groups=mutated(AM_GROUPS))
def test_fuzz_alertmanager_groups(groups: Any) -> None:
    client = AlertmanagerClient(FakeHttp(lambda m, p, q: copy.deepcopy(groups)))
    try:
        out = client.groups()
    except SourceError as e:
        assert e.message
        return
    assert isinstance(out, list) and all(isinstance(g, dict) for g in out)


@fuzz(300)
@given(text=st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40),
                      st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,12})?(Z|[+-]\d\d:\d\d)?",
                                    fullmatch=True)))
def test_fuzz_rfc3339_times(text: str) -> None:
    v = parse_time(text)
    assert isinstance(v, float)  # NaN when it is not a time


# ---------------------------------------------------------------------------------------------
# slurmrestd: nodes and jobs of every API version
# ---------------------------------------------------------------------------------------------

V38_NODES = {"meta": {"Slurm": {"release": "22.05.8"}}, "errors": [], "nodes": [
    {"name": "gpu01", "hostname": "gpu01", "state": "mixed", "state_flags": ["DRAIN"],
     "reason": "XID 79", "gres": "gpu:h100:8(S:0-1)", "gres_used": "gpu:h100:6(IDX:0-5)",
     "partitions": ["gpu"]},
    {"name": "cpu01", "hostname": "localhost", "state": "down", "state_flags": ["NOT_RESPONDING"],
     "reason": "", "gres": "", "gres_used": "gpu:0", "partitions": ["cpu"]}]}
V38_JOBS = {"meta": {"Slurm": {"release": "22.05.8"}}, "errors": [], "jobs": [
    {"job_id": 1, "array_job_id": 0, "array_task_id": None, "job_state": "RUNNING",
     "name": "llm-pretrain-70b", "user_name": "root", "user_id": 0, "account": "acme-ai",
     "partition": "gpu", "state_reason": "None", "submit_time": 1795935400,
     "start_time": 1795935402, "end_time": 1796108202, "time_limit": 2880, "exit_code": 0,
     "nodes": "gpu[01-02]", "node_count": 2,
     "gres_detail": ["gpu:h100:8(IDX:0-7)", "gpu:h100:8(IDX:0-7)"],
     "tres_alloc_str": "cpu=128,mem=800G,node=2,billing=128", "tres_per_job": "",
     "tres_per_node": "gres:gpu:8", "tres_per_task": "", "tres_req_str": "cpu=128", "tasks": 16},
    {"job_id": 7, "array_job_id": 5, "array_task_id": 2, "job_state": "PENDING", "name": "sweep",
     "user_name": "", "user_id": 1001, "account": "uni", "partition": "gpu",
     "state_reason": "Resources", "submit_time": 1795935500, "start_time": 0, "end_time": 0,
     "time_limit": 60, "exit_code": 256, "nodes": "", "node_count": 1, "gres_detail": [],
     "tres_alloc_str": "", "tres_per_job": "", "tres_per_node": "",
     "tres_per_task": "gres:gpu:1", "tres_req_str": "cpu=4,gres/gpu=2", "tasks": 2}]}


def _versions() -> list[tuple[str, dict, dict]]:
    """(API version, nodes answer, jobs answer) for every version with a recording."""
    out = [("v0.0.38", V38_NODES, V38_JOBS)]
    for v in ("v0.0.40", "v0.0.41", "v0.0.42"):
        out.append((v, _load(f"{v}_nodes.json"), _load(f"{v}_jobs.json")))
    for v in ("v0.0.43", "v0.0.44", "v0.0.45"):
        out.append((v, _load(f"26.05/{v}_nodes.json"), _load(f"26.05/{v}_jobs.json")))
    return out


VERSIONS = _versions()


@st.composite
def slurm_answer(draw: st.DrawFn, body: dict, key: str) -> Any:
    """A few of the answer's rows (one body, several rows: the costly part is the mutating),
    mutated; the rest of the envelope kept."""
    rows = body[key]
    picked = draw(st.lists(st.sampled_from(rows), min_size=0, max_size=3))
    return draw(mutated({**{k: v for k, v in body.items() if k != key}, key: picked}))


def _check_nodes(t: Any) -> None:
    n = len(t.names)
    assert all(isinstance(x, str) for x in t.names)
    assert t.state.shape == t.responding.shape == t.gpus.shape == t.gpus_alloc.shape == (n,)
    assert len(t.reason) == len(t.partitions) == n and len(t.gpu_types) in (0, n)
    _no_nan_counts(t.gpus, t.gpus_alloc)


def _check_jobs(j: Any) -> None:
    n = len(j.job_id)
    for col in (j.array_job_id, j.array_task_id, j.name, j.user, j.account, j.partition,
                j.state, j.reason, j.gpus, j.nodes, j.submit_time, j.start_time, j.end_time,
                j.time_limit_s, j.exit_code, j.node_list):
        assert col.shape == (n,)
    _no_nan_counts(j.job_id, j.array_job_id, j.gpus, j.nodes)
    assert ((j.array_task_id >= -1)).all() and (j.exit_code >= -1).all()
    for codes, names in ((j.account, j.accounts), (j.partition, j.partitions),
                         (j.reason, j.reasons)):
        assert ((codes >= 0) & (codes < len(names))).all()
    m = len(j.alloc_job)
    assert j.alloc_node.shape == j.alloc_gpu.shape == (m,)
    assert ((j.alloc_job >= 0) & (j.alloc_job < n)).all()
    assert ((j.alloc_node >= 0) & (j.alloc_node < len(j.alloc_node_names))).all()
    _no_nan_counts(j.alloc_gpu)
    for t in (j.submit_time, j.start_time, j.end_time):
        assert t.dtype == np.float64 and not np.isinf(t).any()
    assert not np.isnan(j.time_limit_s).any()


def _slurm_fetch(version: str, nodes: Any, jobs: Any) -> SchedulerUpdate | None:
    def answer(method: str, path: str, params: Any) -> Any:
        return copy.deepcopy(nodes if path.endswith("/nodes") else jobs)

    src = SlurmSchedulerSource(SlurmClient(FakeHttp(answer), version=version),
                               use_update_time=False)
    try:
        (u,) = src.fetch()
    except SourceError as e:
        assert e.message
        return None
    assert isinstance(u, SchedulerUpdate) and u.api_version == version
    return u


@pytest.mark.parametrize("version,nodes,jobs", VERSIONS, ids=[v for v, _, _ in VERSIONS])
def test_fuzz_slurm_nodes(version: str, nodes: dict, jobs: dict) -> None:
    @fuzz(150)
    @given(body=slurm_answer(nodes, "nodes"))
    def run(body: Any) -> None:
        u = _slurm_fetch(version, body, {"jobs": []})
        if u is not None:
            _check_nodes(u.nodes)

    run()


@pytest.mark.parametrize("version,nodes,jobs", VERSIONS, ids=[v for v, _, _ in VERSIONS])
def test_fuzz_slurm_jobs(version: str, nodes: dict, jobs: dict) -> None:
    @fuzz(200)
    @given(body=slurm_answer(jobs, "jobs"))
    def run(body: Any) -> None:
        u = _slurm_fetch(version, {"nodes": []}, body)
        if u is not None:
            _check_jobs(u.jobs)

    run()


# ---------------------------------------------------------------------------------------------
# Text: hostlists, GRES and TRES strings
# ---------------------------------------------------------------------------------------------

HOST_PIECES = st.sampled_from(["n", "gpu", "a-b", "[", "]", ",", "-", "0", "1", "09", "10",
                               "001", "²", "٣", " ", "[1-3]", "[01-04,07]", "[9-10]", "[3-1]",
                               "[1-99999999]", "[]", "[a]", "x"])
HOSTLISTS = st.one_of(st.lists(HOST_PIECES, max_size=10).map("".join), st.text(max_size=20),
                      st.sampled_from(HOSTILE_TEXT))


@fuzz(800)
@given(expr=HOSTLISTS)
def test_fuzz_hostlist_expand(expr: str) -> None:
    try:
        names = hostlist.expand(expr)
    except hostlist.HostlistError as e:
        assert str(e)
        return
    assert len(names) <= hostlist.MAX_EXPANSION and all(isinstance(x, str) for x in names)


NAMES = st.lists(st.one_of(
    st.builds(lambda p, n, pad, s: f"{p}{n:0{pad}d}{s}", st.sampled_from(["n", "gpu", "a-b", "x1y"]),
              st.integers(0, 1200), st.sampled_from([1, 2, 4]), st.sampled_from(["", "b", "-ib"])),
    st.sampled_from(["login", "a-a٠", "n²", "n" + "9" * 30])), max_size=12)


@fuzz(400)
@given(names=NAMES)
def test_fuzz_hostlist_compress_round_trip(names: list[str]) -> None:
    """Compressing then expanding gives the same names (grouped, duplicates dropped)."""
    assert sorted(set(hostlist.expand(hostlist.compress(names)))) == sorted(set(names))


GRES_PIECES = st.sampled_from(["gpu", "gres", "gres/", "gres:", ":", "=", "h100", "a100", "8",
                               "0", "99999999999", "(", ")", "S:0-1", "IDX:", "0-3", "N/A", ",",
                               "-", "²", "٣", "shard", "4", "1-0", "0-99999999999", "gres/gpu"])
GRES = st.one_of(st.lists(GRES_PIECES, max_size=12).map("".join), st.text(max_size=20),
                 st.sampled_from(HOSTILE_TEXT))


@fuzz(800)
@given(text=GRES)
def test_fuzz_gres_and_tres_strings(text: str) -> None:
    """Counts within 0..MAX_GPU_COUNT and indices within 0..MAX_GPU_INDEX, or a `GresError`
    naming the string (the scheduler source reports it as a bad payload)."""
    def check(fn: Callable[[str], Any], ok: Callable[[Any], bool]) -> None:
        try:
            v = fn(text)
        except sp.GresError as e:
            assert "GRES" in str(e) or "TRES" in str(e)
            return
        assert ok(v), v

    check(sp.gres_gpus_and_type, lambda r: 0 <= r[0] <= sp.MAX_GPU_COUNT and isinstance(r[1], str))
    check(sp.gres_count, lambda n: 0 <= n <= sp.MAX_GPU_COUNT)
    check(sp.gres_indices, lambda idx: len(idx) <= sp.MAX_GPU_INDEX + 1
          and all(0 <= i <= sp.MAX_GPU_INDEX for i in idx))
    check(sp.tres_gpus, lambda n: 0 <= n <= sp.MAX_GPU_COUNT)


# ---------------------------------------------------------------------------------------------
# The config
# ---------------------------------------------------------------------------------------------

CONFIG = {
    "schema_version": 1, "history_hours": 168.0, "read_only": False,
    "ui": {"font_scale": 1.5, "theme": "dark"},
    "clusters": [{
        "name": "lab", "precision": "bf16_dense", "gpu_model": "H100", "nominal_pf": 100.0,
        "busy_threshold_pct": 5.0, "peaks": {"h100": 989.5}, "racks": {"gpu01": "R01"},
        "tenants": [{"account": "acme", "display": "ACME", "kind": "industry", "subsidy": 0.2,
                     "price_per_gpu_hour": 2.5}],
        "prometheus": {"url": "http://127.0.0.1:9090", "interval_s": 10.0, "timeout_s": 5.0,
                       "metrics": {"util": "DCGM_FI_DEV_GPU_UTIL"}, "backfill_hours": 24.0,
                       "max_answer_mb": 64.0},
        "alertmanager": {"urls": ["http://127.0.0.1:9093"], "interval_s": 15.0},
        "slurm": {"url": "https://127.0.0.1:6820", "auth": "slurm_jwt", "user": "ops",
                  "api_version": "v0.0.42", "ca_bundle": "ca.pem"},
        "sim": {"seed": 7, "nodes": 64, "speed": 2.0, "faults": "none", "interval_s": 2.0},
        "topology": {"pdus": {"pdu-a": "gpu[01-04]"}},
    }],
}


def _check_settings(s: Any) -> None:
    finite_positive = []
    for c in s.clusters:
        for ep in (c.prometheus, c.alertmanager, c.slurm):
            if ep is not None:
                finite_positive += [ep.interval_s, ep.timeout_s, ep.max_answer_mb]
        if c.sim is not None:
            finite_positive += [c.sim.interval_s, c.sim.speed]
            assert c.sim.nodes >= 1
        assert all(math.isfinite(v) and v > 0 for v in c.peaks.values())
    for v in finite_positive:
        assert math.isfinite(v) and v > 0, v
    assert math.isfinite(s.history_hours) and s.history_hours >= 0
    assert math.isfinite(s.ui.font_scale) and s.ui.font_scale > 0


@fuzz(400)
@given(raw=mutated(CONFIG, most=3))
def test_fuzz_config_tables(raw: Any) -> None:
    """What a TOML file can hold (tables, arrays, strings, numbers with nan and inf, booleans),
    anywhere in a full config: settings that hold up, or a `ConfigError` with words."""
    try:
        s = parse_settings(raw)
    except ConfigError as e:
        assert str(e)
        return
    _check_settings(s)


@fuzz(300)
@given(text=st.one_of(
    st.text(max_size=200),
    st.sampled_from(['x = nan', 'schema_version = 1\n[[clusters]]\nname = "a"\n[clusters.sim]\n'
                     'speed = nan', '[[clusters]]\nname = "a"\nsim = { nodes = -1 }',
                     '[[clusters]]\nname = "a"\n[clusters.prometheus]\nurl = "http://x"\n'
                     'interval_s = inf']),
), raw_bytes=st.binary(max_size=40))
def test_fuzz_config_files(tmp_path_factory: pytest.TempPathFactory, text: str,
                           raw_bytes: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    for content in (text.encode("utf-8", "surrogatepass"), raw_bytes):
        path.write_bytes(content)
        try:
            s = load_settings(path)
        except ConfigError as e:
            assert str(e)
            continue
        _check_settings(s)


# ---------------------------------------------------------------------------------------------
# Regressions: each bug the fuzzing found, pinned in plain words
# ---------------------------------------------------------------------------------------------


def test_rfc3339_time_the_pattern_admits_but_no_clock_shows_is_nan() -> None:
    assert math.isnan(parse_time("0000-00-00T00:00:00"))  # was ValueError: year 0
    assert math.isnan(parse_time("2026-13-45T99:99:99Z"))
    assert parse_time("2026-11-30T08:00:00.5Z") == 1796025600.5


def test_hostlist_unicode_and_huge_numbers_are_hostlist_errors() -> None:
    for expr in ("n[²-3]", "n[1-²]", "n[" + "9" * 5000 + "]"):  # were ValueError from int()
        with pytest.raises(hostlist.HostlistError, match="bad range"):
            hostlist.expand(expr)
    with pytest.raises(hostlist.HostlistError, match="too large"):  # the bracket as a whole
        hostlist.expand("n[0-600000,0-600000]")
    assert hostlist.compress(["a-a٠", "a-a0"]) == "a-a٠,a-a0"  # "٠" is no number to expand
    assert hostlist.expand(hostlist.compress(["a-a٠", "a-a0"])) == ["a-a٠", "a-a0"]


def test_gres_impossible_counts_and_indices_are_gres_errors() -> None:
    with pytest.raises(sp.GresError, match="names GPU index 99999999999"):  # was a 10^11 list
        sp.gres_indices("gpu:8(IDX:0-99999999999)")
    with pytest.raises(sp.GresError, match="names 99999999999 GPUs"):
        sp.gres_count("gpu:h100:99999999999")
    with pytest.raises(sp.GresError, match="TRES"):
        sp.tres_gpus("cpu=4,gres/gpu=99999999999")
    assert sp.gres_gpus_and_type("gpu:²") == (1, "²")  # was ValueError from int("²")
    assert sp.tres_gpus("gres/gpu=²") == 0 and sp.gres_indices("gpu:1(IDX:²)") == []
    with pytest.raises(sp.GresError, match="node 'n1' has a gres of 40000 GPUs"):
        sp.parse_nodes([{"name": "n1", "gres": "gpu:40000"}])  # was OverflowError (int16)


def test_slurm_numbers_beyond_their_columns_are_unknown_not_wrapped() -> None:
    base = V38_JOBS["jobs"][0]
    jobs = sp.parse_jobs([{**base, "job_id": 2**70, "array_job_id": -5, "node_count": 2**31,
                           "submit_time": 10**400, "start_time": -3, "time_limit": 10**400,
                           "exit_code": 2**70, "gres_detail": [], "tres_alloc_str": "",
                           "tres_per_node": "gres:gpu:1000000"},
                          {**base, "job_id": 5, "node_count": 2**31 - 1, "gres_detail": [],
                           "tres_alloc_str": "", "tres_per_node": "gres:gpu:1000000"}])
    assert jobs.job_id.tolist() == [0, 5] and jobs.array_job_id.tolist() == [0, 0]
    assert jobs.nodes.tolist() == [0, 2**31 - 1]  # was OverflowError
    assert math.isnan(jobs.submit_time[0]) and math.isnan(jobs.start_time[0])
    assert jobs.time_limit_s[0] == math.inf  # unreadable: as unset (the partition's limit)
    assert jobs.exit_code[0] == -1
    assert jobs.gpus.tolist() == [1_000_000, sp.MAX_GPU_COUNT]  # was a wrapped negative int32
    assert sp.exit_code({"status": ["SIGNALED"], "signal": {"id": 2**40}}) == -1
    assert sp.exit_code({"status": ["COMPLETED"], "return_code": -7}) == -1


def test_slurm_envelope_of_wrong_types_is_ignored_not_a_crash() -> None:
    nodes = {"meta": True, "errors": 1, "warnings": {"x": 1}, "nodes": V38_NODES["nodes"]}
    jobs = {"meta": {"slurm": "22.05"}, "errors": None, "warnings": True, "jobs": []}
    u = _slurm_fetch("v0.0.38", nodes, jobs)  # were AttributeError / TypeError
    assert u is not None and u.nodes.names == ("gpu01", "cpu01") and u.warnings == ()


def test_prometheus_gpu_labels_that_are_no_index_are_skipped() -> None:
    vector = {"status": "success", "warnings": True, "data": {"resultType": "vector", "result": [
        _series("gpu01", 0, "5"), {**_series("gpu01", 0, "7"),
                                   "metric": {**_series("gpu01", 0, "7")["metric"],
                                              "gpu": "4000000000"}},
        {**_series("gpu02", 0, "9"), "metric": {**_series("gpu02", 0, "9")["metric"],
                                                "gpu": "²"}}]}}
    src = PrometheusTelemetrySource(PrometheusClient(FakeHttp(
        lambda m, p, q: copy.deepcopy(UP if q.get("query", "").startswith("up") else vector))))
    (u,) = src.fetch(now=1795935500.0)
    # was a [node, 4e9] grid (MemoryError), and ValueError for "²"; warnings=true was TypeError
    assert u.gpus_per_node == 1 and u.metrics["util"][u.nodes.index("gpu01"), 0] == 5.0
    assert "gpu02" not in u.nodes


def test_prometheus_shapes_that_were_crashes_are_bad_payload() -> None:
    def client(body: Any) -> PrometheusClient:
        return PrometheusClient(FakeHttp(lambda m, p, q: copy.deepcopy(body)))

    bad_up = {"status": "success", "data": {"resultType": "vector",
                                            "result": [{"metric": {"instance": "a:1"}, "value": None}]}}
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    only_up = PrometheusClient(FakeHttp(lambda m, p, q: copy.deepcopy(
        bad_up if q.get("query", "").startswith("up") else empty)))
    with pytest.raises(SourceError, match="'up' answer") as e:
        PrometheusTelemetrySource(only_up).fetch(now=1.0)  # was TypeError
    assert e.value.kind.value == "bad payload"
    with pytest.raises(SourceError, match="unexpected shape"):
        client({"status": "success", "data": {"resultType": "scalar", "result": "4"}}).query_scalar("x")
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [{"values": [
        [1795935000, "+Inf"], [float("nan"), "1"], [10**400, "2"], ["x", "3"],
        [1795935060, 10**400], [1795935120, "-5"]]}]}}
    t, v = PrometheusTelemetrySource(client(matrix)).history(1795935000.0, 1795935120.0, 60.0, "x")
    assert np.isnan(v[:2]).all() and v[2] == -5.0  # Inf and a huge number are gaps, not figures
    with pytest.raises(SourceError, match="pairs"):
        PrometheusTelemetrySource(client({**matrix, "data": {"resultType": "matrix", "result": [
            {"values": [[1, 2, 3]]}]}})).history(0.0, 60.0, 60.0, "x")  # was IndexError


def test_alert_gpu_label_that_is_no_number_links_no_gpu() -> None:
    def answer(method: str, path: str, params: Any) -> Any:
        if path.endswith("silences"):
            return []
        return [{**AM_ALERT, "labels": {**AM_ALERT["labels"], "gpu": "²", "hpc_job": "9" * 5000}}]

    (u,) = AlertmanagerSource(AlertmanagerClient(FakeHttp(answer))).fetch()  # was ValueError
    assert u.alerts[0].gpu is None and u.alerts[0].job_id is None


@pytest.mark.parametrize("raw,words", [
    ({"clusters": [{"name": "a", "sim": {"speed": math.nan}}]}, "clusters[0].sim.speed: expected a finite"),
    ({"clusters": [{"name": "a", "sim": {"nodes": -1}}]}, "clusters[0].sim.nodes: must be above 0"),
    ({"clusters": [{"name": "a", "sim": {}}], "history_hours": -1.0}, "history_hours: 0 or more"),
    ({"clusters": [{"name": "a", "sim": {}, "peaks": {"h100": "fast"}}]}, "peaks.h100: expected float"),
    ({"clusters": [{"name": "a", "sim": {}}], "ui": {"font_scale": 0}}, "ui.font_scale: must be above 0"),
    ({"clusters": [{"name": "a", "prometheus": {"url": "http://x", "interval_s": math.inf}}]},
     "interval_s: expected a finite"),
    ({"clusters": [{"name": "a", "sim": {"interval_s": 10**400}}]}, "expected a finite"),
])
def test_config_numbers_no_setting_takes_are_config_errors(raw: dict, words: str) -> None:
    with pytest.raises(ConfigError) as e:  # were accepted (NaN interval), or ValueError
        parse_settings(raw)
    assert words in str(e.value)


def test_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_bytes(b'[[clusters]]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 24\)"):  # was UnicodeDecodeError
        load_settings(p)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path)  # a directory

"""Typed decoding of large answers gives exactly what full decoding gives, for what is read.

The Prometheus vector answers of a telemetry poll and slurmrestd's ``/nodes`` and ``/jobs`` are
decoded keeping only the labels and keys the console reads (msgspec), falling back to the
standard decoder for anything msgspec refuses. Each test compares the fast path with the plain
one on the same bytes, so a difference in any rule (first host label, hpc_job duplicates,
model and rack of a host, NaN and +Inf samples, number structs of newer Slurm APIs) fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pytest
from test_sources_http import ReplayServer
from test_sources_prometheus import QueryServer, _series, _vector

from console.model import TelemetryUpdate
from console.sources import slurm_parse as sp
from console.sources.base import ErrorKind, SourceError
from console.sources.http import typed_decoder
from console.sources.prometheus import (MetricMap, PrometheusClient, PrometheusTelemetrySource,
                                        QueryResult, VectorSample)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    s = ReplayServer()
    yield s
    s.close()


class _Pair(TypedDict, total=False):
    a: int


def test_typed_decoder_keeps_named_keys_and_falls_back_to_the_standard_decoder() -> None:
    dec = typed_decoder(_Pair)
    assert dec(b'{"a": 1, "b": [1, 2]}') == {"a": 1}  # b is never built
    # msgspec refuses these; json.loads reads them, so the answer decodes as it always did
    for text in (b'{"a": "x", "b": 2}', b'{"a": NaN}', b'{"a": 1e400}', b'[1, 2]'):
        assert dec(text) == json.loads(text)
    with pytest.raises(ValueError):
        dec(b'{"a": 1')


class _PlainClient:
    """The same client without `query_series`: the source decodes every answer in full."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        self.http = client.http

    def query(self, expr: str, time: float | None = None) -> QueryResult:
        return self.client.query(expr, time)


def _answers(qs: QueryServer, mm: MetricMap) -> None:
    qs.set(mm.util, _vector([
        _series("U", "n02", 0, 50.0, rack=""),
        _series("U", "n02", 1, 70.0, rack="R2"),  # the rack comes with a later series
        _series("U", "n01", 1, 90.0, hpc_job="11"),
        _series("U", "n01", 1, 95.0, hpc_job="12"),  # duplicates: the max is kept
        _series("U", "n10", 0, float("nan"), modelName=""),
        {"metric": {"hostname": "n03", "gpu": "0", "model_name": "A100", "instance": "10.0.0.3:9400"},
         "value": [1.0, "12.5"]},  # lower-case host label, the other model label
        {"metric": {"Hostname": "n04", "instance": "n04:9400"}, "value": [1.0, "1"]},  # no gpu
        {"metric": {"Hostname": "n05", "gpu": "x"}, "value": [1.0, "1"]},  # not a GPU index
        {"metric": {"gpu": "0"}, "value": [1.0, "1"]},  # no host
    ]))
    qs.set(mm.temp, _vector([_series("T", "n01", 0, 60.0), _series("T", "n02", 3, 70.0),
                             _series("T", "n01", 1, 65.0, rack="R1")]))
    qs.set(mm.power, _vector([_series("P", "n01", 0, 500.0)]))
    qs.default = (200, json.dumps(_vector([])).encode())


def _same(a: TelemetryUpdate, b: TelemetryUpdate) -> None:
    assert (a.nodes, a.gpus_per_node, a.node_model, a.node_rack, a.warnings) == \
        (b.nodes, b.gpus_per_node, b.node_model, b.node_rack, b.warnings)
    assert a.node_up.tolist() == b.node_up.tolist()
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)


def test_telemetry_from_typed_answers_equals_the_plain_path(server: ReplayServer) -> None:
    qs = QueryServer(server)
    mm = MetricMap()
    _answers(qs, mm)
    client = PrometheusClient.from_url(server.url)
    r = client.query_series(mm.util, None, PrometheusTelemetrySource(client).labels_read())
    assert r.result_type == "vector" and isinstance(r.result[0], VectorSample)  # the fast path ran
    fast = PrometheusTelemetrySource(client)
    plain = PrometheusTelemetrySource(_PlainClient(client))  # type: ignore[arg-type]
    (a,), (b,) = fast.fetch(now=5.0), plain.fetch(now=5.0)
    _same(a, b)
    assert a.nodes == ("n01", "n02", "n03", "n10")
    assert a.node_model == ("NVIDIA H800", "NVIDIA H800", "A100", "")
    assert a.node_rack == ("R1", "R2", "", "")
    np.testing.assert_array_equal(a.metrics["util"][0], np.array([np.nan, 95, np.nan, np.nan],
                                                                 np.float32))
    assert fast._instance_host == plain._instance_host == {
        "n02:9400": "n02", "n01:9400": "n01", "10.0.0.3:9400": "n03", "n10:9400": "n10"}


@pytest.mark.parametrize("odd", ["new host", "first host label empty", "no GPU index",
                                 "duplicates", "no series"])
def test_later_answers_that_leave_the_known_hosts_path_equal_the_plain_path(
        server: ReplayServer, odd: str) -> None:
    """Answers after a poll's first go through a path for series whose hosts are all known;
    each way out of it (a host the first answer did not name, an empty first host label, a
    GPU label that is no index, hpc_job duplicates, an empty answer) gives what the plain
    rules give."""
    qs = QueryServer(server)
    mm = MetricMap()
    # every host has its rack: later answers are decoded for host and GPU labels only
    qs.set(mm.util, _vector([_series("U", "n01", 0, 50.0, rack="R1"),
                             _series("U", "n01", 1, 60.0, rack="R1"),
                             _series("U", "n02", 0, 70.0, rack="R2")]))
    later = [_series("T", "n02", 0, 40.0), _series("T", "n01", 1, 41.0)]
    if odd == "new host":
        later.append(_series("T", "n07", 2, 42.0, modelName="A100", rack="R7"))
    elif odd == "first host label empty":
        later.append({"metric": {"Hostname": "", "hostname": "n01", "gpu": "0"},
                      "value": [1.0, "43"]})
    elif odd == "no GPU index":
        later.append({"metric": {"Hostname": "n01", "gpu": "gpu0"}, "value": [1.0, "44"]})
    elif odd == "duplicates":
        later.append(_series("T", "n02", 0, 45.0, hpc_job="9"))
    elif odd == "no series":
        later = []
    qs.set(mm.temp, _vector(later))
    qs.default = (200, json.dumps(_vector([])).encode())
    client = PrometheusClient.from_url(server.url)
    (a,), (b,) = (PrometheusTelemetrySource(client).fetch(now=5.0),
                  PrometheusTelemetrySource(_PlainClient(client)).fetch(now=5.0))  # type: ignore[arg-type]
    _same(a, b)
    temp = dict(zip(a.nodes, a.metrics["temp"].tolist()))
    if odd == "new host":
        assert a.nodes == ("n01", "n02", "n07") and temp["n07"][2] == 42.0
        assert a.node_model[2] == "A100" and a.node_rack == ("R1", "R2", "R7")
    elif odd == "first host label empty":
        assert temp["n01"][:2] == [43.0, 41.0]
    elif odd == "duplicates":
        assert temp["n02"][0] == 45.0
    elif odd == "no series":
        assert np.isnan(a.metrics["temp"]).all()
    else:
        assert np.isnan(temp["n01"][0]) and temp["n01"][1] == 41.0


def test_answers_msgspec_refuses_take_the_plain_path_to_the_same_result(server: ReplayServer) -> None:
    qs = QueryServer(server)
    mm = MetricMap()
    _answers(qs, mm)
    # "+Inf" (Prometheus' spelling) is no float to msgspec: the whole answer is decoded in full
    inf = _series("T", "n02", 0, 1.0)
    inf["value"][1] = "+Inf"
    qs.set(mm.temp, _vector([_series("T", "n01", 0, 60.0), inf]))
    client = PrometheusClient.from_url(server.url)
    r = client.query_series(mm.temp, None, ("Hostname", "gpu"))
    assert type(r.result[1]) is dict and r.result[1]["value"][1] == "+Inf"
    (a,), (b,) = (PrometheusTelemetrySource(client).fetch(now=5.0),
                  PrometheusTelemetrySource(_PlainClient(client)).fetch(now=5.0))  # type: ignore[arg-type]
    _same(a, b)
    # a label that is not a string: both paths refuse the answer with the same words
    qs.set(mm.temp, _vector([{"metric": {"Hostname": "n01", "gpu": 0}, "value": [1.0, "1"]}]))
    errs = []
    for c in (client, _PlainClient(client)):
        with pytest.raises(SourceError) as e:
            PrometheusTelemetrySource(c).fetch(now=5.0)  # type: ignore[arg-type]
        errs.append((e.value.kind, e.value.message))
    assert errs[0] == errs[1] and errs[0][0] is ErrorKind.BAD_PAYLOAD


def test_error_answers_keep_their_words_with_a_typed_decoder(server: ReplayServer) -> None:
    qs = QueryServer(server)
    qs.set("bad(", {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"},
           status=400)
    client = PrometheusClient.from_url(server.url)
    with pytest.raises(SourceError) as e:
        client.query_series("bad(", None, ("Hostname", "gpu"))
    assert e.value.kind is ErrorKind.QUERY and "parse error at char 5" in e.value.message


def _listings() -> list[tuple[str, Path]]:
    out = []
    for p in sorted(FIXTURES.rglob("*.json")):
        try:
            body = json.loads(p.read_bytes())
        except ValueError:
            continue
        for key in ("jobs", "nodes"):
            if isinstance(body, dict) and isinstance(body.get(key), list) and body[key]:
                out.append((key, p))
    return out


def _tables_equal(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    for name, x in vars(a).items():
        y = getattr(b, name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


@pytest.mark.parametrize("key,path", _listings(), ids=lambda v: v if isinstance(v, str) else
                         f"{v.parent.name}/{v.name}")
def test_slurm_listings_decoded_typed_parse_like_full_ones(key: str, path: Path) -> None:
    content = path.read_bytes()
    full = json.loads(content)
    fast = sp.listing_decoder(key)(content)
    for k in sp._ANSWER_KEYS:  # what the scheduler source reads besides the list
        assert fast.get(k) == full.get(k), k
    parse = sp.parse_jobs if key == "jobs" else sp.parse_nodes
    _tables_equal(parse(fast[key]), parse(full[key]))
    if key == "jobs":  # rows of exactly the keys read
        assert {type(item) for item in fast[key]} == {sp.JobRow}
        assert sp.JobRow.__struct_fields__ == sp._JOB_KEYS
    else:
        assert all(set(item) <= set(sp._NODE_KEYS) for item in fast[key])


def test_slurm_v0038_jobs_drop_job_resources_and_keep_every_column() -> None:
    job = {"job_id": 5, "array_job_id": 0, "array_task_id": None, "job_state": "RUNNING",
           "name": "train", "user_name": "u", "user_id": 1000, "account": "a", "partition": "gpu",
           "state_reason": "None", "submit_time": 100, "start_time": 200, "end_time": 900,
           "time_limit": 60, "exit_code": 0, "nodes": "n[1-2]", "node_count": 2,
           "gres_detail": ["gpu:h100:2(IDX:0-1)", "gpu:h100:1(IDX:5)"], "tres_alloc_str": "",
           "tres_per_job": "", "tres_per_node": "gres:gpu:2", "tres_per_task": "",
           "tres_req_str": "", "tasks": 2,
           "job_resources": {"allocated_nodes": [{"sockets": {"0": {"cores": {"0": "allocated"}}}}]}}
    pending = {**job, "job_id": 6, "job_state": "PENDING", "nodes": "", "gres_detail": [],
               "start_time": 0, "end_time": 0}
    content = json.dumps({"meta": {}, "errors": [], "jobs": [job, pending]}).encode()
    fast = sp.listing_decoder("jobs")(content)
    assert not hasattr(fast["jobs"][0], "job_resources")
    assert (fast["jobs"][0].job_id, fast["jobs"][1].start_time) == (5, 0)
    _tables_equal(sp.parse_jobs(fast["jobs"]), sp.parse_jobs(json.loads(content)["jobs"]))
    assert sp.listing_decoder("partitions") is None  # anything else: decoded in full


class _AskLog:
    """A client that records the labels each typed query asked to decode."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        self.http = client.http
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def query(self, expr: str, time: float | None = None) -> QueryResult:
        return self.client.query(expr, time)

    def query_series(self, expr: str, time: float | None, labels: Any) -> QueryResult:
        self.asked.append((expr, tuple(labels)))
        return self.client.query_series(expr, time, labels)


def test_later_answers_decode_host_and_gpu_only_and_a_new_host_asks_again(
        server: ReplayServer) -> None:
    qs = QueryServer(server)
    mm = MetricMap()
    qs.set(mm.util, _vector([_series("U", "n01", 0, 50.0, rack="R1")]))
    qs.set(mm.temp, _vector([_series("T", "n01", 0, 60.0)]))
    # n07 is in no answer before power's: its model, rack and instance come from power's labels
    qs.set(mm.power, _vector([_series("P", "n01", 0, 500.0),
                              _series("P", "n07", 2, 400.0, modelName="A100", rack="R7")]))
    log = _AskLog(PrometheusClient.from_url(server.url))
    src = PrometheusTelemetrySource(log)  # type: ignore[arg-type]
    (a,) = src.fetch(now=5.0)
    (b,) = PrometheusTelemetrySource(_PlainClient(log.client)).fetch(now=5.0)  # type: ignore[arg-type]
    _same(a, b)
    assert a.nodes == ("n01", "n07") and a.node_model == ("NVIDIA H800", "A100")
    assert a.node_rack == ("R1", "R7") and src._instance_host["n07:9400"] == "n07"
    full, narrow = src.labels_read(), ("Hostname", "hostname", "gpu")
    by_expr: dict[str, list[tuple[str, ...]]] = {}
    for expr, labels in log.asked:
        by_expr.setdefault(expr, []).append(labels)
    assert by_expr[mm.util] == [full] and by_expr[mm.temp] == [narrow]
    assert by_expr[mm.power] == [narrow, full]  # asked again, with every label read
    assert by_expr[mm.expr("up")] == [("Hostname", "hostname", "instance")]


def test_reduced_answers_never_ask_twice_for_labels_they_do_not_carry(
        server: ReplayServer) -> None:
    qs = QueryServer(server)
    mm = MetricMap(reduce_labels=True)
    qs.set(mm.query_expr("util", first=True),
           _vector([_series("U", "n01", 0, 50.0, rack="R1")]))
    qs.set(mm.query_expr("power"), _vector([{"metric": {"Hostname": "n07", "gpu": "1"},
                                             "value": [1.0, "400"]}]))
    log = _AskLog(PrometheusClient.from_url(server.url))
    (a,) = PrometheusTelemetrySource(log, metrics=mm).fetch(now=5.0)  # type: ignore[arg-type]
    assert a.nodes == ("n01", "n07") and a.node_model == ("NVIDIA H800", "")
    assert a.node_rack == ("R1", "")
    assert [e for e, _ in log.asked].count(mm.query_expr("power")) == 1

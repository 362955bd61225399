"""The fast ingest paths give exactly what the plain rules say: vectorised job columns, the
per-job fallback for missing keys, reduced Prometheus labels, and the shared GC pause."""

from __future__ import annotations

import gc
import json
import math
import threading

import numpy as np

from console.categories import category_codes
from console.model import JobState
from console.sources import slurm_parse as sp
from console.sources.http import gc_paused
from console.sources.prometheus import MetricMap, PrometheusTelemetrySource, QueryResult


def _job(**kw: object) -> dict:
    base = {"job_id": 1, "array_job_id": 0, "array_task_id": None, "job_state": "PENDING",
            "name": "j", "user_name": "u", "user_id": 1000, "account": "a", "partition": "gpu",
            "state_reason": "Priority", "submit_time": 100, "start_time": 0, "end_time": 0,
            "time_limit": 60, "exit_code": 0, "nodes": "", "node_count": 1, "gres_detail": [],
            "tres_alloc_str": "", "tres_per_job": "", "tres_per_node": "", "tres_per_task": "",
            "tres_req_str": "", "tasks": 1}
    base.update(kw)
    return base


def test_integer_columns_follow_the_scalar_rules() -> None:
    jobs = [_job(job_id=7, exit_code=768, submit_time=0, time_limit=90, array_job_id=7,
                 array_task_id=3),
            _job(job_id=8, exit_code=15, end_time=500, array_task_id=4)]
    t = sp.parse_jobs(jobs)
    assert t.job_id.tolist() == [7, 8]
    assert t.exit_code.tolist() == [3, 143]
    assert math.isnan(t.submit_time[0]) and t.submit_time[1] == 100.0
    assert t.end_time[1] == 500.0 and math.isnan(t.start_time[0])
    assert t.time_limit_s.tolist() == [5400.0, 3600.0]
    assert t.array_task_id.tolist() == [3, -1]  # a task id without an array job is ignored


def test_number_structs_and_state_lists_mixed_with_plain_values() -> None:
    jobs = [_job(job_id={"set": True, "infinite": False, "number": 9},
                 submit_time={"set": True, "infinite": False, "number": 200},
                 time_limit={"set": False, "infinite": True, "number": 0},
                 exit_code={"status": ["SIGNALED"], "signal": {"id": {"set": True, "number": 9}},
                            "return_code": {"set": True, "number": 0}},
                 job_state=["RUNNING", "COMPLETING"]),
            _job(job_id=10, job_state="RUNNING")]
    t = sp.parse_jobs(jobs)
    assert t.job_id.tolist() == [9, 10]
    assert t.submit_time.tolist() == [200.0, 100.0]
    assert t.time_limit_s[0] == math.inf and t.time_limit_s[1] == 3600.0
    assert t.exit_code.tolist() == [137, 0]
    assert t.state.tolist() == [JobState.COMPLETING, JobState.RUNNING]


def test_gpu_count_precedence_and_allocations() -> None:
    jobs = [_job(tres_per_node="gres:gpu:4", node_count=2),
            _job(tres_per_task="gres:gpu:2", tasks=3),
            _job(tres_alloc_str="cpu=4,gres/gpu=8", tres_per_node="gres:gpu:1"),
            _job(tres_req_str="cpu=1,gres/gpu:h100=2"),
            _job(job_state="RUNNING", nodes="n[1-2]", node_count=1,
                 gres_detail=["gpu:h100:2(IDX:0-1)", "gpu:h100:1(IDX:5)"])]
    t = sp.parse_jobs(jobs)
    assert t.gpus.tolist() == [8, 6, 8, 2, 3]
    assert t.nodes.tolist() == [2, 1, 1, 1, 2]
    assert t.alloc_job.tolist() == [4, 4, 4]
    assert [t.alloc_node_names[i] for i in t.alloc_node] == ["n1", "n1", "n2"]
    assert t.alloc_gpu.tolist() == [0, 1, 5]


def test_jobs_missing_keys_parse_like_jobs_with_empty_values() -> None:
    full = [_job(job_id=i, account=f"acc{i % 2}", tres_per_node="gres:gpu:2") for i in range(4)]
    sparse = [dict(j) for j in full]
    for j in sparse[1:3]:
        del j["tres_per_job"], j["tasks"], j["array_task_id"]
    a, b = sp.parse_jobs(full), sp.parse_jobs(sparse)
    for name in ("job_id", "gpus", "account", "array_task_id", "state", "time_limit_s"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.accounts == b.accounts == ("acc0", "acc1")


def _tables_equal(a: object, b: object) -> None:
    for name, x in vars(a).items():
        y = getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


def test_job_rows_from_the_typed_decoder_parse_like_dicts() -> None:
    jobs = [_job(job_id=7, job_state="RUNNING", nodes="n[1-2]", node_count=2, account="b",
                 gres_detail=["gpu:h100:2(IDX:0-1)", "gpu:h100:1(IDX:5)"], user_name=""),
            _job(job_id=8, account="a", tres_per_node="gres:gpu:4", name="a-much-longer-name"),
            _job(job_id=9, account="b", job_state=["PENDING"], tasks=None)]
    content = json.dumps({"jobs": jobs}).encode()
    rows = sp.listing_decoder("jobs")(content)["jobs"]
    assert [type(r) for r in rows] == [sp.JobRow] * 3
    typed, plain = sp.parse_jobs(rows), sp.parse_jobs(jobs)
    _tables_equal(typed, plain)
    assert typed.accounts == ("b", "a") and typed.account.tolist() == [0, 1, 0]
    assert typed.user.tolist() == ["1000", "u", "u"]  # no name: the uid
    assert typed.name.dtype == np.dtype("U18")  # as wide as the longest name
    assert typed.alloc_gpu.tolist() == [0, 1, 5]  # a list value crosses the columns whole
    # rows of both kinds in one list (no decoder gives that, the parser still does)
    _tables_equal(sp.parse_jobs([rows[0], jobs[1], rows[2]]), plain)


def test_an_answer_msgspec_refuses_is_decoded_in_full_to_the_same_table() -> None:
    jobs = [_job(job_id=1, end_time=math.nan), _job(job_id=2)]  # NaN: Python's token, no JSON
    content = json.dumps({"jobs": jobs}).encode()
    rows = sp.listing_decoder("jobs")(content)["jobs"]
    assert [type(r) for r in rows] == [dict, dict]
    t = sp.parse_jobs(rows)
    assert math.isnan(t.end_time[0]) and t.job_id.tolist() == [1, 2]


def test_numbers_beyond_64_bits_are_unset_in_every_time_column() -> None:
    jobs = [_job(submit_time=2**70, time_limit=2**64, exit_code=2**65), _job()]
    rows = sp.listing_decoder("jobs")(json.dumps({"jobs": jobs}).encode())["jobs"]
    for t in (sp.parse_jobs(rows), sp.parse_jobs(jobs)):
        assert math.isnan(t.submit_time[0]) and t.submit_time[1] == 100.0
        assert t.time_limit_s.tolist() == [math.inf, 3600.0]  # unset: the partition's limit
        assert t.exit_code.tolist() == [-1, 0]


def test_one_long_hostlist_does_not_widen_every_row() -> None:
    long = "gpu[" + ",".join(f"{i:04d}" for i in range(0, 1024, 2)) + "]"  # 512 scattered nodes
    t = sp.parse_jobs([_job(job_id=1, job_state="RUNNING", nodes=long), _job(job_id=2)])
    assert t.node_list.dtype == object and t.node_list.tolist() == [long, ""]
    assert t.node_list.nbytes == 2 * np.dtype(object).itemsize  # references, not 4 x 2,561 bytes


def test_category_codes_follow_first_appearance() -> None:
    codes, names = category_codes(["b", "a", "b", "c", "a"])
    assert names == ("b", "a", "c") and codes.tolist() == [0, 1, 0, 2, 1]
    assert codes.dtype == np.int32
    codes, names = category_codes([])
    assert names == () and codes.shape == (0,)


def test_column_type_checks_are_exact() -> None:
    """The checks that let numpy convert a whole column: a bool, a float or a numeric string
    is no int, None no string; a number beyond 64 bits passes (numpy's OverflowError sends
    that column down the per-value rules)."""
    assert sp._all_of([1, 2**70], list[int]) and sp._all_of([], list[int])
    for bad in ([1, True], [1, 1.5], [1, "5"], [1, None]):
        assert not sp._all_of(bad, list[int]), bad
    assert sp._all_of([1, None], list[int | None])
    assert sp._all_of(["a", ""], list[str]) and not sp._all_of(["a", None], list[str])
    assert sp._all_of(["a", None], list[str | None]) and not sp._all_of(["a", 1], list[str | None])
    # a column with one odd value takes the per-value rules, to the scalar answers
    t = sp.parse_jobs([_job(job_id=True, node_count=2.0, name=5, user_name=None, user_id=42),
                       _job(job_id=3)])
    assert t.job_id.tolist() == [0, 3] and t.nodes.tolist() == [0, 1]
    assert t.name.tolist() == ["5", "j"] and t.user.tolist() == ["42", "u"]


def test_string_columns_built_from_distinct_values_equal_numpy_s_own() -> None:
    values = ["user7", "", "user10", "user7", "ü-nicode", "user10", "x" * 40]
    got = sp._str_array(values)
    want = np.array(values)
    assert got.dtype == want.dtype and got.tolist() == want.tolist() == values
    assert sp._str_array([]).shape == (0,)
    assert sp._str_array(["", ""]).dtype == np.dtype("U1")


class _Client:
    """Answers each query from a dict and records what was asked."""

    class http:
        host = "prom:9090"

    def __init__(self, answers: dict[str, list]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, expr: str, time: float | None = None) -> QueryResult:
        self.asked.append(expr)
        return QueryResult("vector", self.answers.get(expr, []))

    def close(self) -> None:
        pass


def _series(host: str, gpu: int, value: str, **labels: str) -> dict:
    return {"metric": {"Hostname": host, "gpu": str(gpu), **labels}, "value": [1.0, value]}


def test_reduced_labels_query_and_duplicate_samples() -> None:
    mm = MetricMap(reduce_labels=True)
    first = mm.query_expr("util", first=True)
    assert first == ("max by (Hostname, hostname, gpu, modelName, model_name, rack, instance) "
                     "(DCGM_FI_DEV_GPU_UTIL)")
    assert mm.query_expr("temp") == "max by (Hostname, hostname, gpu) (DCGM_FI_DEV_GPU_TEMP)"
    assert mm.query_expr("up") == mm.expr("up")
    assert MetricMap().query_expr("util", first=True) == "DCGM_FI_DEV_GPU_UTIL"
    client = _Client({
        first: [_series("n2", 0, "50", modelName="H800", rack="r1"), _series("n10", 1, "NaN"),
                _series("n2", 0, "70", hpc_job="9"), _series("n2", 1, "+Inf")],
        mm.query_expr("temp"): [_series("n10", 0, "61")],
    })
    src = PrometheusTelemetrySource(client, metrics=mm)  # type: ignore[arg-type]
    was = gc.isenabled()
    u = src.fetch(now=5.0)[0]
    assert gc.isenabled() == was
    assert client.asked[0] == first
    assert u.nodes == ("n2", "n10") and u.gpus_per_node == 2
    assert u.node_model == ("H800", "") and u.node_rack == ("r1", "")
    # +Inf is no utilisation a GPU can report: no data, with a warning (issue 8)
    np.testing.assert_array_equal(u.metrics["util"], np.array([[70, np.nan], [np.nan, np.nan]],
                                                              dtype=np.float32))
    assert "util: 1 sample infinite, negative or out of range (shown as no data)" in u.warnings
    np.testing.assert_array_equal(u.metrics["temp"], np.array([[np.nan, np.nan], [61, np.nan]],
                                                              dtype=np.float32))


def test_gc_pause_is_shared_by_threads_and_restored_by_the_last() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(10)
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the worker is still inside
    release.set()
    t.join(10)
    assert gc.isenabled()

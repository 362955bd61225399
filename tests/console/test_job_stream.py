"""slurmrestd's jobs tabulated run by run while they arrive, partly in a helper process, give
exactly the table `parse_jobs` builds from the whole answer; and whatever the helper does
(busy, not started, dead, refusing a run) the stream never answers wrongly."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_stream import cut_off
from test_ingest_speedups import _tables_equal
from test_sources_http import ReplayServer, server  # noqa: F401  (the fixture)
from test_stream_json import _recorded, answers, damaged

from console.model import JobTable
from console.sources import decode_helper, slurm_parse
from console.sources.slurm_parse import JobsRefused
from console.sources.base import ErrorKind, SourceError
from console.sources.http import HttpClient
from console.sources.job_stream import JobTableStream, concat_job_tables
from console.sources.slurm import SlurmClient, SlurmSchedulerSource

@pytest.fixture(autouse=True)
def _fresh_helper(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each test starts without a helper (and with one allowed) and leaves none running."""
    monkeypatch.setenv("AISC_CONSOLE_DECODE_HELPER", "1")
    monkeypatch.setattr(decode_helper, "_cores", lambda: 2)
    decode_helper.shutdown()
    yield
    decode_helper.shutdown()


def _whole(body: bytes) -> dict[str, Any]:
    decoder = slurm_parse.listing_decoder("jobs")
    assert decoder is not None
    return decoder(body)


def _stream(min_run: int, helper: bool) -> JobTableStream:
    item_t, _ = slurm_parse._listing_types("jobs")
    proto = slurm_parse.listing_stream("jobs", tables=False)
    assert proto is not None
    return JobTableStream("jobs", item_t, proto()._answer.type, min_run=min_run, helper=helper)


def _feed(s: JobTableStream, body: bytes, chunk: int) -> Any:
    for i in range(0, len(body), chunk):
        s.feed(body[i:i + chunk])
    return s.finish()


def _feed_paced(s: JobTableStream, h: decode_helper.TableHelper, body: bytes, chunk: int) -> Any:
    """Feed ``body``, waiting after each chunk until the helper has answered every run it
    holds: then it always has a free slot, and every run it may take goes to it."""
    for i in range(0, len(body), chunk):
        s.feed(body[i:i + chunk])
        deadline = time.monotonic() + 30
        while h._slot_of and not h.broken and time.monotonic() < deadline:
            if h._conn.poll(max(0.0, deadline - time.monotonic())):  # blocks until a table comes
                h._drain()
    return s.finish()


def _job(i: int, rng: random.Random) -> dict[str, Any]:
    """A v0.0.38-shaped job: some running with GPUs on a few nodes, the rest pending."""
    running = rng.random() < 0.4
    node = rng.randrange(40)
    job: dict[str, Any] = {
        "account": rng.choice(["hku", "cuhk", "hkust", "polyu", ""]), "job_id": 1000 + i,
        "array_job_id": 0, "array_task_id": None, "name": f"train-{rng.randrange(30)}" * rng.randint(1, 3),
        "job_state": "RUNNING" if running else "PENDING", "user_name": f"u{rng.randrange(9)}",
        "user_id": 1000 + rng.randrange(9), "partition": rng.choice(["gpu", "debug"]),
        "state_reason": "None" if running else rng.choice(["Priority", "Resources", "QOSMaxGRESPerUser"]),
        "submit_time": 1_790_000_000 + i, "start_time": 1_790_000_100 + i if running else 0,
        "end_time": 0, "time_limit": rng.choice([60, 240, 1440]), "exit_code": 0,
        "nodes": f"gpu{node:04d}" if running else "", "node_count": 1,
        "gres_detail": [f"gpu:h800:{(n := rng.randint(1, 8))}(IDX:0-{n - 1})"] if running else [],
        "tres_per_node": f"gres:gpu:{rng.choice([1, 2, 4, 8])}",
        "job_resources": {"allocated_nodes": [{"nodename": f"gpu{node:04d}", "cpus": 64}]} if running else {},
    }
    return job


def _answer(n: int, seed: int = 7, warnings: int = 0) -> bytes:
    rng = random.Random(seed)
    body = {"meta": {"plugin": {"type": "openapi/v0.0.38"}}, "errors": [],
            "jobs": [_job(i, rng) for i in range(n)],
            "warnings": [{"description": f"note {k}", "source": "x"} for k in range(warnings)]}
    return json.dumps(body, indent=2).encode()


# ---- joining tables ------------------------------------------------------------------------


@pytest.mark.parametrize("path", _recorded("jobs"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tables_of_any_split_of_a_recorded_answer_join_to_the_whole_table(path: Path) -> None:
    jobs = _whole(path.read_bytes())["jobs"]
    whole = slurm_parse.parse_jobs(jobs)
    for cuts in ([], [1], [len(jobs) // 2], list(range(1, len(jobs)))):
        bounds = [0, *cuts, len(jobs)]
        parts = [slurm_parse.parse_jobs(jobs[a:b]) for a, b in zip(bounds, bounds[1:])]
        _tables_equal(concat_job_tables(parts), whole)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 60), seed=st.integers(0, 10_000), data=st.data())
def test_tables_of_any_split_join_to_the_whole_table(n: int, seed: int, data: st.DataObject) -> None:
    """Categories first seen in later parts, hosts shared across parts, empty parts."""
    jobs = _whole(_answer(n, seed))["jobs"]
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    bounds = [0, *cuts, n]
    parts = [slurm_parse.parse_jobs(jobs[a:b]) for a, b in zip(bounds, bounds[1:])]
    _tables_equal(concat_job_tables(parts), slurm_parse.parse_jobs(jobs))


def test_no_tables_join_to_the_empty_table() -> None:
    _tables_equal(concat_job_tables([]), slurm_parse.parse_jobs([]))


# ---- the stream in this process ------------------------------------------------------------


@pytest.mark.parametrize("path", _recorded("jobs"), ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("chunk", [1, 97, 1 << 20])
def test_recorded_answers_stream_to_the_whole_table(path: Path, chunk: int) -> None:
    body = path.read_bytes()
    s = _stream(min_run=1, helper=False)
    got = _feed(s, body, chunk)
    want = _whole(body)
    if s.failed:  # an answer this stream does not read (not pretty-printed): never partial
        assert got is None
        return
    assert {k: v for k, v in got.items() if k != "jobs"} == {k: v for k, v in want.items() if k != "jobs"}
    _tables_equal(got["jobs"], slurm_parse.parse_jobs(want["jobs"]))
    assert s.sent == 0


# ---- with the helper -----------------------------------------------------------------------


def _ready_helper() -> decode_helper.TableHelper:
    """The process's helper, started and ready (a fresh one if the last is resting)."""
    h = decode_helper.acquire()
    if h is None:
        decode_helper.shutdown()
        h = decode_helper.acquire()
    assert h is not None
    assert h.wait_ready(60), h.broken
    decode_helper.release(h)
    return h


def test_with_the_helper_runs_are_tabulated_in_another_process_and_join_to_the_whole_table() -> None:
    body = _answer(3000, warnings=3)  # a list of objects after the jobs: never handed over
    want = _whole(body)
    h = _ready_helper()
    s = _stream(min_run=64 * 1024, helper=True)
    got = _feed_paced(s, h, body, 64 * 1024)
    assert not s.failed, s.why
    # every run went to the helper but the first (the answer's shape), the last (followed by
    # the warnings, not by a job) and any whose next job had not arrived far enough to show
    # its first key (here one: where a chunk ended)
    assert s.runs > 20 and s.runs - 3 <= s.sent <= s.runs - 2
    _tables_equal(got["jobs"], slurm_parse.parse_jobs(want["jobs"]))
    assert got["warnings"] == want["warnings"] and got["meta"] == want["meta"]
    assert h.alive and not h._mine and sorted(h._free) == list(range(decode_helper.SLOTS))


def test_as_fast_as_the_bytes_come_runs_are_shared_and_join_to_the_whole_table() -> None:
    body = _answer(3000, seed=11)
    _ready_helper()
    s = _stream(min_run=64 * 1024, helper=True)
    got = _feed(s, body, 256 * 1024)
    assert not s.failed, s.why
    _tables_equal(got["jobs"], slurm_parse.parse_jobs(_whole(body)["jobs"]))


def test_the_helper_refuses_a_run_that_is_no_json_array_of_jobs() -> None:
    h = _ready_helper()
    assert decode_helper.acquire() is h
    good = h.submit(memoryview(b'[{"job_id": 2, "job_state": "PENDING"}]'))
    bad = h.submit(memoryview(b'[{"job_id": 1}, {"job_id": @}]'))
    assert bad is not None and good is not None
    assert list(h.result(good).job_id) == [2]
    with pytest.raises(ValueError, match="a run did not decode in the helper"):
        h.result(bad)
    # a helper that refused a run rests until its restart: were it the helper that reads runs
    # wrongly, every poll would otherwise ask slurmrestd twice
    assert "refused a run" in h.broken and not h.alive
    decode_helper.release(h)
    assert decode_helper.acquire() is None


def test_a_run_the_helper_cannot_decode_makes_the_stream_give_up() -> None:
    good = _answer(400)
    broken = bytearray(good)
    # a value that is no JSON in a late job (a run the helper takes: one followed by a job)
    at = broken.index(b'"name": "', len(broken) * 3 // 4)
    broken[at + len(b'"name": ')] = ord("@")
    h = _ready_helper()
    s = _stream(min_run=16 * 1024, helper=True)
    assert _feed_paced(s, h, bytes(broken), 4096) is None
    assert s.failed and s.sent
    assert "did not decode in the helper" in s.why
    assert decode_helper._OWNED is False  # given back ...
    assert decode_helper.acquire() is None  # ... resting until its restart


def test_a_helper_that_dies_mid_answer_makes_the_stream_give_up_and_is_started_again_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    body = _answer(1500)
    h = _ready_helper()
    os.kill(h.pid, signal.SIGSTOP)  # runs handed over are not answered
    s = _stream(min_run=16 * 1024, helper=True)
    i = 0
    while not s.sent and i < len(body):
        s.feed(body[i:i + 4096])
        i += 4096
    assert s.sent  # a run is in the stopped helper's hands
    os.kill(h.pid, signal.SIGKILL)
    for j in range(i, len(body), 4096):
        s.feed(body[j:j + 4096])
    assert s.finish() is None and s.failed
    assert "helper failed" in s.why
    # not started again at once (a failing helper must not cost every poll a start) ...
    assert decode_helper.acquire() is None
    # ... but after a while
    monkeypatch.setattr(decode_helper, "_FAILED_AT", time.monotonic() - decode_helper.RESTART_AFTER_S)
    again = decode_helper.acquire()
    assert again is not None and again is not h and again.alive
    decode_helper.release(again)


def test_one_answer_at_a_time_uses_the_helper_the_other_is_tabulated_here() -> None:
    body = _answer(1500)
    _ready_helper()
    held = decode_helper.acquire()  # another answer, still streaming
    assert held is not None
    s = _stream(min_run=16 * 1024, helper=True)
    got = _feed(s, body, 4096)
    assert s.sent == 0 and not s.failed
    _tables_equal(got["jobs"], slurm_parse.parse_jobs(_whole(body)["jobs"]))
    decode_helper.release(held)
    assert decode_helper.acquire() is held


def test_an_abandoned_answer_gives_the_helper_back() -> None:
    body = _answer(1500)
    _ready_helper()
    s = _stream(min_run=16 * 1024, helper=True)
    for i in range(0, len(body) // 2, 4096):
        s.feed(body[i:i + 4096])
    assert s.sent
    assert decode_helper.acquire() is None  # the stream holds it
    s.close()  # what HttpClient does with an answer refused or cut off
    assert decode_helper.acquire() is not None


def test_the_helper_exits_when_its_socket_closes_and_shutdown_leaves_nothing() -> None:
    h = _ready_helper()
    h._conn.close()  # as the kernel does when this process dies
    assert h._proc.wait(10) == 0  # (TimeoutExpired if it does not exit)
    decode_helper.shutdown()
    assert decode_helper._HELPER is None


def test_no_helper_on_one_core_or_when_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_helper, "_cores", lambda: 1)
    assert decode_helper.acquire() is None
    monkeypatch.setattr(decode_helper, "_cores", lambda: 2)
    monkeypatch.setenv("AISC_CONSOLE_DECODE_HELPER", "0")
    assert decode_helper.acquire() is None
    monkeypatch.setenv("AISC_CONSOLE_DECODE_HELPER", "1")
    h = decode_helper.acquire()
    assert h is not None
    decode_helper.release(h)


def test_an_answer_cut_off_mid_body_gives_the_helper_back(server: ReplayServer) -> None:  # noqa: F811
    """HttpClient closes the stream of an answer that ends in an error (cut off here)."""
    server.add_handler("GET", "/slurm/v0.0.38/jobs", cut_off(_answer(3000)))
    h = _ready_helper()
    made: list[JobTableStream] = []

    def factory() -> JobTableStream:
        made.append(_stream(min_run=64 * 1024, helper=True))
        return made[-1]

    with pytest.raises(SourceError) as ei:
        HttpClient(server.url, timeout=(3.0, 30.0)).request(
            "GET", "/slurm/v0.0.38/jobs", decoder=slurm_parse.listing_decoder("jobs"), stream=factory)
    assert ei.value.kind is ErrorKind.BAD_PAYLOAD
    assert made[0].sent  # it held the helper when the answer broke off
    assert decode_helper.acquire() is h


def test_the_helper_inherits_no_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISC_SLURM_TOKEN", "s3cret-slurm")
    monkeypatch.setenv("SLURM_JWT", "s3cret-jwt")
    monkeypatch.setenv("SOME_API_KEY", "s3cret-key")
    monkeypatch.setenv("LANG_FOR_TEST", "kept")
    h = _ready_helper()
    with open(f"/proc/{h.pid}/environ", "rb") as f:
        env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
    assert b"s3cret" not in b"".join(env.values())
    assert env[b"LANG_FOR_TEST"] == b"kept"  # the rest is inherited (locale, paths)


def test_the_helper_exits_when_its_parent_is_killed() -> None:
    """No helper outlives the process that started it (SIGKILL: no atexit, no cleanup)."""
    code = ("import sys, time\n"
            "from console.sources import decode_helper\n"
            "decode_helper._cores = lambda: 2\n"
            "h = decode_helper.acquire()\n"
            "assert h is not None and h.wait_ready(60), 'no helper'\n"
            "print(h.pid, flush=True)\n"
            "sys.stdin.read()\n")  # holds until killed (its stdin stays open)
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert parent.stdout is not None
        helper_pid = int(parent.stdout.readline())
        assert _running(helper_pid)
        exited = os.pidfd_open(helper_pid)  # readable once the helper has exited (not our child)
        try:
            parent.kill()
            parent.wait(10)
            assert select.select([exited], [], [], 10)[0] == [exited]
        finally:
            os.close(exited)
        assert not _running(helper_pid)
    finally:
        parent.kill()
        parent.wait(10)
        assert parent.stdin is not None
        parent.stdin.close()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited one not yet reaped is a zombie: "Z")."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ---- generated answers, with the helper at work ---------------------------------------------


def _table_or_error(jobs: list[Any]) -> JobTable | None:
    """`parse_jobs` of the whole list, or None where it refuses (the source's BAD_PAYLOAD)."""
    try:
        return slurm_parse.parse_jobs(jobs)
    except (AttributeError, TypeError, KeyError, ValueError):
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(answer=answers(), chunk=st.integers(1, 300))
def test_generated_answers_tabulate_with_the_helper_to_the_whole_table(answer: dict[str, Any],
                                                                        chunk: int) -> None:
    """Strings that mimic the structure, warnings and errors lists before or after the jobs,
    every key order: whatever the helper took, the table is the whole answer's."""
    body = json.dumps(answer, indent=2).encode()
    h = _ready_helper()
    s = _stream(min_run=1, helper=True)
    got = _feed_paced(s, h, body, chunk)
    want = _table_or_error(_whole(body)["jobs"])
    assert got is not None, s.why
    if want is None:  # jobs the table refuses: so does the stream, without giving up
        assert isinstance(got["jobs"], JobsRefused)
    else:
        _tables_equal(got["jobs"], want)
    assert {k: v for k, v in got.items() if k != "jobs"} == \
        {k: v for k, v in _whole(body).items() if k != "jobs"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(answer=answers(), data=st.data())
def test_a_damaged_answer_never_tabulates_to_what_the_whole_decode_would_not_give(
        answer: dict[str, Any], data: st.DataObject) -> None:
    body, how = damaged(answer, data)
    h = _ready_helper()
    s = _stream(min_run=1, helper=True)
    got = _feed_paced(s, h, body, data.draw(st.integers(1, 200)))
    if got is not None:  # whatever the stream answers, the whole body says too
        whole = _whole(body)  # raises if the whole body is no such answer
        want = _table_or_error(whole["jobs"])
        if isinstance(got["jobs"], JobsRefused):
            assert want is None
        else:
            assert want is not None
            _tables_equal(got["jobs"], want)
    if how == "truncate":
        assert got is None  # a cut answer never yields the jobs that happened to arrive


@pytest.mark.parametrize("helper", [True, False], ids=["helper", "one process"])
def test_jobs_the_table_cannot_read_are_the_answers_verdict_asked_for_once(
        server: ReplayServer, helper: bool, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A job of a shape the table refuses (a hostlist that does not parse) late in a large
    answer: the poll fails as BAD_PAYLOAD, worded as the whole list's refusal, after one
    request (valid JSON is not asked for again), and the helper keeps working."""
    monkeypatch.setenv("AISC_CONSOLE_DECODE_HELPER", "1" if helper else "0")
    answer = json.loads(_answer(3000))
    bad = next(j for j in reversed(answer["jobs"]) if j["gres_detail"])
    bad["nodes"] = "gpu[1-"
    with pytest.raises(ValueError) as whole_error:
        slurm_parse.parse_jobs(_whole(json.dumps(answer).encode())["jobs"])
    server.add("GET", "/slurm/v0.0.38/nodes", 200, {"nodes": [], "errors": []})
    server.add("GET", "/slurm/v0.0.38/jobs", 200, json.dumps(answer, indent=2).encode())
    h = _ready_helper() if helper else None
    src = SlurmSchedulerSource(SlurmClient.from_url(server.url, version="v0.0.38"),
                               use_update_time=False)
    with pytest.raises(SourceError) as ei:
        src.fetch()
    assert ei.value.kind is ErrorKind.BAD_PAYLOAD
    assert ei.value.message == (f"unexpected job shape from {src.client.http.host} "
                                f"({type(whole_error.value).__name__})")
    assert [r["path"] for r in server.requests].count("/slurm/v0.0.38/jobs") == 1
    if h is not None:
        assert h.alive and decode_helper.acquire() is h

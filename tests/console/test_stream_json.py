"""Decoding slurmrestd's listings while they arrive gives exactly what decoding them whole gives.

The stream (`console.sources.stream_json.ListStream`) relies on slurmrestd's pretty-printing;
these tests hold it to the whole-body decoder on every recorded answer, on generated answers
with hostile strings, in every chunking, and check that whatever it does not read (compact
JSON, other indentation, truncation, corruption) makes it give up rather than answer wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.sources import slurm_parse
from console.sources.stream_json import ListStream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _whole(key: str, body: bytes) -> Any:
    decoder = slurm_parse.listing_decoder(key)
    assert decoder is not None
    return decoder(body)


def _stream(key: str, min_run: int = 1) -> ListStream:
    item_t, _ = slurm_parse._listing_types(key)
    factory = slurm_parse.listing_stream(key)
    assert factory is not None
    proto = factory()
    return ListStream(key, item_t, proto._answer.type, min_run=min_run)


def _streamed(key: str, body: bytes, chunk: int, min_run: int = 1) -> tuple[Any, ListStream]:
    s = _stream(key, min_run)
    for i in range(0, len(body), chunk):
        s.feed(body[i:i + chunk])
    return s.finish(), s


def _recorded(key: str) -> list[Path]:
    """slurmrestd's own answers (raw bytes as recorded from the project's stacks)."""
    out = []
    for path in sorted(FIXTURES.glob("**/*.json")):
        name = path.name
        if "slurmdb" in path.parts or key not in name:
            continue
        if not ("slurm" in name or path.parent.name in ("24.11", "26.05")):
            continue
        try:
            body = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(body, dict) and isinstance(body.get(key), list):
            out.append(path)
    return out


@pytest.mark.parametrize("key", ["jobs", "nodes"])
def test_every_recorded_answer_streams_to_the_whole_decode(key: str) -> None:
    paths = _recorded(key)
    # 22.05 (v0.0.37/38), 24.11 (v0.0.40-42) and 26.05 (v0.0.42-45) answers are all there
    assert len(paths) >= 8, paths
    streamed_some = 0
    for path in paths:
        body = path.read_bytes()
        whole = _whole(key, body)
        for chunk in (1, 3, 64, 4096, len(body)):
            got, s = _streamed(key, body, chunk)
            if got is None:  # only answers not pretty-printed as slurmrestd does may fall back
                assert b'\n  "' + key.encode() + b'": [' not in body, (path, chunk, s.why)
                continue
            assert got == whole, (path, chunk)
            streamed_some += 1
    assert streamed_some >= 5 * len([p for p in paths
                                     if b'\n  "' + key.encode() + b'": [' in p.read_bytes()])


def test_an_answer_in_one_space_indentation_falls_back() -> None:
    body = (FIXTURES / "slurm" / "v0.0.40_jobs.json").read_bytes()
    assert body.startswith(b'{\n "jobs"')
    got, s = _streamed("jobs", body, 100)
    assert got is None and s.failed


# ---- generated answers ---------------------------------------------------------------------

# strings that look like the structure the stream searches for
NASTY = st.sampled_from(["\n    }", "},\n    {", "\n  ]", "\n    }\n  ]", '\n  "jobs": [', "]",
                         "}", "{", ",", '"', "\\", "\u2028", "é", "\t", ""])
TEXT = st.lists(st.one_of(NASTY, st.text(max_size=6)), max_size=4).map("".join)
VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), TEXT),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(TEXT, inner, max_size=3)),
                     max_leaves=8)
JOB = st.fixed_dictionaries(
    {"job_id": st.integers(0, 10**7), "name": TEXT, "job_state": st.sampled_from(["RUNNING", "PENDING"])},
    optional={"nodes": TEXT, "gres_detail": st.lists(TEXT, max_size=3), "extra": VALUE,
              "job_resources": st.dictionaries(TEXT, VALUE, max_size=3)})
META = st.dictionaries(st.sampled_from(["plugin", "client", "slurm", "command"]), VALUE, max_size=3)
ERRORS = st.lists(st.dictionaries(st.sampled_from(["error", "error_number", "source"]), VALUE,
                                  max_size=3), max_size=3)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    parts = {"jobs": draw(st.lists(JOB, max_size=12)), "meta": draw(META),
             "errors": draw(ERRORS), "warnings": draw(ERRORS),
             "last_update": draw(st.one_of(st.integers(0, 2**40), VALUE))}
    order = draw(st.permutations(list(parts)))
    return {k: parts[k] for k in order}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=answers(), chunk=st.integers(1, 300), min_run=st.sampled_from([1, 50, 10**6]))
def test_pretty_answers_stream_to_exactly_the_whole_decode(answer: dict[str, Any], chunk: int,
                                                           min_run: int) -> None:
    body = json.dumps(answer, indent=2).encode()
    got, s = _streamed("jobs", body, chunk, min_run)
    assert not s.failed, s.why
    assert got == _whole("jobs", body)
    assert [j.job_id for j in got["jobs"]] == [j["job_id"] for j in answer["jobs"]]


@settings(max_examples=150, deadline=None)
@given(answer=answers(), chunk=st.integers(1, 500))
def test_compact_answers_fall_back(answer: dict[str, Any], chunk: int) -> None:
    body = json.dumps(answer, separators=(",", ":")).encode()
    got, s = _streamed("jobs", body, chunk)
    assert got is None and s.failed


def damaged(answer: dict[str, Any], data: st.DataObject) -> tuple[bytes, str]:
    """``answer`` pretty-printed, then truncated, or one byte flipped, dropped, or structure
    inserted (drawn from ``data``); and which of the four."""
    body = bytearray(json.dumps(answer, indent=2).encode())
    how = data.draw(st.sampled_from(["truncate", "flip", "drop", "insert"]))
    at = data.draw(st.integers(0, len(body) - 1))
    if how == "truncate":
        del body[at:]
    elif how == "flip":
        body[at] = data.draw(st.sampled_from(b'{}[],:" \n0a\\'))
    elif how == "drop":
        del body[at]
    else:
        body[at:at] = data.draw(st.sampled_from([b",", b"\n    }", b"\n  ]", b"{", b"\n    },\n    {"]))
    return bytes(body), how


@settings(max_examples=300, deadline=None)
@given(answer=answers(), data=st.data())
def test_a_damaged_answer_never_streams_to_something_the_whole_decode_would_not_give(
        answer: dict[str, Any], data: st.DataObject) -> None:
    body, how = damaged(answer, data)
    got, _ = _streamed("jobs", body, data.draw(st.integers(1, 200)))
    try:
        whole = msgspec.json.decode(body)
    except msgspec.DecodeError:
        whole = None
    if got is not None:
        # whatever the stream answers, the whole body says too (same jobs, same rest)
        assert whole is not None and isinstance(whole, dict)
        assert got == _whole("jobs", body)
    if how == "truncate":
        assert got is None  # a cut answer never yields the jobs that happened to arrive


def test_the_list_must_be_the_answers_own() -> None:
    # a "jobs" list written at two spaces inside another key is not the answer's list
    inner = {"jobs": [{"job_id": 1}]}
    body = json.dumps({"meta": inner, "jobs": [{"job_id": 2}, {"job_id": 3}]}, indent=2)
    body = body.replace('\n    "jobs": [', '\n  "jobs": [', 1).encode()  # skewed indentation
    got, s = _streamed("jobs", body, 7)
    assert got is None or [j.job_id for j in got["jobs"]] == [2, 3]
    assert json.loads(body)["jobs"] == [{"job_id": 2}, {"job_id": 3}]


def test_items_without_commas_are_refused_as_the_whole_decode_refuses_them() -> None:
    body = json.dumps({"jobs": [{"job_id": 1}, {"job_id": 2}]}, indent=2).encode()
    broken = body.replace(b"},\n    {", b"}\n    {")
    with pytest.raises(ValueError):
        json.loads(broken)
    got, s = _streamed("jobs", broken, 5)
    assert got is None and s.failed


def test_runs_decode_as_the_bytes_come_and_commit_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [{"job_id": i, "name": "x" * 200} for i in range(200)]
    body = json.dumps({"jobs": jobs, "meta": {}}, indent=2).encode()
    runs: list[int] = []
    run = ListStream._run

    def counted(self: ListStream, close: int) -> None:
        before = len(self.items)
        run(self, close)
        runs.append(len(self.items) - before)

    monkeypatch.setattr(ListStream, "_run", counted)
    s = _stream("jobs", min_run=4096)
    committed_at = None
    for i in range(0, len(body), 1024):
        s.feed(body[i:i + 1024])
        if committed_at is None and s.committed:
            committed_at = i
    got = s.finish()
    assert got is not None and len(got["jobs"]) == 200
    assert len(runs) > 5 and sum(runs) == 200  # in several runs, every job once
    assert committed_at is not None and committed_at < len(body) // 2

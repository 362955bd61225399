"""`HttpClient` with a stream: a large listing is decoded while it arrives, over a real socket,
and any answer the stream cannot read ends exactly as it would without the stream."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from collections.abc import Callable
from typing import Any

import pytest
from test_ingest_speedups import _tables_equal
from test_sources_http import ReplayServer, server  # noqa: F401  (the fixture)

from console.sources import slurm_parse
from console.sources.base import ErrorKind, SourceError
from console.sources.http import HttpClient
from console.sources.stream_json import ListStream

JOBS_PATH = "/slurm/v0.0.38/jobs"
#: Jobs in the large answers: several runs of the jobs stream (`job_stream.TABLE_RUN`) long.
N = 16000


def _answer(n: int) -> dict[str, Any]:
    jobs = [{"job_id": 1000 + i, "name": f"train-{i}", "job_state": "PENDING",
             "account": "hku", "nodes": "", "tres_per_node": "gres:gpu:8",
             "job_resources": {"allocated_nodes": [{"nodename": f"gpu{i:04d}", "cpus": 64}]}}
            for i in range(n)]
    return {"meta": {"plugin": {"type": "openapi/v0.0.38"}}, "errors": [], "jobs": jobs}


class Spy:
    """A stream factory that remembers the streams it made."""

    def __init__(self) -> None:
        self.made: list[ListStream] = []
        factory = slurm_parse.listing_stream("jobs")
        assert factory is not None
        self._factory = factory

    def __call__(self) -> ListStream:
        s = self._factory()
        self.made.append(s)
        return s


def _get(url: str, spy: Spy) -> Any:
    return HttpClient(url, timeout=(3.0, 30.0)).request(
        "GET", JOBS_PATH, decoder=slurm_parse.listing_decoder("jobs"), stream=spy)


def _whole(body: bytes) -> Any:
    """The answer decoded whole, its jobs as the table the stream builds while they arrive."""
    decoder = slurm_parse.listing_decoder("jobs")
    assert decoder is not None
    out = decoder(body)
    out["jobs"] = slurm_parse.parse_jobs(out["jobs"])
    return out


def _same(got: Any, want: Any) -> None:
    """Equal answers: the same keys and values, and jobs tables equal column by column."""
    if isinstance(got.get("jobs"), list):  # decoded whole: rows, tabulated by the caller
        got = {**got, "jobs": slurm_parse.parse_jobs(got["jobs"])}
    assert got.keys() == want.keys()
    for k in got:
        if k != "jobs":
            assert got[k] == want[k], k
    _tables_equal(got["jobs"], want["jobs"])


def test_a_large_pretty_answer_is_decoded_while_it_arrives(server: ReplayServer) -> None:  # noqa: F811
    body = json.dumps(_answer(N), indent=2).encode()
    assert len(body) > 4_000_000  # several runs
    server.add("GET", JOBS_PATH, 200, body)
    spy = Spy()
    got = _get(server.url, spy)
    _same(got, _whole(body))
    assert len(got["jobs"]) == N
    (stream,) = spy.made
    assert stream.committed and not stream.failed
    assert len(server.requests) == 1


def test_a_compact_answer_is_decoded_whole_from_the_same_request(server: ReplayServer) -> None:  # noqa: F811
    body = json.dumps(_answer(N), separators=(",", ":")).encode()
    server.add("GET", JOBS_PATH, 200, body)
    spy = Spy()
    _same(_get(server.url, spy), _whole(body))
    assert spy.made[0].failed and not spy.made[0].committed
    assert len(server.requests) == 1  # its bytes were kept: no second request


def _two_answers(server: ReplayServer, first: bytes, second: bytes) -> None:  # noqa: F811
    answers = [first, second]

    def answer(h: BaseHTTPRequestHandler) -> None:
        payload = answers.pop(0) if len(answers) > 1 else answers[0]
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    server.add_handler("GET", JOBS_PATH, answer)


def test_an_answer_broken_after_the_stream_let_its_start_go_is_asked_for_again(
        server: ReplayServer) -> None:  # noqa: F811
    good = json.dumps(_answer(N), indent=2).encode()
    broken = bytearray(good)
    at = broken.index(b"},\n    {", len(broken) * 3 // 4) + 1
    broken[at] = ord("@")  # a separator well after the first runs: invalid JSON
    _two_answers(server, bytes(broken), good)
    spy = Spy()
    got = _get(server.url, spy)
    _same(got, _whole(good))  # the second answer, read whole
    assert spy.made[0].failed  # the first stream gave up after it had committed
    assert len(server.requests) == 2


def test_a_broken_answer_asked_for_again_and_still_broken_is_bad_payload(
        server: ReplayServer) -> None:  # noqa: F811
    good = json.dumps(_answer(N), indent=2).encode()
    broken = bytearray(good)
    broken[broken.index(b"},\n    {", len(broken) // 2) + 1] = ord("@")  # a separator, not text
    server.add("GET", JOBS_PATH, 200, bytes(broken))
    with pytest.raises(SourceError) as ei:
        _get(server.url, Spy())
    assert ei.value.kind is ErrorKind.BAD_PAYLOAD
    assert ei.value.message.startswith("truncated or invalid JSON from 127.0.0.1:")
    assert len(server.requests) == 2


def cut_off(body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    """A handler that announces ``body`` whole and closes the connection after two thirds."""

    def cut(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:len(body) * 2 // 3])
        h.wfile.flush()
        h.close_connection = True
    return cut


def test_a_large_answer_cut_mid_body_is_truncated_not_partial(server: ReplayServer) -> None:  # noqa: F811
    server.add_handler("GET", JOBS_PATH, cut_off(json.dumps(_answer(N), indent=2).encode()))
    with pytest.raises(SourceError) as ei:
        _get(server.url, Spy())
    assert ei.value.kind is ErrorKind.BAD_PAYLOAD
    assert "truncated" in ei.value.message

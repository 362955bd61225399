"""HttpClient failure mapping over real loopback sockets, plus the replay server the other
source tests import (``from test_sources_http import ReplayServer, capture``)."""

from __future__ import annotations

import gc
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from console.sources.base import ErrorKind, SourceError
from console.sources.http import NOT_MODIFIED, Auth, HttpClient, loads_fast, strip_port

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
#: Real answers of the project's own stack, written by scripts/record_fixtures.py.
RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"


def capture(name: str) -> bytes:
    """Body of a recorded real answer (``NAME.STATUS.json``), byte for byte.

    A missing file fails the test rather than skipping it: the answers are part of the
    repository, so a missing one is a broken recording, not an absent environment.
    """
    path = RECORDED / name
    if not path.exists():
        pytest.fail(f"recorded answer {name} is missing from {RECORDED.name}/ "
                    "(re-record: python scripts/record_fixtures.py --out tests/fixtures/recorded)")
    return path.read_bytes()


def recorded_stack() -> dict:
    """What the recording's stack was (nodes, ports, jobs, host label): ``INDEX.json`` ``stack``."""
    return json.loads((RECORDED / "INDEX.json").read_text())["stack"]


Route = tuple[int, bytes, dict[str, str]] | Callable[[BaseHTTPRequestHandler], None]


class ReplayServer:
    """A loopback HTTP server answering recorded bodies per (method, path)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[dict] = []
        self.release = threading.Event()  # lets "slow" handlers finish at teardown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a: object) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append({"method": self.command, "path": parts.path,
                                        "query": parse_qs(parts.query),
                                        "headers": dict(self.headers), "body": body})
                route = server.routes.get((self.command, parts.path))
                if route is None:
                    route = (404, b"Unable find requested URL.", {"Content-Type": "text/plain"})
                if callable(route):
                    route(self)
                    return
                status, payload, headers = route
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, method: str, path: str, status: int = 200, body: bytes | str | object = b"",
            headers: dict[str, str] | None = None) -> None:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        payload = body.encode() if isinstance(body, str) else body
        h = {"Content-Type": "application/json"} if payload else {}
        h.update(headers or {})
        self.routes[(method, path)] = (status, payload, h)

    def add_handler(self, method: str, path: str, fn: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.routes[(method, path)] = fn

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    s = ReplayServer()
    yield s
    s.close()


def refused_url() -> str:
    """A loopback port with nothing listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _raises(fn: Callable[[], object]) -> SourceError:
    with pytest.raises(SourceError) as ei:
        fn()
    return ei.value


# ---------------------------------------------------------------------------------------------


def test_connection_refused_is_unreachable_in_plain_words() -> None:
    url = refused_url()
    c = HttpClient(url, timeout=(1, 1))
    e = _raises(lambda: c.get_json("api/v1/query"))
    assert e.kind is ErrorKind.UNREACHABLE
    assert e.message == f"cannot connect to {urlsplit(url).netloc} (connection refused)"
    assert e.__cause__ is None and e.__context__ is None


def test_slow_answer_times_out(server: ReplayServer) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        server.release.wait(10)
    server.add_handler("GET", "/slow", slow)
    c = HttpClient(server.url, timeout=(1, 0.2))
    e = _raises(lambda: c.get_json("slow"))
    assert e.kind is ErrorKind.TIMEOUT
    assert e.message == f"no answer from {urlsplit(server.url).netloc} within 0.2 s"


def test_server_error_with_retry_after(server: ReplayServer) -> None:
    server.add("GET", "/x", 503, "Service Unavailable", {"Content-Type": "text/plain",
                                                         "Retry-After": "7"})
    e = _raises(lambda: HttpClient(server.url).get_json("x"))
    assert e.kind is ErrorKind.HTTP and e.status == 503
    assert e.message.startswith("server error 503 from 127.0.0.1:")
    assert e.message.endswith(": Service Unavailable")
    assert e.retry_after_s == 7.0


@pytest.mark.parametrize("status,words", [(401, "authentication failed"), (403, "access denied")])
def test_401_403_are_auth(server: ReplayServer, status: int, words: str) -> None:
    server.add("GET", "/x", status, {"error": "nope"})
    e = _raises(lambda: HttpClient(server.url).get_json("x"))
    assert e.kind is ErrorKind.AUTH and e.status == status
    assert words in e.message and e.message.endswith(": nope")


def test_html_from_a_proxy_is_bad_payload(server: ReplayServer) -> None:
    server.add("GET", "/x", 200, "<!DOCTYPE html><html><body>Sign in</body></html>",
               {"Content-Type": "text/html"})
    e = _raises(lambda: HttpClient(server.url).get_json("x"))
    assert e.kind is ErrorKind.BAD_PAYLOAD
    assert e.message.startswith("expected JSON, got an HTML page (a proxy or login page?)")


def test_html_error_page_on_502_says_proxy(server: ReplayServer) -> None:
    server.add("GET", "/x", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>",
               {"Content-Type": "text/html"})
    e = _raises(lambda: HttpClient(server.url).get_json("x"))
    assert e.kind is ErrorKind.HTTP
    assert "server error 502" in e.message and "proxy" in e.message


def test_truncated_json_is_bad_payload(server: ReplayServer) -> None:
    server.add("GET", "/x", 200, capture("prom_query_up.200.json")[:150])
    e = _raises(lambda: HttpClient(server.url).get_json("x"))
    assert e.kind is ErrorKind.BAD_PAYLOAD
    assert e.message.startswith("truncated or invalid JSON from 127.0.0.1:")


def test_connection_closed_mid_body_is_truncated(server: ReplayServer) -> None:
    def cut(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write(b'{"status": "success", "da')
        h.wfile.flush()
        h.close_connection = True
    server.add_handler("GET", "/x", cut)
    e = _raises(lambda: HttpClient(server.url).get_json("x"))
    assert e.kind is ErrorKind.BAD_PAYLOAD
    assert "truncated" in e.message


def test_304_is_not_modified_sentinel(server: ReplayServer) -> None:
    server.add("GET", "/x", 304, b"")
    assert HttpClient(server.url).get_json("x") is NOT_MODIFIED
    assert not NOT_MODIFIED


def test_empty_body_allowed_only_when_not_expecting_json(server: ReplayServer) -> None:
    server.add("DELETE", "/x", 200, b"")
    c = HttpClient(server.url)
    assert c.request("DELETE", "x", expect_json=False) is None
    e = _raises(lambda: c.request("DELETE", "x"))
    assert e.kind is ErrorKind.BAD_PAYLOAD and "empty answer" in e.message


def test_auth_headers_per_kind(server: ReplayServer) -> None:
    server.add("GET", "/x", 200, {})
    HttpClient(server.url, auth=Auth("bearer", secret="tok1")).get_json("x")
    HttpClient(server.url, auth=Auth("basic", user="u", secret=lambda: "pw")).get_json("x")
    HttpClient(server.url, auth=Auth("slurm_jwt", user="ops", secret="jwt3")).get_json("x")
    h = [r["headers"] for r in server.requests]
    assert h[0]["Authorization"] == "Bearer tok1"
    assert h[1]["Authorization"] == "Basic dTpwdw=="
    assert h[2]["X-SLURM-USER-NAME"] == "ops" and h[2]["X-SLURM-USER-TOKEN"] == "jwt3"


def test_missing_secret_is_config_error() -> None:
    e = _raises(lambda: Auth("bearer", secret=lambda: None).headers())
    assert e.kind is ErrorKind.CONFIG and "no secret available" in e.message


def test_credentials_in_url_are_refused_without_echoing_them() -> None:
    e = _raises(lambda: HttpClient("http://admin:hunter2@prom:9090"))
    assert e.kind is ErrorKind.CONFIG and "hunter2" not in e.message


def test_secret_never_in_messages_repr_or_logs(server: ReplayServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-T0KEN-value"
    caplog.set_level(logging.DEBUG)
    server.add("GET", "/a", 401, {"error": "bad"})
    server.add("GET", "/b", 500, "oops", {"Content-Type": "text/plain"})
    server.add("GET", "/c", 200, "<html>login</html>", {"Content-Type": "text/html"})
    errors: list[SourceError] = []
    for auth in (Auth("bearer", secret=secret), Auth("slurm_jwt", user="ops", secret=lambda: secret),
                 Auth("basic", user="ops", secret=secret)):
        c = HttpClient(server.url, auth=auth)
        assert secret not in repr(c) and secret not in repr(auth) and secret not in str(auth)
        for path in ("a", "b", "c"):
            errors.append(_raises(lambda: c.get_json(path)))
        errors.append(_raises(lambda: HttpClient(refused_url(), auth=auth).get_json("x")))
    for e in errors:
        assert secret not in e.message and secret not in repr(e) and secret not in str(e)
        assert e.__cause__ is None and e.__context__ is None
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_loads_fast_restores_gc_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError):
        loads_fast(b'{"a": ')
    assert gc.isenabled()
    assert loads_fast(b'{"a": [1, 2]}') == {"a": [1, 2]}


def test_strip_port() -> None:
    assert strip_port("gpu01:9400") == "gpu01"
    assert strip_port("[::1]:9400") == "::1"
    assert strip_port("gpu01") == "gpu01"

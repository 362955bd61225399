"""Hostile endpoints: secrets stay with their origin, answers are bounded, requests have deadlines.

Each test starts small loopback servers that misbehave on purpose (redirect elsewhere, stream
without end, trickle one byte at a time) and checks what the client does about it, in words.
`Origin` is imported by the TLS tests too.
"""

from __future__ import annotations

import gzip
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from console.config import (AlertmanagerSettings, ClusterSettings, ConfigError, PrometheusSettings,
                            Settings, SlurmSettings, parse_settings)
from console.engine import Engine, run_sync
from console.model import AlertsUpdate, TelemetryUpdate
from console.secrets import MemorySecretStore, SecretResolver
from console.sources.base import DEFAULT_MAX_ANSWER_MB, DEFAULT_TIMEOUT_S, ErrorKind, SourceError
from console.sources.factory import build_sources, http_options, with_transport_warnings
from console.sources.http import Auth, HttpClient, transport_warnings

Handler = Callable[[BaseHTTPRequestHandler], None]
SECRET = "s3cr3t-T0KEN-value"


def reply(h: BaseHTTPRequestHandler, status: int = 200, body: bytes = b"{}",
          headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


class Origin:
    """A loopback HTTP(S) server that records every request and answers all with ``handler``.

    ``release`` ends handlers that stall or trickle (set at close); ``done`` and ``sent`` let a
    handler report how far it got once the client gave up on it.
    """

    def __init__(self, handler: Handler = reply, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.done = threading.Event()
        self.sent = 0
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                peer = self.connection.getpeercert() if tls is not None else None
                server.requests.append({"method": self.command, "path": self.path,
                                        "headers": dict(self.headers), "peer_cert": peer})
                try:
                    server.handler(self)
                except OSError:  # the client hung up on a misbehaving answer: that is the point
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def origins() -> Iterator[Callable[..., Origin]]:
    made: list[Origin] = []

    def make(handler: Handler = reply, **kw: object) -> Origin:
        made.append(Origin(handler, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for o in made:
        o.close()


def source_error_of(fn: Callable[[], object]) -> SourceError:
    """The SourceError ``fn`` raises (the test fails if it raises nothing or anything else)."""
    with pytest.raises(SourceError) as ei:
        fn()
    return ei.value


AUTHS = {
    "bearer": Auth("bearer", secret=SECRET),
    "basic": Auth("basic", user="ops", secret=SECRET),
    "slurm_jwt": Auth("slurm_jwt", user="ops", secret=lambda: SECRET),
    "none": Auth(),
}
SECRET_HEADERS = ("Authorization", "X-SLURM-USER-TOKEN", "X-SLURM-USER-NAME")


def redirect_to(location: Callable[[BaseHTTPRequestHandler], str], status: int = 302) -> Handler:
    return lambda h: reply(h, status, b"", {"Location": location(h)})


# --------------------------------------------------------------------------- secrets and redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("kind", list(AUTHS))
def test_a_redirect_to_another_origin_is_not_followed_and_no_secret_reaches_it(
        origins: Callable[..., Origin], kind: str, status: int) -> None:
    other = origins()
    start = origins(redirect_to(lambda h: f"{other.url}/slurm/v0.0.40/jobs", status))
    client = HttpClient(start.url, auth=AUTHS[kind], name="slurmrestd")
    e = source_error_of(lambda: client.get_json("slurm/v0.0.40/jobs"))
    why = {"bearer": "not followed, the token stays with the configured origin",
           "slurm_jwt": "not followed, the token stays with the configured origin",
           "basic": "not followed, the password stays with the configured origin",
           "none": "not followed: the console talks only to the configured origin"}[kind]
    assert e.kind is ErrorKind.HTTP and e.status == status
    assert e.message == f"slurmrestd redirected to {other.url}/slurm/v0.0.40/jobs; {why} ({start.url})"
    assert other.requests == []
    assert len(start.requests) == 1
    if kind != "none":
        assert any(h in start.requests[0]["headers"] for h in SECRET_HEADERS)


def test_a_post_redirected_elsewhere_is_not_followed(origins: Callable[..., Origin]) -> None:
    other = origins()
    start = origins(redirect_to(lambda h: f"{other.url}/api/v1/query", 307))
    client = HttpClient(start.url, auth=AUTHS["bearer"], name="Prometheus")
    e = source_error_of(lambda: client.request("POST", "api/v1/query", data={"query": "up"}))
    assert e.message.startswith(f"Prometheus redirected to {other.url}/api/v1/query; not followed")
    assert other.requests == []


def test_a_redirect_to_https_on_the_same_host_and_port_is_another_origin(
        origins: Callable[..., Origin]) -> None:
    start = origins(redirect_to(lambda h: f"https://127.0.0.1:{h.server.server_address[1]}/x"))
    e = source_error_of(lambda: HttpClient(start.url, auth=AUTHS["bearer"]).get_json("x"))
    assert e.message == (f"127.0.0.1:{start.port} redirected to https://127.0.0.1:{start.port}/x; "
                         f"not followed, the token stays with the configured origin ({start.url})")
    assert len(start.requests) == 1


def test_a_redirect_message_never_repeats_the_query_or_a_user_name(
        origins: Callable[..., Origin]) -> None:
    other = origins()
    start = origins(redirect_to(
        lambda h: f"http://admin:hunter2@127.0.0.1:{other.port}/login?token=abc123&next=/x"))
    e = source_error_of(lambda: HttpClient(start.url, auth=AUTHS["bearer"]).get_json("x"))
    assert f"redirected to http://127.0.0.1:{other.port}/login;" in e.message
    assert "hunter2" not in e.message and "abc123" not in e.message and "admin" not in e.message
    assert other.requests == []


def test_a_redirect_within_the_origin_is_followed_with_the_same_headers(
        origins: Callable[..., Origin]) -> None:
    def handler(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/old"):
            reply(h, 302, b"", {"Location": "/new?page=2"})
        else:
            reply(h, 200, b'{"ok": true}')
    start = origins(handler)
    client = HttpClient(start.url, auth=AUTHS["slurm_jwt"])
    assert client.get_json("old", {"a": "1"}) == {"ok": True}
    assert [r["path"] for r in start.requests] == ["/old?a=1", "/new?page=2"]
    assert all(r["headers"]["X-SLURM-USER-TOKEN"] == SECRET for r in start.requests)


def test_a_post_answered_303_within_the_origin_is_fetched_with_get(
        origins: Callable[..., Origin]) -> None:
    def handler(h: BaseHTTPRequestHandler) -> None:
        if h.command == "POST":
            reply(h, 303, b"", {"Location": "/result"})
        else:
            reply(h, 200, b"[1]")
    start = origins(handler)
    assert HttpClient(start.url).request("POST", "submit", json={"x": 1}) == [1]
    assert [(r["method"], r["path"]) for r in start.requests] == [("POST", "/submit"),
                                                                  ("GET", "/result")]


def test_a_redirect_loop_ends_in_words(origins: Callable[..., Origin]) -> None:
    start = origins(redirect_to(lambda h: h.path))
    e = source_error_of(lambda: HttpClient(start.url, name="Alertmanager").get_json("api/v2/alerts"))
    assert e.kind is ErrorKind.HTTP
    assert e.message == "Alertmanager redirected more than 5 times in a row (a redirect loop?)"
    assert len(start.requests) == 6


def test_configured_sources_send_no_secret_to_another_origin(
        origins: Callable[..., Origin]) -> None:
    """Every auth kind the config supports, through the settings, the factory and the sources."""
    other = origins()
    start = origins(redirect_to(lambda h: other.url + h.path))
    settings = parse_settings({"clusters": [{
        "name": "lab",
        "prometheus": {"url": start.url, "auth": "bearer", "backfill_hours": 0},
        "alertmanager": {"url": start.url, "auth": "basic", "user": "ops"},
        "slurm": {"url": start.url, "auth": "slurm_jwt", "user": "ops", "api_version": "v0.0.40"},
    }]})
    secrets = SecretResolver(MemorySecretStore({"lab/prometheus": SECRET + "-p",
                                                "lab/alertmanager": SECRET + "-a",
                                                "lab/slurm": SECRET + "-s"}), environ={})
    sources = build_sources(settings.cluster(), secrets=secrets)
    assert sorted(s.kind for s in sources) == ["alerts", "alerts", "scheduler", "telemetry"]
    errors = {}
    for s in sources:
        errors[s.name] = source_error_of(s.fetch)
        s.close()
    names = {"prometheus": "Prometheus", "alertmanager": "Alertmanager", "slurm": "slurmrestd"}
    for source, e in errors.items():
        server = next(v for k, v in names.items() if source.startswith(k))
        word = "password" if server == "Alertmanager" else "token"
        assert e.kind is ErrorKind.HTTP, (source, e)
        assert e.message.startswith(f"{server} redirected to {other.url}/"), e.message
        assert e.message.endswith(f"; not followed, the {word} stays with the configured origin "
                                  f"({start.url})")
    assert other.requests == []
    sent = {h: v for r in start.requests for h, v in r["headers"].items() if h in SECRET_HEADERS}
    assert set(sent) == set(SECRET_HEADERS)  # each kind was used, with the configured origin only


# --------------------------------------------------------------------------- standing warnings


@pytest.mark.parametrize("kind,word", [("bearer", "token"), ("slurm_jwt", "token"),
                                       ("basic", "password")])
def test_a_secret_over_plain_http_to_another_machine_is_a_standing_warning(
        kind: str, word: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="console.sources.http")
    client = HttpClient("http://prom.example.org:9090", auth=AUTHS[kind], name="Prometheus")
    expected = (f"the {word} for prom.example.org is sent in clear text over plain http:// "
                "(anyone on the network path can read it): use an https:// URL")
    assert client.warnings == (expected,)
    assert [r.getMessage() for r in caplog.records] == [f"Prometheus: {expected}"]
    assert all(SECRET not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("url,kind", [
    ("http://prom.example.org:9090", "none"),  # nothing secret to lose
    ("https://prom.example.org:9090", "bearer"),
    ("http://127.0.0.1:9090", "bearer"), ("http://127.3.2.1:9090", "basic"),
    ("http://localhost:9090", "slurm_jwt"), ("http://[::1]:9090", "bearer"),
])
def test_no_warning_where_nothing_leaves_the_machine_or_nothing_is_secret(url: str, kind: str) -> None:
    assert HttpClient(url, auth=AUTHS[kind]).warnings == ()


def test_verification_off_is_a_standing_warning() -> None:
    assert transport_warnings("https://am.example.org", "none", False) == (
        "TLS certificate verification is off for am.example.org (verify = false): the console "
        "cannot tell this server from an impostor",)
    assert transport_warnings("https://am.example.org", "none", True) == ()
    assert transport_warnings("https://am.example.org", "none", "/etc/ssl/site-ca.pem") == ()
    assert len(transport_warnings("http://am.example.org", "basic", False)) == 1  # plain text only


class _Stub:
    """A source answering fixed updates, with a client whose transport has warnings."""

    name, kind, interval_s = "prometheus", "telemetry", 10.0

    def __init__(self, client: object) -> None:
        self.client = client

    def fetch(self) -> list[object]:
        return [TelemetryUpdate(time=time.time(), nodes=("gpu01",), gpus_per_node=1, metrics={},
                                node_up=np.array([True]), warnings=("1 series without a GPU label",)),
                AlertsUpdate(time=time.time(), alerts=())]

    def close(self) -> None:
        pass


class _Client:
    def __init__(self, http: HttpClient) -> None:
        self.http = http


def test_standing_warnings_are_shown_with_the_source_status() -> None:
    http = HttpClient("http://prom.example.org:9090", auth=AUTHS["bearer"], name="Prometheus")
    stub = _Stub(_Client(http))
    (source,) = with_transport_warnings([stub])  # type: ignore[list-item]
    assert source is stub and source.standing_warnings == http.warnings  # type: ignore[attr-defined]
    updates = source.fetch()
    assert [u.warnings for u in updates] == [(http.warnings[0], "1 series without a GPU label"),
                                             http.warnings]
    settings = Settings(clusters=(ClusterSettings(name="lab", prometheus=PrometheusSettings(
        url="http://prom.example.org:9090", auth="bearer", backfill_hours=0)),))
    frame = run_sync(Engine(settings, sources=[source], detect=False), 2)
    (status,) = frame.sources
    assert status.error is None
    assert status.detail == f"warnings: {http.warnings[0]}; 1 series without a GPU label"
    # A quiet transport adds nothing.
    quiet = _Stub(_Client(HttpClient("https://prom.example.org", auth=AUTHS["bearer"])))
    (source,) = with_transport_warnings([quiet])  # type: ignore[list-item]
    assert [u.warnings for u in source.fetch()] == [("1 series without a GPU label",), ()]


def test_risky_endpoints_are_logged_when_the_sources_are_built(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="console.sources.http")
    settings = parse_settings({"clusters": [{
        "name": "lab", "slurm": {"url": "http://slurm.example.org:6820", "auth": "slurm_jwt",
                                 "user": "ops"},
        "alertmanager": {"url": "https://am.example.org", "verify": False}}]})
    sources = build_sources(settings.cluster())  # builds clients; sends nothing
    am = ("TLS certificate verification is off for am.example.org (verify = false): the console "
          "cannot tell this server from an impostor")
    slurm = ("the token for slurm.example.org is sent in clear text over plain http:// (anyone "
             "on the network path can read it): use an https:// URL")
    assert [r.getMessage() for r in caplog.records] == [f"Alertmanager: {am}", f"slurmrestd: {slurm}"]
    assert {s.name: s.standing_warnings for s in sources} == {  # type: ignore[attr-defined]
        "alertmanager": (am,), "slurm": (slurm,)}
    for s in sources:
        s.close()


# --------------------------------------------------------------------------- bounded answers

MB = 1_000_000


def test_an_announced_size_over_the_limit_is_refused_before_reading(
        origins: Callable[..., Origin]) -> None:
    released = threading.Event()

    def huge(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(400 * MB))
        h.end_headers()
        h.wfile.write(b'{"status": "success", "data": ')
        h.wfile.flush()
        released.wait(10)
    start = origins(huge)
    client = HttpClient(start.url, max_answer_bytes=MB)
    e = source_error_of(lambda: client.get_json("api/v1/query"))
    assert e.kind is ErrorKind.BAD_PAYLOAD and e.status == 200
    assert e.message == (f"the answer from 127.0.0.1:{start.port} announces 400 MB, more than the "
                         "1 MB limit (max_answer_mb of this endpoint): refused before reading it; "
                         "raise max_answer_mb if answers this large are genuine")
    assert client.last_bytes == 0
    released.set()


def _flood(origin_ref: list[Origin], framing: str) -> Handler:
    """An answer of 200 MB of JSON whitespace, chunked or ended by closing the connection."""
    block = b" " * 65536

    def handler(h: BaseHTTPRequestHandler) -> None:
        o = origin_ref[0]
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if framing == "chunked":
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        frame = (b"%x\r\n" % len(block) + block + b"\r\n") if framing == "chunked" else block
        try:
            while o.sent < 200 * MB and not o.release.is_set():
                h.wfile.write(frame)
                o.sent += len(block)
        finally:
            h.close_connection = True
            o.done.set()
    return handler


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_stream_over_the_limit_is_refused_as_soon_as_it_exceeds_it(
        origins: Callable[..., Origin], framing: str) -> None:
    ref: list[Origin] = []
    start = origins(_flood(ref, framing))
    ref.append(start)
    client = HttpClient(start.url, max_answer_bytes=MB)
    e = source_error_of(lambda: client.get_json("api/v1/query"))
    assert e.kind is ErrorKind.BAD_PAYLOAD
    assert e.message == (f"the answer from 127.0.0.1:{start.port} is larger than the 1 MB limit "
                         "(max_answer_mb of this endpoint): not read further; raise "
                         "max_answer_mb if answers this large are genuine")
    assert MB < client.last_bytes < 2 * MB  # what the console held, at most
    assert start.done.wait(10)  # the server's writes failed once the console hung up
    assert start.sent < 100 * MB  # socket buffers, not the 200 MB


def test_a_compressed_answer_is_bounded_by_its_decompressed_size(
        origins: Callable[..., Origin]) -> None:
    bomb = gzip.compress(b" " * (50 * MB), compresslevel=9)
    assert len(bomb) < MB / 4
    start = origins(lambda h: reply(h, 200, bomb, {"Content-Encoding": "gzip"}))
    client = HttpClient(start.url, max_answer_bytes=MB)
    e = source_error_of(lambda: client.get_json("x"))
    assert e.kind is ErrorKind.BAD_PAYLOAD and "larger than the 1 MB limit" in e.message
    assert client.last_bytes < 2 * MB


def test_an_answer_at_the_limit_is_read_whole(origins: Callable[..., Origin]) -> None:
    body = b'{"pad": "' + b"x" * (MB - 12) + b'"}'
    assert len(body) == MB - 1
    start = origins(lambda h: reply(h, 200, body))
    client = HttpClient(start.url, max_answer_bytes=MB)
    assert len(client.get_json("x")["pad"]) == MB - 12
    assert client.last_bytes == MB - 1


def test_timeout_s_has_a_default_per_endpoint_and_can_be_set() -> None:
    """slurmrestd builds its whole answer before sending it (seconds at 10,000 jobs), so its
    deadline is longer by default than that of Prometheus and Alertmanager; each is the
    socket timeout and the whole request's deadline, and a site's own value wins."""
    s = parse_settings({"clusters": [{"name": "c", "prometheus": {"url": "http://p:9090"},
                                      "alertmanager": {"url": "http://a:9093"},
                                      "slurm": {"url": "http://s:6820"}}]})
    c = s.cluster()
    assert c.prometheus is not None and c.alertmanager is not None and c.slurm is not None
    assert (c.prometheus.timeout_s, c.alertmanager.timeout_s, c.slurm.timeout_s) == (5.0, 5.0, 60.0)
    assert DEFAULT_TIMEOUT_S == {"prometheus": 5.0, "alertmanager": 5.0, "slurm": 60.0}
    assert SlurmSettings(url="http://s").timeout_s == 60.0
    assert AlertmanagerSettings(url="http://a").timeout_s == 5.0
    assert http_options("slurm", c.slurm)["timeout"] == (3.05, 60.0)
    assert http_options("prometheus", c.prometheus)["timeout"] == (3.05, 5.0)
    s = parse_settings({"clusters": [{"name": "c", "slurm": {"url": "http://s:6820",
                                                              "timeout_s": 2}}]})
    assert s.cluster().slurm is not None and s.cluster().slurm.timeout_s == 2.0
    assert http_options("slurm", s.cluster().slurm)["timeout"] == (2.0, 2.0)


def test_max_answer_mb_has_a_default_per_endpoint_and_can_be_set() -> None:
    s = parse_settings({"clusters": [{"name": "c", "prometheus": {"url": "http://p:9090"},
                                      "alertmanager": {"url": "http://a:9093"},
                                      "slurm": {"url": "http://s:6820", "max_answer_mb": 2048}}]})
    c = s.cluster()
    assert c.prometheus is not None and c.alertmanager is not None and c.slurm is not None
    assert (c.prometheus.max_answer_mb, c.alertmanager.max_answer_mb, c.slurm.max_answer_mb) == (
        256.0, 256.0, 2048.0)
    assert DEFAULT_MAX_ANSWER_MB == {"prometheus": 256.0, "alertmanager": 256.0, "slurm": 1024.0}
    assert SlurmSettings(url="http://s").max_answer_mb == 1024.0
    assert AlertmanagerSettings(url="http://a").max_answer_mb == 256.0
    assert http_options("slurm", c.slurm)["max_answer_bytes"] == 2048 * MB
    assert http_options("prometheus", c.prometheus)["max_answer_bytes"] == 256 * MB
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match=r"clusters\[0\]\.prometheus\.max_answer_mb: "
                                              r"(a positive number of MB|expected a finite number)"):
            parse_settings({"clusters": [{"name": "c", "prometheus": {
                "url": "http://p:9090", "max_answer_mb": bad}}]})


# --------------------------------------------------------------------------- deadlines


def _trickle(origin_ref: list[Origin], where: str, framing: str = "length") -> Handler:
    """An answer sent one byte every 0.2 s: 100 bytes of body (20 s), or the headers likewise."""
    body = b'{"status": "success", "data": {"resultType": "vector", "result": []}, "x": "' \
        + b"y" * 24 + b'"}'

    def handler(h: BaseHTTPRequestHandler) -> None:
        o = origin_ref[0]
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + (
            b"Content-Length: %d\r\n\r\n" % len(body) if framing == "length"
            else b"Connection: close\r\n\r\n")
        h.close_connection = True
        try:
            if where == "body":
                h.wfile.write(head)
                h.wfile.flush()
            for byte in (head if where == "headers" else b"") + body:
                if o.release.wait(0.2):
                    return
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
        finally:
            o.done.set()
    return handler


@pytest.mark.parametrize("where,framing,words", [
    ("body", "length", "no complete answer from {host} within 1 s (it was still arriving, too slowly)"),
    ("body", "close", "no complete answer from {host} within 1 s (it was still arriving, too slowly)"),
    ("headers", "length", "no answer from {host} within 1 s"),
])
def test_a_trickling_server_ends_as_a_timeout_at_the_deadline(
        origins: Callable[..., Origin], where: str, framing: str, words: str) -> None:
    """Each byte arrives well within the 1 s read timeout; the whole answer would take 20 s
    (30 s with trickled headers). The request must end at its 1 s deadline, give or take."""
    ref: list[Origin] = []
    start = origins(_trickle(ref, where, framing))
    ref.append(start)
    client = HttpClient(start.url, timeout=(1.0, 1.0), auth=AUTHS["bearer"])
    t0 = time.monotonic()
    e = source_error_of(lambda: client.get_json("api/v1/query"))
    elapsed = time.monotonic() - t0
    assert e.kind is ErrorKind.TIMEOUT
    assert e.message == words.format(host=f"127.0.0.1:{start.port}")
    assert elapsed < 10.0  # the trickle itself would have lasted 20 s or more
    # The cut connection is not reused: the next request of the same client works.
    start.handler = reply
    assert client.get_json("api/v1/query") == {}


def test_the_deadline_counts_from_the_start_of_the_request(origins: Callable[..., Origin]) -> None:
    """A per-request timeout gives that request its own deadline (a long range query)."""
    ref: list[Origin] = []
    start = origins(_trickle(ref, "body"))
    ref.append(start)
    client = HttpClient(start.url, timeout=(30.0, 30.0))
    e = source_error_of(lambda: client.get_json("api/v1/query_range", timeout=(1.0, 1.5)))
    assert e.kind is ErrorKind.TIMEOUT and "within 1.5 s" in e.message


def test_the_deadline_thread_cuts_only_live_requests_and_leaves_when_idle() -> None:
    import socket

    from console.sources.http import _Watchdog

    dog = _Watchdog()
    dog.IDLE_EXIT_S = 0.05
    kept, kept_peer = socket.socketpair()
    cut, cut_peer = socket.socketpair()
    with kept, kept_peer, cut, cut_peer:
        finished = dog.arm(0.01)
        dog.attach(finished, kept)
        dog.disarm(finished)  # ended before its deadline: forgotten, never cut
        late = dog.arm(0.01)
        dog.attach(late, cut)
        thread = dog._thread
        assert thread is not None
        thread.join(timeout=10)  # fires `late`, then idles out
        assert not thread.is_alive() and dog._thread is None
        assert late.fired and not finished.fired
        cut.settimeout(5)
        assert cut.recv(1) == b""  # shut down: a blocked read would have returned at once
        kept_peer.sendall(b"x")
        kept.settimeout(5)
        assert kept.recv(1) == b"x"  # still open

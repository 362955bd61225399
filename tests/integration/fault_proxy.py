"""A fault-injecting HTTP proxy on 127.0.0.1, between the console and one real server.

Why in the test suite: the console's claims about hostile or broken endpoints (errors in words,
last good data kept and marked stale, recovery by itself, no wrong number shown as fresh) are
only worth what they are tested against, and a real Prometheus, Alertmanager or slurmrestd
never misbehaves on cue. The proxy forwards each request to the real server and then spoils the
answer as the test asks, switching modes while the console keeps polling through it.

Stdlib only, one thread per connection (`ThreadingHTTPServer`), one answer per connection
(HTTP/1.0: the console reconnects for each request, so a mode switch applies to the next one).
Answers that hold a connection (``STALL``, ``SLOW``) end as soon as the mode changes or the proxy
stops, so a test never waits on its own proxy.
"""

from __future__ import annotations

import enum
import http.client
import json
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class Fault(enum.Enum):
    """How the proxy spoils an answer. Prometheus data faults touch only per-GPU query vectors
    (series with a ``gpu`` label); every other answer passes through unchanged in those modes."""

    PASS = "pass-through"
    DROP = "drop the connection"  # the request is read, then the socket closed without a word
    STALL = "stall mid-body"  # headers and half the body, then nothing until the mode changes
    SLOW = "slow answer"  # the whole answer, but only after `FaultProxy.slow_s`
    HTTP_503 = "5xx"
    HTTP_401 = "401"
    HTML = "HTML page"  # a proxy's login page, 200 text/html
    TRUNCATED = "truncated JSON"  # a well-framed answer whose JSON stops halfway
    CORRUPT = "corrupted JSON"  # bytes in the middle of the JSON overwritten
    OVERSIZED = "oversized body"  # `FaultProxy.oversize_bytes` of JSON, unframed (read to the end)
    BINARY = "wrong content type, not JSON"  # application/octet-stream bytes
    TEXT_PLAIN = "wrong content type, JSON body"  # the real JSON labelled text/plain
    DUPLICATES = "duplicate and out-of-order series"  # each vector reversed, then again as is
    BAD_VALUES = "NaN/Inf/negative values"  # odd-numbered GPUs: NaN, +Inf, -Inf, -1.5
    FUTURE = "sample timestamps from the future"  # every sample stamped a day ahead
    REDIRECT = "redirect to another origin"  # 302 to `FaultProxy.redirect_to` + the same path


#: Faults after which the console has no usable answer (the source must fail, in words).
FAILING = (Fault.DROP, Fault.STALL, Fault.SLOW, Fault.HTTP_503, Fault.HTTP_401, Fault.HTML,
           Fault.TRUNCATED, Fault.CORRUPT, Fault.OVERSIZED, Fault.BINARY, Fault.REDIRECT)
#: Faults whose answers carry usable data in an odd form (the source must stay up, figures right).
DATA = (Fault.TEXT_PLAIN, Fault.DUPLICATES, Fault.BAD_VALUES, Fault.FUTURE)

#: The values written over the samples of GPUs 1, 3, 5 and 7 in `Fault.BAD_VALUES`.
BAD_SAMPLES = ("NaN", "+Inf", "-Inf", "-1.5")
FUTURE_S = 86_400.0

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te",
               "trailer", "upgrade", "proxy-connection", "content-encoding"}


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled: what was asked, and the fault it was answered with."""

    method: str
    path: str
    fault: Fault


class FaultProxy:
    """Forward to ``upstream`` (an http:// URL on 127.0.0.1) and spoil answers per `fault`."""

    def __init__(self, upstream: str, *, slow_s: float = 3.0, oversize_bytes: int = 3_000_000,
                 redirect_to: str = "", hold_max_s: float = 30.0) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname == "127.0.0.1", "the proxy only talks to loopback servers"
        self._upstream = (parts.hostname, parts.port or 80)
        self.slow_s = slow_s
        self.oversize_bytes = oversize_bytes
        self.redirect_to = redirect_to.rstrip("/")
        self.hold_max_s = hold_max_s
        self._cond = threading.Condition()
        self._fault = Fault.PASS
        self._closed = False
        self._held = 0  # connections held open right now (STALL, SLOW)
        self.seen: list[Seen] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-proxy",
                                        daemon=True)
        self._thread.start()

    # --- control ---------------------------------------------------------------------------

    @property
    def fault(self) -> Fault:
        with self._cond:
            return self._fault

    def set(self, fault: Fault) -> None:
        """Answer from now on with ``fault``; held connections are let go at once."""
        with self._cond:
            self._fault = fault
            self._cond.notify_all()

    @property
    def held(self) -> int:
        with self._cond:
            return self._held

    def count(self, fault: Fault) -> int:
        """How many requests were answered with ``fault`` so far."""
        with self._cond:
            return sum(1 for s in self.seen if s.fault is fault)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _hold(self, fault: Fault, max_s: float) -> None:
        """Wait until the mode is no longer ``fault``, the proxy closes, or ``max_s`` passes."""
        with self._cond:
            self._held += 1
            try:
                self._cond.wait_for(lambda: self._fault is not fault or self._closed, max_s)
            finally:
                self._held -= 1

    # --- forwarding ------------------------------------------------------------------------

    def _forward(self, method: str, path: str, headers: dict[str, str],
                 body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            headers = {k: v for k, v in headers.items()
                       if k.lower() not in _HOP_BY_HOP | {"host", "accept-encoding"}}
            headers["Accept-Encoding"] = "identity"  # the JSON must be readable to spoil it
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            return resp.status, kept, data
        finally:
            conn.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy.fault
                with proxy._cond:
                    proxy.seen.append(Seen(self.command, self.path, fault))
                try:
                    proxy._answer(self, fault, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the console gave up on this answer (its deadline): as it should

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def _answer(self, h: BaseHTTPRequestHandler, fault: Fault, body: bytes | None) -> None:
        if fault is Fault.DROP:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is Fault.REDIRECT:
            _send(h, 302, [("Location", self.redirect_to + h.path)], b"")
            return
        if fault is Fault.HTTP_503:
            _send(h, 503, [("Content-Type", "text/plain")], b"upstream overloaded, try later\n")
            return
        if fault is Fault.HTTP_401:
            _send(h, 401, [("Content-Type", "application/json")],
                  b'{"error": "unauthorized"}')
            return
        if fault is Fault.HTML:
            _send(h, 200, [("Content-Type", "text/html")],
                  b"<!DOCTYPE html><html><body><form>Single sign-on: log in</form></body></html>")
            return
        if fault is Fault.BINARY:
            _send(h, 200, [("Content-Type", "application/octet-stream")],
                  bytes(range(256)) * 16)
            return
        if fault is Fault.OVERSIZED:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.end_headers()  # no Content-Length: it ends when the connection closes
            h.wfile.write(b'{"status": "success", "data": {"padding": "')
            step = b"x" * 65536
            for _ in range(self.oversize_bytes // len(step) + 1):
                h.wfile.write(step)
            h.wfile.write(b'"}}')
            return
        status, headers, data = self._forward(h.command, h.path, dict(h.headers.items()), body)
        if fault is Fault.SLOW:
            self._hold(fault, self.slow_s)
        if fault is Fault.STALL:
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            self._hold(fault, self.hold_max_s)
            h.close_connection = True
            return
        if fault is Fault.TRUNCATED and data:
            data = data[: len(data) // 2]
        elif fault is Fault.CORRUPT and data:
            mid = len(data) // 2
            data = data[:mid] + b'\x00\xff}{"' + data[mid + 5:]
        elif fault is Fault.TEXT_PLAIN:
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        elif fault in (Fault.DUPLICATES, Fault.BAD_VALUES, Fault.FUTURE):
            data = spoil_vector(data, fault)
        _send(h, status, headers, data)


def _send(h: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]],
          data: bytes) -> None:
    h.send_response(status)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)


def _per_gpu_vector(doc: Any) -> list[dict[str, Any]] | None:
    """The result list of a Prometheus instant-query answer of per-GPU series, else None."""
    if not isinstance(doc, dict) or doc.get("status") != "success":
        return None
    d = doc.get("data")
    if not isinstance(d, dict) or d.get("resultType") != "vector":
        return None
    result = d.get("result")
    if not isinstance(result, list) or not result:
        return None
    if not all(isinstance(s, dict) and "gpu" in (s.get("metric") or {}) for s in result):
        return None
    return result


def spoil_vector(data: bytes, fault: Fault) -> bytes:
    """A Prometheus answer with its per-GPU vector spoilt per ``fault`` (others unchanged)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    result = _per_gpu_vector(doc)
    if result is None:
        return data
    if fault is Fault.DUPLICATES:
        doc["data"]["result"] = list(reversed(result)) + result
    elif fault is Fault.BAD_VALUES:
        for s in result:
            gpu = str(s["metric"]["gpu"])
            if gpu.isdigit() and int(gpu) % 2 == 1:
                s["value"] = [s["value"][0], BAD_SAMPLES[(int(gpu) // 2) % len(BAD_SAMPLES)]]
    elif fault is Fault.FUTURE:
        for s in result:
            s["value"] = [float(s["value"][0]) + FUTURE_S, s["value"][1]]
    return json.dumps(doc).encode()


class Recorder:
    """A loopback server that records every request and its headers, answering 200 ``{}``: the
    "other origin" of `Fault.REDIRECT`, which must never be reached."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                with recorder._lock:
                    recorder.requests.append((self.command, self.path, dict(self.headers.items())))
                _send(self, 200, [("Content-Type", "application/json")], b"{}")

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, name="recorder", daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def set_all(proxies: Mapping[str, FaultProxy], fault: Fault) -> None:
    """Switch every proxy to ``fault``."""
    for p in proxies.values():
        p.set(fault)

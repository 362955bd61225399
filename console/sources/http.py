"""One HTTP client per source: deadlines, bounded answers, TLS, auth, and failures in words.

Why a wrapper around `requests`: the operator must read *what* went wrong ("cannot connect to
prom:9090 (connection refused)") rather than a urllib3 traceback, the poller must be able to
tell kinds of failure apart (to back off, to mark data stale, to ask for a new token), and a
secret must never leak through an exception message, a chained traceback, a repr or a redirect.
So:

* every request has a (connect, read) timeout per socket operation *and* a deadline for the
  whole exchange (the read timeout, from the first byte sent to the last byte received): a
  server trickling one byte at a time cannot hold a poller for longer; a watchdog thread cuts
  the socket when the deadline passes (`_Watchdog`);
* every answer is read as a stream against a size limit (``max_answer_bytes``) and refused as
  soon as it exceeds it (at once when its Content-Length already does), so a broken proxy
  streaming gigabytes costs at most the limit in memory;
* a caller may decode a large answer while it arrives (``stream``: `stream_json.ListStream`);
  an answer the stream cannot read is decoded whole, from its kept bytes or, if the stream had
  already let them go, by asking once more, so the value returned never depends on it;
* redirects are followed only within the configured origin (scheme, host and port): the auth
  headers are per request, and a custom header such as ``X-SLURM-USER-TOKEN`` would otherwise
  follow a redirect anywhere (`requests` strips only ``Authorization`` across hosts);
* exceptions from `requests` are re-raised as `SourceError` *without* chaining (``from None``):
  the original exception holds the prepared request, and with it the auth headers;
* messages are built only from the host, the status code and the server's own error text;
* secrets are read from a callable at request time (so a token refreshed in the keyring is used
  at the next poll) and only ever placed in per-request headers, never on the session;
* standing risks of the configuration itself (a secret over plain ``http://`` to another
  machine, TLS verification switched off) are worded once in `HttpClient.warnings` and logged
  when the client is built.

Large JSON answers are parsed with the cyclic garbage collector paused (PERF.md: a 9 MB
Prometheus answer parses in 57 ms instead of 370 ms), re-enabled in ``finally``.

A client lives in the worker thread that polls its source; it is not thread-safe.
"""

from __future__ import annotations

import base64
import email.utils
import gc
import heapq
import http.client
import ipaddress
import itertools
import json
import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import msgspec
import requests
import urllib3
from requests.adapters import HTTPAdapter

from console.sources.base import DEFAULT_MAX_ANSWER_MB, ErrorKind, SourceError
from console.sources.stream_json import ListStream, StreamFactory

log = logging.getLogger(__name__)

AUTH_KINDS = ("none", "bearer", "basic", "slurm_jwt")

Secret = str | Callable[[], str | None] | None


class _NotModified:
    """The type of `NOT_MODIFIED`: an answer of HTTP 304 (nothing changed since the last poll)."""

    _instance: "_NotModified | None" = None

    def __new__(cls) -> "_NotModified":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_MODIFIED"

    def __bool__(self) -> bool:
        return False


#: Returned by `HttpClient.get_json` / `request` for HTTP 304.
NOT_MODIFIED = _NotModified()


@dataclass(frozen=True)
class Auth:
    """How to authenticate. ``secret`` is a string or a callable returning one (read per request).

    kind: "none", "bearer" (``Authorization: Bearer``), "basic" (``user`` + password) or
    "slurm_jwt" (``X-SLURM-USER-NAME: user`` and ``X-SLURM-USER-TOKEN: token``).
    The secret is excluded from repr and comparisons.
    """

    kind: str = "none"
    user: str = ""
    secret: Secret = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in AUTH_KINDS:
            raise SourceError(ErrorKind.CONFIG, f"unknown auth kind {self.kind!r}; "
                              f"expected one of {', '.join(AUTH_KINDS)}")

    def headers(self) -> dict[str, str]:
        """The headers for one request; raises CONFIG when the secret is missing."""
        if self.kind == "none":
            return {}
        try:
            value = self.secret() if callable(self.secret) else self.secret
        except Exception:  # a keyring backend failing must not take the poller down
            value = None
        if not value:
            raise SourceError(ErrorKind.CONFIG, f"no secret available for {self.kind} auth"
                              + (f" of user {self.user!r}" if self.user else "")
                              + ": store one with 'aisc-console login' or set its environment variable")
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {value}"}
        if self.kind == "basic":
            raw = f"{self.user}:{value}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        if not self.user:
            raise SourceError(ErrorKind.CONFIG, "Slurm JWT auth needs a user name")
        return {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": value}


@dataclass(frozen=True)
class Reply:
    """What an error mapper sees of a non-2xx answer (the body decoded when it is JSON)."""

    status: int
    body: Any  # decoded JSON, or None
    text: str  # the first characters of the body, for messages
    retry_after_s: float | None
    method: str
    path: str


#: A hook that turns a non-2xx answer into a specific SourceError (or None for the default).
ErrorMapper = Callable[[Reply, str], SourceError | None]


class _GcPause:
    """Pause the cyclic garbage collector while any thread is inside a ``with gc_paused():``.

    Counted, because several pollers parse at once and the collector is process-wide: the
    first to enter disables it, the last to leave restores it (only if it was enabled).
    Parsing and converting a large answer allocates millions of small objects; with the
    collector running, each batch of allocations triggers a pass over everything alive, which
    costs more than the parse itself (PERF.md). JSON trees hold no reference cycles, so
    reference counting frees them all the same.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._restore = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._restore = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._restore:
                gc.enable()


_GC_PAUSE = _GcPause()


def gc_paused() -> _GcPause:
    """Context manager: the cyclic GC is off inside (shared by all threads, nesting allowed)."""
    return _GC_PAUSE


def loads_fast(data: bytes | str) -> Any:
    """`json.loads` with the cyclic GC paused: allocation of millions of small objects otherwise
    triggers repeated full collections (PERF.md)."""
    with _GC_PAUSE:
        return json.loads(data)


def typed_decoder(schema: Any, *, strict: bool = True) -> Callable[[bytes], Any]:
    """A JSON decoder that builds only what ``schema`` names (msgspec; TypedDicts of the keys
    a parser reads), skipping everything else unbuilt: on large answers most of the cost of
    `json.loads` is allocating objects nobody reads (PERF.md).

    Anything msgspec refuses (a wrong type, a huge number, the NaN tokens Python accepts)
    is decoded again by `json.loads`, so every answer gives what it gave before, less the
    keys the schema leaves out, and invalid JSON still raises ValueError. ``strict=False``
    lets msgspec convert numeric strings where the schema says float ("61" -> 61.0).
    """
    dec = msgspec.json.Decoder(schema, strict=strict)

    def decode(content: bytes) -> Any:
        try:
            return dec.decode(content)
        except msgspec.MsgspecError:
            return json.loads(content)

    return decode


def _decoded_fast(decoder: Callable[[bytes], Any], content: bytes) -> Any:
    """``decoder(content)`` with the cyclic GC paused, as `loads_fast`."""
    with _GC_PAUSE:
        return decoder(content)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def strip_port(instance: str) -> str:
    """``host:9400`` -> ``host``, ``[::1]:9400`` -> ``::1``; a bare host is returned as is."""
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    if instance.count(":") == 1:
        return instance.split(":", 1)[0]
    return instance


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_error_text(body: Any, text: str) -> str:
    """The server's own words about an error, from the common JSON shapes or the plain body."""
    if isinstance(body, str):
        return _short(body)
    if isinstance(body, Mapping):
        for key in ("error", "message", "detail"):
            v = body.get(key)
            if isinstance(v, str) and v:
                return _short(v)
        errs = body.get("errors")
        if isinstance(errs, list):
            words = [str(e.get("error") or e.get("description") or "") if isinstance(e, Mapping)
                     else str(e) for e in errs]
            words = [w for w in words if w]
            if words:
                return _short("; ".join(words))
    if text and not _looks_like_html(text):
        return _short(text)
    return ""


def _has_text(content: bytes) -> bool:
    """``bool(content.strip())`` without copying a 100 MB answer to find out."""
    return bool(content[:64].strip()) or bool(content.strip())


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype html") or head.startswith("<html") or (
        head.startswith("<") and "<html" in text[:2000].lower())


# ---------------------------------------------------------------------------------------------
# Standing risks of a configuration
# ---------------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: traffic that never leaves the machine."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret_word(auth_kind: str) -> str:
    return "password" if auth_kind == "basic" else "token"


def transport_warnings(base_url: str, auth_kind: str, verify: bool | str) -> tuple[str, ...]:
    """What is unsafe about talking to ``base_url`` this way, in words; () when nothing is.

    Not errors: a site may knowingly run plain HTTP on a closed management network or a
    self-signed server without a CA at hand. But the operator must see the risk for as long as
    it lasts, so the engine shows these with the source's status and logs them at start-up.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    out: list[str] = []
    if parts.scheme == "http" and auth_kind != "none" and not _is_loopback(host):
        out.append(f"the {_secret_word(auth_kind)} for {host} is sent in clear text over plain "
                   "http:// (anyone on the network path can read it): use an https:// URL")
    if parts.scheme == "https" and verify is False:
        out.append(f"TLS certificate verification is off for {host} (verify = false): the "
                   "console cannot tell this server from an impostor")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Deadlines: one watchdog thread cuts the socket of a request that outlives its budget
# ---------------------------------------------------------------------------------------------


def _cut(sock: object) -> None:
    """Shut a socket down so that a read blocked on it in another thread returns at once.

    ``socket.socket.shutdown`` (the base method) also works on a TLS socket's descriptor
    without touching its TLS state from this thread. A socket already closed is left alone.
    """
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class _Deadline:
    """The end of one request's time budget, and the socket to cut when it passes.

    Fields change only under the watchdog's lock.
    """

    __slots__ = ("at", "fired", "done", "sock")

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False  # the budget ran out while the request was in progress
        self.done = False  # the request finished; nothing to cut any more
        self.sock: object | None = None


class _Watchdog:
    """One daemon thread for every client of the process: at each deadline it cuts the socket.

    Why a thread: socket timeouts bound each *read*, never a whole answer, and http.client
    reads the status line and headers with as many reads as the server likes. A single shared
    thread keeps the cost per request to a heap push, and it exits after a minute without
    requests so an idle console holds no extra thread.
    """

    IDLE_EXIT_S = 60.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, budget_s: float) -> _Deadline:
        d = _Deadline(time.monotonic() + budget_s)
        with self._cond:
            heapq.heappush(self._heap, (d.at, next(self._seq), d))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is d:
                self._cond.notify()
        return d

    def attach(self, d: _Deadline, sock: object) -> None:
        """The socket ``d``'s request now reads from (cut at once if the deadline already passed)."""
        with self._cond:
            if d.done:
                return
            if d.fired:
                _cut(sock)
            else:
                d.sock = sock

    def disarm(self, d: _Deadline) -> None:
        """The request ended: from now on its socket (back in the pool, maybe) is never cut."""
        with self._cond:
            d.done = True
            d.sock = None

    def _run(self) -> None:
        with self._cond:
            while True:
                heap = self._heap
                while heap and heap[0][2].done:
                    heapq.heappop(heap)
                if not heap:
                    if not self._cond.wait(self.IDLE_EXIT_S) and not self._heap:
                        self._thread = None
                        return
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, d = heapq.heappop(heap)
                d.fired = True
                if d.sock is not None:
                    _cut(d.sock)
                    d.sock = None


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()  # .deadline: the _Deadline of the request this thread is making


class _WatchedConnection:
    """Mixin for urllib3 connections: hand the socket of each exchange to the watchdog.

    ``_new_conn`` covers a fresh connection from its first byte (a TLS handshake wraps that
    socket into a new object, handed over again at ``getresponse``); ``getresponse`` covers a
    kept-alive connection reused from the pool.
    """

    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        deadline = getattr(_CURRENT, "deadline", None)
        if deadline is not None:
            _WATCHDOG.attach(deadline, sock)
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_CURRENT, "deadline", None)
        if deadline is not None and self.sock is not None:
            _WATCHDOG.attach(deadline, self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connection pools whose sockets the watchdog can cut.

    Also through an HTTP proxy; a SOCKS proxy keeps its own pools (per-read timeouts only).
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


# ---------------------------------------------------------------------------------------------
# TLS failures in words
# ---------------------------------------------------------------------------------------------


def _tls_words(exc: Exception, host: str) -> str:
    """What a TLS failure means, from the evidence in the exception's text (never echoed)."""
    text = str(exc).lower()
    if "hostname mismatch" in text or "doesn't match" in text or "not valid for" in text:
        return (f"TLS: the certificate of {host} is not issued for that host name (connect by "
                "a name the certificate lists)")
    if "expired" in text:
        return f"TLS: the certificate of {host} has expired"
    if "certificate verify failed" in text:
        return (f"TLS: the certificate of {host} is not signed by a trusted authority "
                "(self-signed or a private CA? set ca_bundle to the CA certificate)")
    if "certificate required" in text or "bad certificate" in text or "unknown ca" in text \
            or "handshake failure" in text:
        return (f"TLS: {host} refused the connection during the handshake: it wants a client "
                "certificate it trusts (check client_cert and client_key)")
    if "wrong version number" in text or "record layer failure" in text \
            or "packet length too long" in text:
        return f"TLS: {host} does not speak TLS on this port (is it an http:// endpoint?)"
    if "eof occurred in violation of protocol" in text or "unexpected eof" in text:
        # TLS 1.3: a server refusing the client's certificate (or its absence) may just hang up.
        return (f"TLS: {host} closed the connection during the handshake (as a server that "
                "wants a client certificate does: check client_cert and client_key)")
    return (f"TLS handshake with {host} failed: certificate not trusted or wrong host name "
            "(check the CA bundle and client certificate)")


def _local_file_words(exc: OSError) -> str | None:
    """requests' own errors for a CA bundle or client certificate path that does not exist."""
    text = str(exc)
    for what, words in (("CA certificate bundle", "CA bundle"), ("certificate file", "client certificate"),
                        ("key file", "client key")):
        if what in text and "invalid path" in text:
            path = text.rsplit("invalid path:", 1)[-1].strip()
            return f"{words} file not found: {path}"
    return None


#: Bytes taken from the network per step while an answer streams in: small enough that a
#: refused answer costs little more than the limit, large enough to keep the loop cheap.
_CHUNK = 256 * 1024
#: Same-origin redirects followed in a row before giving up (a loop, most likely).
MAX_REDIRECTS = 5
#: The size limit of a client built without one (settings give each endpoint its own).
DEFAULT_MAX_ANSWER_BYTES = int(DEFAULT_MAX_ANSWER_MB["prometheus"] * 1e6)


def _mb(n: float) -> str:
    return f"{n / 1e6:.4g} MB"


def _framed(resp: requests.Response) -> bool:
    """True when the answer says where it ends (Content-Length or chunked), so a complete read
    is known to be complete; an answer that ends when the connection closes is not."""
    h = resp.headers
    return "Content-Length" in h or "chunked" in h.get("Transfer-Encoding", "").lower()


class HttpClient:
    """A `requests.Session` bound to one origin, with deadlines, size limits, TLS and auth.

    ``timeout`` is (connect, read) seconds for each socket operation; the larger of the two is
    also the deadline for a whole request, from connecting to the last byte of the answer.
    ``verify`` is True/False or a CA bundle path; ``cert`` a client certificate path or
    (cert, key) pair. ``max_answer_bytes`` bounds one answer. ``name`` is what the operator
    calls the server ("slurmrestd"), for messages. ``error_mapper`` lets an API client classify
    its own error answers (Slurm's 500 for a bad token, Prometheus' error envelope) before the
    generic status mapping applies.
    """

    def __init__(self, base_url: str, *, timeout: tuple[float, float] | float = (3.05, 10.0),
                 verify: bool | str = True, cert: str | tuple[str, str] | None = None,
                 auth: Auth | None = None, headers: Mapping[str, str] | None = None,
                 error_mapper: ErrorMapper | None = None, trust_env: bool = True,
                 max_answer_bytes: int | None = None, name: str = "") -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(ErrorKind.CONFIG, "endpoint URL must start with http:// or https:// "
                              "and name a host")
        if parts.username or parts.password:
            raise SourceError(ErrorKind.CONFIG, "endpoint URL must not contain a user name or "
                              "password; configure auth and keep the secret in the keyring")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_url = base_url.rstrip("/")
        self.host = f"{parts.hostname}:{port}"
        self.name = name or self.host
        self._origin = (parts.scheme, parts.hostname.lower(), port)
        self.timeout: tuple[float, float] = (
            (float(timeout), float(timeout)) if isinstance(timeout, (int, float))
            else (float(timeout[0]), float(timeout[1])))
        self.max_answer_bytes = int(max_answer_bytes or DEFAULT_MAX_ANSWER_BYTES)
        self.auth = auth or Auth()
        self.error_mapper = error_mapper
        # Passed per request, not set on the session: requests lets REQUESTS_CA_BUNDLE replace
        # a session's CA bundle (even verify = false), but not a bundle or false given per request.
        self._verify = verify
        self._cert = cert
        self._session = requests.Session()
        self._session.mount("https://", _DeadlineAdapter())
        self._session.mount("http://", _DeadlineAdapter())
        self._session.trust_env = trust_env
        self._session.headers.update({"Accept": "application/json", "User-Agent": "aisc-console"})
        if headers:
            self._session.headers.update(dict(headers))
        #: standing risks of this configuration, in words (shown with the source's status)
        self.warnings = transport_warnings(base_url, self.auth.kind, verify)
        for w in self.warnings:
            log.warning("%s: %s", self.name, w)
        if verify is False:  # said once above, in words; not once per request on stderr
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        #: seconds the last request took (connect to last byte); for SLOW status and benchmarks
        self.last_latency_s: float | None = None
        #: bytes of the last answer's body received (so far, when it was refused or cut)
        self.last_bytes: int = 0

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r}, auth={self.auth.kind})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------

    def get_json(self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
                 *, timeout: tuple[float, float] | None = None) -> Any:
        """GET and decode JSON; `NOT_MODIFIED` for 304; raises `SourceError` on any failure."""
        return self.request("GET", path, params=params, timeout=timeout)

    def request(self, method: str, path: str, *,
                params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
                json: Any = None, data: Mapping[str, Any] | None = None,
                expect_json: bool = True, timeout: tuple[float, float] | None = None,
                decoder: Callable[[bytes], Any] | None = None,
                stream: StreamFactory | None = None) -> Any:
        """Send one request. Returns decoded JSON, None (empty body allowed when
        ``expect_json`` is False), or `NOT_MODIFIED`; raises `SourceError` otherwise.

        ``decoder`` (bytes -> value, ValueError on invalid JSON) replaces `loads_fast` for a
        2xx answer: a typed decoder that skips what the caller never reads is several times
        faster on large answers. Error answers are always decoded in full, for their words.
        ``stream`` makes a `ListStream` that decodes a 2xx answer while it arrives; when it
        gives up (an answer not shaped as it expects) the whole body is decoded as without it,
        so the value returned is the same either way."""
        url = self.base_url + "/" + path.lstrip("/")
        headers = self.auth.headers()  # may raise CONFIG; never logged
        tmo = timeout or self.timeout
        budget = max(tmo)
        deadline = _WATCHDOG.arm(budget)
        _CURRENT.deadline = deadline
        self.last_bytes = 0
        resp: requests.Response | None = None
        chunks: list[bytes] = []
        consumer: ListStream | None = None
        t0 = time.perf_counter()
        try:
            resp = self._send(method, url, params, json, data, headers, tmo)
            if stream is not None and 200 <= resp.status_code < 300 and resp.status_code != 204:
                consumer = stream()
            chunks = self._read_body(resp, consumer)
        except SourceError as exc:
            err: SourceError | None = exc
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                http.client.HTTPException, OSError) as exc:
            err = self._failure(exc, deadline.fired, tmo, budget, answering=resp is not None)
            if resp is not None:
                resp.close()
        else:
            # Cut at the deadline, an answer that ends with its connection looks complete.
            err = (self._timed_out(budget, answering=True)
                   if deadline.fired and not _framed(resp) else None)
        finally:
            _WATCHDOG.disarm(deadline)
            _CURRENT.deadline = None
            self.last_latency_s = time.perf_counter() - t0
        if err is not None:
            if consumer is not None:
                consumer.close()
            log.debug("%s %s: %s", method, path, err.message)
            raise err
        assert resp is not None
        if consumer is not None:
            with _GC_PAUSE:
                streamed = consumer.finish()
            if streamed is not None:
                return streamed
            log.debug("%s %s: decoded whole (%s)", method, path, consumer.why)
            if not chunks and self.last_bytes:  # the body was let go: ask again, read it whole
                return self.request(method, path, params=params, json=json, data=data,
                                    expect_json=expect_json, timeout=timeout, decoder=decoder)
        content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        del chunks
        return self._decode(resp, content, method, path, expect_json, decoder)

    # -----------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, params: Any, json: Any, data: Any,
              headers: dict[str, str], tmo: tuple[float, float]) -> requests.Response:
        """Send, following redirects only within the configured origin (with the same headers)."""
        status = 0
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._session.request(method, url, params=params, json=json, data=data,
                                         headers=headers, timeout=tmo, verify=self._verify,
                                         cert=self._cert, stream=True, allow_redirects=False)
            if not resp.is_redirect:
                return resp
            status = resp.status_code
            target = urljoin(resp.url, resp.headers["Location"])
            resp.close()
            if not self._same_origin(target):
                raise SourceError(ErrorKind.HTTP, self._redirect_words(target), status=status)
            url, params = target, None
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, json, data = "GET", None, None
        raise SourceError(ErrorKind.HTTP, f"{self.name} redirected more than {MAX_REDIRECTS} "
                          "times in a row (a redirect loop?)", status=status)

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port that is not a number
            return False
        return (parts.scheme, (parts.hostname or "").lower(), port) == self._origin

    def _redirect_words(self, target: str) -> str:
        parts = urlsplit(target)
        # Scheme, host, port and path: never the query or a user name, which may carry secrets.
        shown = _short(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}", 120)
        if self.auth.kind == "none":
            why = "not followed: the console talks only to the configured origin"
        else:
            why = f"not followed, the {_secret_word(self.auth.kind)} stays with the configured origin"
        scheme, _, _ = self._origin
        return f"{self.name} redirected to {shown}; {why} ({scheme}://{self.host})"

    def _read_body(self, resp: requests.Response, consumer: ListStream | None = None) -> list[bytes]:
        """The whole body in chunks, read against the size limit (refused as soon as it is
        over); each chunk is also handed to ``consumer`` as it comes, if there is one."""
        limit = self.max_answer_bytes
        announced = resp.headers.get("Content-Length", "")
        bodiless = resp.request.method == "HEAD" or resp.status_code in (204, 304)
        if announced.isdigit() and int(announced) > limit and not bodiless:
            resp.close()
            raise SourceError(ErrorKind.BAD_PAYLOAD, (
                f"the answer from {self.host} announces {_mb(int(announced))}, more than the "
                f"{_mb(limit)} limit (max_answer_mb of this endpoint): refused before reading "
                "it; raise max_answer_mb if answers this large are genuine"),
                status=resp.status_code)
        chunks: list[bytes] = []
        total = 0
        for chunk in resp.iter_content(_CHUNK):
            total += len(chunk)
            self.last_bytes = total
            if total > limit:
                resp.close()
                raise SourceError(ErrorKind.BAD_PAYLOAD, (
                    f"the answer from {self.host} is larger than the {_mb(limit)} limit "
                    "(max_answer_mb of this endpoint): not read further; raise max_answer_mb "
                    "if answers this large are genuine"), status=resp.status_code)
            if consumer is None:
                chunks.append(chunk)
                continue
            if not consumer.committed:  # kept until the stream shows it reads this answer
                chunks.append(chunk)
            with _GC_PAUSE:
                consumer.feed(chunk)
            if chunks and consumer.committed:
                chunks.clear()  # each chunk is freed once copied: its memory is reused
        return chunks

    def _timed_out(self, budget: float, *, answering: bool) -> SourceError:
        if answering:  # the status line and headers had come
            return SourceError(ErrorKind.TIMEOUT, f"no complete answer from {self.host} within "
                               f"{budget:g} s (it was still arriving, too slowly)")
        return SourceError(ErrorKind.TIMEOUT, f"no answer from {self.host} within {budget:g} s")

    def _failure(self, exc: Exception, deadline_passed: bool, tmo: tuple[float, float],
                 budget: float, *, answering: bool) -> SourceError:
        """A transport failure classified by its evidence (the deadline first: cutting the
        socket at the deadline surfaces as a closed connection)."""
        if deadline_passed:
            return self._timed_out(budget, answering=answering)
        if isinstance(exc, requests.exceptions.SSLError):
            return SourceError(ErrorKind.UNREACHABLE, _tls_words(exc, self.host))
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return SourceError(ErrorKind.TIMEOUT,
                               f"no answer from {self.host} within {tmo[0]:g} s (connecting)")
        if isinstance(exc, requests.exceptions.ReadTimeout) or (
                isinstance(exc, requests.exceptions.ConnectionError)
                and "read timed out" in str(exc).lower()):  # a read timeout mid-body
            return SourceError(ErrorKind.TIMEOUT, f"no answer from {self.host} within {tmo[1]:g} s")
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return SourceError(ErrorKind.BAD_PAYLOAD, f"truncated answer from {self.host}: the "
                               "connection closed in the middle of the reply")
        if isinstance(exc, requests.exceptions.ContentDecodingError):
            return SourceError(ErrorKind.BAD_PAYLOAD, f"the compressed answer from {self.host} "
                               "could not be decompressed (corrupt or truncated)")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return SourceError(ErrorKind.UNREACHABLE, self._connection_words(exc))
        if isinstance(exc, OSError) and (words := _local_file_words(exc)):
            return SourceError(ErrorKind.CONFIG, words)
        return SourceError(ErrorKind.UNREACHABLE,
                           f"request to {self.host} failed ({type(exc).__name__})")

    def _connection_words(self, exc: Exception) -> str:
        text = str(exc).lower()
        if "refused" in text:
            return f"cannot connect to {self.host} (connection refused)"
        if "name or service not known" in text or "nodename nor servname" in text \
                or "name resolution" in text or "getaddrinfo" in text:
            return f"cannot resolve host name of {self.host}"
        if "reset" in text:
            return f"connection to {self.host} was reset"
        if "remotedisconnected" in text or "aborted" in text or "closed" in text:
            return f"{self.host} closed the connection without answering"
        if "unreachable" in text:
            return f"cannot connect to {self.host} (network unreachable)"
        return f"cannot connect to {self.host}"

    def _decode(self, resp: requests.Response, content: bytes, method: str, path: str,
                expect_json: bool, decoder: Callable[[bytes], Any] | None = None) -> Any:
        status = resp.status_code
        if status == 304:
            return NOT_MODIFIED
        ctype = resp.headers.get("Content-Type", "").lower()
        text_head = content[:4000].decode("utf-8", "replace")
        body: Any = None
        decode_error: Exception | None = None
        if _has_text(content) and not _looks_like_html(text_head):
            try:
                body = (loads_fast(content) if decoder is None or not 200 <= status < 300
                        else _decoded_fast(decoder, content))
            except ValueError as exc:
                decode_error = exc
        if not 200 <= status < 300:
            reply = Reply(status, body, text_head, _parse_retry_after(resp.headers.get("Retry-After")),
                          method, path)
            mapped = self.error_mapper(reply, self.host) if self.error_mapper else None
            raise mapped or self._status_error(reply)
        if not expect_json and not _has_text(content):
            return None
        if "text/html" in ctype or _looks_like_html(text_head):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"expected JSON, got an HTML page (a proxy or "
                              f"login page?) from {self.host}", status=status)
        if not _has_text(content):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"empty answer from {self.host} where JSON "
                              "was expected", status=status)
        if decode_error is not None:
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"truncated or invalid JSON from {self.host} "
                              f"({len(content)} bytes)", status=status)
        return body

    def _status_error(self, r: Reply) -> SourceError:
        words = server_error_text(r.body, r.text)
        tail = f": {words}" if words else ""
        s = r.status
        if s == 401:
            return SourceError(ErrorKind.AUTH, f"authentication failed at {self.host} (401): "
                               f"check the user name and secret{tail}", status=s)
        if s == 403:
            return SourceError(ErrorKind.AUTH, f"access denied by {self.host} (403){tail}", status=s)
        if s == 404:
            return SourceError(ErrorKind.HTTP, f"not found (404): {r.path} on {self.host}", status=s)
        if s == 429:
            return SourceError(ErrorKind.HTTP, f"rate limited by {self.host} (429){tail}",
                               status=s, retry_after_s=r.retry_after_s)
        if s >= 500:
            if not words and _looks_like_html(r.text):
                tail = " (an HTML error page: a proxy in front of the server?)"
            return SourceError(ErrorKind.HTTP, f"server error {s} from {self.host}{tail}",
                               status=s, retry_after_s=r.retry_after_s)
        return SourceError(ErrorKind.HTTP, f"request rejected by {self.host} ({s}){tail}",
                           status=s, retry_after_s=r.retry_after_s)

"""One HTTP client per source: timeouts, TLS, auth, and every failure turned into plain words.

Why a wrapper around `requests`: the operator must read *what* went wrong ("cannot connect to
prom:9090 (connection refused)") rather than a urllib3 traceback, the poller must be able to
tell kinds of failure apart (to back off, to mark data stale, to ask for a new token), and a
secret must never leak through an exception message, a chained traceback or a repr. So:

* every request has a (connect, read) timeout;
* exceptions from `requests` are re-raised as `SourceError` *without* chaining (``from None``):
  the original exception holds the prepared request, and with it the auth headers;
* messages are built only from the host, the status code and the server's own error text;
* secrets are read from a callable at request time (so a token refreshed in the keyring is used
  at the next poll) and only ever placed in per-request headers, never on the session.

Large JSON answers are parsed with the cyclic garbage collector paused (PERF.md: a 9 MB
Prometheus answer parses in 57 ms instead of 370 ms), re-enabled in ``finally``.

A client lives in the worker thread that polls its source; it is not thread-safe.
"""

from __future__ import annotations

import base64
import email.utils
import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from console.sources.base import ErrorKind, SourceError

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


class HttpClient:
    """A `requests.Session` bound to one base URL, with timeouts, TLS settings and auth.

    ``timeout`` is (connect, read) seconds; ``verify`` is True/False or a CA bundle path;
    ``cert`` a client certificate path or (cert, key) pair. ``error_mapper`` lets an API client
    classify its own error answers (Slurm's 500 for a bad token, Prometheus' error envelope)
    before the generic status mapping applies.
    """

    def __init__(self, base_url: str, *, timeout: tuple[float, float] | float = (3.05, 10.0),
                 verify: bool | str = True, cert: str | tuple[str, str] | None = None,
                 auth: Auth | None = None, headers: Mapping[str, str] | None = None,
                 error_mapper: ErrorMapper | None = None, trust_env: bool = True) -> None:
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
        self.timeout: tuple[float, float] = (
            (float(timeout), float(timeout)) if isinstance(timeout, (int, float))
            else (float(timeout[0]), float(timeout[1])))
        self.auth = auth or Auth()
        self.error_mapper = error_mapper
        self._session = requests.Session()
        self._session.verify = verify
        self._session.cert = cert
        self._session.trust_env = trust_env
        self._session.headers.update({"Accept": "application/json", "User-Agent": "aisc-console"})
        if headers:
            self._session.headers.update(dict(headers))
        #: seconds the last request took (connect to last byte); for SLOW status and benchmarks
        self.last_latency_s: float | None = None
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
                expect_json: bool = True, timeout: tuple[float, float] | None = None) -> Any:
        """Send one request. Returns decoded JSON, None (empty body allowed when
        ``expect_json`` is False), or `NOT_MODIFIED`; raises `SourceError` otherwise."""
        url = self.base_url + "/" + path.lstrip("/")
        headers = self.auth.headers()  # may raise CONFIG; never logged
        tmo = timeout or self.timeout
        t0 = time.perf_counter()
        try:
            resp = self._session.request(method, url, params=params, json=json, data=data,
                                         headers=headers, timeout=tmo)
            content = resp.content
        except requests.exceptions.SSLError:
            err = SourceError(ErrorKind.UNREACHABLE, f"TLS handshake with {self.host} failed: "
                              "certificate not trusted or wrong host name (check the CA bundle "
                              "and client certificate)")
        except requests.exceptions.ConnectTimeout:
            err = SourceError(ErrorKind.TIMEOUT,
                              f"no answer from {self.host} within {tmo[0]:g} s (connecting)")
        except requests.exceptions.ReadTimeout:
            err = SourceError(ErrorKind.TIMEOUT, f"no answer from {self.host} within {tmo[1]:g} s")
        except requests.exceptions.ChunkedEncodingError:
            err = SourceError(ErrorKind.BAD_PAYLOAD, f"truncated answer from {self.host}: the "
                              "connection closed in the middle of the reply")
        except requests.exceptions.ConnectionError as exc:
            err = SourceError(ErrorKind.UNREACHABLE, self._connection_words(exc))
        except requests.exceptions.RequestException as exc:
            err = SourceError(ErrorKind.UNREACHABLE,
                              f"request to {self.host} failed ({type(exc).__name__})")
        else:
            err = None
        finally:
            self.last_latency_s = time.perf_counter() - t0
        if err is not None:
            log.debug("%s %s: %s", method, path, err.message)
            raise err
        self.last_bytes = len(content)
        return self._decode(resp, content, method, path, expect_json)

    # -----------------------------------------------------------------------------------------

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
                expect_json: bool) -> Any:
        status = resp.status_code
        if status == 304:
            return NOT_MODIFIED
        ctype = resp.headers.get("Content-Type", "").lower()
        text_head = content[:4000].decode("utf-8", "replace")
        body: Any = None
        decode_error: Exception | None = None
        if _has_text(content) and not _looks_like_html(text_head):
            try:
                body = loads_fast(content)
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

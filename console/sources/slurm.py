"""slurmrestd (Slurm REST API v0.0.38 .. v0.0.45): client, operator actions, scheduler source.

The client finds the newest API version the server offers that it knows (from ``/openapi/v3``,
else by probing ``/slurm/vX/ping`` newest first) and remembers it; a 404 for that version later
(the server was upgraded) makes it detect again, unless the version is pinned in the config.

Errors are classified by evidence, not by the shape of a body, because slurmrestd gives the same
answer for different causes (STACK.md):

* 401 "Authentication failure": no credentials, or a token without a user name;
* 511 "Protocol authentication error" (24.11+): the token was rejected (bad or expired);
* 500 "Unspecified error" (22.05): a bad or expired token, but *also* ``nodes?update_time=T``
  when no node changed, and server-side failures. It is called a token problem only when a
  request that must succeed with a good token (the same listing without ``update_time``, or
  ``ping``) fails the same way; otherwise it is a server error, in words.

Polling uses ``?update_time=`` so that an unchanged cluster costs little. What "unchanged" looks
like differs by release and endpoint: 304 (22.05 jobs, 24.11+ nodes), or 200 with an empty list
and the warning "No job changes since update_time[...]" (24.11+ jobs). An empty list is taken as
"unchanged" only where the server says so; an empty list without that warning is checked by
asking again without ``update_time`` before it empties a table. Where ``update_time`` is refused
(422 or 500: 24.11's v0.0.40, 22.05's quiet ``nodes``) the same request is repeated without it,
and that endpoint is polled in full from then on.

Lives in the poller's worker thread (actions run in an action worker with their own client).
"""

from __future__ import annotations

import logging
import re
import time as _time
from collections.abc import Callable, Mapping
from typing import Any

from console.model import JobTable, SchedulerUpdate, Update
from console.sources import slurm_parse
from console.sources.base import ErrorKind, SourceError
from console.sources.http import NOT_MODIFIED, HttpClient, Reply, gc_paused, server_error_text
from console.sources.stream_json import StreamFactory

log = logging.getLogger(__name__)

#: API versions this client understands, newest first.
SUPPORTED_VERSIONS: tuple[str, ...] = ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42", "v0.0.41",
                                       "v0.0.40", "v0.0.39", "v0.0.38")

#: The Slurm release that introduced each API version (FACTS 5.4; for messages).
SLURM_RELEASE = {"v0.0.38": "22.05", "v0.0.39": "23.02", "v0.0.40": "23.11",
                 "v0.0.41": "24.05", "v0.0.42": "24.11", "v0.0.43": "25.05",
                 "v0.0.44": "25.11", "v0.0.45": "26.05"}

_UNSPECIFIED = "Unspecified error"
#: SLURM_PROTOCOL_AUTHENTICATION_ERROR: the credential (token) was rejected.
_ERRNO_PROTOCOL_AUTH = 1007
#: ESLURM_ALREADY_DONE: cancelling a job that already ended (cancelling is idempotent).
_ERRNO_ALREADY_DONE = 2021
#: Statuses with which a server refuses ``update_time`` on some version/endpoint (STACK.md).
_UPDATE_TIME_REFUSALS = (400, 422, 500)
#: The warning of 24.11+ that turns an empty list into "unchanged".
_NO_CHANGES = re.compile(r"\bno \w+ changes since update_time", re.IGNORECASE)
#: What a listing's items may be: dicts (``json.loads``), or the typed decoder's job rows.
_ROW_TYPES = (slurm_parse.JobRow, Mapping)
_ROW_FAST = {slurm_parse.JobRow, dict}

_TOKEN_ADVICE = "create a new one with 'scontrol token' and store it again"


class AmbiguousServerError(SourceError):
    """slurmrestd 22.05's 500 ``"Unspecified error"``: a rejected token, a quiet ``nodes``
    poll with ``update_time``, or a failure inside the server. Never named before another
    request tells which (`SlurmClient.confirm`)."""


class VersionNotServed(SourceError):
    """404 without an error body for ``/slurm/vX/...``: the server does not serve vX (any more)."""


def _error_entries(body: Any) -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping):
        return []
    errs = body.get("errors")
    return [e for e in errs if isinstance(e, Mapping)] if isinstance(errs, list) else []


def _error_words(body: Any) -> list[str]:
    words = (str(e.get("error") or e.get("description") or "") for e in _error_entries(body))
    return [w for w in words if w]


def _error_numbers(body: Any) -> set[int]:
    out: set[int] = set()
    for e in _error_entries(body):
        n = e.get("error_number", e.get("errno"))
        if isinstance(n, int):
            out.add(n)
    return out


def token_rejected(host: str, evidence: str) -> SourceError:
    """The AUTH error for a token the server rejected; ``evidence`` says what answered how."""
    return SourceError(ErrorKind.AUTH, f"token rejected or expired (slurmrestd at {host} "
                       f"{evidence}); {_TOKEN_ADVICE}")


def _slurm_error_mapper(reply: Reply, host: str, auth_kind: str = "slurm_jwt") -> SourceError | None:
    """Classify a non-2xx answer of slurmrestd; None leaves it to the generic mapping."""
    body, status = reply.body, reply.status
    errs = _error_words(body)
    if status == 401:
        if auth_kind == "none":
            return SourceError(ErrorKind.AUTH, "authentication required: no user name or token "
                               f"sent (slurmrestd at {host} answered 'Authentication failure'); "
                               "configure Slurm JWT auth with a user name and a token", status=401)
        return SourceError(ErrorKind.AUTH, f"authentication failed at slurmrestd {host} (401 "
                           "'Authentication failure'): it needs auth 'slurm_jwt' with both a user "
                           "name and a token, and slurmrestd started with '-a rest_auth/jwt'",
                           status=401)
    if status == 511 or _ERRNO_PROTOCOL_AUTH in _error_numbers(body):
        err = token_rejected(host, f"answered {status} 'Protocol authentication error'")
        err.status = status
        return err
    if status == 500 and errs and all(e == _UNSPECIFIED for e in errs):
        return AmbiguousServerError(ErrorKind.HTTP, f"slurmrestd at {host} answered 500 "
                                    f"'{_UNSPECIFIED}' to {reply.method} /{reply.path.lstrip('/')}",
                                    status=500)
    if (status == 403 and errs) or any("permission denied" in e.lower() for e in errs):
        words = server_error_text(body, reply.text)
        return SourceError(ErrorKind.AUTH, f"permission denied by slurmrestd at {host}: {words} "
                           "(the token's user may not do this)", status=status)
    if status == 404 and not errs and reply.path.lstrip("/").startswith("slurm/v"):
        version = reply.path.lstrip("/").split("/")[1]
        return VersionNotServed(ErrorKind.CONFIG, f"slurmrestd at {host} does not serve REST API "
                                f"{version} (404 for /{reply.path.lstrip('/')})", status=404)
    if status == 405:
        return SourceError(ErrorKind.CONFIG, f"slurmrestd at {host} does not offer {reply.method} "
                           f"{reply.path} (405): not supported by this API version", status=405)
    if errs and status >= 400:
        return SourceError(ErrorKind.HTTP, f"slurmrestd at {host} refused the request "
                           f"({status}): {'; '.join(errs)}", status=status)
    return None


def _refusal_in_body(body: Any, host: str, what: str) -> SourceError | None:
    """An error reported inside a 2xx answer (``errors`` array, or a job signal ``status``)."""
    errs = _error_words(body)
    if not errs and isinstance(body, Mapping) and isinstance(body.get("status"), list):
        for s in body["status"]:  # v0.0.42+ DELETE /job: one entry per job signalled
            e = s.get("error") if isinstance(s, Mapping) else None
            if isinstance(e, Mapping) and e.get("code") not in (None, 0, _ERRNO_ALREADY_DONE):
                errs.append(str(e.get("message") or e.get("string") or f"error {e.get('code')}"))
    if not errs:
        return None
    kind = ErrorKind.AUTH if any("permission denied" in e.lower() for e in errs) else ErrorKind.HTTP
    return SourceError(kind, f"slurmrestd at {host} refused to {what}: {'; '.join(errs)}")


class SlurmClient:
    """Slurm REST calls for one cluster. ``version`` pins the API version (else detected)."""

    def __init__(self, http: HttpClient, version: str | None = None) -> None:
        if http.error_mapper is None:
            http.error_mapper = lambda r, host: _slurm_error_mapper(r, host, http.auth.kind)
        self.http = http
        version = (version or "").strip() or None
        if version == "auto":
            version = None
        if version is not None and not version.startswith("v"):
            version = "v" + version
        if version is not None and version not in SUPPORTED_VERSIONS:
            raise SourceError(ErrorKind.CONFIG, f"unsupported Slurm API version {version!r}; "
                              f"supported: {', '.join(SUPPORTED_VERSIONS)}")
        self.version: str | None = version
        self.pinned = version is not None
        self.slurm_release: str = ""
        self.offered: tuple[str, ...] = ()

    @classmethod
    def from_url(cls, base_url: str, version: str | None = None, **http_kwargs: Any) -> "SlurmClient":
        return cls(HttpClient(base_url, **http_kwargs), version)

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"SlurmClient({self.http.base_url!r}, {self.version or 'version not yet known'})"

    # ---- version ------------------------------------------------------------------------------

    def detect_version(self) -> str:
        """The newest supported API version the server offers (cached after the first call)."""
        if self.version:
            return self.version
        offered: set[str] = set()
        unclear: AmbiguousServerError | None = None
        try:
            spec = self.http.get_json("openapi/v3")
            paths = spec.get("paths") if isinstance(spec, Mapping) else None
            if isinstance(paths, Mapping):
                for p in paths:
                    parts = str(p).split("/")
                    if len(parts) > 2 and parts[1] == "slurm":
                        offered.add(parts[2])
        except AmbiguousServerError as e:
            unclear = e  # a bad token on 22.05, or a server failure: the probes tell
        except SourceError as e:
            if e.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT,
                          ErrorKind.CONFIG):
                raise
        self.offered = tuple(sorted(offered, reverse=True))
        for v in SUPPORTED_VERSIONS:
            if v in offered:
                self.version = v
                return v
        for v in SUPPORTED_VERSIONS:  # no usable spec: probe, newest first
            try:
                self.http.get_json(f"slurm/{v}/ping")
            except AmbiguousServerError as e:
                if unclear is not None:
                    raise token_rejected(self.http.host, f"answered 500 '{_UNSPECIFIED}' to "
                                         f"GET /openapi/v3 and to GET /slurm/{v}/ping") from None
                self.version = v  # the version exists; what failed is said in words
                raise SourceError(ErrorKind.HTTP, e.message, status=e.status) from None
            except SourceError as e:
                if e.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT) \
                        or e.status not in (400, 404, 405):
                    raise
                continue
            self.version = v
            return v
        if unclear is not None:
            raise SourceError(ErrorKind.HTTP, unclear.message + " and serves none of the API "
                              f"versions {SUPPORTED_VERSIONS[-1]}..{SUPPORTED_VERSIONS[0]}",
                              status=unclear.status)
        raise SourceError(ErrorKind.CONFIG, f"slurmrestd at {self.http.host} offers none of the "
                          f"API versions {SUPPORTED_VERSIONS[-1]}..{SUPPORTED_VERSIONS[0]}"
                          + (f" (it offers {', '.join(sorted(offered))})" if offered else ""))

    def _path(self, tail: str) -> str:
        return f"slurm/{self.detect_version()}/{tail}"

    def _version_gone(self, err: SourceError) -> SourceError:
        if self.pinned:
            return SourceError(ErrorKind.CONFIG, f"{err.message}: the configured api_version "
                               f"{self.version} is not served; remove api_version from the "
                               "config to detect it, or set one the server offers", status=404)
        return SourceError(ErrorKind.CONFIG, f"{err.message}, and it offers no newer version "
                           "this console knows", status=404)

    def call(self, method: str, tail: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, expect_json: bool = True, confirm: bool = True,
             decoder: Callable[[bytes], Any] | None = None,
             stream: StreamFactory | None = None) -> Any:
        """One request to ``/slurm/<version>/<tail>``.

        A 404 for the version makes an auto-detected client detect again and retry once (the
        server was upgraded). An ambiguous 500 is confirmed with ``ping`` when ``confirm``.
        """
        for attempt in (0, 1):
            path = self._path(tail)
            try:
                return self.http.request(method, path, params=params, json=json,
                                         expect_json=expect_json, decoder=decoder,
                                         stream=stream)
            except VersionNotServed as e:
                if attempt or self.pinned:
                    raise self._version_gone(e) from None
                old, self.version = self.version, None
                if self.detect_version() == old:
                    raise self._version_gone(e) from None
                log.info("slurmrestd at %s no longer serves %s; using %s", self.http.host, old,
                         self.version)
            except AmbiguousServerError as e:
                if not confirm or tail == "ping":
                    raise
                raise self.confirm(e, f"{method} /{path}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def confirm(self, err: AmbiguousServerError, what: str) -> SourceError:
        """Name an ambiguous 500 by asking ``ping``, which succeeds with any good token."""
        host = self.http.host
        try:
            self.http.get_json(self._path("ping"))
        except AmbiguousServerError:
            return token_rejected(host, f"answered 500 '{_UNSPECIFIED}' to {what} and to ping")
        except SourceError as e:
            return SourceError(ErrorKind.HTTP, f"{err.message}; ping failed too: {e.message}",
                               status=err.status)
        return SourceError(ErrorKind.HTTP, f"{err.message}, while ping with the same token "
                           "works: a failure inside slurmrestd or slurmctld, not the token "
                           "(see their logs)", status=err.status)

    def _get(self, tail: str, params: Mapping[str, Any] | None = None, *,
             confirm: bool = True, decoder: Callable[[bytes], Any] | None = None,
             stream: StreamFactory | None = None) -> Any:
        body = self.call("GET", tail, params=params, confirm=confirm, decoder=decoder,
                         stream=stream)
        if body is NOT_MODIFIED:
            return body
        if not isinstance(body, Mapping):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              f"expected an object from {tail}")
        meta = body.get("meta") or {}
        slurm = (meta.get("slurm") or meta.get("Slurm")) if isinstance(meta, Mapping) else None
        rel = slurm.get("release") if isinstance(slurm, Mapping) else None
        if rel:
            self.slurm_release = str(rel)
        return body

    def _list(self, body: Any, key: str) -> Any:
        items = body.get(key)
        if key == "jobs" and isinstance(items, (JobTable, slurm_parse.JobsRefused)):
            return items  # tabulated (or refused) while it arrived
        # (jobs come as `slurm_parse.JobRow` structs from the typed decoder, else as dicts;
        # the set of types is built in C: 50,000 isinstance calls against an ABC are not free)
        if not isinstance(items, list) or not (
                set(map(type, items)) <= _ROW_FAST or all(isinstance(x, _ROW_TYPES) for x in items)):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              f"no list of {key}")
        return items

    # ---- reads ---------------------------------------------------------------------------------

    def listing(self, key: str, update_time: float | None = None) -> Any:
        """The ``GET /<key>`` body (``nodes`` or ``jobs``), or `NOT_MODIFIED` (304).

        With ``update_time`` the answer is returned as the server gave it (an error is not
        confirmed here: `SlurmSchedulerSource` repeats the request without it instead).
        """
        params = {"update_time": str(int(update_time))} if update_time else None
        body = self._get(key, params, confirm=params is None,
                         decoder=slurm_parse.listing_decoder(key),  # only the keys read
                         stream=slurm_parse.listing_stream(key))  # decoded as it arrives
        if body is not NOT_MODIFIED:
            self._list(body, key)
        return body

    def nodes(self, update_time: float | None = None) -> Any:
        return self.listing("nodes", update_time)

    def jobs(self, update_time: float | None = None) -> Any:
        return self.listing("jobs", update_time)

    def partitions(self) -> list[dict[str, Any]]:
        return self._list(self._get("partitions"), "partitions")

    def diag(self) -> dict[str, Any]:
        body = self._get("diag")
        stats = body.get("statistics")
        if not isinstance(stats, Mapping):
            raise SourceError(ErrorKind.BAD_PAYLOAD, "diag answer has no statistics")
        return dict(stats)

    def ping(self) -> list[dict[str, Any]]:
        return self._list(self._get("ping"), "pings")

    # ---- actions -------------------------------------------------------------------------------

    def supports_node_update(self) -> bool:
        return self.detect_version() != "v0.0.38"

    def _require_node_update(self) -> None:
        v = self.detect_version()
        if v == "v0.0.38":
            raise SourceError(ErrorKind.CONFIG, "draining a node over REST needs Slurm 23.02 "
                              "(API v0.0.39) or newer; this server offers v0.0.38")

    def _post_node(self, name: str, payload: dict[str, Any], what: str) -> None:
        """``POST /node/NAME`` with an ``update_node_msg`` (the same body in v0.0.39..v0.0.45:
        ``state`` is an array of node state words, ``reason`` a string)."""
        self._require_node_update()
        body = self.call("POST", f"node/{name}", json=payload, expect_json=False)
        err = _refusal_in_body(body, self.http.host, what)
        if err is not None:
            raise err

    def drain_node(self, name: str, reason: str) -> None:
        """Drain a node (running jobs finish, no new ones start). Needs API v0.0.39+."""
        if not reason.strip():
            raise SourceError(ErrorKind.CONFIG, "draining a node needs a reason")
        self._post_node(name, {"state": ["DRAIN"], "reason": reason}, f"drain node {name}")

    def resume_node(self, name: str) -> None:
        """Return a drained or down node to service. Needs API v0.0.39+."""
        self._post_node(name, {"state": ["RESUME"]}, f"resume node {name}")

    def cancel_job(self, job_id: int, signal: str | None = None) -> None:
        """Cancel a job (or send ``signal``); cancelling a finished job again succeeds.

        v0.0.42+ may answer 200 with a per-job ``status`` whose ``error.code`` says it failed.
        """
        params = {"signal": signal} if signal else None
        body = self.call("DELETE", f"job/{int(job_id)}", params=params, expect_json=False)
        err = _refusal_in_body(body, self.http.host, f"cancel job {int(job_id)}")
        if err is not None:
            raise err


def _body_warnings(body: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("errors", "warnings"):
        entries = body.get(key)
        for e in entries if isinstance(entries, list) else ():
            if isinstance(e, Mapping):
                w = str(e.get("error") or e.get("description") or "")
            else:
                w = str(e)
            if w and not _NO_CHANGES.search(w):
                out.append(w)
    return out


def says_unchanged(body: Mapping[str, Any]) -> bool:
    """True when the answer carries the server's own "No job changes since update_time" note."""
    entries = body.get("warnings")
    for e in entries if isinstance(entries, list) else ():
        text = (str(e.get("description") or e.get("error") or "") if isinstance(e, Mapping)
                else str(e))
        if _NO_CHANGES.search(text):
            return True
    return False


class SlurmSchedulerSource:
    """Nodes and jobs from slurmrestd (kind "scheduler"), with ``update_time`` polling.

    The ``update_time`` sent is the server's own ``last_update`` when the API gives one
    (v0.0.40+); otherwise our previous request time minus ``skew_margin_s``, so a client clock
    running ahead of the controller's cannot hide a change (at worst it costs a full answer).
    An "unchanged" answer keeps the previous value (26.05 sends ``last_update`` 0 with it).
    """

    kind = "scheduler"

    def __init__(self, client: SlurmClient, *, name: str = "slurm", interval_s: float = 15.0,
                 use_update_time: bool = True, skew_margin_s: float = 30.0) -> None:
        self.client = client
        self.name = name
        self.interval_s = float(interval_s)
        self.use_update_time = use_update_time
        self.skew_margin_s = float(skew_margin_s)
        self._since: dict[str, float | None] = {"nodes": None, "jobs": None}
        self._partitions: tuple[str, ...] = ()
        #: endpoint -> why it is polled without update_time (said in the warnings)
        self.full_only: dict[str, str] = {}
        self._version: str | None = None

    def __repr__(self) -> str:
        return f"SlurmSchedulerSource({self.name!r}, {self.client!r})"

    def reset(self) -> None:
        """Forget the update times: the next fetch returns full tables."""
        self._since = {"nodes": None, "jobs": None}

    def _next_since(self, body: Mapping[str, Any], asked_at: float) -> float:
        lu = slurm_parse.nv(body.get("last_update"))
        if isinstance(lu, (int, float)) and 0 < lu < float("inf"):
            return float(lu)
        return asked_at - self.skew_margin_s

    def _poll(self, key: str) -> Any:
        """The body of ``GET /<key>`` or `NOT_MODIFIED`, with ``update_time`` where it works."""
        since = self._since[key] if self.use_update_time and key not in self.full_only else None
        if since is None:
            return self.client.listing(key)
        try:
            body = self.client.listing(key, since)
        except SourceError as e:
            if e.kind is not ErrorKind.HTTP or e.status not in _UPDATE_TIME_REFUSALS:
                raise
            return self._without_update_time(key, e)
        if body is NOT_MODIFIED or body[key]:
            return body
        if says_unchanged(body):
            return NOT_MODIFIED
        return self.client.listing(key)  # an empty list nobody vouched for: ask in full

    def _without_update_time(self, key: str, first: SourceError) -> Any:
        """Repeat a refused ``update_time`` request without it; remember the endpoint if that
        works. Failing the same way twice is the evidence that names the error."""
        host = self.client.http.host
        try:
            body = self.client._get(key, confirm=False)
        except AmbiguousServerError as e:
            if isinstance(first, AmbiguousServerError):
                raise token_rejected(host, f"answered 500 '{_UNSPECIFIED}' to GET {key} with "
                                     "and without update_time") from None
            raise self.client.confirm(e, f"GET {key}") from None
        if body is not NOT_MODIFIED:
            self.client._list(body, key)
        why = (f"update_time not usable on {key} (slurmrestd answered {first.status}); "
               f"{key} are polled in full")
        self.full_only[key] = why
        log.info("Slurm source %s: %s", self.name, why)
        return body

    def fetch(self) -> list[Update]:
        with gc_paused():  # 50,000 jobs are millions of objects: no GC passes while parsing
            return self._fetch()

    def _fetch(self) -> list[Update]:
        version = self.client.detect_version()
        if version != self._version:  # another API (first poll, or the server was upgraded)
            self._version = version
            self.full_only.clear()
            self.reset()
        warnings: list[str] = []
        t = _time.time()
        nbody = self._poll("nodes")
        nodes = None
        if nbody is not NOT_MODIFIED:
            try:
                nodes = slurm_parse.parse_nodes(nbody["nodes"])
            except (AttributeError, TypeError, ValueError, KeyError) as e:
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected node shape from "
                                  f"{self.client.http.host} ({type(e).__name__})") from None
            warnings += _body_warnings(nbody)
            seen: dict[str, None] = {}
            for ps in nodes.partitions:
                seen.update(dict.fromkeys(ps))
            self._partitions = tuple(seen)
        t_jobs = _time.time()
        jbody = self._poll("jobs")
        jobs = None
        if jbody is not NOT_MODIFIED:
            listed = jbody.get("jobs")
            # (a table or a refusal when tabulated while it arrived, else the decoded jobs)
            refused = listed.kind if isinstance(listed, slurm_parse.JobsRefused) else None
            if refused is None:
                try:
                    jobs = (listed if isinstance(listed, JobTable)
                            else slurm_parse.parse_jobs(listed))
                except (AttributeError, TypeError, ValueError, KeyError) as e:
                    refused = type(e).__name__
            if refused is not None:
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected job shape from "
                                  f"{self.client.http.host} ({refused})")
            warnings += _body_warnings(jbody)
        # only advance the update times once both answers were parsed; "unchanged" keeps them
        if nbody is not NOT_MODIFIED:
            self._since["nodes"] = self._next_since(nbody, t)
        if jbody is not NOT_MODIFIED:
            self._since["jobs"] = self._next_since(jbody, t_jobs)
        warnings += self.full_only.values()
        return [SchedulerUpdate(time=t, nodes=nodes, jobs=jobs, partitions=self._partitions,
                                api_version=self.client.version or "",
                                warnings=tuple(dict.fromkeys(warnings)))]

    def close(self) -> None:
        self.client.close()

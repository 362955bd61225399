"""slurmrestd (Slurm REST API v0.0.38 .. v0.0.42): client, operator actions, scheduler source.

The client finds the newest API version the server offers (from ``/openapi/v3``, else by
probing ``/slurm/vX/ping`` from v0.0.42 down) and remembers it. Polling uses
``?update_time=`` so an unchanged cluster costs an empty 304 (STACK.md); the source then
reports ``jobs=None`` / ``nodes=None`` ("unchanged") instead of re-sending tables.

slurmrestd's answers to auth problems are not what a generic client expects (STACK.md): no or
incomplete credentials give 401 with the plain text "Authentication failure", and a bad or
expired token gives **500** with ``errors[].error == "Unspecified error"``. Both are mapped to
AUTH with words an operator can act on, not to "server error".

Lives in the poller's worker thread (actions run in an action worker with their own client).
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping
from typing import Any

from console.model import SchedulerUpdate, Update
from console.sources import slurm_parse
from console.sources.base import ErrorKind, SourceError
from console.sources.http import NOT_MODIFIED, HttpClient, Reply, gc_paused, server_error_text

#: API versions this client understands, newest first.
SUPPORTED_VERSIONS: tuple[str, ...] = ("v0.0.42", "v0.0.41", "v0.0.40", "v0.0.39", "v0.0.38")

#: The Slurm release that introduced each API version (for messages).
SLURM_RELEASE = {"v0.0.38": "22.05", "v0.0.39": "23.02", "v0.0.40": "23.11",
                 "v0.0.41": "24.05", "v0.0.42": "24.11"}


def _slurm_error_mapper(reply: Reply, host: str) -> SourceError | None:
    body = reply.body
    errs: list[str] = []
    if isinstance(body, Mapping):
        for e in body.get("errors") or ():
            if isinstance(e, Mapping):
                errs.append(str(e.get("error") or e.get("description") or ""))
    if reply.status == 401:
        return SourceError(ErrorKind.AUTH, "authentication required: no user name or token sent "
                           f"(slurmrestd at {host} answered 'Authentication failure')", status=401)
    if reply.status == 500 and "Unspecified error" in errs:
        return SourceError(ErrorKind.AUTH, f"token rejected or expired (slurmrestd at {host}); "
                           "create a new one with 'scontrol token' and store it again", status=500)
    if reply.status == 403 or any("permission denied" in e.lower() for e in errs):
        words = server_error_text(body, reply.text)
        return SourceError(ErrorKind.AUTH, f"permission denied by slurmrestd at {host}: {words}",
                           status=reply.status)
    if reply.status == 405:
        return SourceError(ErrorKind.CONFIG, f"slurmrestd at {host} does not offer {reply.method} "
                           f"{reply.path} (405): not supported by this API version", status=405)
    if errs and reply.status in (400, 404, 500):
        return SourceError(ErrorKind.HTTP, f"slurmrestd at {host} refused the request "
                           f"({reply.status}): {'; '.join(e for e in errs if e)}",
                           status=reply.status)
    return None


class SlurmClient:
    """Slurm REST calls for one cluster. ``version`` pins the API version (else detected)."""

    def __init__(self, http: HttpClient, version: str | None = None) -> None:
        http.error_mapper = http.error_mapper or _slurm_error_mapper
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
        self.slurm_release: str = ""

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
        try:
            spec = self.http.get_json("openapi/v3")
            paths = spec.get("paths") if isinstance(spec, Mapping) else None
            if isinstance(paths, Mapping):
                for p in paths:
                    parts = str(p).split("/")
                    if len(parts) > 2 and parts[1] == "slurm":
                        offered.add(parts[2])
        except SourceError as e:
            if e.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT, ErrorKind.CONFIG):
                raise
        for v in SUPPORTED_VERSIONS:
            if v in offered:
                self.version = v
                return v
        for v in SUPPORTED_VERSIONS:  # no usable spec: probe, newest first
            try:
                self.http.get_json(f"slurm/{v}/ping")
            except SourceError as e:
                if e.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT,
                              ErrorKind.CONFIG) or e.status not in (400, 404, 405):
                    raise
                continue
            self.version = v
            return v
        raise SourceError(ErrorKind.CONFIG, f"slurmrestd at {self.http.host} offers none of the "
                          f"API versions {SUPPORTED_VERSIONS[-1]}..{SUPPORTED_VERSIONS[0]}"
                          + (f" (it offers {', '.join(sorted(offered))})" if offered else ""))

    def _path(self, tail: str) -> str:
        return f"slurm/{self.detect_version()}/{tail}"

    def _get(self, tail: str, params: Mapping[str, Any] | None = None) -> Any:
        body = self.http.get_json(self._path(tail), params)
        if body is NOT_MODIFIED:
            return body
        if not isinstance(body, Mapping):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              f"expected an object from {tail}")
        meta = body.get("meta") or {}
        rel = (meta.get("slurm") or meta.get("Slurm") or {}).get("release") if isinstance(meta, Mapping) else None
        if rel:
            self.slurm_release = str(rel)
        return body

    def _list(self, body: Any, key: str) -> list[dict[str, Any]]:
        items = body.get(key)
        if not isinstance(items, list) or not all(isinstance(x, Mapping) for x in items):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              f"no list of {key}")
        return items

    # ---- reads ---------------------------------------------------------------------------------

    def _changed_since(self, key: str, update_time: float | None) -> Any:
        """The ``GET /<key>`` body, or `NOT_MODIFIED` when nothing changed since ``update_time``."""
        params = {"update_time": str(int(update_time))} if update_time else None
        body = self._get(key, params)
        if body is not NOT_MODIFIED:
            self._list(body, key)
        return body

    def nodes(self, update_time: float | None = None) -> Any:
        return self._changed_since("nodes", update_time)

    def jobs(self, update_time: float | None = None) -> Any:
        return self._changed_since("jobs", update_time)

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

    def _post_node(self, name: str, payload: dict[str, Any]) -> None:
        self._require_node_update()
        self.http.request("POST", self._path(f"node/{name}"), json=payload, expect_json=False)

    def drain_node(self, name: str, reason: str) -> None:
        """Drain a node (running jobs finish, no new ones start). Needs API v0.0.39+."""
        if not reason.strip():
            raise SourceError(ErrorKind.CONFIG, "draining a node needs a reason")
        self._post_node(name, {"state": ["DRAIN"], "reason": reason})

    def resume_node(self, name: str) -> None:
        """Return a drained or down node to service. Needs API v0.0.39+."""
        self._post_node(name, {"state": ["RESUME"]})

    def cancel_job(self, job_id: int, signal: str | None = None) -> None:
        """Cancel a job (or send ``signal``); cancelling a finished job again succeeds."""
        params = {"signal": signal} if signal else None
        self.http.request("DELETE", self._path(f"job/{int(job_id)}"), params=params,
                          expect_json=False)


def _body_warnings(body: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("errors", "warnings"):
        for e in body.get(key) or ():
            if isinstance(e, Mapping):
                w = str(e.get("error") or e.get("description") or "")
            else:
                w = str(e)
            if w:
                out.append(w)
    return out


class SlurmSchedulerSource:
    """Nodes and jobs from slurmrestd (kind "scheduler"), with ``update_time`` polling.

    The ``update_time`` sent is the server's own ``last_update`` when the API gives one
    (v0.0.40+); otherwise our previous request time minus ``skew_margin_s``, so a client clock
    running ahead of the controller's cannot hide a change (at worst it costs a full answer).
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

    def fetch(self) -> list[Update]:
        with gc_paused():  # 50,000 jobs are millions of objects: no GC passes while parsing
            return self._fetch()

    def _fetch(self) -> list[Update]:
        version = self.client.detect_version()
        warnings: list[str] = []
        t = _time.time()
        since_n = self._since["nodes"] if self.use_update_time else None
        nbody = self.client.nodes(since_n)
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
        since_j = self._since["jobs"] if self.use_update_time else None
        jbody = self.client.jobs(since_j)
        jobs = None
        if jbody is not NOT_MODIFIED:
            try:
                jobs = slurm_parse.parse_jobs(jbody["jobs"])
            except (AttributeError, TypeError, ValueError, KeyError) as e:
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected job shape from "
                                  f"{self.client.http.host} ({type(e).__name__})") from None
            warnings += _body_warnings(jbody)
        # only advance the update times once both answers were parsed
        if nbody is not NOT_MODIFIED:
            self._since["nodes"] = self._next_since(nbody, t)
        if jbody is not NOT_MODIFIED:
            self._since["jobs"] = self._next_since(jbody, t_jobs)
        return [SchedulerUpdate(time=t, nodes=nodes, jobs=jobs, partitions=self._partitions,
                                api_version=version, warnings=tuple(dict.fromkeys(warnings)))]

    def close(self) -> None:
        self.client.close()

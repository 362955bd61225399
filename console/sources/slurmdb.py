"""Slurm accounting through slurmrestd: an `AccountingSource` over ``/slurmdb/vX/`` and ``/shares``.

It reads, for a period: the job records (``/slurmdb/vX/jobs``), the GPU limits of accounts
and QOS (``/slurmdb/vX/associations``, ``/slurmdb/vX/qos``) and fair share (``/slurm/vX/shares``,
v0.0.39+). It shares the scheduler source's `SlurmClient` (version detection, auth, deadlines,
answer size limit and the evidence-based naming of slurmrestd's errors), so a site configures
slurmrestd once.

Behaviour measured on real slurmrestd with slurmdbd (22.05, 24.11, 26.05), that shapes this code:

- ``start_time``/``end_time`` take a date and time (``2026-12-04T07:26:09``) in *every*
  version, read in the server's own time zone; epoch seconds are refused with 400 (v0.0.38) or
  422 (v0.0.40, v0.0.41). The time zone of the server is unknown here, so the window asked for is
  widened by a day on each side and the jobs are kept by their own epoch times
  (`slurmdb_parse.overlaps`), which are exact.
- A job's ``time.start``/``time.end`` are its real times (the query window does not truncate
  them, with or without ``disable_truncate_usage_time``), 0 when not yet.
- A period without jobs: 22.05 answers 200 with an empty list and the error 9003 "Nothing
  found", 24.11+ with an empty list and a warning "found nothing"; both are an empty period.
- Without the accounting plugins (``openapi/slurmdbd``, or ``openapi/dbv0.0.38`` on 22.05) or
  without slurmdbd, ``/slurmdb/`` answers 404. Jobs are the point of a read: that is an error
  in words. Missing limits or fair share only become notes; nothing missing is turned into 0.

Blocking; runs in a worker thread, never the GUI thread.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Mapping
from typing import Any

from console.accounting.records import AccountingSnapshot, FairShare, GpuLimit, JobUsage
from console.sources import slurmdb_parse as parse
from console.sources.base import ErrorKind, SourceError
from console.sources.slurm import SLURM_RELEASE, AmbiguousServerError, SlurmClient

log = logging.getLogger(__name__)

#: The window asked of slurmdbd is widened by this much on each side: its dates are read in the
#: server's time zone (UTC-12..UTC+14), which this client cannot know.
TZ_MARGIN_S = 86_400.0
#: Longest window asked in one request: a month of a large site's jobs in one answer could pass
#: the answer size limit; a day at a time keeps each answer bounded.
DEFAULT_CHUNK_S = 86_400.0
#: /shares (fair share) appeared with this API version (Slurm 23.02).
SHARES_SINCE = "v0.0.39"
#: ESLURM_REST_EMPTY_RESULT: 22.05 answers a period without jobs with this "error" ("Nothing
#: found with query") next to an empty list; 24.11+ with a warning. Both mean: no jobs.
_NOTHING_FOUND = 9003


def _utc_words(t: float) -> str:
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(t))


class SlurmdbAccountingSource:
    """Usage, limits and fair share for a period, from slurmdbd through slurmrestd.

    ``cluster`` keeps one cluster's records when slurmdbd serves several; None means the
    cluster slurmrestd itself belongs to, as its answers name it (``meta.slurm.cluster``, 24.11+;
    22.05 does not say, and records of several clusters are then counted together, with a note).
    ``chunk_s`` bounds the window of one jobs request.
    """

    kind = "accounting"

    def __init__(self, client: SlurmClient, *, cluster: str | None = None,
                 chunk_s: float = DEFAULT_CHUNK_S, name: str = "slurmdb",
                 clock: Callable[[], float] = _time.time) -> None:
        if chunk_s <= 0:
            raise SourceError(ErrorKind.CONFIG, "accounting chunk_s must be positive")
        self.client = client
        self.cluster = cluster or None
        #: the cluster whose records are kept: configured, else learned from the answers
        self.served_cluster: str | None = self.cluster
        self.chunk_s = float(chunk_s)
        self.name = name
        self._clock = clock
        self._clusters_seen: set[str] = set()

    def __repr__(self) -> str:
        return f"SlurmdbAccountingSource({self.name!r}, {self.client!r})"

    def close(self) -> None:
        self.client.close()

    # -- requests ----------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """GET one accounting path; name an ambiguous 22.05 500 with ``ping`` as the scheduler
        source does; refuse an answer that is not an object."""
        try:
            body = self.client.http.request("GET", path, params=params)
        except AmbiguousServerError as e:
            raise self.client.confirm(e, f"GET /{path}") from None
        if not isinstance(body, Mapping):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from "
                              f"{self.client.http.host}: expected an object from /{path}")
        errs = [e for e in body.get("errors") or ()
                if isinstance(e, Mapping) and e.get("error_number") != _NOTHING_FOUND]
        words = [str(e.get("description") or e.get("error") or "") for e in errs]
        words = [w for w in words if w]
        if words:
            raise SourceError(ErrorKind.QUERY, f"slurmrestd at {self.client.http.host} reported "
                              f"for /{path}: {'; '.join(words)}")
        return body

    def _missing(self, err: SourceError) -> bool:
        return err.status == 404

    # -- reads -------------------------------------------------------------------------------

    def read(self, since: float, until: float) -> AccountingSnapshot:
        """Everything accounting says about ``[since, until)``; raises `SourceError` when the
        jobs cannot be read, notes what else is missing."""
        if not until > since:
            raise SourceError(ErrorKind.CONFIG, "an accounting period must end after it starts")
        version = self.client.detect_version()
        notes: list[str] = []
        jobs = self.jobs(version, since, until)
        if self.served_cluster is None and len(self._clusters_seen) > 1:
            notes.append("slurmdbd holds records of several clusters (" + ", ".join(
                sorted(self._clusters_seen)) + ") and this slurmrestd does not name its own: "
                "they are counted together")
        if jobs and not any(j.gpus for j in jobs if j.start is not None):
            notes.append("no job in this period holds a gres/gpu TRES: either no GPU job ran, or "
                         "the site does not account GPUs (AccountingStorageTRES=gres/gpu)")
        limits = self._limits(version, notes)
        shares, used = self._shares(version, notes)
        if used:
            limits = [GpuLimit(lim.scope, lim.name, lim.gpus, lim.gpu_minutes, used.get(lim.name))
                      if lim.scope == "account" else lim for lim in limits]
        return AccountingSnapshot(jobs=jobs, limits=limits, shares=shares, since=since,
                                  until=until, taken_at=self._clock(), notes=tuple(notes))

    def jobs(self, version: str, since: float, until: float) -> list[JobUsage]:
        """Job records active in ``[since, until)``, one per job, asked a chunk at a time."""
        path = f"slurmdb/{version}/jobs"
        seen: dict[tuple[str, str, str], JobUsage] = {}
        self._clusters_seen = set()
        lo, hi = since - TZ_MARGIN_S, until + TZ_MARGIN_S
        t = lo
        while t < hi:
            t_end = min(t + self.chunk_s, hi)
            params = {"start_time": _utc_words(t), "end_time": _utc_words(t_end),
                      "skip_steps": "true"}
            if self.served_cluster:
                params["cluster"] = self.served_cluster
            if version != "v0.0.38":  # the parameter exists from v0.0.39 on
                params["disable_truncate_usage_time"] = "true"
            try:
                body = self._get(path, params)
            except SourceError as e:
                if self._missing(e):
                    raise SourceError(ErrorKind.CONFIG, self._no_slurmdb_words(version),
                                      status=404) from None
                raise
            if self.served_cluster is None:
                named = parse.dig(body, "meta", "slurm", "cluster")
                self.served_cluster = named if isinstance(named, str) and named else None
            raw = body.get("jobs")
            if not isinstance(raw, list):
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from "
                                  f"{self.client.http.host}: no list of jobs from /{path}")
            try:
                for d in raw:
                    if not isinstance(d, Mapping):
                        raise parse.AccountingShapeError("a job is not an object")
                    cluster = d.get("cluster")
                    if self.served_cluster and cluster and cluster != self.served_cluster:
                        continue
                    self._clusters_seen.add(str(cluster or ""))
                    job = parse.parse_job(d)
                    if parse.overlaps(job, since, until):
                        seen[parse.job_key(d)] = job
            except (parse.AccountingShapeError, ValueError, TypeError, AttributeError) as e:
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected job record from "
                                  f"{self.client.http.host}: {e}") from None
            t = t_end
        return sorted(seen.values(), key=lambda j: (j.start or j.end or 0.0, j.job_id))

    def _no_slurmdb_words(self, version: str) -> str:
        plugin = "openapi/dbv0.0.38" if version == "v0.0.38" else "openapi/slurmdbd"
        return (f"slurmrestd at {self.client.http.host} does not serve Slurm accounting "
                f"(404 for /slurmdb/{version}/jobs): start it with the {plugin} plugin "
                "(-s), and Slurm with slurmdbd")

    def _limits(self, version: str, notes: list[str]) -> list[GpuLimit]:
        out: list[GpuLimit] = []
        for what, path in (("associations", f"slurmdb/{version}/associations"),
                           ("QOS", f"slurmdb/{version}/qos")):
            try:
                body = self._get(path)
                if what == "associations":
                    assocs = body.get("associations")
                    if not isinstance(assocs, list):
                        raise parse.AccountingShapeError("no list of associations")
                    out += parse.account_limits(assocs, self.served_cluster)
                else:
                    qos, minutes_shown = parse.qos_limits(parse.qos_list(body))
                    out += qos
                    if not minutes_shown:
                        notes.append(f"QOS GPU-minute limits (GrpTRESMins) unknown: API {version} "
                                     "does not show them")
            except parse.AccountingShapeError as e:
                notes.append(f"{what} limits unknown: unexpected answer to /{path} ({e})")
            except SourceError as e:
                if e.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT):
                    raise
                notes.append(f"{what} limits unknown: {e.message}")
        return out

    def _shares(self, version: str, notes: list[str]) -> tuple[list[FairShare], dict[str, float]]:
        if version < SHARES_SINCE:
            notes.append(f"fair share and quota use unknown: /shares needs Slurm 23.02 (API "
                         f"{SHARES_SINCE}); this server offers {version} (Slurm "
                         f"{SLURM_RELEASE.get(version, '?')})")
            return [], {}
        path = f"slurm/{version}/shares"
        try:
            rows = parse.share_rows(self._get(path))
            return (parse.parse_shares(rows, self.served_cluster),
                    parse.used_gpu_minutes(rows, self.served_cluster))
        except parse.AccountingShapeError as e:
            notes.append(f"fair share unknown: unexpected answer to /{path} ({e})")
        except SourceError as e:
            if e.kind in (ErrorKind.AUTH, ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT):
                raise
            notes.append(f"fair share unknown: {e.message}")
        return [], {}


#: Seconds one accounting request may take at least: slurmdbd answers from its database, and a
#: day of a large site's jobs takes far longer than a scheduler poll is allowed.
MIN_READ_TIMEOUT_S = 60.0


def build_accounting_source(cluster: Any, *, secrets: object | None = None
                            ) -> SlurmdbAccountingSource | None:
    """The accounting reader of a configured cluster (``ClusterSettings``), or None without a
    ``[clusters.slurm]`` endpoint. Its own HTTP client (clients are not shared across worker
    threads), with the endpoint's URL, TLS, auth and keyring entry, and a longer read timeout."""
    s = getattr(cluster, "slurm", None)
    if s is None:
        return None
    from console.sources.live import _http

    http = _http(cluster, "slurm", s, s.url, secrets)
    http.timeout = (http.timeout[0], max(http.timeout[1], MIN_READ_TIMEOUT_S))
    return SlurmdbAccountingSource(SlurmClient(http, version=s.api_version),
                                   name=f"{getattr(cluster, 'name', '')} slurmdbd".strip())

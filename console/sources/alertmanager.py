"""Alertmanager API v2: alerts, groups, silences, and acknowledgement as a silence.

Acknowledging follows karma's convention (FACTS 6): an ACK is a silence whose comment starts
with ``ACK!`` and that expires on its own (one hour by default here), so a forgotten ACK never
hides a problem for good. Fields added by newer Alertmanagers (``mutedBy`` 0.28, silence
``annotations`` 0.33, ``routeLabels`` 0.34) are read when present and never required, so
0.25 (Debian 12) works.

Lives in the poller's worker thread.
"""

from __future__ import annotations

import datetime as _dt
import re
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from console.model import Alert, AlertsUpdate, Matcher, Severity, Silence, Update
from console.sources.base import ErrorKind, SourceError
from console.sources.http import NOT_MODIFIED, HttpClient, Reply, server_error_text, strip_port

ACK_PREFIX = "ACK! "
DEFAULT_ACK_S = 3600.0

NODE_LABELS = ("Hostname", "hostname", "node", "nodename", "instance")
JOB_LABELS = ("hpc_job", "job_id", "jobid", "slurm_job_id")
TENANT_LABELS = ("account", "tenant")

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_time(text: Any) -> float:
    """RFC 3339 (with up to nanoseconds, as Go writes it) to epoch seconds; NaN if unparseable."""
    if not isinstance(text, str):
        return float("nan")
    m = _RFC3339.match(text.strip())
    if not m:
        return float("nan")
    base, frac, tz = m.groups()
    tz = "+00:00" if tz in (None, "Z") else tz
    try:  # the pattern admits month 13, hour 99 and year 0, which no clock shows
        dt = _dt.datetime.fromisoformat(base + tz)
        return dt.timestamp() + (float("0." + frac) if frac else 0.0)
    except (ValueError, OverflowError):
        return float("nan")


def format_time(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _am_error_mapper(reply: Reply, host: str) -> SourceError | None:
    if reply.status == 422 or (reply.status == 400 and reply.body is not None):
        words = server_error_text(reply.body, reply.text)
        return SourceError(ErrorKind.QUERY, f"Alertmanager at {host} rejected the request: {words}",
                           status=reply.status)
    return None


def _shape_error(host: str, what: str) -> SourceError:
    return SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {host}: {what}")


class AlertmanagerClient:
    """Alertmanager API v2 calls. Raises `SourceError`."""

    def __init__(self, http: HttpClient) -> None:
        http.error_mapper = http.error_mapper or _am_error_mapper
        self.http = http

    @classmethod
    def from_url(cls, base_url: str, **http_kwargs: Any) -> "AlertmanagerClient":
        return cls(HttpClient(base_url, **http_kwargs))

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"AlertmanagerClient({self.http.base_url!r})"

    def _list(self, path: str, params: Any = None) -> list[dict[str, Any]]:
        body = self.http.get_json(path, params)
        if body is NOT_MODIFIED or not isinstance(body, list) or \
                not all(isinstance(x, dict) for x in body):
            raise _shape_error(self.http.host, f"expected a list of objects from {path}")
        return body

    @staticmethod
    def _filters(params: list[tuple[str, str]], filters: Iterable[str]) -> list[tuple[str, str]]:
        params.extend(("filter", f) for f in filters)
        return params

    def alerts(self, *, active: bool = True, silenced: bool = True, inhibited: bool = True,
               unprocessed: bool = True, filters: Sequence[str] = (),
               receiver: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``; ``filters`` are matcher strings such as ``severity="critical"``."""
        params = [("active", str(active).lower()), ("silenced", str(silenced).lower()),
                  ("inhibited", str(inhibited).lower()), ("unprocessed", str(unprocessed).lower())]
        if receiver:
            params.append(("receiver", receiver))
        return self._list("api/v2/alerts", self._filters(params, filters))

    def groups(self, *, active: bool = True, silenced: bool = True, inhibited: bool = True,
               filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        params = [("active", str(active).lower()), ("silenced", str(silenced).lower()),
                  ("inhibited", str(inhibited).lower())]
        return self._list("api/v2/alerts/groups", self._filters(params, filters))

    def silences(self, filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        return self._list("api/v2/silences", self._filters([], filters))

    def silence(self, silence_id: str) -> dict[str, Any]:
        body = self.http.get_json(f"api/v2/silence/{silence_id}")
        if not isinstance(body, dict):
            raise _shape_error(self.http.host, "expected a silence object")
        return body

    def create_silence(self, matchers: Sequence[Matcher], starts: float, ends: float,
                       created_by: str, comment: str) -> str:
        """Create a silence and return its id. ``starts``/``ends`` are epoch seconds."""
        if not matchers:
            raise SourceError(ErrorKind.CONFIG, "a silence needs at least one matcher")
        if ends <= starts:
            raise SourceError(ErrorKind.CONFIG, "a silence must end after it starts")
        payload = {
            "matchers": [{"name": m.name, "value": m.value, "isRegex": m.is_regex,
                          "isEqual": m.is_equal} for m in matchers],
            "startsAt": format_time(starts), "endsAt": format_time(ends),
            "createdBy": created_by, "comment": comment,
        }
        body = self.http.request("POST", "api/v2/silences", json=payload)
        sid = body.get("silenceID") if isinstance(body, dict) else None
        if not isinstance(sid, str) or not sid:
            raise _shape_error(self.http.host, "no silenceID in the answer to a new silence")
        return sid

    def expire_silence(self, silence_id: str) -> None:
        """Expire (delete) a silence; expiring an already expired one succeeds quietly."""
        try:
            self.http.request("DELETE", f"api/v2/silence/{silence_id}", expect_json=False)
        except SourceError as e:
            # Alertmanager 0.25 answers an unknown id with 500 "silence not found", 0.33 with 404.
            if e.status == 404 or (e.status == 500 and "not found" in e.message):
                raise SourceError(ErrorKind.QUERY, f"silence {silence_id} not found on "
                                  f"{self.http.host}", status=e.status) from None
            raise

    def status(self) -> dict[str, Any]:
        body = self.http.get_json("api/v2/status")
        if not isinstance(body, dict):
            raise _shape_error(self.http.host, "expected a status object")
        return body


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _first(labels: Mapping[str, str], keys: Sequence[str]) -> str | None:
    for k in keys:
        v = labels.get(k)
        if v:
            return v
    return None


def _int_or_none(v: str | None) -> int | None:
    # ASCII digits only: isdigit() also takes "²", which int() refuses; and int() refuses
    # more than 4,300 digits, which is no GPU index or job id either.
    t = v.strip() if v is not None else ""
    return int(t) if t.isascii() and t.isdigit() and len(t) <= 18 else None


def parse_alert(d: Mapping[str, Any], source: str = "alertmanager") -> Alert:
    """A gettableAlert to an `Alert` (state firing/silenced/inhibited)."""
    labels = {str(k): str(v) for k, v in (d.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (d.get("annotations") or {}).items()}
    st = d.get("status") or {}
    silenced_by = tuple(st.get("silencedBy") or ())
    inhibited_by = tuple(st.get("inhibitedBy") or ()) + tuple(st.get("mutedBy") or ())
    raw = st.get("state") or "active"
    if raw == "suppressed":
        state = "silenced" if silenced_by else "inhibited"
    else:
        state = "firing"  # "active", and "unprocessed" (received, not yet routed)
    node = _first(labels, NODE_LABELS[:-1])
    if node is None and labels.get("instance"):
        node = strip_port(labels["instance"])
    return Alert(
        fingerprint=str(d.get("fingerprint") or ""),
        name=labels.get("alertname", ""),
        severity=Severity.parse(labels.get("severity")),
        state=state,
        starts_at=parse_time(d.get("startsAt")),
        labels=labels, annotations=annotations,
        silenced_by=silenced_by, inhibited_by=inhibited_by,
        source=source, generator_url=str(d.get("generatorURL") or ""),
        node=node, gpu=_int_or_none(labels.get("gpu")),
        job_id=_int_or_none(_first(labels, JOB_LABELS)),
        rack=labels.get("rack") or None, tenant=_first(labels, TENANT_LABELS),
    )


def parse_silence(d: Mapping[str, Any]) -> Silence:
    matchers = tuple(Matcher(str(m.get("name", "")), str(m.get("value", "")),
                             bool(m.get("isRegex", False)), bool(m.get("isEqual", True)))
                     for m in d.get("matchers") or ())
    return Silence(id=str(d.get("id") or ""), matchers=matchers,
                   starts_at=parse_time(d.get("startsAt")), ends_at=parse_time(d.get("endsAt")),
                   created_by=str(d.get("createdBy") or ""), comment=str(d.get("comment") or ""),
                   state=str((d.get("status") or {}).get("state") or ""))


def ack_matchers(alert: Alert) -> tuple[Matcher, ...]:
    """Matchers that silence exactly this alert: every one of its labels, equal."""
    return tuple(Matcher(k, v) for k, v in sorted(alert.labels.items()) if not k.startswith("__"))


def acknowledge(client: AlertmanagerClient, alert: Alert, created_by: str, comment: str = "",
                duration_s: float = DEFAULT_ACK_S, now: float | None = None) -> str:
    """Create an ACK silence for ``alert`` (karma convention); returns the silence id."""
    t = _time.time() if now is None else now
    text = ACK_PREFIX + (comment or f"acknowledged by {created_by}")
    return client.create_silence(ack_matchers(alert), t, t + duration_s, created_by, text)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


def _fetch_one(client: AlertmanagerClient, source: str) -> tuple[list[Alert], list[Silence]]:
    try:
        alerts = [parse_alert(a, source) for a in client.alerts()]
        silences = [parse_silence(s) for s in client.silences()]
    except (AttributeError, TypeError, ValueError) as e:
        raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected alert or silence shape from "
                          f"{client.http.host} ({type(e).__name__})") from None
    return alerts, silences


def _sorted(alerts: Iterable[Alert]) -> tuple[Alert, ...]:
    return tuple(sorted(alerts, key=lambda a: (a.severity, -(a.starts_at if a.starts_at == a.starts_at else 0), a.name)))


class AlertmanagerSource:
    """Alerts (firing, silenced, inhibited) and silences from one Alertmanager (kind "alerts")."""

    kind = "alerts"

    def __init__(self, client: AlertmanagerClient, *, name: str = "alertmanager",
                 interval_s: float = 15.0) -> None:
        self.client = client
        self.name = name
        self.interval_s = float(interval_s)

    def __repr__(self) -> str:
        return f"AlertmanagerSource({self.name!r}, {self.client!r})"

    def fetch(self) -> list[Update]:
        alerts, silences = _fetch_one(self.client, self.name)
        return [AlertsUpdate(time=_time.time(), alerts=_sorted(alerts), silences=tuple(silences))]

    def close(self) -> None:
        self.client.close()


class MultiAlertmanagerSource:
    """Several Alertmanagers (an HA pair, or one per site) as one source.

    Alerts are de-duplicated by fingerprint and silences by id. If some fail, the others'
    data is returned with a warning; only when all fail is the first error raised.
    """

    kind = "alerts"

    def __init__(self, clients: Sequence[AlertmanagerClient], *, name: str = "alertmanager",
                 interval_s: float = 15.0) -> None:
        if not clients:
            raise SourceError(ErrorKind.CONFIG, "no Alertmanager configured")
        self.clients = list(clients)
        self.name = name
        self.interval_s = float(interval_s)

    def fetch(self) -> list[Update]:
        alerts: dict[str, Alert] = {}
        silences: dict[str, Silence] = {}
        warnings: list[str] = []
        errors: list[SourceError] = []
        for c in self.clients:
            try:
                a, s = _fetch_one(c, self.name)
            except SourceError as e:
                errors.append(e)
                warnings.append(f"{c.http.host}: {e.message}")
                continue
            for x in a:
                alerts.setdefault(x.fingerprint or f"{x.name}{sorted(x.labels.items())}", x)
            for x in s:
                silences.setdefault(x.id, x)
        if len(errors) == len(self.clients):
            raise errors[0]
        return [AlertsUpdate(time=_time.time(), alerts=_sorted(alerts.values()),
                             silences=tuple(silences.values()), warnings=tuple(warnings))]

    def close(self) -> None:
        for c in self.clients:
            c.close()

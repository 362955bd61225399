"""Prometheus' own alert states (``GET /api/v1/alerts``): the *pending* alerts.

Why a second alerts source: Prometheus sends an alert to Alertmanager only once its ``for:``
has elapsed, so Alertmanager never knows an alert that is still *pending* ("GpuHot on n0123
for 3 min, fires at 5"). Only Prometheus does. This source asks it for them.

Firing alerts are left to Alertmanager, which knows whether they are silenced or inhibited:
listing Prometheus' copy as well would show each firing alert twice. Only when the cluster
has no Alertmanager at all are the firing ones taken from here (``include_firing``).

Identity: the fingerprint is computed exactly as Prometheus and Alertmanager compute it (FNV-1a
64 over the sorted label pairs), so an alert with the same labels has the same fingerprint
in both. Alertmanager's copy usually carries Prometheus' external labels on top (``cluster``),
so the state's merge also treats a pending alert as covered by any firing, silenced or
inhibited alert of the same name whose labels include all of its own (console/state.py).

Drill-down links (node, GPU, job, rack, tenant) come from the labels through the same parser
as Alertmanager's alerts, so both kinds link alike. Lives in the poller's worker thread.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping
from typing import Any

from console.model import Alert, AlertsUpdate, Update
from console.sources.alertmanager import parse_alert
from console.sources.base import ErrorKind, SourceError
from console.sources.prometheus import PrometheusClient

ALERTS_PATH = "api/v1/alerts"
#: The states Prometheus reports for an active alert rule instance (inactive ones are not listed).
PROMETHEUS_STATES = ("pending", "firing")

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF  # prometheus/common model.SeparatorByte


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The label set's fingerprint as Alertmanager prints it (16 hex digits).

    Same algorithm as prometheus/common ``LabelSet.Fingerprint``: FNV-1a 64 over each name and
    value in name order, each followed by the byte 0xff. Checked against the fingerprints of
    the recorded Alertmanager answers.
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for b in part.encode("utf-8"):
                h = ((h ^ b) * _FNV_PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def _bad(host: str, what: str) -> SourceError:
    return SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {host}: {what}")


def fetch_rule_alerts(client: PrometheusClient) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """``GET /api/v1/alerts``: the raw active alerts and the server's warnings, envelope
    checked. Raises `SourceError`.

    A 404 means the server evaluates no rules of its own (a query frontend, or a path prefix
    missing from the URL); the message says how to stop asking.
    """
    try:
        data, warnings = client.alerts()
    except SourceError as e:
        if e.status == 404:
            raise SourceError(ErrorKind.HTTP, f"{client.http.host} does not serve /{ALERTS_PATH} "
                              "(404): it evaluates no alert rules here; set alerts = false under "
                              "[clusters.prometheus] to stop asking", status=404) from None
        raise
    rows = data.get("alerts") if isinstance(data, Mapping) else None
    if not isinstance(rows, list) or not all(isinstance(x, dict) for x in rows):
        raise _bad(client.http.host, f"/{ALERTS_PATH} data has no list of alerts")
    return rows, warnings


FingerprintCache = dict[tuple[tuple[str, str], ...], str]


def parse_rule_alert(d: Mapping[str, Any], source: str = "prometheus-alerts",
                     fingerprints: FingerprintCache | None = None) -> Alert | None:
    """One entry of ``/api/v1/alerts`` as an `Alert`; None for a state other than pending/firing.

    ``starts_at`` is ``activeAt``: for a pending alert, when its condition started to hold
    (so "pending for 3 min"); for a firing one, the same instant (Alertmanager's ``startsAt``
    is the later moment it fired). ``fingerprints`` caches label set -> fingerprint across
    polls: hashing is pure Python (20 µs an alert), and the set of pending alerts changes little
    from one poll to the next.
    """
    state = d.get("state")
    if state not in PROMETHEUS_STATES:
        return None
    raw_labels = d.get("labels") or {}
    raw_ann = d.get("annotations") or {}
    if not isinstance(raw_labels, Mapping) or not isinstance(raw_ann, Mapping):
        raise TypeError("labels and annotations must be objects")
    alert = parse_alert({"labels": raw_labels, "annotations": raw_ann,
                         "startsAt": d.get("activeAt"), "status": {"state": "active"}}, source)
    labels = alert.labels
    if fingerprints is None:
        fp = label_fingerprint(labels)
    else:
        key = tuple(sorted(labels.items()))
        fp = fingerprints.get(key) or fingerprints.setdefault(key, label_fingerprint(labels))
    # vars() rather than dataclasses.replace: a third of the time at 30,000 alerts a poll
    return Alert(**{**vars(alert), "state": str(state), "fingerprint": fp})


def _order(a: Alert) -> tuple:
    return (a.severity, -(a.starts_at if not math.isnan(a.starts_at) else 0.0), a.name)


class PrometheusAlertsSource:
    """Pending alerts (and firing ones when there is no Alertmanager) from Prometheus' rule
    evaluation (kind "alerts"). Every poll reports the complete current set, so an alert that
    fired or resolved since the last poll is simply no longer in it."""

    kind = "alerts"

    def __init__(self, client: PrometheusClient, *, name: str = "prometheus-alerts",
                 interval_s: float = 15.0, include_firing: bool = False) -> None:
        self.client = client
        self.name = name
        self.interval_s = float(interval_s)
        self.include_firing = bool(include_firing)
        self._fingerprints: FingerprintCache = {}

    def __repr__(self) -> str:
        return (f"PrometheusAlertsSource({self.name!r}, {self.client!r}, "
                f"include_firing={self.include_firing})")

    def states(self) -> tuple[str, ...]:
        return PROMETHEUS_STATES if self.include_firing else ("pending",)

    def fetch(self) -> list[Update]:
        rows, warnings = fetch_rule_alerts(self.client)
        wanted = self.states()
        alerts: dict[str, Alert] = {}
        cache = self._fingerprints
        try:
            for row in rows:
                if row.get("state") not in wanted:
                    continue
                a = parse_rule_alert(row, self.name, cache)
                if a is not None:
                    alerts.setdefault(a.fingerprint, a)  # the same labels from two rule groups
        except (AttributeError, TypeError, ValueError) as e:
            raise _bad(self.client.http.host, f"an alert of unexpected shape in /{ALERTS_PATH} "
                       f"({type(e).__name__})") from None
        if len(cache) > 2 * len(alerts) + 1000:  # bounded: forget label sets long gone
            self._fingerprints = {}
        return [AlertsUpdate(time=_time.time(), alerts=tuple(sorted(alerts.values(), key=_order)),
                             warnings=warnings)]

    def close(self) -> None:
        self.client.close()

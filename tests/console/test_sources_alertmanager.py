"""Alertmanager v2 client and sources, replaying real Alertmanager 0.25 answers."""

from __future__ import annotations

import json

import pytest
from test_sources_http import ReplayServer, capture, refused_url, server  # noqa: F401

from console.model import Matcher, Severity
from console.sources.alertmanager import (ACK_PREFIX, AlertmanagerClient, AlertmanagerSource,
                                          MultiAlertmanagerSource, ack_matchers, acknowledge,
                                          parse_alert, parse_silence, parse_time)
from console.sources.base import ErrorKind, SourceError


def _serve(server: ReplayServer, alerts: str = "am_alerts_with_silenced.200.json") -> None:
    server.add("GET", "/api/v2/alerts", 200, capture(alerts))
    server.add("GET", "/api/v2/silences", 200, capture("am_silences.200.json"))


def test_source_maps_states_and_drilldown_keys(server: ReplayServer) -> None:
    _serve(server)
    (u,) = AlertmanagerSource(AlertmanagerClient.from_url(server.url)).fetch()
    by_name = {a.name: a for a in u.alerts}
    assert [a.name for a in u.alerts] == ["AiscStackExporterDown", "AiscStackTestAlert"]
    raw = {a["labels"]["alertname"]: a for a in json.loads(capture("am_alerts_with_silenced.200.json"))}
    down = by_name["AiscStackExporterDown"]
    assert (down.state, down.severity, down.node, down.gpu, down.rack) == ("firing", Severity.CRITICAL,
                                                                           "gpu06", None, None)
    assert down.summary == "DCGM exporter for gpu06 is down"
    assert down.starts_at == pytest.approx(parse_time(raw["AiscStackExporterDown"]["startsAt"]))
    # without a host label, the node is the instance with its port stripped
    no_host = parse_alert(dict(raw["AiscStackExporterDown"], labels={
        k: v for k, v in raw["AiscStackExporterDown"]["labels"].items() if k != "hostname"}))
    assert no_host.node == "127.0.0.1"
    sid = json.loads(capture("am_silence_create.200.json"))["silenceID"]
    test = by_name["AiscStackTestAlert"]
    assert (test.state, test.silenced_by, test.node) == ("silenced", (sid,), "gpu02")
    (s,) = u.silences
    assert s.id == sid and s.state == "active" and s.created_by == "ops-console" and not s.is_ack
    assert s.matchers == (Matcher("alertname", "AiscStackTestAlert", is_regex=False, is_equal=True),
                          Matcher("hostname", "gpu0[0-9]", is_regex=True, is_equal=True))
    q = server.requests[0]["query"]
    assert q["active"] == ["true"] and q["silenced"] == ["true"] and q["inhibited"] == ["true"]


def test_inhibited_muted_and_optional_fields() -> None:
    a = parse_alert({"labels": {"alertname": "X", "severity": "page", "hpc_job": "4812",
                                "account": "hku", "hostname": "n7"},
                     "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": [],
                                "mutedBy": ["tp"]}, "fingerprint": "f"})
    assert (a.state, a.severity, a.job_id, a.tenant, a.node) == ("inhibited", Severity.CRITICAL, 4812, "hku", "n7")
    s = parse_silence({"id": "i", "matchers": [{"name": "a", "value": "b", "isRegex": False}],
                       "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T01:00:00.123456789Z",
                       "createdBy": "me", "comment": "ACK! looking", "status": {"state": "active"},
                       "annotations": {"ticket": "1"}})
    assert s.is_ack and s.matchers[0].is_equal and s.ends_at - s.starts_at == pytest.approx(3600.123456789)


def test_groups_and_status(server: ReplayServer) -> None:
    server.add("GET", "/api/v2/alerts/groups", 200, capture("am_alerts_groups.200.json"))
    server.add("GET", "/api/v2/status", 200, capture("am_status.200.json"))
    c = AlertmanagerClient.from_url(server.url)
    # grouped by alertname and host: the two firing alerts make two groups
    assert sorted(g["labels"]["alertname"] for g in c.groups()) == ["AiscStackExporterDown",
                                                                    "AiscStackTestAlert"]
    assert c.status()["versionInfo"]["version"] == "0.25.0"


def test_create_and_expire_silence(server: ReplayServer) -> None:
    server.add("POST", "/api/v2/silences", 200, capture("am_silence_create.200.json"))
    sid = json.loads(capture("am_silence_create.200.json"))["silenceID"]
    server.add("DELETE", f"/api/v2/silence/{sid}", 200, capture("am_silence_delete.200.json"))
    c = AlertmanagerClient.from_url(server.url)
    got = c.create_silence([Matcher("alertname", "GpuXidError")], 1795935000.0, 1795938600.0,
                           "ops", "RMA")
    assert got == sid
    body = json.loads(server.requests[0]["body"])
    assert body == {"matchers": [{"name": "alertname", "value": "GpuXidError", "isRegex": False,
                                  "isEqual": True}],
                    "startsAt": "2026-11-29T06:50:00.000Z", "endsAt": "2026-11-29T07:50:00.000Z",
                    "createdBy": "ops", "comment": "RMA"}
    assert c.expire_silence(sid) is None
    assert c.expire_silence(sid) is None  # again: 200 again


def test_expire_unknown_silence_and_bad_silence(server: ReplayServer) -> None:
    server.add("DELETE", "/api/v2/silence/0000", 500, capture("am_silence_delete_unknown.500.json"))
    server.add("POST", "/api/v2/silences", 422, capture("am_silence_create_bad.422.json"))
    c = AlertmanagerClient.from_url(server.url)
    e = pytest.raises(SourceError, c.expire_silence, "0000").value
    assert e.kind is ErrorKind.QUERY and "silence 0000 not found" in e.message
    e = pytest.raises(SourceError, c.create_silence, [Matcher("a", "b")], 0, 10, "x", "y").value
    assert e.kind is ErrorKind.QUERY and "matchers in body should have at least 1 items" in e.message


def test_acknowledge_is_a_karma_style_silence(server: ReplayServer) -> None:
    server.add("POST", "/api/v2/silences", 200, {"silenceID": "abc"})
    alert = parse_alert(json.loads(capture("am_alerts.200.json"))[0])
    assert acknowledge(AlertmanagerClient.from_url(server.url), alert, "nina", now=1000.0) == "abc"
    body = json.loads(server.requests[0]["body"])
    assert body["comment"] == ACK_PREFIX + "acknowledged by nina"
    assert parse_time(body["endsAt"]) - parse_time(body["startsAt"]) == 3600
    assert body["matchers"] == [{"name": m.name, "value": m.value, "isRegex": False, "isEqual": True}
                                for m in ack_matchers(alert)]
    assert {m.name for m in ack_matchers(alert)} == set(alert.labels)


def test_wrong_shape_is_bad_payload(server: ReplayServer) -> None:
    server.add("GET", "/api/v2/alerts", 200, {"status": "success", "data": []})  # the v1 shape
    e = pytest.raises(SourceError, AlertmanagerSource(AlertmanagerClient.from_url(server.url)).fetch).value
    assert e.kind is ErrorKind.BAD_PAYLOAD and "expected a list of objects" in e.message


def test_multi_dedupes_by_fingerprint_and_tolerates_one_down(server: ReplayServer) -> None:
    _serve(server)
    a = AlertmanagerClient.from_url(server.url)
    b = AlertmanagerClient.from_url(server.url)
    dead = AlertmanagerClient.from_url(refused_url(), timeout=(1, 1))
    (u,) = MultiAlertmanagerSource([a, b, dead]).fetch()
    assert len(u.alerts) == 2 and len(u.silences) == 1
    assert len(u.warnings) == 1 and "connection refused" in u.warnings[0]
    e = pytest.raises(SourceError, MultiAlertmanagerSource([dead]).fetch).value
    assert e.kind is ErrorKind.UNREACHABLE

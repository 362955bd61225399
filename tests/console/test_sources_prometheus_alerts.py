"""Prometheus' pending alerts: replaying a real ``/api/v1/alerts`` answer, merging with
Alertmanager's alerts in the state, the config switch, and every failure classified."""

from __future__ import annotations

import json
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_sources_http import ReplayServer, capture, server  # noqa: F401

from console.config import ClusterSettings, ConfigError, load_settings, parse_settings
from console.model import Alert, AlertsUpdate, Severity, SourceState
from console.polling import PollResult
from console.sources.alertmanager import parse_alert, parse_time
from console.sources.base import ErrorKind, SourceError
from console.sources.factory import build_sources
from console.sources.prometheus import PrometheusClient
from console.sources.prometheus_alerts import (PrometheusAlertsSource, label_fingerprint,
                                               parse_rule_alert)
from console.state import ClusterState

ROOT = Path(__file__).resolve().parents[2]
#: 2 firing (AiscStackTestAlert, AiscStackExporterDown), 2 pending (DcgmExporterDown, whose
#: ``for: 1m`` had not run out, and AiscStackPendingAlert on gpu03 GPU 4)
PROM = "prom_alerts.200.json"
AM = "am_alerts.200.json"  # the same 2 firing, as Alertmanager lists them (+ cluster="aisc-lab")
EXTERNAL = {"cluster": "aisc-lab"}  # the stack's Prometheus external label


def _source(server: ReplayServer, body: bytes | str | object, status: int = 200, *,
            include_firing: bool = False, timeout: tuple[float, float] = (3, 5)) -> PrometheusAlertsSource:
    server.add("GET", "/api/v1/alerts", status, body)
    client = PrometheusClient.from_url(server.url, timeout=timeout)
    return PrometheusAlertsSource(client, interval_s=15, include_firing=include_firing)


def _fetch(src: PrometheusAlertsSource) -> AlertsUpdate:
    (u,) = src.fetch()
    assert isinstance(u, AlertsUpdate) and u.silences == ()
    return u


def _am_alerts() -> tuple[Alert, ...]:
    return tuple(parse_alert(a) for a in json.loads(capture(AM)))


def _rule_alerts(include_firing: bool = False) -> tuple[Alert, ...]:
    rows = json.loads(capture(PROM))["data"]["alerts"]
    out = [parse_rule_alert(r) for r in rows]
    return tuple(a for a in out if a is not None and (include_firing or a.state == "pending"))


def _pending(name: str) -> Alert:
    return next(a for a in _rule_alerts() if a.name == name)


# --------------------------------------------------------------------------- parsing


def test_fingerprint_is_alertmanagers_for_the_same_labels() -> None:
    am = json.loads(capture(AM))
    assert len(am) == 2
    for a in am:
        assert label_fingerprint(a["labels"]) == a["fingerprint"]
    # Prometheus' copy lacks the external label; with it added, the fingerprints agree.
    down = next(a for a in _rule_alerts(True) if a.name == "AiscStackExporterDown")
    (am_down,) = [a["fingerprint"] for a in am if a["labels"]["alertname"] == down.name]
    assert label_fingerprint({**down.labels, **EXTERNAL}) == am_down
    assert down.fingerprint != am_down


def test_pending_alerts_from_a_real_answer(server: ReplayServer) -> None:
    u = _fetch(_source(server, capture(PROM)))
    assert [(a.name, a.node, a.gpu) for a in u.alerts] == [("DcgmExporterDown", "gpu06", None),
                                                           ("AiscStackPendingAlert", "gpu03", 4)]
    assert {a.state for a in u.alerts} == {"pending"}
    one = u.alerts[1]
    assert (one.node, one.rack, one.severity, one.source) == ("gpu03", None, Severity.INFO,
                                                              "prometheus-alerts")
    assert one.summary == "Pending test alert of the loopback stack on gpu03 GPU 4"
    (row,) = [r for r in json.loads(capture(PROM))["data"]["alerts"] if r["labels"]["alertname"] == one.name]
    assert one.starts_at == pytest.approx(parse_time(row["activeAt"]))
    assert one.labels == row["labels"]
    assert one.fingerprint == label_fingerprint(one.labels)
    assert len({a.fingerprint for a in u.alerts}) == 2
    (req,) = server.requests
    assert (req["method"], req["path"]) == ("GET", "/api/v1/alerts")


def test_firing_ones_only_without_an_alertmanager(server: ReplayServer) -> None:
    u = _fetch(_source(server, capture(PROM), include_firing=True))
    firing = {a.name: a for a in u.alerts if a.state == "firing"}
    assert set(firing) == {"AiscStackTestAlert", "AiscStackExporterDown"}
    assert sum(a.state == "pending" for a in u.alerts) == 2
    down = firing["AiscStackExporterDown"]
    assert (down.severity, down.node, down.gpu) == (Severity.CRITICAL, "gpu06", None)
    assert (firing["AiscStackTestAlert"].severity, firing["AiscStackTestAlert"].node) == (
        Severity.WARNING, "gpu02")
    assert u.alerts[0].name == "AiscStackExporterDown"  # critical first


def test_unknown_states_and_duplicate_label_sets_are_skipped(server: ReplayServer) -> None:
    row = {"labels": {"alertname": "X", "Hostname": "n1"}, "annotations": {},
           "state": "pending", "activeAt": "2026-11-29T06:56:52Z", "value": "1e+00"}
    body = {"status": "success", "data": {"alerts": [
        row, dict(row), {**row, "state": "inactive"}, {**row, "labels": {"alertname": "Y"},
                                                      "state": "firing"}]}}
    u = _fetch(_source(server, body))
    (a,) = u.alerts
    assert (a.name, a.node, a.annotations) == ("X", "n1", {})


def test_an_empty_answer_is_no_alerts(server: ReplayServer) -> None:
    # VictoriaMetrics without vmalert answers an empty list (STACK.md)
    assert _fetch(_source(server, capture("vmcmp_alerts.200.json"))).alerts == ()


def test_server_warnings_are_passed_on(server: ReplayServer) -> None:
    u = _fetch(_source(server, {"status": "success", "data": {"alerts": []},
                                "warnings": ["rule group evaluation is slow"]}))
    assert u.warnings == ("rule group evaluation is slow",)


# --------------------------------------------------------------------------- errors


def _error(src: PrometheusAlertsSource) -> SourceError:
    with pytest.raises(SourceError) as ei:
        src.fetch()
    return ei.value


def test_garbage_json_is_bad_payload(server: ReplayServer) -> None:
    e = _error(_source(server, '{"status":"success","data":{"alerts":[{"labels":'))
    assert e.kind is ErrorKind.BAD_PAYLOAD and "invalid JSON" in e.message


@pytest.mark.parametrize("body,words", [
    ({"status": "success", "data": {"alerts": {"a": 1}}}, "no list of alerts"),
    ({"status": "success", "data": ["x"]}, "no list of alerts"),
    ({"status": "success", "data": {"alerts": [{"labels": ["a"], "state": "pending"}]}},
     "alert of unexpected shape"),
    ({"status": "success", "data": {"alerts": ["GpuIdle"]}}, "no list of alerts"),
    ({"data": {"alerts": []}}, "not a Prometheus API envelope"),
])
def test_wrong_shapes_are_bad_payload(server: ReplayServer, body: object, words: str) -> None:
    e = _error(_source(server, body))
    assert e.kind is ErrorKind.BAD_PAYLOAD and words in e.message


def test_401_is_auth(server: ReplayServer) -> None:
    e = _error(_source(server, "Unauthorized", 401))
    assert e.kind is ErrorKind.AUTH and e.status == 401
    assert e.message.startswith("authentication failed at 127.0.0.1:")


def test_timeout_is_timeout(server: ReplayServer) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        server.release.wait(10)
    src = _source(server, b"", timeout=(1, 0.2))
    server.add_handler("GET", "/api/v1/alerts", slow)
    e = _error(src)
    assert e.kind is ErrorKind.TIMEOUT
    assert e.message == f"no answer from {urlsplit(server.url).netloc} within 0.2 s"


def test_404_says_how_to_switch_it_off(server: ReplayServer) -> None:
    e = _error(_source(server, "404 page not found", 404))
    assert e.kind is ErrorKind.HTTP and e.status == 404
    assert "does not serve /api/v1/alerts (404)" in e.message and "alerts = false" in e.message


def test_error_envelope_is_a_query_error(server: ReplayServer) -> None:
    e = _error(_source(server, {"status": "error", "errorType": "unavailable",
                                "error": "rule manager not ready"}, 503))
    assert e.kind is ErrorKind.HTTP and "rule manager not ready" in e.message
    e = _error(_source(server, {"status": "error", "errorType": "bad_data", "error": "nope"}, 200))
    assert e.kind is ErrorKind.QUERY and "nope" in e.message


# --------------------------------------------------------------------------- merge in the state


def _state() -> ClusterState:
    return ClusterState(ClusterSettings(name="lab"), [("alertmanager", "alerts", 10.0),
                                                      ("prometheus-alerts", "alerts", 15.0)],
                        wall=lambda: 1000.0)


def _apply(s: ClusterState, source: str, rid: int, alerts: tuple[Alert, ...]) -> None:
    assert s.apply(PollResult(source=source, kind="alerts", request_id=rid, started_at=990.0,
                              fetched_at=990.0 + rid, latency_s=0.1,
                              updates=(AlertsUpdate(time=990.0, alerts=alerts),)))


def _listed(s: ClusterState) -> list[tuple[str, str, int | None, str]]:
    return [(a.name, a.state, a.gpu, a.source) for a in s.build_frame().alerts]


def test_pending_alerts_join_alertmanagers_list_and_go_when_polled_away() -> None:
    s = _state()
    _apply(s, "alertmanager", 1, _am_alerts())
    _apply(s, "prometheus-alerts", 1, _rule_alerts())
    f = s.build_frame()
    assert [(a.name, a.state) for a in f.alerts if a.source == "alertmanager"] == [
        ("AiscStackExporterDown", "firing"), ("AiscStackTestAlert", "firing")]
    pending = [a for a in f.alerts if a.state == "pending"]
    assert len(pending) == 2 and {a.source for a in pending} == {"prometheus-alerts"}
    assert f.kpis.alerts_firing == 2  # pending is not firing
    assert f.kpis.alerts_by_severity == {"critical": 1, "warning": 1, "info": 0}
    # The next poll has one pending alert left: the other is gone from the list.
    _apply(s, "prometheus-alerts", 2, _rule_alerts()[:1])
    assert sum(a.state == "pending" for a in s.build_frame().alerts) == 1
    _apply(s, "prometheus-alerts", 3, ())
    assert [a.source for a in s.build_frame().alerts] == ["alertmanager"] * 2


def test_a_pending_alert_that_fired_is_listed_once_as_alertmanagers() -> None:
    """Prometheus' last poll still saw gpu03 GPU 4's alert pending; Alertmanager already has it
    firing, with the external label on top (so another fingerprint)."""
    s = _state()
    pending = _rule_alerts()
    gpu4 = _pending("AiscStackPendingAlert")
    fired = parse_alert({"labels": {**gpu4.labels, **EXTERNAL}, "annotations": gpu4.annotations,
                         "startsAt": "2026-11-29T07:01:52.637Z", "status": {"state": "active"},
                         "fingerprint": label_fingerprint({**gpu4.labels, **EXTERNAL})})
    _apply(s, "prometheus-alerts", 1, pending)
    _apply(s, "alertmanager", 1, (fired,))
    listed = _listed(s)
    assert [x for x in listed if x[0] == gpu4.name] == [(gpu4.name, "firing", 4, "alertmanager")]
    assert [x[0] for x in listed if x[1] == "pending"] == ["DcgmExporterDown"]
    # A silenced copy covers it as well; another alert's copy covers only that alert.
    silenced = replace(fired, state="silenced", silenced_by=("s1",))
    down = _pending("DcgmExporterDown")
    down_fired = replace(down, labels={**down.labels, **EXTERNAL}, state="firing",
                         source="alertmanager", fingerprint="other")
    _apply(s, "alertmanager", 2, (silenced, down_fired))
    assert sorted(_listed(s), key=str) == [
        ("AiscStackPendingAlert", "silenced", 4, "alertmanager"),
        ("DcgmExporterDown", "firing", None, "alertmanager")]
    # a copy naming another GPU (or another exporter) is another alert: it covers neither
    other_gpu = replace(fired, labels={**fired.labels, "gpu": "5"}, fingerprint="x")
    other_exporter = replace(down_fired, labels={**down_fired.labels, "instance": "10.0.0.9:9400"})
    _apply(s, "alertmanager", 3, (other_gpu, other_exporter))
    assert sum(x[1] == "pending" for x in _listed(s)) == 2


def test_same_labels_same_fingerprint_prefers_the_fired_copy() -> None:
    """Without external labels both copies have one fingerprint; whichever source answered
    first, the firing one is listed."""
    for order in (("prometheus-alerts", "alertmanager"), ("alertmanager", "prometheus-alerts")):
        s = _state()
        pending = _rule_alerts()[0]
        fired = replace(pending, state="firing", source="alertmanager")
        for src in order:
            _apply(s, src, 1, (pending,) if src == "prometheus-alerts" else (fired,))
        assert _listed(s) == [(pending.name, "firing", pending.gpu, "alertmanager")]


def test_a_copy_lacking_a_label_or_with_another_name_covers_nothing() -> None:
    s = _state()
    pending = _rule_alerts()[0]
    labels = {k: v for k, v in pending.labels.items() if k != "hostname"}
    assert labels != pending.labels
    narrower = replace(pending, state="firing", labels=labels, fingerprint="a")
    renamed = replace(pending, state="firing", name="GpuBusy",
                      labels={**pending.labels, "alertname": "GpuBusy"}, fingerprint="b")
    _apply(s, "prometheus-alerts", 1, (pending,))
    _apply(s, "alertmanager", 1, (narrower, renamed))
    assert sorted(x[1] for x in _listed(s)) == ["firing", "firing", "pending"]


def test_source_status_has_its_own_row_with_error_and_age() -> None:
    s = _state()
    _apply(s, "prometheus-alerts", 1, _rule_alerts())
    s.apply(PollResult(source="prometheus-alerts", kind="alerts", request_id=2, started_at=995.0,
                       fetched_at=995.0, latency_s=0.2,
                       error=SourceError(ErrorKind.AUTH, "authentication failed at prom:9090 (401)")))
    st = {x.name: x for x in s.build_frame(1000.0).sources}
    row = st["prometheus-alerts"]
    assert (row.kind, row.state, row.error_kind, row.consecutive_failures) == (
        "alerts", SourceState.FAILING, "auth", 1)
    assert row.error == "authentication failed at prom:9090 (401)"
    assert row.last_success == 991.0 and row.interval_s == 15.0
    assert st["alertmanager"].state is SourceState.WAITING
    # the last good pending list is kept while the source fails
    assert sum(a.state == "pending" for a in s.build_frame(1000.0).alerts) == 2


# --------------------------------------------------------------------------- config and factory


def _cluster(extra: str = "", alertmanager: bool = True) -> ClusterSettings:
    text = ('[[clusters]]\nname = "lab"\n[clusters.prometheus]\nurl = "http://prom:9090"\n'
            'interval_s = 20\nauth = "bearer"\n' + extra)
    if alertmanager:
        text += '[clusters.alertmanager]\nurl = "http://am:9093"\n'
    import tomllib

    return parse_settings(tomllib.loads(text)).clusters[0]


def test_on_by_default_and_firing_only_without_alertmanager() -> None:
    c = _cluster()
    assert c.prometheus is not None and c.prometheus.alerts is True
    srcs = {s.name: s for s in build_sources(c)}
    assert list(srcs) == ["prometheus", "alertmanager", "prometheus-alerts"]
    pa = srcs["prometheus-alerts"]
    assert isinstance(pa, PrometheusAlertsSource)
    assert (pa.kind, pa.interval_s, pa.include_firing, pa.states()) == ("alerts", 20.0, False,
                                                                        ("pending",))
    assert pa.client.http.auth.kind == "bearer" and pa.client.http.base_url == "http://prom:9090"
    assert pa.client.http is not srcs["prometheus"].client.http  # one client per poller thread
    alone = {s.name: s for s in build_sources(_cluster(alertmanager=False))}
    assert alone["prometheus-alerts"].include_firing is True
    for s in [*srcs.values(), *alone.values()]:
        s.close()


def test_config_switch_off_and_type_checked() -> None:
    c = _cluster("alerts = false\n")
    assert c.prometheus is not None and c.prometheus.alerts is False
    assert [s.name for s in build_sources(c)] == ["prometheus", "alertmanager"]
    with pytest.raises(ConfigError, match=r"clusters\[0\]\.prometheus\.alerts: expected bool"):
        _cluster('alerts = "no"\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\): pending_alerts"):
        _cluster("pending_alerts = false\n")


def test_the_example_config_keeps_it_on() -> None:
    c = load_settings(ROOT / "resources" / "config.example.toml").clusters[0]
    assert c.prometheus is not None and c.prometheus.alerts is True

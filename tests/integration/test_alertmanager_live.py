"""Alerts fired by the live Prometheus, seen through the console's Alertmanager source; a silence
(an acknowledgement) created, seen silencing the alert, and expired so the alert is active again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from console.model import Alert, AlertsUpdate, Severity
from console.sources.alertmanager import AlertmanagerClient, AlertmanagerSource, acknowledge
from console.sources.base import ErrorKind, SourceError

from .live import Stack, wait_until

TEST_ALERT = "AiscStackTestAlert"  # scripts/stack/test-rules.yml: vector(1), hostname gpu02


@pytest.fixture(scope="module")
def source(stack: Stack) -> Iterator[AlertmanagerSource]:
    src = AlertmanagerSource(AlertmanagerClient.from_url(stack.urls["alertmanager"], timeout=10),
                             interval_s=5)
    yield src
    src.close()


def fetch(source: AlertmanagerSource) -> AlertsUpdate:
    (upd,) = source.fetch()
    assert isinstance(upd, AlertsUpdate)
    return upd


def find(source: AlertmanagerSource, name: str, state: str | None = None) -> Alert | None:
    for a in fetch(source).alerts:
        if a.name == name and (state is None or a.state == state):
            return a
    return None


def test_firing_alerts_reach_the_console(source: AlertmanagerSource, stack: Stack) -> None:
    alert = wait_until(f"{TEST_ALERT} firing in Alertmanager",
                       lambda: find(source, TEST_ALERT, "firing"), timeout_s=90)
    assert alert.severity == Severity.WARNING
    assert alert.node == "gpu02"
    assert alert.summary == "Test alert of the loopback stack on gpu02"
    assert alert.starts_at <= time.time()
    # The exporter target declared without a listener fires too, mapped to its node.
    down = wait_until("AiscStackExporterDown firing",
                      lambda: find(source, "AiscStackExporterDown", "firing"), timeout_s=90)
    assert down.severity == Severity.CRITICAL
    assert down.node == stack.info["exporter_down_node"]


def test_silence_created_seen_and_expired(source: AlertmanagerSource) -> None:
    alert = wait_until(f"{TEST_ALERT} firing", lambda: find(source, TEST_ALERT, "firing"),
                       timeout_s=90)
    client = source.client
    sid = acknowledge(client, alert, created_by="integration-test", comment="looking into it",
                      duration_s=600)
    try:
        upd = fetch(source)
        silenced = next(a for a in upd.alerts if a.name == TEST_ALERT)
        assert silenced.state == "silenced"
        assert silenced.silenced_by == (sid,)
        sil = next(s for s in upd.silences if s.id == sid)
        assert sil.state == "active"
        assert sil.is_ack and sil.created_by == "integration-test"
        assert 590 <= sil.ends_at - sil.starts_at <= 610
        # the other alert is not caught by a silence made of this alert's labels
        other = next(a for a in upd.alerts if a.name == "AiscStackExporterDown")
        assert other.state == "firing"
    finally:
        client.expire_silence(sid)
    upd = fetch(source)
    again = next(a for a in upd.alerts if a.name == TEST_ALERT)
    assert again.state == "firing" and again.silenced_by == ()
    assert next(s for s in upd.silences if s.id == sid).state == "expired"
    client.expire_silence(sid)  # expiring twice is quietly fine


def test_expiring_an_unknown_silence_says_not_found(source: AlertmanagerSource) -> None:
    with pytest.raises(SourceError) as err:
        source.client.expire_silence("00000000-0000-0000-0000-000000000000")
    assert err.value.kind == ErrorKind.QUERY
    assert "not found" in err.value.message


def test_acknowledge_through_console_actions_and_expire(source: AlertmanagerSource,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The operator's path: Actions.acknowledge -> silence in Alertmanager -> expire -> firing."""
    from console.actions import Actions
    from console.journal import Journal

    journal = Journal(tmp_path_factory.mktemp("journal") / "journal.jsonl")
    actions = Actions([source], journal, operator="oncall")
    try:
        alert = wait_until(f"{TEST_ALERT} firing", lambda: find(source, TEST_ALERT, "firing"),
                           timeout_s=90)
        result = actions.acknowledge(alert, "checking the node", duration_s=900).result(timeout=30)
        assert result.ok, result.message
        (sid,) = result.ids
        upd = fetch(source)
        assert next(a for a in upd.alerts if a.name == TEST_ALERT).state == "silenced"
        sil = next(s for s in upd.silences if s.id == sid)
        assert sil.comment == "ACK! checking the node" and sil.created_by == "oncall"
        expired = actions.expire_silence(sid).result(timeout=30)
        assert expired.ok, expired.message
        assert find(source, TEST_ALERT, "firing") is not None
    finally:
        actions.close()
    kinds = [(r["action"], r.get("ok")) for r in journal.records()]
    assert ("acknowledge", True) in kinds and ("expire_silence", True) in kinds

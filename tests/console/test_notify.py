"""Notifications: each new critical problem once, again after it resolved and re-fired; quiet
hours keep quiet without saving a backlog; config parsing."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from console.config import ConfigError, parse_settings
from console.model import Alert, Anomaly, Frame, Severity, Subject
from console.notify import Notifier, NotifySettings, QuietHours
from console.testing import frame_from_sim

NOON = dt.time(12, 0)


@pytest.fixture(scope="module")
def base() -> Frame:
    return frame_from_sim(nodes=8, polls=1)


def alert(fp: str, sev: Severity = Severity.CRITICAL, state: str = "firing", node: str = "n0001") -> Alert:
    return Alert(fp, "GpuFellOffBus", sev, state, 0.0, annotations={"summary": f"GPU fell off {fp}"},
                 node=node)


def with_alerts(frame: Frame, *alerts: Alert) -> Frame:
    return dataclasses.replace(frame, alerts=alerts)


def test_a_new_critical_alert_is_notified_once_while_it_stays_open(base: Frame) -> None:
    n = Notifier()
    assert n.update(with_alerts(base), NOON) == []  # nothing open at start
    [msg] = n.update(with_alerts(base, alert("a")), NOON)
    assert (msg.title, msg.body, msg.severity, msg.sound, msg.keys) == (
        "New critical alert", "GPU fell off a", Severity.CRITICAL, "beep", ("alert:a",))
    for _ in range(3):  # still open: never again
        assert n.update(with_alerts(base, alert("a")), NOON) == []


def test_it_is_notified_again_when_it_fires_after_resolving(base: Frame) -> None:
    n = Notifier()
    n.update(with_alerts(base), NOON)
    assert len(n.update(with_alerts(base, alert("a")), NOON)) == 1
    assert n.update(with_alerts(base), NOON) == []  # resolved: left the frame
    assert [m.keys for m in n.update(with_alerts(base, alert("a")), NOON)] == [("alert:a",)]


def test_warnings_silenced_and_non_firing_alerts_are_not_notified(base: Frame) -> None:
    n = Notifier()
    n.update(with_alerts(base), NOON)
    frame = with_alerts(base, alert("w", Severity.WARNING), alert("s", state="silenced"),
                        alert("p", state="pending"))
    assert n.update(frame, NOON) == []
    # the silence expires and the alert still burns: that is news
    assert [m.keys for m in n.update(with_alerts(base, alert("s")), NOON)] == [("alert:s",)]


def test_several_new_problems_become_one_message(base: Frame) -> None:
    n = Notifier()
    n.update(with_alerts(base), NOON)
    [msg] = n.update(with_alerts(base, *(alert(x) for x in "abcde")), NOON)
    assert msg.title == "5 new critical alerts"
    assert msg.body == "GPU fell off a\nGPU fell off b\nGPU fell off c\nand 2 more"


def test_what_is_open_at_start_is_summed_up_once(base: Frame) -> None:
    n = Notifier()
    [msg] = n.update(with_alerts(base, alert("a"), alert("b")), NOON)
    assert msg.title == "2 critical alerts open"
    assert n.update(with_alerts(base, alert("a"), alert("b")), NOON) == []


def test_quiet_hours_across_midnight(base: Frame) -> None:
    quiet = QuietHours(dt.time(22, 0), dt.time(7, 0))
    assert [quiet.contains(dt.time(h, 0)) for h in (21, 22, 23, 0, 6, 7, 12)] == [
        False, True, True, True, True, False, False]
    n = Notifier(NotifySettings(quiet_hours=quiet))
    n.update(with_alerts(base), NOON)
    assert n.update(with_alerts(base, alert("a")), dt.time(23, 30)) == []
    assert n.suppressed == 1
    # morning: what arrived at night is not replayed, what is new now is told
    assert n.update(with_alerts(base, alert("a")), dt.time(7, 30)) == []
    assert [m.keys for m in n.update(with_alerts(base, alert("a"), alert("b")), dt.time(7, 31))] == [
        ("alert:b",)]


def test_anomalies_at_the_threshold_are_notified(base: Frame) -> None:
    an = Anomaly("an1", "gpu_outlier", Subject("gpu", "n0001/3"), 5.0, 0.0, 0.0,
                 "GPU 3 on n0001 runs 40 % below its peers", severity=Severity.WARNING)
    n = Notifier()
    n.update(base, NOON)
    [msg] = n.update(dataclasses.replace(base, anomalies=(an,)), NOON)
    assert msg.keys == ("anomaly:an1",) and msg.body == "GPU 3 on n0001 runs 40 % below its peers"
    assert (msg.title, msg.sound) == ("New anomaly (worst: warning)", "none")
    info = dataclasses.replace(an, id="an2", severity=Severity.INFO)
    assert n.update(dataclasses.replace(base, anomalies=(an, info)), NOON) == []  # below the bar
    fresh = dataclasses.replace(an, id="an3")
    [mixed] = n.update(dataclasses.replace(base, anomalies=(an, fresh), alerts=(alert("x"),)), NOON)
    assert (mixed.title, mixed.keys) == ("2 new problems (worst: critical)", ("alert:x", "anomaly:an3"))
    ended = dataclasses.replace(an, ended_at=1.0)
    assert Notifier(NotifySettings(anomalies=False)).update(
        dataclasses.replace(base, anomalies=(an,)), NOON) == []
    n.update(dataclasses.replace(base, anomalies=(ended,)), NOON)
    assert len(n.update(dataclasses.replace(base, anomalies=(an,)), NOON)) == 1  # opened again


def test_min_severity_warning_and_its_sound(base: Frame) -> None:
    n = Notifier(NotifySettings(min_severity=Severity.WARNING,
                                sound={Severity.WARNING: "/sounds/warn.wav"}))
    n.update(with_alerts(base), NOON)
    [msg] = n.update(with_alerts(base, alert("w", Severity.WARNING)), NOON)
    assert (msg.title, msg.sound) == ("New warning alert", "/sounds/warn.wav")


def test_disabled_tells_nothing(base: Frame) -> None:
    n = Notifier(NotifySettings(enabled=False))
    n.update(with_alerts(base), NOON)
    assert n.update(with_alerts(base, alert("a")), NOON) == []


def test_notification_config() -> None:
    base = {"clusters": [{"name": "c", "sim": {}}]}
    s = parse_settings({**base, "notifications": {
        "quiet_hours": "22:30-06:45", "min_severity": "warning", "anomalies": False,
        "anomaly_min_severity": "critical",
        "sound": {"critical": "/x/alarm.wav", "warning": "beep"}}}).notifications
    assert s.quiet_hours == QuietHours(dt.time(22, 30), dt.time(6, 45))
    assert (s.min_severity, s.anomalies, s.anomaly_min_severity) == (
        Severity.WARNING, False, Severity.CRITICAL)
    assert s.sound == {Severity.CRITICAL: "/x/alarm.wav", Severity.WARNING: "beep", Severity.INFO: "none"}
    assert parse_settings(base).notifications.quiet_hours is None
    for bad, words in (({"quiet_hours": "late"}, "a window like"),
                       ({"quiet_hours": "22-07"}, "a time like 22:00"),
                       ({"min_severity": "page"}, "one of critical, warning, info"),
                       ({"sound": {"loud": "beep"}}, "keys are critical"),
                       ({"volume": 3}, r"unknown key\(s\): volume")):
        with pytest.raises(ConfigError, match=words):
            parse_settings({**base, "notifications": bad})

"""The main window's BLIND banner and notifications, and presentation mode opened from it."""

from __future__ import annotations

import dataclasses
import datetime as dt

from frames import WATCHDOG, Clock, seeing
from console.notify import DEFAULT_NOTIFY, NotifySettings, QuietHours
from widgets.main_window import MainWindow
from widgets.presentation.hooks import install


def make_window(qtbot, clock: Clock | None = None, local: dt.time = dt.time(12, 0),
                notify: NotifySettings = DEFAULT_NOTIFY):
    w = MainWindow(persist=False, clock=clock or Clock(0.0))
    qtbot.addWidget(w)
    sounds: list[str] = []
    extras = install(w, notifications=notify, tray=False, sound=sounds.append,
                     local_time=lambda: local)
    w.show()
    return w, extras, sounds


def test_blind_when_the_watchdog_vanishes_and_clear_when_it_returns(qtbot, make_frame) -> None:
    w, extras, _ = make_window(qtbot)
    frame = make_frame()
    w.show_frame(seeing(frame))
    assert not extras.banner.isVisible()
    w.show_frame(frame)  # same data, no Watchdog
    assert extras.banner.isVisible()
    assert extras.banner.text() == (
        "\u26a0  BLIND: the always-firing Watchdog alert is missing, so alert delivery is broken "
        "and new alerts may not arrive \u2014 the console cannot see the cluster; do not read "
        "this as healthy")
    assert extras.banner.objectName() == "BlindBanner" and extras.banner is not w.banner
    w.show_frame(seeing(frame))
    assert not extras.banner.isVisible()


def test_blind_when_every_source_goes_stale(qtbot, make_frame) -> None:
    clock = Clock(0.0)
    w, extras, _ = make_window(qtbot, clock)
    frame = seeing(make_frame())
    w.show_frame(frame)
    clock.t = 120.0  # two minutes without a frame: past every stale limit
    w.tick()  # the window ages its last frame and hands it on
    assert extras.banner.isVisible()
    assert extras.banner.text().startswith(
        "\u26a0  BLIND: every data source is stale (newest data 2 min old)")
    w.show_frame(seeing(make_frame(now=frame.time + 121.0)))
    assert not extras.banner.isVisible()


def test_a_critical_alert_is_notified_once_then_again_after_it_refires(qtbot, make_frame) -> None:
    w, extras, sounds = make_window(qtbot)
    center = extras.notifications
    frame = seeing(make_frame())
    quiet = dataclasses.replace(frame, alerts=tuple(a for a in frame.alerts if a.fingerprint != "f1"))
    w.show_frame(quiet)
    assert center.delivered == [] and not center.toast.isVisible()
    w.show_frame(frame)  # f1, GpuFellOffBus, critical
    qtbot.waitUntil(center.toast.isVisible, timeout=2000)
    assert center.toast.text() == "New critical alert\nGPU 2 on n00 fell off the bus (XID 79)"
    assert sounds == ["beep"]
    w.show_frame(frame)
    w.show_frame(frame)
    assert len(center.delivered) == 1 and sounds == ["beep"]
    w.show_frame(quiet)
    w.show_frame(frame)
    assert len(center.delivered) == 2 and sounds == ["beep", "beep"]


def test_quiet_hours_keep_the_window_quiet(qtbot, make_frame) -> None:
    notify = NotifySettings(quiet_hours=QuietHours(dt.time(22, 0), dt.time(7, 0)))
    w, extras, sounds = make_window(qtbot, local=dt.time(23, 15), notify=notify)
    frame = seeing(make_frame())
    w.show_frame(dataclasses.replace(frame, alerts=(WATCHDOG,)))
    w.show_frame(frame)
    assert extras.notifications.delivered == [] and sounds == []
    assert not extras.notifications.toast.isVisible()
    assert extras.notifications.notifier.suppressed == 1


def test_presentation_mode_opens_from_the_view_menu(qtbot, make_frame) -> None:
    w, extras, _ = make_window(qtbot)
    menus = [a.menu() for a in w.menu_bar.actions() if a.menu() is not None]
    view = next(m for m in menus if m.title().replace("&", "") == "View")
    assert extras.action in view.actions() and extras.action.shortcut().toString() == "F5"
    w.show_frame(seeing(make_frame()))
    extras.action.trigger()
    [pres] = extras.presentations
    qtbot.addWidget(pres)
    assert pres.title_label.text() == "Test Cluster"
    later = seeing(make_frame(now=make_frame().time + 10.0))
    w.show_frame(later)
    assert pres.view is not None and pres.view.time == later.time
    pres.close()


def test_a_fleet_notifies_a_critical_alert_on_a_cluster_not_on_screen(qtbot, make_frame) -> None:
    """The operator looks at alpha; beta's critical alert still reaches them, named by its
    cluster, and alpha's identical fingerprint later is news of its own."""
    w, extras, sounds = make_window(qtbot)
    center = extras.notifications
    w.set_clusters(["alpha", "beta"], simulated={"alpha": True, "beta": True})
    base = seeing(make_frame())
    quiet = dataclasses.replace(base, alerts=tuple(a for a in base.alerts if a.fingerprint != "f1"))
    w.show_cluster_frame("alpha", dataclasses.replace(quiet, cluster="alpha"))
    w.show_cluster_frame("beta", dataclasses.replace(quiet, cluster="beta"))
    assert center.delivered == []
    w.show_cluster_frame("beta", dataclasses.replace(base, cluster="beta"))  # not on screen
    assert w.current_cluster == "alpha"
    assert [n.title for n in center.delivered] == ["beta: New critical alert"]
    w.show_cluster_frame("beta", dataclasses.replace(base, cluster="beta"))
    assert len(center.delivered) == 1  # told once
    w.show_cluster_frame("alpha", dataclasses.replace(base, cluster="alpha"))  # shown: both signals
    assert [n.title for n in center.delivered] == ["beta: New critical alert",
                                                   "alpha: New critical alert"]
    assert sounds == ["beep", "beep"]


def test_a_fleet_cluster_off_screen_that_goes_blind_is_named_in_the_banner(qtbot, make_frame) -> None:
    w, extras, _ = make_window(qtbot)
    w.set_clusters(["alpha", "beta"], simulated={"alpha": True, "beta": True})
    frame = make_frame()
    w.show_cluster_frame("alpha", dataclasses.replace(seeing(frame), cluster="alpha"))
    w.show_cluster_frame("beta", dataclasses.replace(seeing(frame), cluster="beta"))
    assert w.current_cluster == "alpha" and not extras.banner.isVisible()
    w.show_cluster_frame("beta", dataclasses.replace(frame, cluster="beta"))  # no Watchdog
    assert extras.banner.isVisible()
    assert extras.banner.text().startswith("\u26a0  on cluster beta: BLIND: the always-firing "
                                           "Watchdog alert is missing")
    w.show_cluster_frame("beta", dataclasses.replace(seeing(frame), cluster="beta"))
    assert not extras.banner.isVisible()

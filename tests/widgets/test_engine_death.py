"""Never calm while blind: a killed engine is named at once and restarted, and data age keeps
growing when no frame arrives (the window ages the last frame to the clock)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from console.config import demo_settings
from console.engine import EngineState, EngineStatus
from console.engine_process import ProcessEngine
from widgets.bridge import EngineBridge
from widgets.main_window import MainWindow, aged_frame
from widgets.panel import PanelContext
from widgets.sources_panel import NOT_POLLED


@pytest.fixture(autouse=True)
def _journal_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker process writes its action journal under XDG_DATA_HOME."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))


class Clock:
    """A hand-moved monotonic clock for the window: ageing a frame without waiting."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_data_age_keeps_growing_when_no_frame_arrives(qtbot, make_frame):
    clock = Clock()
    win = MainWindow(PanelContext(), persist=False, clock=clock)
    qtbot.addWidget(win)
    frame = make_frame()
    win.show_frame(frame)
    kpi, jobs = win.panels["kpi"], win.panels["jobs"]
    kpi.render_now()
    jobs.render_now()
    # the frame's data is 3, 4 and 5 s old (telemetry, scheduler, alerts); the KPI strip shows
    # the oldest
    assert kpi.header.age_label.text() == "updated 5 s ago"
    assert jobs.header.age_label.text() == "updated 4 s ago"
    assert win.banner.isHidden()

    clock.t += 12  # no frame for 12 s: the panels get the last frame, aged
    win.tick()
    kpi.render_now()
    jobs.render_now()
    assert kpi.frame is not frame and kpi.frame.seq == frame.seq
    assert kpi.frame.time == frame.time + 12
    assert kpi.header.age_label.text() == "updated 17 s ago"
    assert jobs.header.age_label.text() == "updated 16 s ago"
    assert jobs.header.age_label.property("stale") == "false"  # 30 s limit not reached
    assert not win.banner.isHidden()
    assert win.banner.text().startswith("No new data from the console engine for 12 s \u2014 "
                                        "the panels show its last data, from ")
    assert win.banner.property("severity") == "critical"

    clock.t += 30  # 46 s: past the scheduler's 30 s limit, so its data is stale now
    win.tick()
    jobs.render_now()
    assert jobs.header.age_label.text() == "STALE \u00b7 updated 46 s ago"
    assert jobs.header.age_label.property("stale") == "true"

    win.show_frame(make_frame(seq=2))  # data again: ages and banner back to the truth
    jobs.render_now()
    assert jobs.frame.seq == 2 and jobs.header.age_label.text() == "updated 4 s ago"
    assert win.banner.isHidden()


def test_an_engine_known_down_marks_every_kind_of_data_stale_at_once(make_frame):
    frame = make_frame()
    aged = aged_frame(frame, 2.0, engine_down=True)
    assert aged.time == frame.time + 2.0
    assert all(aged.is_stale(kind) for kind in ("telemetry", "scheduler", "alerts"))
    assert not any(frame.is_stale(kind) for kind in ("telemetry", "scheduler", "alerts"))
    assert aged.kpis is frame.kpis and aged.gpu is frame.gpu  # the same data, not a copy


def test_engine_status_words_say_what_happened_and_what_comes_next():
    status = EngineStatus(EngineState.DOWN, "its worker process ended unexpectedly, killed by "
                          "SIGKILL", pid=41, restarts=2, down_since=100.0, retry_at=107.0)
    assert status.words(103.0).endswith(
        "(3 s): its worker process ended unexpectedly, killed by SIGKILL; restarting in 4 s "
        "(restart 2)")
    assert status.words(103.0).startswith("Console engine down since ")
    assert status.words(108.0).endswith("; restarting now (restart 2)")
    assert EngineStatus(EngineState.RUNNING).words(0.0) == "console engine running"


def test_a_killed_engine_is_shown_at_once_and_restarted(qtbot):
    """The observed defect: the worker process killed while the window runs."""
    engine = ProcessEngine(demo_settings(seed=2, nodes=16, faults="none"), detect=False,
                           restart_delays_s=(1.0,))
    win = MainWindow(PanelContext(actions=engine.actions), persist=False)
    qtbot.addWidget(win)
    bridge = EngineBridge(engine, win)
    bridge.frame_ready.connect(win.show_frame)
    bridge.status_changed.connect(win.show_engine_status)
    sources, kpi = win.panels["sources"], win.panels["kpi"]
    seen_down: list[dict[str, str]] = []

    def on_status(status: EngineStatus) -> None:
        """What the operator sees the moment the window learns the engine is down (this slot
        runs right after the window's own): read here, no race with the restart."""
        if status.down:
            kpi.render_now()
            seen_down.append({"banner": win.banner.text() if win.banner.isVisible() else "",
                              "severity": win.banner.property("severity"),
                              "engine": sources.engine_label.text()
                              if sources.engine_label.isVisible() else "",
                              "state": sources.cell_text(0, 2),
                              "sources_age": sources.header.age_label.text(),
                              "kpi_age": kpi.header.age_label.text()})

    bridge.status_changed.connect(on_status)
    engine.start()
    try:
        win.show()
        win.focus_panel("sources")
        qtbot.waitUntil(lambda: win._frame is not None and engine.latest_pid is not None,
                        timeout=60_000)
        first_pid = engine.latest_pid
        assert first_pid == engine.pid
        qtbot.waitUntil(lambda: sources.cell_text(0, 2) == "\u25cf OK", timeout=30_000)
        seq_before = win._frame.seq

        os.kill(first_pid, signal.SIGKILL)

        # At once, in words: the banner, the sources panel and the engine's status.
        qtbot.waitUntil(lambda: bool(seen_down), timeout=10_000)
        shown = seen_down[0]
        assert shown["banner"].startswith("Console engine down since ")
        assert ": its worker process ended unexpectedly, killed by SIGKILL (a crash, or the " \
               "out-of-memory killer); restarting in " in shown["banner"]
        assert "the panels show its last data, from " in shown["banner"]
        assert shown["banner"].endswith("marked stale")
        assert shown["severity"] == "critical"
        assert shown["engine"].startswith("Console engine down since ")
        assert shown["engine"].endswith(
            "Nobody polls the sources meanwhile: the rows below are the engine's last report.")
        assert shown["state"] == NOT_POLLED
        assert shown["sources_age"].startswith("ENGINE DOWN \u00b7 last poll ")
        assert shown["kpi_age"].startswith("STALE (telemetry, scheduler, alerts) \u00b7 updated ")

        # Restarted by itself: a new frame arrives, built by a new process.
        qtbot.waitUntil(lambda: engine.latest_pid not in (None, first_pid)
                        and win._frame.seq > seq_before, timeout=60_000)
        assert engine.restarts == 1
        assert engine.engine_status() == EngineStatus(EngineState.RUNNING, pid=engine.latest_pid,
                                                      restarts=1)
        qtbot.waitUntil(lambda: win.banner.isHidden() and sources.engine_label.isHidden()
                        and sources.cell_text(0, 2) == "\u25cf OK", timeout=10_000)
        assert engine.error is None
    finally:
        bridge.close()
        engine.stop()
    assert engine.engine_status().state is EngineState.STOPPED


class FakeEngine:
    """An engine that only relays what the test hands it (frames and health)."""

    def __init__(self) -> None:
        self.frame_subs: list = []
        self.status_subs: list = []
        self.actions = None

    def subscribe(self, cb) -> None:
        self.frame_subs.append(cb)

    def subscribe_status(self, cb) -> None:
        self.status_subs.append(cb)

    def unsubscribe_status(self, cb) -> None:
        self.status_subs.remove(cb)

    def emit(self, frame=None, status=None) -> None:
        for cb in self.frame_subs if frame is not None else ():
            cb(frame)
        for cb in self.status_subs if status is not None else ():
            cb(status)


def test_with_several_clusters_the_banner_follows_the_cluster_shown(qtbot, make_frame):
    from dataclasses import replace

    from console.config import Settings
    from console.fleet import Fleet
    from widgets.bridge import FleetBridge

    settings = Settings(clusters=(replace(demo_settings(nodes=4).cluster(), name="a"),
                                  replace(demo_settings(nodes=4).cluster(), name="b")))
    engines: dict[str, FakeEngine] = {}

    def factory(settings, cluster, **kw):
        engines[cluster] = FakeEngine()
        return engines[cluster]

    fleet = Fleet(settings, engine_factory=factory)
    clock = Clock()
    win = MainWindow(PanelContext(), persist=False, clock=clock)
    qtbot.addWidget(win)
    win.set_clusters(fleet.names)
    bridge = FleetBridge(fleet, win)
    bridge.frame_ready.connect(win.show_cluster_frame)
    bridge.status_changed.connect(win.show_cluster_engine_status)
    engines["a"].emit(replace(make_frame(), cluster="a"))
    engines["b"].emit(replace(make_frame(), cluster="b"))
    qtbot.waitUntil(lambda: win._frame is not None and win._frame.cluster == "a")
    down = EngineStatus(EngineState.DOWN, "its worker process ended unexpectedly, killed by SIGKILL",
                        pid=7, down_since=time.time() - 5, retry_at=None)
    engines["b"].emit(status=down)
    qtbot.waitUntil(lambda: "b" in win._cluster_status)
    assert win.banner.isHidden()  # cluster a is shown, and its engine is fine
    clock.t += 20  # b's last frame arrived 20 s before the operator switches to it
    assert win.switch_cluster("b")
    win.panels["kpi"].render_now()
    assert win.panels["kpi"].header.age_label.text() == (
        "STALE (telemetry, scheduler, alerts) \u00b7 updated 25 s ago")
    assert not win.banner.isHidden()
    assert win.banner.text().startswith("Console engine down since ")
    sources = win.panels["sources"]
    sources.render_now()
    assert sources.engine_label.text().startswith("Console engine down since ")
    assert win.switch_cluster("a")
    sources.render_now()
    assert sources.engine_label.isHidden()  # a's engine is not down...
    # ...but nothing came from it for 20 s either: said, not hidden
    assert win.banner.text().startswith("No new data from the console engine for 20 s")
    engines["a"].emit(replace(make_frame(seq=2), cluster="a"))
    qtbot.waitUntil(lambda: win._frame.seq == 2)
    assert win.banner.isHidden()
    bridge.close()
    assert engines["b"].status_subs == []

"""The time scrubber: the panels show a past moment from the journal, marked, then live again."""

from __future__ import annotations

from pathlib import Path

from console.journal_store import Event, JournalStore, NodeMinute
from frames import NOW, make_test_frame
from widgets.main_window import MainWindow
from widgets.panel import PanelContext
from widgets.time_scrubber import install_time_scrubber

PAST = NOW - 2 * 3600  # two hours before the live frame


def journal(path: Path) -> None:
    import numpy as np

    with JournalStore(path) as s:
        s.write([Event(PAST - 600, "alert.firing", "alert:old",
                       "critical alert NodeDown on n0003 firing",
                       {"fingerprint": "old", "name": "NodeDown", "severity": "critical",
                        "state": "firing", "starts_at": PAST - 600, "summary": "n0003 down",
                        "labels": {"alertname": "NodeDown"}, "node": "n0003"})],
                cluster_rows=[{"t": PAST - 30, "delivered_pf": 1234.5, "installed_pf": 3000.0,
                               "gpus_total": 32, "gpus_healthy": 24, "jobs_running": 7,
                               "jobs_pending": 2, "alerts_firing": 1,
                               "detail": {"alerts_by_severity": {"critical": 1},
                                          "precision": "BF16 dense"}}],
                nodes=[NodeMinute(PAST - 30, ("n0001", "n0002", "n0003", "n0004"),
                                  {"state": np.array([2, 2, 6, 1], np.int8),
                                   "health": np.array([0, 0, 2, 0], np.int8)})])


def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    path = tmp_path / "j.sqlite3"
    journal(path)
    scrubber = install_time_scrubber(win, path, clock=lambda: NOW)
    return win, scrubber


def delivered(win: MainWindow) -> str:
    win.render_all()
    return win.panels["kpi"].tiles["delivered"].value.text()


def test_panels_show_the_past_marked_then_live_again(qtbot, tmp_path: Path) -> None:
    win, scrubber = window(qtbot, tmp_path)
    live = make_test_frame()
    win.show_frame(live)
    assert delivered(win) == "12.0 PF"
    assert scrubber.banner.text() == "LIVE"

    scrubber.set_at(PAST)
    assert delivered(win) == "1,234 PF"
    assert scrubber.banner.text().startswith("PAST: ")
    assert "2 h ago" in scrubber.banner.text()
    assert "no job list or per-GPU readings then" in scrubber.banner.text()
    assert win.panels["heatmap"].frame.nodes.state.tolist() == [2, 2, 6, 1]
    assert [a.name for a in win.panels["alerts"].frame.alerts] == ["NodeDown"]
    assert len(win.panels["jobs"].frame.jobs) == 0  # jobs are not kept one by one ...
    # ... so the queue says the list is unknown instead of "0 jobs"
    assert win.panels["jobs"].count_label.text().startswith("no job list for this moment")
    assert win.panels["tenants"].frame.accounting is None  # money is read live only
    # New live frames keep arriving: the panels stay in the past, the window's frame is live.
    win.show_frame(make_test_frame(seq=2, now=NOW + 1))
    assert delivered(win) == "1,234 PF"
    assert win.frame is not None and win.frame.seq == 2

    scrubber.go_live()
    assert delivered(win) == "12.0 PF"
    assert win.panels["jobs"].count_label.text().endswith(" jobs")
    assert scrubber.banner.text() == "LIVE"
    assert win.panels["kpi"].frame.seq == 2


def test_keys_step_back_and_end_returns_to_live(qtbot, tmp_path: Path) -> None:
    win, scrubber = window(qtbot, tmp_path)
    win.show_frame(make_test_frame())
    keys = {sc.key().toString(): sc for sc in scrubber.shortcuts}
    assert set(keys) == {"Ctrl+Left", "Ctrl+Right", "Ctrl+Shift+Left", "Ctrl+Shift+Right", "End"}
    assert not keys["End"].isEnabled()  # End stays the tables' key while live
    keys["Ctrl+Shift+Left"].activated.emit()
    assert scrubber.at == NOW - 3600 and keys["End"].isEnabled()
    keys["Ctrl+Left"].activated.emit()
    assert scrubber.at == NOW - 3660
    keys["Ctrl+Right"].activated.emit()
    assert scrubber.at == NOW - 3600
    # No journal minute an hour ago: the figures are unknown, never zeros, and it says so.
    assert delivered(win) == "no data"
    assert "the journal has no figures for that minute" in scrubber.banner.text()
    keys["End"].activated.emit()
    assert scrubber.is_live and not keys["End"].isEnabled()
    assert delivered(win) == "12.0 PF"


def test_the_slider_moves_by_minutes_and_its_end_is_live(qtbot, tmp_path: Path) -> None:
    _win, scrubber = window(qtbot, tmp_path)
    top = scrubber.slider.maximum()
    scrubber.slider.setValue(top - 120)
    assert scrubber.at == NOW - 7200
    scrubber.slider.setValue(top)
    assert scrubber.is_live
    scrubber.set_at(NOW - 10 * 86400)  # beyond the scrubber's day: clamped to its start
    assert scrubber.at == NOW - 86400 and scrubber.slider.value() == 0


def test_a_paused_journal_is_said_in_the_window(qtbot, tmp_path: Path) -> None:
    import dataclasses

    from console.journal_recorder import JournalRecorder

    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    def full_disk(_path: Path) -> JournalStore:
        raise OSError(28, "No space left on device")

    rec = JournalRecorder(tmp_path / "j.sqlite3", store_factory=full_disk)
    rec.record([Event(NOW, "note")])
    rec.drain()
    line = rec.source_status(NOW)
    assert line is not None
    frame = make_test_frame()
    win.show_frame(dataclasses.replace(frame, sources=(*frame.sources, line)))
    win.render_all()
    assert "journal paused: the disk is full" in win.banner.text()
    sources = win.panels["sources"]
    assert "journal paused: the disk is full" in " ".join(
        sources.cell_text(sources.row_of("journal"), c) for c in range(6))

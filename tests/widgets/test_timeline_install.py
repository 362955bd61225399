"""The journal's views on the main window: menu, scrubber, and each incident's timeline link."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

from console.config import demo_settings
from console.journal_settings import JournalSettings
from console.journal_store import Event, JournalStore, database_path
from frames import make_test_frame
from widgets.main_window import MainWindow
from widgets.panel import PanelContext
from widgets.timeline_install import install_journal


def engine(folder: Path, enabled: bool = True) -> SimpleNamespace:
    settings = dataclasses.replace(demo_settings(nodes=4),
                                   journal=JournalSettings(folder=str(folder), enabled=enabled))
    return SimpleNamespace(settings=settings, cluster=settings.clusters[0])


def test_no_journal_no_views(qtbot, tmp_path: Path) -> None:
    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    assert install_journal(win, engine(tmp_path, enabled=False)) is None
    assert win.frame_filter is None
    assert not win.panels["incidents"].timeline_available


def test_incident_link_opens_its_timeline(qtbot, tmp_path: Path) -> None:
    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    # An incident of ten minutes ago (the dialog's window ends now, on the wall clock).
    cause = dataclasses.replace(make_test_frame().causes[0], started_at=time.time() - 600)
    frame = make_test_frame(cause_list=(cause,))
    path = database_path("Simulated AISC", tmp_path)
    with JournalStore(path) as s:
        s.write([Event(cause.started_at + 1, "node.state", f"node:{cause.nodes[0]}",
                       f"{cause.nodes[0]}: MIXED → DRAINED", {"node": cause.nodes[0]}),
                 Event(cause.started_at + 2, "node.state", "node:elsewhere", "unrelated",
                       {"node": "elsewhere"})])
    views = install_journal(win, engine(tmp_path))
    assert views is not None
    try:
        assert win.frame_filter == views.scrubber.frame_filter
        assert views.timeline_action.shortcut().toString() == "Ctrl+Shift+T"
        win.show_frame(frame)
        panel = win.panels["incidents"]
        panel.render_now()
        assert panel.select_cause(cause.id)
        assert "Timeline of this incident" in panel.details.toPlainText()
        panel.open_link(f"timeline:{cause.id}")
        dlg = views.dialogs[-1]
        assert dlg.scope is not None and dlg.scope.title == cause.title
        assert [r[3] for r in dlg.rows()] == [f"{cause.nodes[0]}: MIXED → DRAINED"]
        audit = views.open_audit()
        assert audit.windowTitle() == "Audit trail (read-only)"
    finally:
        views.close()

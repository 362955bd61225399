"""Where a journal is kept, the window gets its views: the time scrubber, the timeline, the
audit trail, and the incidents' "Timeline of this incident" links.

One call from the GUI start-up (`install_journal`), so the main window only needs its
``frame_filter`` hook. Operator notes are written by a journal writer thread of their own in
this process (never the GUI thread); SQLite's locking keeps it and the engine's writer apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction, QKeySequence

from console.journal_engine import journal_path
from console.journal_recorder import JournalRecorder
from widgets.audit_view import AuditView
from widgets.time_scrubber import TimeScrubber, install_time_scrubber
from widgets.timeline_dialog import IncidentScope, TimelineDialog

log = logging.getLogger(__name__)


class JournalViews:
    """The journal's windows for one main window, and the note writer they share."""

    def __init__(self, window: Any, path: Path) -> None:
        self.window = window
        self.path = path
        self.notes = JournalRecorder(path, prune_every_s=float("inf"), exclusive=False)
        self.notes.start()
        self.scrubber: TimeScrubber = install_time_scrubber(window, path)
        self.dialogs: list[Any] = []
        menu = window.menu_bar.addMenu("&Journal")
        self.timeline_action = QAction("Incident &timeline\u2026", window)
        self.timeline_action.setShortcut(QKeySequence("Ctrl+Shift+T"))
        self.timeline_action.triggered.connect(lambda: self.open_timeline())
        self.audit_action = QAction("&Audit trail\u2026", window)
        self.audit_action.triggered.connect(self.open_audit)
        for a in (self.timeline_action, self.audit_action):
            window.addAction(a)
            menu.addAction(a)
        incidents = getattr(window, "panels", {}).get("incidents")
        if incidents is not None and hasattr(incidents, "timeline_requested"):
            incidents.timeline_available = True
            incidents.timeline_requested.connect(
                lambda cause: self.open_timeline(IncidentScope.of_cause(cause)))
        window.destroyed.connect(lambda *_: self.notes.stop(timeout=2.0))

    def open_timeline(self, scope: IncidentScope | None = None) -> TimelineDialog:
        dlg = TimelineDialog(self.path, scope=scope, note_sink=self.notes.record,
                             author=getattr(getattr(self.window, "context", None), "operator", None),
                             parent=self.window)
        self._show(dlg)
        return dlg

    def open_audit(self) -> AuditView:
        dlg = AuditView(self.path, parent=self.window)
        self._show(dlg)
        return dlg

    def _show(self, dlg: Any) -> None:
        self.dialogs = [d for d in self.dialogs if d.isVisible()] + [dlg]
        dlg.show()

    def close(self) -> None:
        self.notes.stop(timeout=2.0)


def install_journal(window: Any, engine: Any) -> JournalViews | None:
    """The journal's views on ``window`` for ``engine``'s cluster, or None when that engine
    keeps no journal (a fleet shows none yet: its clusters change under one window)."""
    settings, cluster = getattr(engine, "settings", None), getattr(engine, "cluster", None)
    if settings is None or cluster is None or not hasattr(window, "frame_filter"):
        return None
    try:
        path = journal_path(settings, cluster)
    except Exception:  # noqa: BLE001 - the console comes up without the journal's views
        log.exception("journal views unavailable")
        return None
    return None if path is None else JournalViews(window, path)


__all__ = ["JournalViews", "install_journal"]

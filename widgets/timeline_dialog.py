"""The incident timeline: everything that happened in a time window, or around one incident.

One list, oldest first: alerts (firing, acknowledged and silenced with their comments,
resolved), node state changes and drains with their reasons, XIDs, job failures, anomalies and
probable causes, source outages, operator actions, and notes the operator types here. Notes
are journal events too: they are queued to a writer thread (never written on the GUI thread)
and show in the list once stored. Exports: CSV, JSON (as ``timeline --format json``) and a PDF
report with the plots for the post-incident review.

Reads the journal database read-only; the engine writes it. Lives in the GUI thread.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QDateTime, Slot
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDateTimeEdit, QDialog,
                               QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from console.journal_events import related
from console.journal_store import Event, JournalStore, JournalUnavailable
from widgets.timeline_report import write_csv, write_json, write_pdf

HEADERS = ("Time", "What", "Subject", "Details")
PRESETS = (("Last hour", 3600.0), ("Last 6 hours", 6 * 3600.0), ("Last 24 hours", 86400.0),
           ("Last 7 days", 7 * 86400.0))
#: How much before an incident began its timeline starts (what led up to it).
LEAD_IN_S = 1800.0
MAX_ROWS = 20_000

#: Words for event kinds (the kind itself is kept in the exports).
KIND_WORDS = {
    "alert.firing": "alert firing", "alert.resolved": "alert resolved",
    "alert.silenced": "silenced", "alert.acknowledged": "acknowledged",
    "alert.inhibited": "inhibited", "node.state": "node state", "node.reason": "node reason",
    "job.state": "job", "gpu.xid": "XID", "anomaly.opened": "anomaly", "anomaly.changed":
    "anomaly changed", "anomaly.closed": "anomaly ended", "cause.opened": "probable cause",
    "cause.changed": "cause changed", "cause.closed": "cause closed",
    "source.outage": "source down", "source.recovered": "source back",
    "action.attempt": "operator action", "action.outcome": "action result", "note": "note",
    "journal.resumed": "journal"}


@dataclass(frozen=True)
class IncidentScope:
    """What belongs to one incident: its nodes, jobs and the subjects of its cause and
    anomalies; ``title`` names it."""

    title: str
    started_at: float
    nodes: frozenset[str] = frozenset()
    jobs: frozenset[int] = frozenset()
    subjects: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of_cause(cls, cause: object) -> "IncidentScope":
        cid = str(getattr(cause, "id", ""))
        subjects = {f"cause:{cid}"} | {f"anomaly:{a}" for a in getattr(cause, "anomaly_ids", ())}
        nodes = frozenset(str(n) for n in getattr(cause, "nodes", ()))
        subjects |= {f"node:{n}" for n in nodes}
        return cls(title=str(getattr(cause, "title", "incident")),
                   started_at=float(getattr(cause, "started_at", time.time())), nodes=nodes,
                   jobs=frozenset(int(j) for j in getattr(cause, "jobs", ())),
                   subjects=frozenset(subjects))

    def holds(self, e: Event) -> bool:
        return related(e, nodes=self.nodes, jobs=self.jobs, subjects=self.subjects)


NoteSink = Callable[[Sequence[Event]], None]


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class TimelineDialog(QDialog):
    """A window of the journal's events (or one incident's), with notes and exports."""

    def __init__(self, store_path: str | Path, *, since: float | None = None,
                 until: float | None = None, scope: IncidentScope | None = None,
                 note_sink: NoteSink | None = None, author: str | None = None,
                 clock: Callable[[], float] = time.time, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store_path = Path(store_path)
        self.scope = scope
        self._sink = note_sink
        self._clock = clock
        self.author = author or _os_user()
        now = clock()
        if scope is not None and since is None:
            since = scope.started_at - LEAD_IN_S
        self.since = now - 3600.0 if since is None else since
        self.until = until
        self.events: list[Event] = []
        self.setObjectName("TimelineDialog")
        self.setWindowTitle(f"Timeline \u2014 {scope.title}" if scope else "Incident timeline")
        self.resize(1100, 700)

        self.from_edit = QDateTimeEdit(self)
        self.to_edit = QDateTimeEdit(self)
        for w in (self.from_edit, self.to_edit):
            w.setCalendarPopup(True)
            w.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.presets = QComboBox(self)
        self.presets.addItem("Window\u2026", None)
        for words, span in PRESETS:
            self.presets.addItem(words, span)
        self.presets.activated.connect(self._on_preset)
        self.live_check = QPushButton("Up to now", self)
        self.live_check.setCheckable(True)
        self.live_check.setChecked(until is None)
        self.live_check.setToolTip("The window ends now, and Refresh brings it up to date")
        self.live_check.toggled.connect(lambda on: self.to_edit.setEnabled(not on))
        self.to_edit.setEnabled(until is not None)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self._on_refresh)
        top = QHBoxLayout()
        top.addWidget(QLabel("From", self))
        top.addWidget(self.from_edit)
        top.addWidget(QLabel("to", self))
        top.addWidget(self.to_edit)
        top.addWidget(self.live_check)
        top.addWidget(self.presets)
        top.addStretch(1)
        top.addWidget(self.refresh_button)

        self.summary = QLabel("", self)
        self.summary.setObjectName("TimelineSummary")
        self.table = QTableWidget(0, len(HEADERS), self)
        self.table.setObjectName("TimelineTable")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 160)
        self.table.setColumnWidth(1, 130)
        self.table.setColumnWidth(2, 200)

        self.note_edit = QLineEdit(self)
        self.note_edit.setPlaceholderText("Type a note for the timeline (who saw what, what was "
                                          "decided) and press Enter")
        self.note_edit.returnPressed.connect(self.add_note)
        self.note_button = QPushButton("Add note", self)
        self.note_button.clicked.connect(self.add_note)
        self.note_button.setEnabled(note_sink is not None)
        self.note_edit.setEnabled(note_sink is not None)
        if note_sink is None:
            self.note_edit.setPlaceholderText("notes need the console's journal writer")
        notes = QHBoxLayout()
        notes.addWidget(self.note_edit, 1)
        notes.addWidget(self.note_button)

        self.csv_button = QPushButton("Export CSV\u2026", self)
        self.json_button = QPushButton("Export JSON\u2026", self)
        self.pdf_button = QPushButton("PDF report\u2026", self)
        self.csv_button.clicked.connect(lambda: self._export("CSV files (*.csv)", ".csv", self.export_csv))
        self.json_button.clicked.connect(lambda: self._export("JSON files (*.json)", ".json",
                                                              self.export_json))
        self.pdf_button.clicked.connect(lambda: self._export("PDF files (*.pdf)", ".pdf", self.export_pdf))
        self.status = QLabel("", self)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        for b in (self.csv_button, self.json_button, self.pdf_button):
            bottom.addWidget(b)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)
        lay.addLayout(notes)
        lay.addLayout(bottom)
        self._set_edits()
        self.refresh()

    # ------------------------------------------------------------------ the window

    def window_bounds(self) -> tuple[float, float]:
        until = self._clock() if self.live_check.isChecked() or self.until is None else self.until
        return self.since, until

    def _set_edits(self) -> None:
        since, until = self.window_bounds()
        self.from_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(since)))
        self.to_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(until)))

    @Slot(int)
    def _on_preset(self, index: int) -> None:
        span = self.presets.itemData(index)
        if span is None:
            return
        self.live_check.setChecked(True)
        self.since = self._clock() - float(span)
        self.until = None
        self._set_edits()
        self.refresh()

    @Slot()
    def _on_refresh(self) -> None:
        self.since = float(self.from_edit.dateTime().toSecsSinceEpoch())
        if not self.live_check.isChecked():
            self.until = float(self.to_edit.dateTime().toSecsSinceEpoch())
        self.refresh()

    def refresh(self) -> None:
        """Read the window's events again (read-only) and show them."""
        since, until = self.window_bounds()
        try:
            with JournalStore(self.store_path, readonly=True) as store:
                # The newest first when a window holds more than a table should: what led to
                # now matters more than the start of a long window.
                limit = MAX_ROWS * 4 if self.scope is not None else MAX_ROWS + 1
                events = store.events(since, until, limit=limit, newest=True)
        except JournalUnavailable as exc:
            self.events = []
            self._fill()
            self.summary.setText(f"The journal cannot be read: {exc.words}")
            return
        if self.scope is not None:
            events = [e for e in events if self.scope.holds(e)]
        self.events = events[-MAX_ROWS:]
        self._fill()
        words = f"{len(self.events):,} events from {_stamp(since)} to {_stamp(until)}"
        if self.scope is not None:
            words += f" concerning {self.scope.title}"
        if len(events) > MAX_ROWS or (self.scope is None and len(events) == MAX_ROWS + 1):
            words += f" (the newest {MAX_ROWS:,} shown; exports hold the same)"
        self.summary.setText(words)

    def _fill(self) -> None:
        t = self.table
        t.setUpdatesEnabled(False)
        t.setRowCount(len(self.events))
        for r, e in enumerate(self.events):
            cells = (_stamp(e.time), KIND_WORDS.get(e.kind, e.kind), e.subject, e.summary)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setToolTip(text)
                t.setItem(r, c, item)
        t.setUpdatesEnabled(True)

    def rows(self) -> list[tuple[str, ...]]:
        """The table's text, row by row (what the operator sees)."""
        def text(r: int, c: int) -> str:
            item = self.table.item(r, c)
            return "" if item is None else item.text()

        return [tuple(text(r, c) for c in range(self.table.columnCount()))
                for r in range(self.table.rowCount())]

    # ------------------------------------------------------------------ notes

    @Slot()
    def add_note(self) -> None:
        text = self.note_edit.text().strip()
        if not text or self._sink is None:
            return
        about = sorted(self.scope.subjects) if self.scope is not None else []
        data = {"author": self.author, "text": text, "about": about}
        if self.scope is not None:
            data["incident"] = self.scope.title
        event = Event(self._clock(), "note", f"note:{self.author}", f"{self.author}: {text}", data)
        self._sink([event])
        self.note_edit.clear()
        self.status.setText("note queued for the journal; Refresh shows it once it is stored")

    # ------------------------------------------------------------------ exports

    def _export(self, pattern: str, suffix: str, write: Callable[[str], Path]) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export the timeline", f"timeline{suffix}", pattern)
        if not name:
            return
        try:
            out = write(name)
        except OSError as exc:
            self.status.setText(f"could not write {name}: {exc.strerror or exc}")
            return
        self.status.setText(f"wrote {out}")

    def export_csv(self, path: str | Path) -> Path:
        return write_csv(self.events, path)

    def export_json(self, path: str | Path) -> Path:
        return write_json(self.events, path)

    def export_pdf(self, path: str | Path) -> Path:
        since, until = self.window_bounds()
        try:
            with JournalStore(self.store_path, readonly=True) as store:
                t, series = store.cluster_series(since, until)
        except JournalUnavailable:
            import numpy as np

            t, series = np.zeros(0), {}
        title = (f"Incident timeline: {self.scope.title}" if self.scope is not None
                 else "Timeline")
        scope = ""
        if self.scope is not None and self.scope.nodes:
            scope = f"nodes {', '.join(sorted(self.scope.nodes)[:8])}"
        return write_pdf(self.events, path, title=title, since=since, until=until, series_t=t,
                         series=series, scope_words=scope)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "operator"


__all__ = ["IncidentScope", "KIND_WORDS", "LEAD_IN_S", "TimelineDialog"]

"""Source status: is each data source answering, how old is its data, and if not, why not.

A blind console must never look calm: each source's state is shown as a mark, a word and a
colour, the error in plain words, and the age of the newest good data. `failing_banner` phrases
the banner the main window shows across the top while a source is failing or stale.

The engine that polls the sources can itself die (a killed worker process): then a line above
the table says so in words, each row's state reads "not polled" (nobody asks the source, so its
state is unknown), and the ages keep growing from the last report.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from console.engine import EngineStatus
from console.model import Frame, Severity, SourceState, SourceStatus
from widgets import theme as _theme
from widgets.formatting import fmt_duration, fmt_latency, plural
from widgets.panel import Panel, PanelContext
from widgets.tables import ColumnSizer
from widgets.theme import SOURCE_STATE_WORDS, PanelHeader, source_state_colour

COLUMNS = ("Source", "Data", "State", "Data age", "Latency", "Error or detail")
#: Widths at 14 px text on 1920x1080 (the error column takes the rest); `ColumnSizer` scales them.
COLUMN_WIDTHS = (150, 110, 120, 130, 90)
COLUMN_SAMPLES = {1: "telemetry", 2: "\u2716 failing", 3: "59 min old", 4: "1,234 ms"}
KIND_WORDS = {"telemetry": "telemetry", "scheduler": "scheduler", "alerts": "alerts",
              "simulator": "simulator"}
#: The State column of every source while the engine that polls them is down.
NOT_POLLED = "? not polled"


def state_text(status: SourceStatus) -> str:
    mark, word = SOURCE_STATE_WORDS.get(status.state.value, ("?", status.state.value))
    return f"{mark} {word}"


def age_text(status: SourceStatus, now: float) -> str:
    age = status.age_s(now)
    return "no data yet" if age is None else f"{fmt_duration(age)} old"


def detail_text(status: SourceStatus) -> str:
    """The error in words when failing (with how many attempts failed), else the detail."""
    if status.error and status.state in (SourceState.FAILING, SourceState.STALE, SourceState.SLOW):
        text = status.error
        if status.consecutive_failures > 1:
            text += f" ({plural(status.consecutive_failures, 'failure')} in a row)"
        return text
    return status.detail or ""


def failing_banner(frame: Frame) -> tuple[str, str] | None:
    """(text, severity) for the main window banner, or None when every source is fine.

    "Scheduler source slurm failing: cannot connect ... — data shown is 2 min old".
    """
    parts: list[str] = []
    severity = "warning"
    for s in frame.sources:
        if s.state not in (SourceState.FAILING, SourceState.STALE):
            continue
        age = s.age_s(frame.time)
        shown = "no data received yet" if age is None else f"data shown is {fmt_duration(age)} old"
        kind = KIND_WORDS.get(s.kind, s.kind).capitalize()
        if s.state is SourceState.FAILING:
            severity = "critical"
            reason = s.error or "no answer"
            parts.append(f"{kind} source {s.name} failing: {reason} \u2014 {shown}")
        else:
            parts.append(f"{kind} source {s.name} stale: {shown}")
    if not parts:
        return None
    return "  \u2022  ".join(parts), severity


class SourcesPanel(Panel):
    """One row per source (GUI thread)."""

    title = "Data sources"
    redraw_ms = 1000

    def __init__(self, context: PanelContext | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context or PanelContext()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 4)
        lay.setSpacing(2)
        self.header = PanelHeader(self.title, self)
        lay.addWidget(self.header)
        self.engine_label = QLabel(self)
        self.engine_label.setObjectName("SourceBanner")  # the window banner's look: as urgent
        self.engine_label.setProperty("severity", "critical")
        self.engine_label.setWordWrap(True)
        self.engine_label.hide()
        lay.addWidget(self.engine_label)
        self.engine_status: EngineStatus | None = None
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setWordWrap(False)
        hdr = self.table.horizontalHeader()
        # Fixed widths, never resizeColumnsToContents (PERF.md); the error column takes the rest.
        hdr.setStretchLastSection(True)
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.column_sizer = ColumnSizer(self.table, COLUMN_WIDTHS, free_text={0},
                                        samples=COLUMN_SAMPLES)
        lay.addWidget(self.table, 1)
        self._names: tuple[str, ...] = ()

    def cell_text(self, row: int, col: int) -> str:
        item = self.table.item(row, col)
        return "" if item is None else item.text()

    def row_of(self, name: str) -> int:
        return self._names.index(name)

    def set_engine_status(self, status: EngineStatus | None) -> None:
        """The polling engine's health; while it is down the rows are its last report."""
        self.engine_status = status
        self._dirty = True

    @property
    def engine_down(self) -> bool:
        return self.engine_status is not None and self.engine_status.down

    def _render_engine(self) -> None:
        status = self.engine_status
        if status is None or not status.down:
            self.engine_label.hide()
            return
        text = (f"{status.words(time.time())}. Nobody polls the sources meanwhile: the rows "
                "below are the engine's last report.")
        if self.engine_label.text() != text:
            self.engine_label.setText(text)
        self.engine_label.show()

    def render(self, frame: Frame) -> None:
        self._render_engine()
        down = self.engine_down
        names = tuple(s.name for s in frame.sources)
        if names != self._names:
            self._names = names
            self.table.setRowCount(len(names))
            for r in range(len(names)):
                for c in range(len(COLUMNS)):
                    item = QTableWidgetItem()
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                    self.table.setItem(r, c, item)
        th = _theme.current()
        worst_stale = False
        for r, s in enumerate(frame.sources):
            texts = (s.name, KIND_WORDS.get(s.kind, s.kind), NOT_POLLED if down else state_text(s),
                     age_text(s, frame.time), fmt_latency(s.latency_s), detail_text(s))
            for c, text in enumerate(texts):
                item = self.table.item(r, c)
                if item.text() != text:
                    item.setText(text)
            colour = QColor(th.text_dim if down else source_state_colour(th, s.state.value))
            state_item = self.table.item(r, 2)
            if state_item.foreground().color() != colour:
                state_item.setForeground(QBrush(colour))
            err_item = self.table.item(r, 5)
            err_colour = QColor(th.severity[Severity.CRITICAL] if s.state is SourceState.FAILING else th.text)
            if err_item.foreground().color() != err_colour:
                err_item.setForeground(QBrush(err_colour))
            err_item.setToolTip(texts[5])
            worst_stale = worst_stale or s.state in (SourceState.FAILING, SourceState.STALE)
        # The panel's own age is the freshest poll attempt: it says whether we are still trying.
        attempts = [s.last_attempt for s in frame.sources if s.last_attempt is not None]
        label = self.header.age_label
        newest = max(attempts) if attempts else None
        text = "no poll yet" if newest is None else f"last poll {fmt_duration(frame.time - newest)} ago"
        if down:
            text = f"ENGINE DOWN \u00b7 {text}"
        elif worst_stale:
            text = f"SOURCE DOWN \u00b7 {text}"
        if label.text() != text:
            label.setText(text)
        _theme.set_state_property(label, "stale", "true" if worst_stale or down else "false")

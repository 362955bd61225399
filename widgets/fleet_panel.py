"""Fleet overview: one row per configured cluster, so the machines not on screen are never unseen.

Each row answers "is that cluster fine?" in the same words as the main panels: delivered out of
installed petaflops, healthy GPUs, jobs, alerts firing by severity, the worst data source state
with its error, and the age of the data. Colour always comes with a word and a mark. Rows keep
the configuration's order (nothing re-sorts under the cursor); the cluster on screen is marked
and bold. Double-click or Enter on a row asks the main window to show that cluster
(`cluster_requested`). Lives in the GUI thread.

Fed with `show_fleet(frames)` (cluster name -> newest frame or None); it re-renders on its own
timer, every tick while visible, because the data ages it shows grow with the wall clock even
when no frame arrives (a cluster whose engine died must visibly age, never look calm).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from widgets.tables import ColumnSizer, ReadOnlyTableModel, setup_row_table
from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QSizePolicy, QTableView, QVBoxLayout, QWidget

from console.fleet import FleetRow, fleet_rows
from console.model import Frame, Severity, SourceState
from widgets import theme as _theme
from widgets.formatting import DASH, fmt_duration, fmt_int, fmt_pct, fmt_pf
from widgets.panel import Panel, PanelContext
from widgets.theme import SEVERITY_WORDS, SOURCE_STATE_WORDS, PanelHeader, set_state_property, source_state_colour

CLUSTER_ROLE = int(Qt.ItemDataRole.UserRole) + 3

COL_CLUSTER, COL_DELIVERED, COL_GPUS, COL_JOBS, COL_ALERTS, COL_AGE, COL_SOURCES = range(7)
HEADERS = ("Cluster", "Delivered of installed", "GPUs healthy", "Jobs", "Alerts firing",
           "Data age", "Sources")
#: Widths at 14 px text on 1920x1080; `ColumnSizer` scales them (the cluster name gives way).
COLUMN_WIDTHS = (290, 340, 130, 220, 250, 130)
#: Rows shown without scrolling; a bigger fleet scrolls inside the panel.
MAX_VISIBLE_ROWS = 8
SEVERITY_MARKS: Mapping[Severity, str] = {
    Severity.CRITICAL: "\u2716", Severity.WARNING: "\u25b2", Severity.INFO: "\u25cf",
}
SHOWN_MARK = "\u25b6"  # the cluster the main panels show


def cluster_text(row: FleetRow, shown: bool) -> str:
    return (f"{SHOWN_MARK} " if shown else "   ") + row.name + (" \u00b7 simulated" if row.simulated else "")


_MISSING = {"waiting": "no data yet", "absent": "no source"}


def _missing(presence: str, *figures: float | int | None) -> str | None:
    """Words for data that is not there ("no data yet", "no source", "no data" once it is
    past its stale limit), or None when it is; any unknown figure makes the data missing."""
    if presence != "ok":
        return _MISSING.get(presence, "no data")
    if any(_unknown(f) for f in figures):
        return "no data"
    return None


def _unknown(x: float | int | None) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def delivered_text(row: FleetRow) -> str:
    """"64 PF of 190 PF (BF16 dense) · 34 %"; "telemetry: no data · 190 PF installed"."""
    if row.waiting:
        return "waiting for first data"
    installed = (f" \u00b7 {fmt_pf(row.installed_pf)} installed"
                 if not _unknown(row.installed_pf) and row.installed_pf else "")
    missing = _missing(row.telemetry, row.delivered_pf)
    if missing is not None:
        return f"telemetry: {missing}{installed}"
    if _unknown(row.installed_pf) or not row.installed_pf:
        return "no GPUs known yet"
    share = row.delivered_pf / row.installed_pf
    return (f"{fmt_pf(row.delivered_pf)} of {fmt_pf(row.installed_pf)}"
            + (f" ({row.precision})" if row.precision else "") + f" \u00b7 {fmt_pct(share)}")


def gpus_text(row: FleetRow) -> str:
    """"23 of 32" healthy; "health: no data · 32 GPUs" without telemetry; "no GPUs" on a
    cluster whose inventory has none (CPU nodes only)."""
    if row.waiting:
        return DASH
    if row.gpus_total is None:
        return "no data yet" if "ok" not in (row.telemetry, row.scheduler) else "no data"
    if row.gpus_total == 0:
        return "no GPUs"
    if row.gpus_healthy is None:
        return f"health: no data \u00b7 {fmt_int(row.gpus_total)} GPUs"
    return f"{fmt_int(row.gpus_healthy)} of {fmt_int(row.gpus_total)}"


def jobs_text(row: FleetRow) -> str:
    if row.waiting:
        return DASH
    missing = _missing(row.scheduler, row.jobs_running, row.jobs_pending)
    if missing is not None:
        return f"scheduler: {missing}"
    return f"{fmt_int(row.jobs_running)} running \u00b7 {fmt_int(row.jobs_pending)} pending"


def alerts_text(row: FleetRow) -> str:
    """Only the levels that fire, worst first, each with its mark: "✖ 1 critical  ▲ 2 warning"."""
    if row.waiting:
        return DASH
    missing = _missing(row.alerts, row.alerts_firing)
    if missing is not None:
        return f"alerts: {missing}"
    counts = ((Severity.CRITICAL, row.alerts_critical), (Severity.WARNING, row.alerts_warning),
              (Severity.INFO, row.alerts_info))
    parts = [f"{SEVERITY_MARKS[s]} {fmt_int(n)} {SEVERITY_WORDS[s]}" for s, n in counts if n]
    return "  ".join(parts) if parts else "none firing"


def age_text(row: FleetRow) -> str:
    if row.data_age_s is None:
        return "STALE \u00b7 no data" if row.stale else "no data yet"
    text = f"{fmt_duration(row.data_age_s)} old"
    return f"STALE \u00b7 {text}" if row.stale else text


def sources_text(row: FleetRow) -> str:
    """"● OK", "✖ failing — slurm: token rejected or expired"."""
    mark, word = SOURCE_STATE_WORDS.get(row.source_state.value, ("?", row.source_state.value))
    text = f"{mark} {word}"
    return f"{text} \u2014 {row.source_errors}" if row.source_errors else text


def needs_attention(row: FleetRow) -> bool:
    return (row.stale or bool(row.alerts_critical)
            or row.source_state in (SourceState.FAILING, SourceState.STALE))


_TEXTS = (None, delivered_text, gpus_text, jobs_text, alerts_text, age_text, sources_text)


class FleetTableModel(ReadOnlyTableModel):
    """The rows of `fleet_rows`, in configuration order; updates are `dataChanged` unless the
    set of clusters changes (GUI thread)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[FleetRow] = []
        self._texts: list[tuple[str, ...]] = []
        self._shown: str | None = None
        self._bold = QFont()
        self._bold.setBold(True)

    @property
    def rows(self) -> list[FleetRow]:
        return list(self._rows)

    @property
    def shown(self) -> str | None:
        return self._shown

    def names(self) -> list[str]:
        return [r.name for r in self._rows]

    def name_at(self, row: int) -> str:
        return self._rows[row].name

    def set_rows(self, rows: Sequence[FleetRow], shown: str | None) -> None:
        rows = list(rows)
        texts = [self._row_texts(r, r.name == shown) for r in rows]
        if [r.name for r in rows] != self.names():
            self.beginResetModel()
            self._rows, self._texts, self._shown = rows, texts, shown
            self.endResetModel()
            return
        # The texts carry everything the colours are derived from (and the shown mark).
        old_texts = self._texts
        self._rows, self._texts, self._shown = rows, texts, shown
        last = len(HEADERS) - 1
        for i, (a, b) in enumerate(zip(old_texts, texts)):
            if a != b:
                self.dataChanged.emit(self.index(i, 0), self.index(i, last))

    @staticmethod
    def _row_texts(row: FleetRow, shown: bool) -> tuple[str, ...]:
        return (cluster_text(row, shown),) + tuple(fn(row) for fn in _TEXTS[1:])  # type: ignore[misc]

    # -- Qt model interface ---------------------------------------------------------------------

    headers = HEADERS

    def _row_count(self) -> int:
        return len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        r, c = index.row(), index.column()
        if not 0 <= c < len(HEADERS):
            return None
        row = self._rows[r]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[r][c]
        if role == CLUSTER_ROLE:
            return row.name
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._colour(row, c)
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if row.name == self._shown and c == COL_CLUSTER else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, c)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _colour(self, row: FleetRow, col: int) -> QColor | None:
        th = _theme.current()
        if row.waiting and col != COL_CLUSTER:
            return QColor(th.text_dim)
        if ((col == COL_DELIVERED and _missing(row.telemetry, row.delivered_pf))
                or (col == COL_JOBS and _missing(row.scheduler, row.jobs_running))
                or (col == COL_ALERTS and _missing(row.alerts, row.alerts_firing))
                or (col == COL_GPUS and (not row.gpus_total or row.gpus_healthy is None))):
            return QColor(th.text_dim)
        if col == COL_ALERTS:
            worst = row.worst_severity
            return QColor(th.text_dim if worst is None else th.severity[worst])
        if col == COL_SOURCES:
            return QColor(source_state_colour(th, row.source_state.value))
        if col == COL_AGE and row.stale:
            return QColor(th.stale)
        if col == COL_GPUS and row.gpus_healthy is not None and row.gpus_healthy < (row.gpus_total or 0):
            return QColor(th.severity[Severity.WARNING])
        return None

    def _tooltip(self, row: FleetRow, col: int) -> str | None:
        if col == COL_CLUSTER:
            shown = " (shown now)" if row.name == self._shown else ""
            return f"{row.name}{shown}: double-click or Enter to show this cluster"
        if col == COL_SOURCES and row.source_errors:
            return row.source_errors
        if col == COL_AGE:
            return "age of the oldest data this cluster shows; STALE after three missed polls"
        return None


class FleetPanel(Panel):
    """One row per cluster (GUI thread). `cluster_requested(name)` asks to show a cluster."""

    title = "Fleet"
    redraw_ms = 1000
    cluster_requested = Signal(str)

    def __init__(self, context: PanelContext | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context or PanelContext()
        self._frames: dict[str, Frame | None] = {}
        self._simulated: dict[str, bool] = {}
        self._errors: dict[str, str | None] = {}
        self._shown: str | None = None
        self._fleet_dirty = False
        self.model = FleetTableModel(self)
        self.header = PanelHeader(self.title, self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        setup_row_table(self.table, "FleetTable")
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vh = self.table.verticalHeader()
        hh = self.table.horizontalHeader()
        hh.setStretchLastSection(True)  # the sources column takes the rest: errors are long
        self._scale = 0.0
        self._n_rows = 1
        self.column_sizer = ColumnSizer(self.table, COLUMN_WIDTHS, free_text={COL_CLUSTER})
        self._apply_scale()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.table, 1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.table.installEventFilter(self)

    # -- feeding --------------------------------------------------------------------------------

    def set_clusters(self, names: Sequence[str], simulated: Mapping[str, bool] | None = None) -> None:
        """The configured clusters, in order, before any frame arrives (they show "waiting")."""
        self._frames = {n: self._frames.get(n) for n in names}
        self._simulated = dict(simulated or {})
        self._fleet_dirty = True
        self._n_rows = len(names)
        self._fit_height()

    def _apply_scale(self) -> None:
        """Row height, column widths and panel height for the current font scale (a wall
        screen's Ctrl+= must not clip the rows)."""
        th = _theme.current()
        self._scale = th.font_scale
        self.table.verticalHeader().setDefaultSectionSize(th.px(26))
        self.column_sizer.apply()
        self._fit_height()

    def _fit_height(self) -> None:
        """Exactly as tall as its rows (up to MAX_VISIBLE_ROWS): the dock sits above the
        health map, and every pixel more here is a pixel less there."""
        rows = max(1, min(self._n_rows, MAX_VISIBLE_ROWS))
        table = self.table
        height = (table.horizontalHeader().sizeHint().height()
                  + rows * table.verticalHeader().defaultSectionSize() + 2 * table.frameWidth() + 2)
        table.setFixedHeight(height)

    def show_fleet(self, frames: Mapping[str, Frame | None],
                   errors: Mapping[str, str | None] | None = None) -> None:
        """Newest frame per cluster (None: none yet); cheap, so it can run at the data rate."""
        self._frames = dict(frames)
        if errors is not None:
            self._errors = dict(errors)
        self._fleet_dirty = True

    @Slot(object)
    def show_frame(self, frame: Frame) -> None:
        """The frame the main panels show: it says which cluster is on screen."""
        super().show_frame(frame)
        if frame.cluster != self._shown:
            self._shown = frame.cluster
            self._fleet_dirty = True

    def set_shown(self, name: str | None) -> None:
        if name != self._shown:
            self._shown = name
            self._fleet_dirty = True

    # -- rendering ------------------------------------------------------------------------------

    def render_now(self) -> None:
        self.render_at(time.time())

    @Slot()
    def _on_redraw_timer(self) -> None:
        # Every tick while visible, not only when dirty: the ages grow with the wall clock.
        if self.isVisible() and (self._frames or self._fleet_dirty):
            self.render_at(time.time())

    def render(self, frame: Frame) -> None:  # the Panel contract; the fleet is what we draw
        self.render_at(time.time())

    def render_at(self, now: float) -> None:
        """Render the rows as of ``now`` (tests pass the frames' clock for exact ages)."""
        self._fleet_dirty = False
        if _theme.current().font_scale != self._scale:
            self._apply_scale()
        rows = fleet_rows(self._frames, now, simulated=self._simulated, errors=self._errors)
        self.model.set_rows(rows, self._shown)
        attention = [r.name for r in rows if needs_attention(r)]
        label = self.header.age_label
        if not rows:
            text = "no clusters"
        elif attention:
            text = f"{len(attention)} of {len(rows)} clusters need attention: {', '.join(attention)}"
        else:
            text = f"{len(rows)} clusters \u00b7 all fine"
        if label.text() != text:
            label.setText(text)
        set_state_property(label, "stale", "true" if attention else "false")

    def row_texts(self, row: int) -> list[str]:
        m = self.model
        return [m.data(m.index(row, c)) for c in range(len(HEADERS))]

    # -- switching ------------------------------------------------------------------------------

    def request_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            self.cluster_requested.emit(self.model.name_at(row))

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        self.request_row(index.row())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if (watched is self.table and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            idx = self.table.currentIndex()
            if idx.isValid():
                self.request_row(idx.row())
                return True
        return super().eventFilter(watched, event)

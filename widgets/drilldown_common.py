"""What the node and job drill-down windows share: a caption/value grid, a small row model,
the list of alerts, anomalies and causes behind a subject, and the action plumbing.

Kept apart so that both windows word things the same way (an on-call engineer hopping from a
node to its job must not have to re-read a differently laid-out page) and so that the
confirmation steps are replaceable hooks, as in the alerts panel: tests answer them at once,
the console asks a person. Lives in the GUI thread.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame, QGridLayout, QInputDialog, QLabel, QLineEdit, QMessageBox, QPushButton, QWidget,
)

from console.model import Frame, Severity
from widgets import theme as theme_mod
from widgets.panel import Panel
from widgets.tables import ReadOnlyTableModel
from widgets.theme import SEVERITY_WORDS

NO_ACTIONS = "actions are not available in this mode (read-only)"


def local_time(t: float | None) -> str:
    """Epoch seconds as local wall-clock time, or a dash when unknown."""
    if t is None or not (t == t) or t in (float("inf"), float("-inf")):
        return "\u2014"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t)))


def link(href: str, text: str) -> str:
    """A rich-text link readable on the dark theme (Qt's default link blue is not)."""
    colour = theme_mod.current().accent
    return (f'<a href="{html.escape(href, quote=True)}" style="color:{colour};">'
            f"{html.escape(text)}</a>")


# ---------------------------------------------------------------------------------------------
# Alerts, anomalies and causes about one subject
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventItem:
    """One line of "what is known to be wrong here": a cause, an alert or an anomaly."""

    kind: str  # "cause" | "alert" | "anomaly"
    severity: Severity
    title: str
    since: float
    detail: str = ""
    action: str = ""
    gpu: int | None = None


def events_for(frame: Frame, *, node: str | None = None, job_id: int | None = None) -> list[EventItem]:
    """Causes that name the subject, then its alerts, then the console's anomalies; worst
    first within each group, because the cause (with its suggested action) is what to read."""
    causes = [c for c in frame.causes
              if (node is not None and node in c.nodes) or (job_id is not None and job_id in c.jobs)]
    alerts = [a for a in frame.alerts if a.state != "resolved"
              and ((node is not None and a.node == node) or (job_id is not None and a.job_id == job_id))]
    anomalies = [a for a in frame.anomalies if a.ended_at is None
                 and ((node is not None and a.node == node)
                      or (job_id is not None and a.job_id == job_id))]
    out: list[EventItem] = []
    for c in sorted(causes, key=lambda c: (int(c.severity), -c.confidence)):
        detail = f"confidence {c.confidence * 100:.0f} %"
        if c.evidence:
            detail += " \u00b7 " + "; ".join(c.evidence)
        out.append(EventItem("cause", c.severity, c.title, c.started_at, detail, c.action))
    for a in sorted(alerts, key=lambda a: (int(a.severity), -a.starts_at)):
        state = "" if a.state == "firing" else f"{a.state} \u00b7 "
        summary = a.summary if a.summary != a.name else ""
        out.append(EventItem("alert", a.severity, a.name, a.starts_at,
                             state + summary, "", a.gpu))
    for a in sorted(anomalies, key=lambda a: (int(a.severity), -a.score)):
        out.append(EventItem("anomaly", a.severity, a.kind.replace("_", " "), a.started_at,
                             a.evidence, "", a.gpu))
    return out


def events_html(items: Sequence[EventItem], empty: str) -> str:
    """The list as rich text: severity word in its colour, what, since when, what to do."""
    th = theme_mod.current()
    e = html.escape
    if not items:
        return f"<p style='color:{th.text_dim}'>{e(empty)}</p>"
    parts: list[str] = []
    labels = {"cause": "Likely cause", "alert": "Alert", "anomaly": "Anomaly"}
    for it in items:
        colour = th.severity[it.severity]
        where = f" \u00b7 GPU {it.gpu}" if it.gpu is not None else ""
        since = time.strftime("%H:%M", time.localtime(it.since))
        line = (f"<p style='margin:0 0 6px 0'><b style='color:{colour}'>"
                f"{e(SEVERITY_WORDS[it.severity])}</b> \u00b7 {labels[it.kind]}{where} \u00b7 "
                f"since {since}<br><b>{e(it.title)}</b>")
        if it.detail:
            line += f"<br><span style='color:{th.text_dim}'>{e(it.detail)}</span>"
        if it.action:
            line += f"<br>\u2192 <b>Do:</b> {e(it.action)}"
        parts.append(line + "</p>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------------------------


class FieldGrid(QFrame):
    """Caption above value, laid out in `columns` columns; values may carry links."""

    link_activated = Signal(str)

    def __init__(self, fields: Sequence[tuple[str, str]], columns: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DrilldownFields")
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 4, 8, 4)
        grid.setHorizontalSpacing(28)
        grid.setVerticalSpacing(2)
        grid.setContentsMargins(8, 4, 8, 8)
        th = theme_mod.current()
        self.values: dict[str, QLabel] = {}
        self.captions: dict[str, QLabel] = {}
        for i, (key, caption) in enumerate(fields):
            row, col = divmod(i, columns)
            cap = QLabel(caption, self)
            cap.setObjectName("KpiCaption")
            val = QLabel("\u2014", self)
            val.setObjectName("DrilldownValue")
            val.setTextFormat(Qt.TextFormat.RichText)
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
            val.setOpenExternalLinks(False)
            val.setWordWrap(True)
            val.setStyleSheet(f"font-size: {th.px(16)}px;")
            val.linkActivated.connect(self.link_activated)
            if row and col == 0:
                grid.setRowMinimumHeight(row * 2, th.px(26))  # air between rows of fields
            grid.addWidget(cap, row * 2, col, Qt.AlignmentFlag.AlignBottom)
            grid.addWidget(val, row * 2 + 1, col, Qt.AlignmentFlag.AlignTop)
            self.values[key] = val
            self.captions[key] = cap
        for col in range(columns):
            grid.setColumnStretch(col, 1)

    def set(self, key: str, text: str, *, rich: bool = False, colour: str | None = None,
            tooltip: str = "") -> None:
        """Set a value; plain text is escaped, so a job name can never inject markup."""
        body = text if rich else html.escape(text)
        if colour:
            body = f"<span style='color:{colour}; font-weight:bold'>{body}</span>"
        lab = self.values[key]
        if lab.text() != body:
            lab.setText(body)
        if lab.toolTip() != tooltip:
            lab.setToolTip(tooltip)

    def text(self, key: str) -> str:
        """The value as plain text (what tests and the clipboard see)."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.values[key].text())
        return doc.toPlainText()


class RowsModel(ReadOnlyTableModel):
    """Rows of ready-made strings with optional per-cell colours and tooltips.

    The windows format once per frame (a node has 8 GPUs, a big job a few thousand), and the
    view only reads; equal row counts update in place so the selection survives a new frame.
    """

    def __init__(self, headers: Sequence[str], parent: Any = None) -> None:
        super().__init__(parent)
        self.headers = tuple(headers)
        self.rows: list[tuple[str, ...]] = []
        self.colours: list[dict[int, str]] = []
        self.tips: list[dict[int, str]] = []
        self.keys: list[Any] = []
        self.bold_row = -1
        self._bold = QFont()
        self._bold.setBold(True)

    def _row_count(self) -> int:
        return len(self.rows)

    def set_rows(self, rows: list[tuple[str, ...]], keys: list[Any],
                 colours: list[dict[int, str]] | None = None,
                 tips: list[dict[int, str]] | None = None, bold_row: int = -1) -> None:
        same_shape = len(rows) == len(self.rows)
        changed = (rows != self.rows or keys != self.keys or colours != self.colours
                   or bold_row != self.bold_row)
        if not changed and (tips or []) == self.tips:
            return
        if not same_shape:
            self.beginResetModel()
        self.rows, self.keys = rows, keys
        self.colours = colours or [{} for _ in rows]
        self.tips = tips or [{} for _ in rows]
        self.bold_row = bold_row
        if same_shape:
            if rows:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(len(rows) - 1, len(self.headers) - 1))
        else:
            self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.rows[r][c]
        if role == Qt.ItemDataRole.ForegroundRole:
            colour = self.colours[r].get(c)
            return QColor(colour) if colour else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tips[r].get(c) or self.rows[r][c] or None
        if role == Qt.ItemDataRole.FontRole and r == self.bold_row:
            return self._bold
        return None

    def column(self, c: int) -> list[str]:
        return [row[c] for row in self.rows]


def set_availability(button: QPushButton, reason: str | None, tip: str) -> None:
    """Enable with its tip, or disable with the reason as the tooltip."""
    button.setEnabled(reason is None)
    text = tip if reason is None else f"Not available: {reason}"
    if button.toolTip() != text:
        button.setToolTip(text)


def ask_text(parent: QWidget, title: str, text: str, default: str = "") -> str | None:
    """A one-line answer (a drain reason), or None when the operator backs out."""
    value, ok = QInputDialog.getText(parent, title, text, QLineEdit.EchoMode.Normal, default)
    return value if ok else None


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


@dataclass(frozen=True)
class MapSubject:
    """What a drill-down window is about, in the terms the health map outlines.

    A job is named by its id, not by a list of GPUs, so the map follows it frame by frame (its
    outline is gone when it no longer holds GPUs). `cluster` is the `Frame.cluster` of the
    window's data: the map outlines nothing on another cluster's frames, where the same node
    name can be a different machine.
    """

    node: str | None = None
    gpu: int | None = None  # local GPU index within `node`; None = the whole node
    job_id: int | None = None
    cluster: str | None = None
    tenant: str | None = None  # a tenant account: every GPU its jobs hold, followed like a job's
    nodes: tuple[str, ...] = ()  # a group of nodes (a PDU's, a switch's, a row's): all their GPUs


class DrilldownWindow(Panel):
    """A top-level panel window that Escape closes and that says when it is activated or
    closed, so the main window can outline its subject on the health map and clear it."""

    activated = Signal()
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.escape.setContext(Qt.ShortcutContext.WindowShortcut)
        self.escape.activated.connect(self.close)
        self.status_label = QLabel("", self)
        self.status_label.setObjectName("ActionStatus")
        self.status_label.setWordWrap(True)
        self.note_label = QLabel("", self)
        self.note_label.setObjectName("ActionNote")
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet(f"color: {theme_mod.current().text_dim};")
        self.last_result = None
        self.ask_text: Callable[[str, str, str], str | None] = (
            lambda title, text, default="": ask_text(self, title, text, default))
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask_yes_no(self, title, text)

    def map_subject(self) -> MapSubject | None:
        """What the health map should outline while this window is the active drill-down."""
        return None

    def data_cluster(self) -> str | None:
        """The cluster of the frames this window shows (None before its first frame)."""
        frame = self.frame
        return None if frame is None else frame.cluster

    def capabilities(self, context: Any) -> dict[str, str | None]:
        actions = getattr(context, "actions", None)
        if actions is None:
            return {k: NO_ACTIONS for k in ("drain_node", "resume_node", "cancel_job")}
        try:
            return actions.capabilities()
        except Exception as exc:  # noqa: BLE001 - an odd actions object must not break the view
            return {k: f"{type(exc).__name__}: {exc}" for k in ("drain_node", "resume_node", "cancel_job")}

    def set_status(self, text: str, ok: bool | None) -> None:
        th = theme_mod.current()
        colour = th.text_dim if ok is None else (th.ok_text if ok else th.severity[Severity.CRITICAL])
        self.status_label.setStyleSheet(f"color: {colour};")
        self.status_label.setText(text)

    def on_action_finished(self, result: Any) -> None:
        self.last_result = result
        self.set_status(result.message if result.ok else f"Failed: {result.message}", result.ok)

    def event(self, ev) -> bool:  # noqa: D401 - Qt override
        from PySide6.QtCore import QEvent

        if ev.type() == QEvent.Type.WindowActivate:
            self.activated.emit()
        return super().event(ev)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        # The shortcut needs an active window; a key that reached here unhandled is enough.
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()

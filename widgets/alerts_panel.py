"""Alerts panel: Alertmanager alerts and console anomalies, grouped, with ack/silence/expire.

An on-call engineer triages here: the list is sorted critical first, every row says where it is
(node, GPU, job, tenant) and links there through the navigator, and the details pane shows all
labels and annotations. Acting on an alert always goes through a confirmation (the ack dialog,
the silence editor's preview, a question before expiring), then through `console.actions`
in a worker thread; the outcome comes back as words in the status line, never as a frozen
window. Actions that the configured endpoints cannot do are disabled with the reason shown.
Lives in the GUI thread.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from concurrent.futures import Future

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QRect, QSize, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
    QHBoxLayout, QHeaderView, QLabel, QLayout, QLayoutItem, QLineEdit, QMessageBox, QPushButton,
    QSplitter,
    QTableWidget, QTableWidgetItem, QTabWidget, QTextBrowser, QTreeView, QVBoxLayout, QWidget,
)

from console.actions import ActionResult, ack_matchers, format_matchers
from console.model import Frame, Severity, Silence
from widgets import theme as theme_mod
from widgets.alerts_model import (
    COLUMN_SAMPLES, COLUMN_WIDTHS, FREE_TEXT_COLUMNS, GROUP_MODE_LABELS, GROUP_MODES, KEEP_VISIBLE,
    AlertRow,
    AlertsTreeModel,
)
from widgets.formatting import fmt_duration
from widgets.panel import Panel, PanelContext
from widgets.silence_dialog import SilenceDialog
from widgets.tables import ColumnSizer
from widgets.theme import SEVERITY_WORDS, PanelHeader

ACK_DURATIONS = (("15 minutes", 900), ("1 hour", 3600), ("4 hours", 14400),
                 ("12 hours", 43200), ("24 hours", 86400))
NO_ACTIONS = "actions are not available in this mode (read-only)"
#: Shown in the empty details pane: how to work the list without a mouse.
KEYBOARD_HINT = ("Keyboard: \u2191 \u2193 choose an alert \u00b7 Enter opens its GPU, node or job "
                 "\u00b7 Ctrl+Shift+A acknowledges \u00b7 Ctrl+Shift+S silences \u00b7 "
                 "Ctrl+F filters \u00b7 Ctrl+K finds anything")
#: Silences table widths at 14 px text (state, matchers, created by, comment, ends in).
SILENCE_COLUMN_WIDTHS = (150, 380, 110, 320, 90)


class ActionRelay(QObject):
    """Carries an `ActionResult` from the worker thread that finished it to the GUI thread.

    The signal is emitted in the worker; Qt queues it to this object's (GUI) thread.
    """

    finished = Signal(object)

    def watch(self, future: Future[ActionResult]) -> None:
        def done(f: Future[ActionResult]) -> None:
            try:
                result = f.result()
            except Exception as exc:  # noqa: BLE001 - Actions never raises, but be safe
                result = ActionResult("?", "", False, f"{type(exc).__name__}: {exc}")
            try:
                self.finished.emit(result)
            except RuntimeError:
                pass  # the panel was closed before the action finished

        future.add_done_callback(done)


class AckDialog(QDialog):
    """Confirm an acknowledgement: what will be silenced, for how long, and why."""

    def __init__(self, row: AlertRow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Acknowledge alert")
        self.setMinimumWidth(theme_mod.current().px(560))
        assert row.alert is not None
        where = f" on {row.where}" if row.where else ""
        text = QLabel(f"<b>{html.escape(row.name)}</b>{html.escape(where)}<br>"
                      f"Creates an Alertmanager silence (comment starting with \u201cACK!\u201d) "
                      f"matching<br><code>{html.escape(format_matchers(ack_matchers(row.alert)))}"
                      f"</code>", self)
        text.setWordWrap(True)
        self.comment_edit = QLineEdit(self)
        self.comment_edit.setPlaceholderText("what you are doing about it")
        self.duration_combo = QComboBox(self)
        for label, seconds in ACK_DURATIONS:
            self.duration_combo.addItem(label, seconds)
        self.duration_combo.setCurrentIndex(1)
        form = QFormLayout()
        form.addRow("Comment", self.comment_edit)
        form.addRow("Expires after", self.duration_combo)
        buttons = QDialogButtonBox(self)
        buttons.addButton("Acknowledge", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(text)
        lay.addLayout(form)
        lay.addWidget(buttons)


class FlowLayout(QLayout):
    """Widgets left to right, wrapping onto the next line when the width runs out.

    The link buttons ("Node n0001", "Tenant hku"...) grow with the text; in one row they were
    squeezed until their words were cut, in the half-width pane at any font scale.
    """

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._gap = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt override
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 - Qt override
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 - Qt override
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802 - Qt override
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        return size

    def _arrange(self, rect: QRect, move: bool) -> int:
        """Place (or only measure) the visible items; returns the height they take."""
        x, y, line = rect.x(), rect.y(), 0
        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint()
            if x > rect.x() and x + hint.width() > rect.right() + 1:
                x, y, line = rect.x(), y + line + self._gap, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._gap
            line = max(line, hint.height())
        return y + line - rect.y()


def _ask_ack(parent: QWidget, row: AlertRow) -> tuple[str, float] | None:
    dlg = AckDialog(row, parent)
    if dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    return dlg.comment_edit.text(), float(dlg.duration_combo.currentData())


def _confirm(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class AlertsPanel(Panel):
    """Alerts + anomalies in one list (frame.alerts, frame.anomalies), with details and actions.

    `ask_ack`, `exec_silence_dialog` and `confirm` are the confirmation steps; tests replace
    them with functions that answer at once.
    """

    title = "Alerts"

    def __init__(self, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.ask_ack: Callable[[AlertRow], tuple[str, float] | None] = lambda r: _ask_ack(self, r)
        self.exec_silence_dialog: Callable[[SilenceDialog], bool] = (
            lambda d: d.exec() == QDialog.DialogCode.Accepted)
        self.confirm: Callable[[str, str], bool] = lambda t, x: _confirm(self, t, x)
        self.relay = ActionRelay(self)
        self.relay.finished.connect(self._on_action_finished)
        self.last_result: ActionResult | None = None
        self._silences: tuple[Silence, ...] = ()
        self._collapsed: set[str] = set()

        self.model = AlertsTreeModel(self)
        self.header = PanelHeader(self.title, self)
        self.group_combo = QComboBox(self)
        for mode in GROUP_MODES:
            self.group_combo.addItem(f"Group by {GROUP_MODE_LABELS[mode]}", mode)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter alerts: name, node, label value\u2026")
        self.filter_edit.setClearButtonEnabled(True)
        self.hide_muted = QCheckBox("Hide silenced and inhibited", self)
        th = theme_mod.current()
        box = th.px(14)  # grows with the text on a wall
        self.hide_muted.setStyleSheet(  # the indicator must show on the dark surface
            f"QCheckBox::indicator {{ width: {box}px; height: {box}px; border: 1px solid {th.text_dim};"
            f" background: {th.surface_alt}; }}"
            f"QCheckBox::indicator:checked {{ background: {th.accent}; }}")
        self.held_label = QLabel("", self)
        self.held_label.setObjectName("KpiCaption")

        self.tree = QTreeView(self)
        self.tree.setObjectName("AlertsTree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.header().setStretchLastSection(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.column_sizer = ColumnSizer(self.tree, COLUMN_WIDTHS, free_text=FREE_TEXT_COLUMNS,
                                        samples=COLUMN_SAMPLES, keep_visible=KEEP_VISIBLE)

        self.silences_table = QTableWidget(0, 5, self)
        self.silences_table.setHorizontalHeaderLabels(
            ["State", "Matchers", "Created by", "Comment", "Ends in"])
        self.silences_table.verticalHeader().setVisible(False)
        self.silences_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.silences_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.silences_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.silences_table.horizontalHeader().setStretchLastSection(True)
        self.silences_sizer = ColumnSizer(self.silences_table, SILENCE_COLUMN_WIDTHS,
                                          free_text={1, 2, 3},
                                          samples={0: "pending \u00b7 acknowledgement",
                                                   4: "23 h 59 min"})

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.tree, "Alerts")
        self.tabs.addTab(self.silences_table, "Silences")

        self.details = QTextBrowser(self)
        self.details.setObjectName("AlertDetails")
        self.details.setOpenLinks(False)
        self.details.setTabChangesFocus(True)  # Tab goes on to the links and actions
        self.link_buttons: dict[str, QPushButton] = {}
        links = FlowLayout(spacing=6)  # wraps: five links never fit a narrow pane at any scale
        for key in ("node", "gpu", "job", "tenant", "rack"):
            b = QPushButton(key, self)
            b.setVisible(False)
            b.clicked.connect(lambda _=False, k=key: self.open_link(k))
            self.link_buttons[key] = b
            links.addWidget(b)
        self.ack_button = QPushButton("Acknowledge\u2026", self)
        self.silence_button = QPushButton("Silence\u2026", self)
        self.expire_button = QPushButton("Expire silence", self)
        acts = QHBoxLayout()
        for b in (self.ack_button, self.silence_button, self.expire_button):
            acts.addWidget(b)
        acts.addStretch(1)
        self.status_label = QLabel("", self)
        self.status_label.setObjectName("ActionStatus")
        self.status_label.setWordWrap(True)

        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.details, 1)
        rl.addLayout(links)
        rl.addLayout(acts)
        rl.addWidget(self.status_label)
        split = self.split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.tabs)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([1000, 520])
        self.split_mode = ""  # "side" | "stacked" | "list", see `fit_split`

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 0, 6, 0)
        bar.addWidget(self.group_combo)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.hide_muted)
        bar.addWidget(self.held_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addLayout(bar)
        layout.addWidget(split, 1)

        self.group_combo.currentIndexChanged.connect(
            lambda i: self.set_group_mode(self.group_combo.itemData(i)))
        self.filter_edit.textChanged.connect(self.model.set_filter_text)
        self.hide_muted.toggled.connect(self.model.set_hide_muted)
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        self.model.modelReset.connect(self._after_reset)
        self.tree.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.tree.doubleClicked.connect(self._on_double_clicked)
        self.tree.expanded.connect(lambda i: self._collapsed.discard(self._group_key(i)))
        self.tree.collapsed.connect(lambda i: self._collapsed.add(self._group_key(i)))
        self.tree.viewport().installEventFilter(self)
        self.tree.installEventFilter(self)  # Enter opens the selected alert's place
        self.silences_table.itemSelectionChanged.connect(self._update_buttons)
        self.tabs.currentChanged.connect(lambda _i: self._update_buttons())
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.silence_button.clicked.connect(self.silence_selected)
        self.expire_button.clicked.connect(self.expire_selected_silence)
        self._selected_key: str | None = None
        self._show_details(None)
        self._update_buttons()

    # --- frames ---------------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        self.header.set_age(frame, "alerts")
        self.model.set_frame(frame)
        self._render_silences(frame)
        rows = self.model.visible_rows()
        self.tabs.setTabText(0, f"Alerts ({len(rows)})")
        self.held_label.setText("new alerts held while the pointer is on the list"
                                if self.model.has_held_changes else "")
        self._show_details(self.selected_row())
        self._update_buttons()

    # --- selection and links ---------------------------------------------------------------------

    def selected_row(self) -> AlertRow | None:
        idx = self.tree.currentIndex()
        return self.model.row_at(idx) if idx.isValid() else None

    def select_key(self, key: str) -> bool:
        idx = self.model.index_of_key(key)
        if not idx.isValid():
            return False
        self.tree.expand(idx.parent())
        self.tree.setCurrentIndex(idx)
        return True

    def set_group_mode(self, mode: str) -> None:
        i = self.group_combo.findData(mode)
        if i >= 0 and self.group_combo.currentIndex() != i:
            self.group_combo.setCurrentIndex(i)
            return
        self.model.set_group_mode(mode)

    def open_link(self, kind: str) -> None:
        """Ask the navigator for the drill-down of the selected row's node/GPU/job/tenant/rack."""
        row = self.selected_row()
        if row is None:
            return
        nav = self.context.navigator
        if kind == "node" and row.node:
            nav.node_requested.emit(row.node)
        elif kind == "gpu" and row.node and row.gpu is not None:
            nav.gpu_requested.emit(row.node, int(row.gpu))
        elif kind == "job" and row.job_id is not None:
            nav.job_requested.emit(int(row.job_id))
        elif kind == "tenant" and row.tenant:
            nav.tenant_requested.emit(row.tenant)
        elif kind == "rack" and row.rack:
            nav.rack_requested.emit(row.rack)

    # --- actions ----------------------------------------------------------------------------------

    def capabilities(self) -> dict[str, str | None]:
        actions = self.context.actions
        if actions is None:
            return {k: NO_ACTIONS for k in ("acknowledge", "create_silence", "expire_silence")}
        return actions.capabilities()

    def acknowledge_selected(self) -> bool:
        row = self.selected_row()
        if row is None or row.alert is None or self._ack_reason(row) is not None:
            return False
        answer = self.ask_ack(row)
        if answer is None:
            return False
        comment, duration_s = answer
        self._set_status(f"Acknowledging {row.name}\u2026", None)
        self.relay.watch(self.context.actions.acknowledge(
            row.alert, comment, duration_s=duration_s, author=self.context.operator))
        return True

    def silence_selected(self) -> SilenceDialog | None:
        """Open the silence editor, pre-filled from the selected alert; create if accepted."""
        if self.capabilities().get("create_silence") is not None:
            return None
        row = self.selected_row()
        alerts = self.frame.alerts if self.frame is not None else ()
        initial = ack_matchers(row.alert) if row is not None and row.alert is not None else ()
        dlg = SilenceDialog(alerts, initial, author=self.context.operator, parent=self)
        if not self.exec_silence_dialog(dlg) or dlg.problem() is not None:
            return dlg
        self._set_status("Creating silence\u2026", None)
        self.relay.watch(self.context.actions.create_silence(
            dlg.matchers(), dlg.duration_s(), dlg.author(), dlg.comment()))
        return dlg

    def expire_selected_silence(self) -> bool:
        sid = self._selected_silence_id()
        if sid is None or self.capabilities().get("expire_silence") is not None:
            return False
        s = next((x for x in self._silences if x.id == sid), None)
        what = f"{format_matchers(s.matchers)} by {s.created_by}: {s.comment}" if s else sid
        if not self.confirm("Expire silence", f"Expire this silence now?\n\n{what}\n\n"
                            "The alerts it hides will notify again."):
            return False
        self._set_status(f"Expiring silence {sid}\u2026", None)
        self.relay.watch(self.context.actions.expire_silence(sid, author=self.context.operator))
        return True

    # --- internals ----------------------------------------------------------------------------------

    def refusal(self, action: str) -> str | None:
        """Why ``action`` ("acknowledge", "silence") cannot be done now, in words; None when
        it can (the keyboard shortcuts say this instead of doing nothing)."""
        if action == "acknowledge":
            return self._ack_reason(self.selected_row())
        return self.capabilities().get("create_silence")

    def _ack_reason(self, row: AlertRow | None) -> str | None:
        if row is None:
            return "select an alert"
        if row.detected_by_console:
            return "detected by the console, not an Alertmanager alert: nothing to acknowledge"
        if row.state == "silenced":
            return "already silenced"
        return self.capabilities().get("acknowledge")

    def _selected_silence_id(self) -> str | None:
        if self.tabs.currentWidget() is self.silences_table:
            rows = self.silences_table.selectionModel().selectedRows()
            if rows:
                item = self.silences_table.item(rows[0].row(), 0)
                return item.data(Qt.ItemDataRole.UserRole) if item else None
            return None
        row = self.selected_row()
        return row.silenced_by[0] if row is not None and row.silenced_by else None

    def _update_buttons(self) -> None:
        caps = self.capabilities()
        row = self.selected_row()
        on_silences = self.tabs.currentWidget() is self.silences_table
        ack_reason = "switch to the alerts list" if on_silences else self._ack_reason(row)
        sil_reason = caps.get("create_silence")
        exp_reason = caps.get("expire_silence") or (
            None if self._selected_silence_id() else "select a silenced alert or a silence")
        for button, reason, tip in ((self.ack_button, ack_reason,
                                     "Acknowledge: a silence with comment ACK! that expires"),
                                    (self.silence_button, sil_reason,
                                     "Create a silence, previewing the alerts it catches"),
                                    (self.expire_button, exp_reason,
                                     "Expire the silence now; its alerts notify again")):
            button.setEnabled(reason is None)
            button.setToolTip(tip if reason is None else f"Not available: {reason}")

    def _render_silences(self, frame: Frame) -> None:
        silences = tuple(s for s in frame.silences if s.state != "expired")
        self.tabs.setTabText(1, f"Silences ({len(silences)})")
        keys = [(s.id, s.state, s.comment) for s in silences]
        old = [(s.id, s.state, s.comment) for s in self._silences]
        self._silences = silences
        t = self.silences_table
        if keys != old:
            selected = self._selected_silence_id() if self.tabs.currentWidget() is t else None
            t.setRowCount(len(silences))
            for r, s in enumerate(silences):
                state = s.state + (" \u00b7 acknowledgement" if s.is_ack else "")
                texts = (state, format_matchers(s.matchers), s.created_by, s.comment, "")
                for c, text in enumerate(texts):
                    item = QTableWidgetItem(text)
                    item.setToolTip(text)
                    if c == 0:
                        item.setData(Qt.ItemDataRole.UserRole, s.id)
                    t.setItem(r, c, item)
                if s.id == selected:
                    t.selectRow(r)
        for r, s in enumerate(silences):
            item = t.item(r, 4)
            if item is not None:
                item.setText(fmt_duration(s.ends_at - (frame.data_now or frame.time)))

    def _show_details(self, row: AlertRow | None) -> None:
        if row is None:
            self.details.setHtml(f"<p style='color:{theme_mod.current().text_dim}'>"
                                 "Select an alert to see its labels, annotations and links."
                                 "</p><p style='color:"
                                 f"{theme_mod.current().text_dim}'>{KEYBOARD_HINT}</p>")
            for b in self.link_buttons.values():
                b.setVisible(False)
            return
        th = theme_mod.current()
        colour = th.severity[row.severity]
        e = html.escape
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.starts_at))
        now = (self.frame.data_now or self.frame.time) if self.frame is not None else time.time()
        src = "detected by console" if row.detected_by_console else f"Alertmanager ({row.source})"
        parts = [
            f"<h3 style='margin:0'>{e(row.name)}</h3>",
            f"<p><b style='color:{colour}'>{e(SEVERITY_WORDS[row.severity])}</b> \u00b7 "
            f"{e(row.state)} \u00b7 since {e(started)} ({e(fmt_duration(now - row.starts_at))})"
            f" \u00b7 {e(src)}</p>",
            f"<p>{e(row.summary)}</p>",
        ]
        if row.silenced_by:
            parts.append(f"<p>Silenced by {e(', '.join(row.silenced_by))}</p>")
        for title, mapping in (("Annotations", row.annotations), ("Labels", row.labels)):
            if mapping:
                cells = "".join(f"<tr><td style='color:{th.text_dim};padding-right:12px'>{e(k)}"
                                f"</td><td>{e(str(v))}</td></tr>"
                                for k, v in sorted(mapping.items()))
                parts.append(f"<p><b>{title}</b></p><table>{cells}</table>")
        self.details.setHtml("".join(parts))
        targets = {"node": row.node and f"Node {row.node}",
                   "gpu": row.node and row.gpu is not None and f"GPU {row.gpu}",
                   "job": row.job_id is not None and f"Job {row.job_id}",
                   "tenant": row.tenant and f"Tenant {row.tenant}",
                   "rack": row.rack and f"Rack {row.rack}"}
        for key, b in self.link_buttons.items():
            text = targets[key]
            b.setVisible(bool(text))
            if text:
                b.setText(str(text))

    def _set_status(self, text: str, ok: bool | None) -> None:
        th = theme_mod.current()
        colour = th.text_dim if ok is None else (th.ok_text if ok else th.severity[Severity.CRITICAL])
        self.status_label.setStyleSheet(f"color: {colour};")
        self.status_label.setText(text)

    @Slot(object)
    def _on_action_finished(self, result: ActionResult) -> None:
        self.last_result = result
        self._set_status(result.message if result.ok else f"Failed: {result.message}", result.ok)

    def _group_key(self, index: QModelIndex) -> str:
        g = self.model.group_at(index)
        return g.key if g is not None else ""

    @Slot()
    def _remember_selection(self) -> None:
        row = self.selected_row()
        self._selected_key = row.key if row is not None else None

    @Slot()
    def _after_reset(self) -> None:
        for g in self.model.groups():
            if g.key not in self._collapsed:
                self.tree.expand(self.model.index_of_group(g.key))
        if self._selected_key is not None:
            self.select_key(self._selected_key)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_details(self.model.row_at(current))
        self._update_buttons()

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        row = self.model.row_at(index)
        if row is None:
            return
        # the most specific place it names: a GPU, else its node, job, tenant or rack
        kind = ("gpu" if row.node and row.gpu is not None else "node" if row.node else
                "job" if row.job_id is not None else "tenant" if row.tenant else
                "rack" if row.rack else None)
        if kind is not None:
            self.open_link(kind)

    #: Below this width (at 14 px text) the details pane goes under the list, not beside it.
    SIDE_BY_SIDE_MIN_W = 1100
    #: Below this height as well, the list alone (the details pane is dragged open, or
    #: the triage layout, Ctrl+Alt+2, gives the panel the room for both).
    STACKED_MIN_H = 480

    def fit_split(self) -> str:
        """Place the details pane for the panel's size: beside the list when the panel is
        wide, under it when tall, else collapsed so the list keeps its rows (a half-width,
        third-height dock showed five alerts beside an empty pane). Changes only when the
        mode changes, so the operator's own drag of the handle survives a resize."""
        th = theme_mod.current()
        w, h = self.split.width(), self.split.height()
        mode = ("side" if w >= th.px(self.SIDE_BY_SIDE_MIN_W) else
                "stacked" if h >= th.px(self.STACKED_MIN_H) else "list")
        if mode == self.split_mode:
            return mode
        self.split_mode = mode
        if mode == "side":
            self.split.setOrientation(Qt.Orientation.Horizontal)
            self.split.setSizes([round(w * 0.64), w - round(w * 0.64)])
        elif mode == "stacked":
            self.split.setOrientation(Qt.Orientation.Vertical)
            self.split.setSizes([round(h * 0.6), h - round(h * 0.6)])
        else:
            self.split.setOrientation(Qt.Orientation.Horizontal)
            self.split.setSizes([w, 0])
        return mode

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.layout().activate()  # the splitter's size for this panel size, now
        self.fit_split()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (watched is self.tree and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            index = self.tree.currentIndex()
            if index.isValid() and self.model.row_at(index) is not None:
                self._on_double_clicked(index)
                return True
        if watched is self.tree.viewport():
            if event.type() == QEvent.Type.Enter:
                self.model.set_order_frozen(True)
            elif event.type() == QEvent.Type.Leave:
                self.model.set_order_frozen(False)
        return super().eventFilter(watched, event)


__all__ = ["AckDialog", "ActionRelay", "AlertsPanel"]

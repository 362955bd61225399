"""The job queue panel: running and pending jobs with tenant, wait time and reason in words.

A thin view over `JobsTableModel` (sort and filter live in the model, see there why). Lives in
the GUI thread. While the pointer is over the table the row order is frozen so a row never moves
under the operator's cursor (UI.md); it re-sorts as soon as the pointer leaves.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
    QTableView, QVBoxLayout, QWidget,
)

from console.model import Frame
from widgets.formatting import fmt_int
from widgets.jobs_model import (COL_GPUS, COL_ID, COL_NAME, COL_NODES, COL_PARTITION, COL_REASON,
                                COL_STATE, COL_TENANT, COL_TIME, COL_USER, COLUMN_SAMPLES,
                                COLUMN_WIDTHS, FREE_TEXT_COLUMNS, KEEP_VISIBLE, JobsTableModel)
from widgets.tables import ColumnSizer, setup_row_table
from widgets.panel import Panel, PanelContext
from widgets.theme import PanelHeader

STATE_CHOICES = (("All jobs", "all"), ("Running", "running"), ("Pending", "pending"))
ROW_HEIGHT = 26


VISUAL_ORDER = (COL_ID, COL_TENANT, COL_STATE, COL_GPUS, COL_TIME, COL_NODES, COL_REASON,
                COL_PARTITION, COL_NAME, COL_USER)


class JobsTableView(QTableView):
    """A table view tuned for 50,000 rows: fixed row heights and column widths, no word wrap."""

    def __init__(self, model: JobsTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        setup_row_table(self, "JobsTable")
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        # What a queue reader needs first stays on screen in a half-width dock: who, what state,
        # how many GPUs, how long, where, and why it waits. Visual order only; the model is
        # unchanged. Set before the sizer, which fits the columns in their visual order.
        for visual, col in enumerate(VISUAL_ORDER):
            hh.moveSection(hh.visualIndex(col), visual)
        self.column_sizer = ColumnSizer(self, COLUMN_WIDTHS, free_text=FREE_TEXT_COLUMNS,
                                        samples=COLUMN_SAMPLES, keep_visible=KEEP_VISIBLE)
        # Pending first (the queue is what operators come to this table for), oldest job first.
        hh.setSortIndicator(COL_STATE, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)


class JobsPanel(Panel):
    """Running and pending jobs (frame.jobs), sortable and filterable; drill-down on double-click."""

    title = "Job queue"

    def __init__(self, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = JobsTableModel(self)
        self.header = PanelHeader(self.title, self)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: id, name, user, tenant, partition, reason")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(320)
        self.state_combo = QComboBox(self)
        for label, key in STATE_CHOICES:
            self.state_combo.addItem(label, key)
        self.node_chip = QPushButton("", self)
        self.node_chip.setObjectName("NodeFilterChip")
        self.node_chip.setToolTip("Showing only the jobs on this node; click to show all")
        self.node_chip.setVisible(False)
        self.count_label = QLabel("", self)
        self._jobs_known = True  # False for a past moment: the journal keeps no job list
        self.count_label.setObjectName("JobsCount")
        self.table = JobsTableView(self.model, self)

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 0, 6, 0)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.state_combo)
        bar.addWidget(self.node_chip)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

        self.filter_edit.textChanged.connect(self._on_filter_text)
        self.state_combo.currentIndexChanged.connect(self._on_state_filter)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.node_chip.clicked.connect(lambda: self.set_node_filter(None))
        self.table.viewport().installEventFilter(self)
        self.table.installEventFilter(self)
        self.model.modelReset.connect(self._update_count)

    # --- frames -----------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        self.header.set_age(frame, "scheduler")
        selected = self.selected_job_id()
        self.model.set_jobs(frame.jobs, frame.data_now or frame.time, frame.tenants)
        self._jobs_known = frame.jobs_known
        self._reselect(selected)
        self._update_count()

    # --- operator input ---------------------------------------------------------------------

    def set_state_filter(self, which: str) -> None:
        """Select "all", "running" or "pending" (also what the combo box does)."""
        for i in range(self.state_combo.count()):
            if self.state_combo.itemData(i) == which:
                self.state_combo.setCurrentIndex(i)
                return
        raise ValueError(which)

    def set_node_filter(self, node: str | None) -> None:
        """Show only the jobs on `node` (None: all), with a chip that clears it."""
        self.model.set_node_filter(node)
        self.node_chip.setVisible(node is not None)
        self.node_chip.setText(f"on node {node}  \u2715" if node else "")
        self._update_count()

    def select_node(self, node: str) -> None:
        """Navigator target: the jobs running on `node`."""
        self.set_node_filter(node)
        if self.model.rowCount():
            self.table.selectRow(0)

    def select_job(self, job_id: int) -> bool:
        """Navigator target: select and show job `job_id`, clearing filters that hide it."""
        row = self.model.row_of_job(job_id)
        if row is None and job_id in set(self.model.jobs.job_id.tolist()):
            self.filter_edit.clear()
            self.set_state_filter("all")
            self.set_node_filter(None)
            row = self.model.row_of_job(job_id)
        if row is None:
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def selected_job_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.job_id_at(rows[0].row()) if rows else None

    def activate(self, row: int, column: int) -> None:
        """What a double-click or Enter on a cell does: open the tenant or the job."""
        if not 0 <= row < self.model.rowCount():
            return
        if column == COL_TENANT:
            self.context.navigator.tenant_requested.emit(self.model.account_at(row))
        else:
            self.context.navigator.job_requested.emit(self.model.job_id_at(row))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        et = event.type()
        if watched is self.table.viewport():
            if et == QEvent.Type.Enter:
                self.model.set_order_frozen(True)
            elif et == QEvent.Type.Leave:
                self.model.set_order_frozen(False)
        elif watched is self.table and isinstance(event, QKeyEvent) and et == QEvent.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                idx = self.table.currentIndex()
                if idx.isValid():
                    self.activate(idx.row(), idx.column())
                    return True
        return super().eventFilter(watched, event)

    @Slot(str)
    def _on_filter_text(self, text: str) -> None:
        selected = self.selected_job_id()
        self.model.set_filter_text(text)
        self._reselect(selected)

    @Slot(int)
    def _on_state_filter(self, index: int) -> None:
        selected = self.selected_job_id()
        self.model.set_state_filter(self.state_combo.itemData(index))
        self._reselect(selected)

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        self.activate(index.row(), index.column())

    def _reselect(self, job_id: int | None) -> None:
        if job_id is None:
            return
        row = self.model.row_of_job(job_id)
        sel = self.table.selectionModel()
        current = sel.selectedRows()
        if row is None:
            return
        if current and current[0].row() == row:
            return
        self.table.selectRow(row)

    @Slot()
    def _update_count(self) -> None:
        shown, total = self.model.rowCount(), len(self.model.jobs)
        if not self._jobs_known:
            text = "no job list for this moment (the journal keeps job events, not the list)"
        else:
            text = (f"{fmt_int(total)} jobs" if shown == total
                    else f"{fmt_int(shown)} of {fmt_int(total)} jobs")
        if self.count_label.text() != text:
            self.count_label.setText(text)

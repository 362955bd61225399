"""Tenants: one row per Slurm account with its share of the machine and what it delivers.

Answers "who is using the machine, how well, and at what cost" at a glance: GPUs and delivered
PF now from the frame, GPU-hours today and this month, cost at list price, subsidy and net
payable this month from accounting (``frame.accounting``, read every few minutes by the engine;
"no data" until the first read, never 0). Double-click or
Enter opens the tenant's drill-down window (through the navigator, so this panel does not know
which window shows it). Lives in the GUI thread; the model sorts inside itself like the jobs
model (only tens of rows here, but the same calm-update rules apply).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from widgets.tables import ColumnSizer, ReadOnlyTableModel, setup_row_table
from PySide6.QtCore import (
    QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, Slot,
)
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QPushButton, QTableView, QVBoxLayout, QWidget,
)

from console.accounting.view import AccountingView
from console.model import Frame, TenantTable
from widgets import theme as theme_mod
from widgets.formatting import DASH, NO_DATA, fmt_int, fmt_pct, fmt_pf
from widgets.panel import Panel, PanelContext
from widgets.theme import PanelHeader

ACCOUNT_ROLE = int(Qt.ItemDataRole.UserRole) + 2

COL_NAME, COL_KIND, COL_GPUS, COL_SHARE, COL_PF, COL_EFF, COL_RUN, COL_PEND, COL_GPUS_PEND, \
    COL_GPUH_TODAY, COL_GPUH_MONTH, COL_COST, COL_SUBSIDY, COL_NET = range(14)
HEADERS = ("Tenant", "Kind", "GPUs in use", "Share", "Delivered", "Efficiency", "Running",
           "Pending", "GPUs pending", "GPU-h today", "GPU-h month", "Cost", "Subsidy", "Net")
#: Widths at 14 px text on 1920x1080; `ColumnSizer` scales them (name and kind give way).
COLUMN_WIDTHS = (280, 140, 120, 84, 108, 108, 90, 90, 130, 124, 130, 120, 120, 120)
COLUMN_SAMPLES = {COL_GPUS: "1,024", COL_SHARE: "100.0 %",
                  COL_PF: "1,234 PF", COL_EFF: "100 %", COL_RUN: "1,000", COL_PEND: "1,000",
                  COL_GPUS_PEND: "1,024", COL_GPUH_TODAY: "123,456", COL_GPUH_MONTH: "1,234,567",
                  COL_COST: "1,234,567", COL_SUBSIDY: "1,234,567", COL_NET: "1,234,567"}
_TEXT_COLS = frozenset({COL_NAME, COL_KIND})
#: Columns whose figures come from accounting (this month unless the header says today).
MONEY_COLS = (COL_GPUH_TODAY, COL_GPUH_MONTH, COL_COST, COL_SUBSIDY, COL_NET)
_MONEY_HEADERS = {COL_COST: "Cost", COL_SUBSIDY: "Subsidy", COL_NET: "Net"}


def fmt_money(x: float, currency: str = "$") -> str:
    """An amount with its currency ("HKD 1,234"; "$1,234" for the plain dollar sign)."""
    if not np.isfinite(x):
        return DASH
    return f"${x:,.0f}" if currency == "$" else f"{currency} {x:,.0f}"


class TenantMoney:
    """Accounting figures aligned with a `TenantTable`'s rows (NaN where unknown)."""

    def __init__(self, tenants: TenantTable, view: AccountingView | None) -> None:
        n = len(tenants)
        self.view = view
        self.currency = view.currency if view is not None else ""
        self.cols = {c: np.full(n, np.nan) for c in MONEY_COLS}
        self.rate = np.full(n, np.nan)
        if view is None:
            return
        for i, acct in enumerate(tenants.account):
            today, month = view.today.get(acct), view.month.get(acct)
            if today is not None:
                self.cols[COL_GPUH_TODAY][i] = today.usage.gpu_hours
            if month is None:
                continue
            self.cols[COL_GPUH_MONTH][i] = month.usage.gpu_hours
            self.rate[i] = month.subsidy_rate
            for col, value in ((COL_COST, month.cost), (COL_SUBSIDY, month.subsidy),
                               (COL_NET, month.net)):
                self.cols[col][i] = np.nan if value is None else value


class TenantsTableModel(ReadOnlyTableModel):
    """Rows of a TenantTable, sorted by any column (default: GPUs in use, largest first)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._t: TenantTable | None = None
        self._money: TenantMoney | None = None
        self.headers = HEADERS
        self._view = np.zeros(0, np.int64)
        self._sort_col = COL_GPUS
        self._sort_desc = True
        self._frozen = False

    @property
    def tenants(self) -> TenantTable | None:
        return self._t

    @property
    def accounting(self) -> AccountingView | None:
        return None if self._money is None else self._money.view

    def set_tenants(self, tenants: TenantTable, accounting: AccountingView | None = None) -> None:
        old = [self._t.account[i] for i in self._view] if self._t is not None else []
        self._t = tenants
        self._money = TenantMoney(tenants, accounting)
        self._set_currency(self._money.currency)
        if self._frozen and old and set(old) == set(tenants.account):
            view = np.array([tenants.index(a) for a in old], np.int64)
        else:
            view = self._sorted()
        if [tenants.account[i] for i in view] == old:
            self._view = view
            if len(view):
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(len(view) - 1, len(HEADERS) - 1))
            return
        self.beginResetModel()
        self._view = view
        self.endResetModel()

    def set_order_frozen(self, frozen: bool) -> None:
        if frozen != self._frozen:
            self._frozen = frozen
            if not frozen and self._t is not None:
                self.sort(self._sort_col, Qt.SortOrder.DescendingOrder if self._sort_desc
                          else Qt.SortOrder.AscendingOrder)

    def account_at(self, row: int) -> str:
        assert self._t is not None
        return self._t.account[int(self._view[row])]

    def visible_accounts(self) -> list[str]:
        return [] if self._t is None else [self._t.account[i] for i in self._view]

    def _set_currency(self, currency: str) -> None:
        """Amounts are shown bare; the currency is in their column headers."""
        unit = f" ({currency})" if currency else ""
        headers = tuple(f"{_MONEY_HEADERS[c]}{unit}" if c in _MONEY_HEADERS else h
                        for c, h in enumerate(HEADERS))
        if headers != self.headers:
            self.headers = headers
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, COL_COST, COL_NET)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal
                and section in MONEY_COLS):
            when = "today" if section == COL_GPUH_TODAY else "this month so far"
            return f"{when}, from accounting (read every few minutes); amounts at list price"
        return super().headerData(section, orientation, role)

    def _row_count(self) -> int:
        return int(len(self._view))

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._t is None or not index.isValid() or not 0 <= index.row() < len(self._view):
            return None
        i = int(self._view[index.row()])
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(i, col)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _align(col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(i, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_NAME:
            return QColor(theme_mod.current().accent)
        if role == ACCOUNT_ROLE:
            return self._t.account[i]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(HEADERS):
            return
        self._sort_col = column
        self._sort_desc = order == Qt.SortOrder.DescendingOrder
        if self._t is None:
            return
        self.layoutAboutToBeChanged.emit()
        old = self._view
        persistent = self.persistentIndexList()
        self._view = self._sorted()
        pos = {int(t): r for r, t in enumerate(self._view)}
        if persistent:
            self.changePersistentIndexList(
                persistent, [self.index(pos[int(old[p.row()])], p.column()) for p in persistent])
        self.layoutChanged.emit()

    def _key(self, col: int) -> np.ndarray:
        t = self._t
        assert t is not None
        if col in _TEXT_COLS:
            words = [s.lower() for s in (t.display if col == COL_NAME else t.kind)]
            order = np.argsort(np.array(words, dtype=np.str_), kind="stable")
            rank = np.empty(len(words), np.float64)
            rank[order] = np.arange(len(words))
            return rank
        arr = {COL_GPUS: t.gpus_in_use, COL_SHARE: t.share, COL_PF: t.delivered_pf,
               COL_EFF: t.efficiency, COL_RUN: t.jobs_running, COL_PEND: t.jobs_pending,
               COL_GPUS_PEND: t.gpus_pending,
               **(self._money.cols if self._money is not None else {})}.get(col)
        if arr is None:  # an accounting column before the first frame
            return np.full(len(t), -np.inf)
        arr = arr.astype(np.float64)
        return np.where(np.isnan(arr), -np.inf, arr)  # no data sorts as the smallest

    def _sorted(self) -> np.ndarray:
        t = self._t
        if t is None or not len(t):
            return np.zeros(0, np.int64)
        key = self._key(self._sort_col)
        if self._sort_desc:
            key = -key
        names = np.argsort(np.array([d.lower() for d in t.display], dtype=np.str_), kind="stable")
        tie = np.empty(len(t), np.int64)
        tie[names] = np.arange(len(t))
        return np.lexsort((tie, key)).astype(np.int64)

    def _text(self, i: int, col: int) -> str:
        t = self._t
        assert t is not None
        if col == COL_NAME:
            return t.display[i] or t.account[i]
        if col == COL_KIND:
            return t.kind[i]
        if col == COL_GPUS:
            return fmt_int(int(t.gpus_in_use[i]))
        if col == COL_SHARE:
            return fmt_pct(float(t.share[i]), 1)
        if col == COL_PF:
            return fmt_pf(float(t.delivered_pf[i]))
        if col == COL_EFF:
            eff = float(t.efficiency[i])
            return "no data" if not np.isfinite(eff) else fmt_pct(eff)
        if col == COL_RUN:
            return fmt_int(int(t.jobs_running[i]))
        if col == COL_PEND:
            return fmt_int(int(t.jobs_pending[i]))
        if col == COL_GPUS_PEND:
            return fmt_int(int(t.gpus_pending[i]))
        money = self._money
        if money is None or money.view is None:
            return NO_DATA
        x = float(money.cols[col][i])
        if not np.isfinite(x):
            return "not priced" if col in _MONEY_HEADERS else NO_DATA
        return f"{x:,.0f}"

    def _tooltip(self, i: int, col: int) -> str | None:
        t = self._t
        assert t is not None
        if col == COL_NAME:
            return (f"{t.display[i]} (Slurm account {t.account[i]}): double-click for its jobs, "
                    "GPUs and usage")
        if col == COL_EFF:
            return "delivered petaflops / peak of the GPUs it holds"
        if col in MONEY_COLS:
            return self._money_tooltip(i, col)
        return None

    def _money_tooltip(self, i: int, col: int) -> str:
        t, money = self._t, self._money
        assert t is not None
        if money is None or money.view is None:
            return "accounting has not been read yet (the console reads it every few minutes)"
        v = money.view
        cur = money.currency
        period = (f"today ({v.today_period.label})" if col == COL_GPUH_TODAY
                  else f"this month ({v.month_period.label}) so far")
        words = [f"{period}, from {v.source} accounting"]
        if col in (COL_COST, COL_SUBSIDY, COL_NET):
            rate = float(money.rate[i])
            words.append(f"subsidy rate {fmt_pct(rate)} of list" if np.isfinite(rate) else "")
            words.append(f"now: {fmt_money(float(t.cost_per_hour[i]), cur)} per hour at list "
                         f"price ({fmt_money(float(t.price_per_gpu_hour[i]), cur)} per GPU-hour "
                         "for this tenant)")
        if v.error:
            words.append(f"the newest read failed: {v.error}")
        return "; ".join(w for w in words if w)


def _align(col: int) -> int:
    h = Qt.AlignmentFlag.AlignLeft if col in _TEXT_COLS else Qt.AlignmentFlag.AlignRight
    return int(h) | int(Qt.AlignmentFlag.AlignVCenter)


class TenantsPanel(Panel):
    """One row per tenant (frame.tenants); double-click or Enter asks for its drill-down."""

    title = "Tenants"

    def __init__(self, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = TenantsTableModel(self)
        self.header = PanelHeader(self.title, self)
        # The scheme's monthly summary (one row per tenant), as `aisc-console statements`.
        self.statements_button = QPushButton("Statements\u2026", self)
        self.statements_button.setToolTip("write one row per tenant for a month (CSV): GPU-hours, "
                                          "cost, subsidy and net payable")
        self.statements_button.setEnabled(False)
        self.statements_button.clicked.connect(self._on_statements)
        self.header.add_widget(self.statements_button)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        setup_row_table(self.table, "TenantsTable")
        self.table.verticalHeader().setDefaultSectionSize(26)
        hh = self.table.horizontalHeader()
        hh.setStretchLastSection(False)
        self.column_sizer = ColumnSizer(self.table, COLUMN_WIDTHS, free_text=_TEXT_COLS,
                                        samples=COLUMN_SAMPLES,  # names elide, up to Efficiency:
                                        keep_visible={COL_NAME, COL_GPUS, COL_EFF})
        # The scheme's figures right after efficiency (visual order only: the model's columns,
        # sorting and exports are unchanged), so a wide dock shows them without scrolling.
        for k, col in enumerate(MONEY_COLS):
            hh.moveSection(hh.visualIndex(col), hh.visualIndex(COL_EFF) + 1 + k)
        hh.setSortIndicator(COL_GPUS, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.table, 1)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.table.installEventFilter(self)
        self.table.viewport().installEventFilter(self)

    def render(self, frame: Frame) -> None:
        self.header.set_age(frame, "scheduler")
        view = frame.accounting if isinstance(frame.accounting, AccountingView) else None
        headers = self.model.headers
        self.model.set_tenants(frame.tenants, view)
        self.statements_button.setEnabled(view is not None)
        if self.model.headers != headers:  # the currency joined the headers: fit them again
            self.column_sizer.apply(force=True)

    @Slot()
    def _on_statements(self) -> None:
        view = self.model.accounting
        if view is not None:
            from widgets.tenant_money import save_statements

            save_statements(self, view)

    def open_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            self.context.navigator.tenant_requested.emit(self.model.account_at(row))

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        self.open_row(index.row())

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
                    self.open_row(idx.row())
                    return True
        return super().eventFilter(watched, event)

"""The tenant drill-down's "Usage and money" tab: one tenant over 24 h, 7 d, 30 d or a month.

GPU-hours, jobs by end state, delivered PF-hours and efficiency (where the console saw the
jobs), idle allocated GPU-hours and their cost, list cost, subsidy and net payable; GPU-hours
per day (per hour for 24 h) as bars; quota burn-down with the forecast of when a GPU-minute
budget runs out; fair share; why the tenant's GPUs wait. All from ``frame.accounting`` (the
engine's last accounting read) and the live jobs table, computed here only when the read or the
chosen period changes (milliseconds: the arithmetic is vectorised). Statements of the chosen
period are written from here as PDF or CSV, the same documents as the command line's.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSplitter,
    QVBoxLayout, QWidget,
)

from console.accounting.money import charges, money_text
from console.accounting.periods import (
    Period, days_of, last_hours, month_of, month_period, month_to_date,
)
from console.accounting.quotas import QuotaStatus, quota_status, shares_by_account
from console.accounting.statement import Statement, build_statement, write_statement_csv
from console.accounting.table import UsageTable
from console.accounting.usage import job_gpu_hours
from console.accounting.view import AccountingView
from console.accounting.waiting import wait_by_partition, wait_summary
from console.model import Frame, Health
from widgets import theme as theme_mod
from widgets.formatting import fmt_duration, fmt_int, fmt_pct

log = logging.getLogger(__name__)

FIGURES = (("gpuh", "GPU-hours"), ("jobs", "Jobs"), ("pfh", "PF-hours"), ("eff", "Efficiency"),
           ("idle", "Idle allocated GPU-h"), ("cost", "List cost"), ("subsidy", "Subsidy"),
           ("net", "Net payable"), ("idle_cost", "Cost of idle GPUs"))
WINDOWS = (("24h", "Last 24 hours", 24.0), ("7d", "Last 7 days", 168.0),
           ("30d", "Last 30 days", 720.0))


def periods_offered(view: AccountingView) -> list[tuple[str, str]]:
    """(key, label) of every period the read can answer: 24 h, 7 d, 30 d and each month."""
    out = [(k, label) for k, label, _ in WINDOWS]
    months: list[str] = []
    t = view.since
    while t <= view.taken_at:
        m = month_of(t, view.tz)
        if m not in months:
            months.append(m)
        t = month_period(m, view.tz).until
    this = month_of(view.taken_at, view.tz)
    for m in reversed(months):
        out.append((m, f"{m} (so far)" if m == this else m))
    return out


def period_for(key: str, view: AccountingView) -> Period:
    for k, label, hours in WINDOWS:
        if k == key:
            return last_hours(view.taken_at, hours, label)
    if key == month_of(view.taken_at, view.tz):
        return month_to_date(view.taken_at, view.tz)
    return month_period(key, view.tz)


def quota_words(q: QuotaStatus, now: float, tz: tzinfo) -> str:
    """One line per limit: "GrpTRES 412 of 768 GPUs in use; GrpTRESMins 62 % used, runs out
    Dec 09 14:00 (in 5 d 2 h) at the last 24 h rate"."""
    parts = []
    what = "tenant" if q.scope == "account" else f"QOS {q.name}"
    if q.gpus_limit is not None:
        held = "unknown" if q.gpus_in_use is None else fmt_int(q.gpus_in_use)
        parts.append(f"{what} GPU limit (GrpTRES): {held} of {fmt_int(q.gpus_limit)} GPUs in use")
    if q.minutes_limit is not None:
        if q.minutes_used is None:
            parts.append("GPU-hours budget (GrpTRESMins): use not reported")
        else:
            text = (f"GPU-hours budget (GrpTRESMins): {fmt_pct(q.minutes_used / q.minutes_limit)} "
                    f"of {fmt_int(q.minutes_limit / 60)} GPU-hours used")
            if q.minutes_left == 0:
                text += "; used up"
            elif q.runs_out_at is not None:
                when = datetime.fromtimestamp(q.runs_out_at, tz).strftime("%b %d %H:%M")
                text += (f"; runs out {when} (in {fmt_duration(q.runs_out_at - now)}) at the "
                         f"last 24 h rate of {q.rate_gpus:,.0f} GPUs")
            else:
                text += "; not burning (no use in the last 24 h)"
            parts.append(text)
    if not parts:
        parts.append(f"{what}: no GPU limit")
    return "; ".join(parts)


class TenantMoneyPane(QWidget):
    """One tenant's usage, money, quotas and queue; fed frames by the drill-down window."""

    def __init__(self, account: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.account = account
        self.view: AccountingView | None = None
        self._key: tuple[str, str] | None = None
        th = theme_mod.current()

        self.period_box = QComboBox(self)
        self.period_box.setObjectName("PeriodChoice")
        self.period_box.setToolTip("the period every figure below covers")
        self.period_box.currentIndexChanged.connect(self._on_period_changed)
        self.pdf_button = QPushButton("Statement PDF\u2026", self)
        self.csv_button = QPushButton("Statement CSV\u2026", self)
        self.pdf_button.clicked.connect(lambda: self._save_statement("pdf"))
        self.csv_button.clicked.connect(lambda: self._save_statement("csv"))
        self.status = QLabel("accounting has not been read yet", self)
        self.status.setObjectName("KpiCaption")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Period", self))
        top.addWidget(self.period_box)
        top.addWidget(self.pdf_button)
        top.addWidget(self.csv_button)
        top.addWidget(self.status, 1)

        figures = QFrame(self)
        figures.setObjectName("DrilldownFigures")
        grid = QGridLayout(figures)
        grid.setContentsMargins(8, 4, 8, 4)
        grid.setHorizontalSpacing(20)
        self.figure_labels: dict[str, QLabel] = {}
        for col, (key, caption) in enumerate(FIGURES):
            cap = QLabel(caption, figures)
            cap.setObjectName("KpiCaption")
            val = QLabel("\u2014", figures)
            val.setObjectName("DrilldownValue")
            val.setStyleSheet(f"font-size: {th.px(16)}px; font-weight: bold;")
            grid.addWidget(cap, 0, col)
            grid.addWidget(val, 1, col)
            self.figure_labels[key] = val
        self.states_label = QLabel("", self)
        self.states_label.setObjectName("KpiCaption")

        self.bars_plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem()})
        self.bars_plot.setMinimumHeight(180)
        self.bars_plot.setLabel("left", "GPU-hours")
        self.bars_plot.showGrid(x=False, y=True, alpha=0.2)
        self.bars = pg.BarGraphItem(x=[], height=[], width=1.0, brush=th.accent)
        self.bars_plot.addItem(self.bars)

        self.quota_label = QLabel("", self)
        self.quota_label.setWordWrap(True)
        self.quota_label.setTextFormat(Qt.TextFormat.PlainText)
        self.quota_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.wait_label = QLabel("", self)
        self.wait_label.setWordWrap(True)
        self.wait_label.setTextFormat(Qt.TextFormat.PlainText)
        self.wait_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # Queue depth over time: GPUs its pending jobs ask for, from the frames' history
        # (NaN while the scheduler was not read: a gap in the line, never a drop to 0).
        self.pending_plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem()})
        self.pending_plot.setMinimumHeight(140)
        self.pending_plot.setLabel("left", "GPUs pending")
        self.pending_plot.showGrid(x=False, y=True, alpha=0.2)
        self.pending_curve = self.pending_plot.plot(
            [], [], pen=pg.mkPen(th.health[Health.DEGRADED], width=2))
        side = QWidget(self)
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        for caption, label in (("Quotas and fair share", self.quota_label),
                               ("Why its GPUs wait", self.wait_label)):
            cap = QLabel(caption, side)
            cap.setObjectName("PanelTitle")
            sl.addWidget(cap)
            sl.addWidget(label)
        self.pending_caption = QLabel("Its GPUs pending over time", side)
        self.pending_caption.setObjectName("KpiCaption")
        sl.addWidget(self.pending_caption)
        sl.addWidget(self.pending_plot, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.bars_plot)
        split.addWidget(side)
        split.setSizes([640, 560])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(figures)
        layout.addWidget(self.states_label)
        layout.addWidget(split, 1)
        self._set_enabled(False)

    # --- frames ------------------------------------------------------------------------------

    def _set_enabled(self, on: bool) -> None:
        for w in (self.period_box, self.pdf_button, self.csv_button):
            w.setEnabled(on)

    def render(self, frame: Frame) -> None:
        view = frame.accounting if isinstance(frame.accounting, AccountingView) else None
        self._render_wait(frame)
        self._render_pending(frame)
        if view is None:
            self.status.setText("accounting has not been read yet (the console reads it every "
                                "few minutes); no figures rather than zeros")
            self._set_enabled(False)
            return
        if self.view is None or view.key != self.view.key:
            self.view = view
            self._fill_periods(view)
        self._set_enabled(True)
        key = (view.key, self.period_key())
        if key != self._key:
            self._key = key
            self._render_money(view)
            self._render_quotas(view)

    def period_key(self) -> str:
        return str(self.period_box.currentData() or "30d")

    def set_period(self, key: str) -> None:
        """Choose a period by key ("24h", "7d", "30d" or "YYYY-MM")."""
        i = self.period_box.findData(key)
        if i >= 0:
            self.period_box.setCurrentIndex(i)

    def _fill_periods(self, view: AccountingView) -> None:
        keep = self.period_key() if self.period_box.count() else "30d"
        self.period_box.blockSignals(True)
        self.period_box.clear()
        for key, label in periods_offered(view):
            self.period_box.addItem(label, key)
        i = self.period_box.findData(keep)
        self.period_box.setCurrentIndex(i if i >= 0 else 2)
        self.period_box.blockSignals(False)

    @Slot(int)
    def _on_period_changed(self, _index: int) -> None:
        if self.view is not None:
            self._key = (self.view.key, self.period_key())
            self._render_money(self.view)

    def current_period(self) -> Period | None:
        return None if self.view is None else period_for(self.period_key(), self.view)

    def _render_money(self, view: AccountingView) -> None:
        period = period_for(self.period_key(), view)
        now = view.taken_at
        ch = charges(view.table, period, now, view.book, (self.account,))[self.account]
        u, cur = ch.usage, view.currency
        f = self.figure_labels
        f["gpuh"].setText(f"{u.gpu_hours:,.0f}")
        f["jobs"].setText(fmt_int(u.jobs))
        f["pfh"].setText("not observed" if u.pf_hours is None else f"{u.pf_hours:,.0f}")
        f["eff"].setText("not observed" if u.efficiency is None else fmt_pct(u.efficiency))
        f["idle"].setText("not observed" if u.idle_gpu_hours is None else f"{u.idle_gpu_hours:,.0f}")
        f["cost"].setText(money_text(ch.cost, cur))
        f["subsidy"].setText(f"{money_text(ch.subsidy, cur)} ({fmt_pct(ch.subsidy_rate)})")
        f["net"].setText(money_text(ch.net, cur))
        f["idle_cost"].setText("not observed" if ch.idle_cost is None else money_text(ch.idle_cost, cur))
        states = ", ".join(f"{k.lower().replace('_', ' ')} {v:,}" for k, v in u.jobs_by_state.items())
        seen = u.observed_share
        self.states_label.setText(
            f"Jobs by end state: {states or 'none'}"
            + ("" if seen is None else f" \u2014 PF-hours and efficiency rest on the "
               f"{fmt_pct(seen)} of GPU-hours the console observed"))
        read = datetime.fromtimestamp(view.taken_at, view.tz).strftime("%Y-%m-%d %H:%M")
        text = f"{view.source} accounting read at {read}; {period.label}"
        if view.error:
            text += f" \u2014 the newest read failed: {view.error}"
        self.status.setText(text)
        self._render_bars(view, period)

    def _render_bars(self, view: AccountingView, period: Period) -> None:
        if period.hours <= 48:  # hourly bars for a day
            start = np.floor(period.since / 3600.0) * 3600.0
            bins = [Period(max(t, period.since), min(t + 3600.0, period.until), "")
                    for t in np.arange(start, period.until, 3600.0)]
        else:
            bins = days_of(period, view.tz)
        rows = view.table.rows_of(self.account)
        if not len(rows) or not bins:
            self.bars.setOpts(x=[], height=[], width=1.0)
            return
        sub = _subset(view, rows)
        heights = [float(job_gpu_hours(sub, b, view.taken_at).sum()) for b in bins]
        x = [(b.since + b.until) / 2 for b in bins]
        width = 0.85 * (bins[0].until - bins[0].since if len(bins) == 1 else
                        min(b.until - b.since for b in bins[1:-1] or bins))
        self.bars.setOpts(x=x, height=heights, width=width)
        self.bars_plot.setXRange(period.since, period.until, padding=0.01)
        self.bars_plot.setYRange(0, max(heights) * 1.1 if max(heights) > 0 else 1.0)

    def bar_heights(self) -> list[float]:
        h = self.bars.opts.get("height")
        return [] if h is None else [float(v) for v in h]

    def _render_quotas(self, view: AccountingView) -> None:
        now = view.taken_at
        mine = [lim for lim in view.limits if lim.scope == "qos" or lim.name == self.account]
        mine = [lim for lim in mine if lim.scope == "account" or
                lim.name in view.table.qoses]  # only QOSes this tenant's jobs use
        lines = [quota_words(q, now, view.tz) for q in quota_status(mine, view.table, now)]
        if not lines:
            lines.append("no GPU limits reported for this tenant")
        fs = shares_by_account(view.shares).get(self.account)
        if fs is not None:
            lvl = "not reported" if fs.level_fs is None else f"{fs.level_fs:.2f}"
            use = "not reported" if fs.effective_usage is None else fmt_pct(fs.effective_usage, 1)
            lines.append(f"fair share: LevelFS {lvl} (above 1 = under-served), effective usage "
                         f"{use} of the machine")
        elif view.shares:
            lines.append("fair share: this account is not in /shares")
        else:
            lines.append("fair share: not offered by this accounting source")
        self.quota_label.setText("\n".join(lines))

    def _render_wait(self, frame: Frame) -> None:
        now = frame.data_now or frame.time
        s = wait_summary(frame.jobs, now, account=self.account)
        lines = [s.words()]
        for p in wait_by_partition(frame.jobs, now, self.account):
            lines.append(f"  {p.scope.split(' in ')[-1]}: {p.words()}")
        if s.jobs_pending:
            hist = ", ".join(f"{label} {n}" for label, n in s.wait_histogram if n)
            lines.append(f"waited so far: {hist}; median {fmt_duration(s.median_wait_s)}")
            if s.next_expected_start is not None:
                lines.append(f"Slurm expects {s.expected_starts} of them to start, the first in "
                             f"{fmt_duration(s.next_expected_start - now)}")
            else:
                lines.append("Slurm has given no expected start time")
        self.wait_label.setText("\n".join(lines))

    def _render_pending(self, frame: Frame) -> None:
        """The tenant's pending GPUs over the frames' history, gaps where unknown."""
        h, t = frame.history, frame.tenants
        q = h.tenant_gpus_pending
        row = t.account.index(self.account) if self.account in t.account else -1
        if row < 0 or q.ndim != 2 or row >= q.shape[1] or q.shape[0] != len(h.t) or not len(h.t):
            self.pending_curve.setData([], [])
            self.pending_caption.setText("Its GPUs pending over time: no history yet")
            return
        y = q[:, row]
        self.pending_curve.setData(h.t, y, connect="finite")
        known = y[np.isfinite(y)]
        peak = f"; most {fmt_int(int(known.max()))}" if len(known) else "; not known yet"
        self.pending_caption.setText(f"Its GPUs pending over time{peak}")

    def pending_series(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, GPUs pending) as plotted (tests)."""
        x, y = self.pending_curve.getData()
        return (np.zeros(0) if x is None else np.asarray(x),
                np.zeros(0) if y is None else np.asarray(y))

    # --- statements ----------------------------------------------------------------------------

    def statement(self) -> Statement:
        assert self.view is not None
        key = self.period_key()
        # A month's statement covers the whole calendar month (saying it is not over yet).
        period = (period_for(key, self.view) if key in {k for k, _, _ in WINDOWS}
                  else month_period(key, self.view.tz))
        return build_statement(self.view, self.account, period)

    def write_statement(self, path: str, kind: str) -> int:
        """Write the chosen period's statement; returns pages (PDF) or jobs (CSV)."""
        stmt = self.statement()
        if kind == "pdf":
            from widgets.statement_pdf import write_statement_pdf

            return write_statement_pdf(stmt, path)
        write_statement_csv(stmt, path)
        return len(stmt.jobs)

    def _save_statement(self, kind: str) -> None:
        if self.view is None:
            return
        suggested = f"statement-{self.account}-{self.period_key()}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Save statement as {kind.upper()}", suggested,
                                              "PDF files (*.pdf)" if kind == "pdf" else "CSV files (*.csv)")
        if path:
            try:
                self.write_statement(path, kind)
                self.status.setText(f"statement written to {path}")
            except OSError as exc:
                self.status.setText(f"could not write the statement: {exc}")


def month_keys(view: AccountingView) -> list[str]:
    """The months a read covers, newest first (what a scheme summary can be written for)."""
    return [k for k, _ in periods_offered(view) if k not in {w for w, _, _ in WINDOWS}]


def write_statements(view: AccountingView, month: str, path: str) -> int:
    """The scheme's summary of ``month`` (one row per tenant, as ``aisc-console statements``);
    returns the tenants written."""
    from pathlib import Path

    from console.accounting.statement import statements_csv

    Path(path).write_text(statements_csv(view, month_period(month, view.tz)), encoding="utf-8")
    return len(view.accounts)


def save_statements(parent: QWidget, view: AccountingView) -> str | None:
    """Ask for a month and a file, then write the scheme's summary; returns the path."""
    from PySide6.QtWidgets import QInputDialog

    months = month_keys(view)
    month, ok = QInputDialog.getItem(parent, "Statements of every tenant", "Month", months, 0, False)
    if not ok or not month:
        return None
    path, _ = QFileDialog.getSaveFileName(parent, "Save statements as CSV",
                                          f"statements-{month}.csv", "CSV files (*.csv)")
    if not path:
        return None
    write_statements(view, month, path)
    return path


def _subset(view: AccountingView, rows: np.ndarray) -> UsageTable:
    """The table restricted to ``rows`` (one tenant), so per-bin sums skip everyone else."""
    from dataclasses import fields, replace

    t = view.table
    cols = {f.name: getattr(t, f.name)[rows] for f in fields(t)
            if isinstance(getattr(t, f.name), np.ndarray)}
    return replace(t, **cols)

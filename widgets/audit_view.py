"""The audit trail: every operator action, who, when, what, the reason typed and the result.

Read-only on purpose: the journal is the record of what operators did, so the console offers
no way to edit or delete it (the table cannot be edited, the database is opened read-only).
Exportable as CSV and JSON for a review or an auditor. Lives in the GUI thread.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QFileDialog, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from console.journal_store import Event, JournalStore, JournalUnavailable

COLUMNS = ("time", "operator", "os_user", "endpoint_user", "action", "target", "stage",
           "reason", "result")
HEADERS = ("Time", "Operator", "OS user", "Endpoint user", "Action", "Target", "Stage",
           "Reason typed", "Result")
#: Column widths at 14 px text (the result takes the rest).
WIDTHS = (160, 110, 100, 130, 120, 150, 80, 220)
SPANS = (("Last 24 hours", 86400.0), ("Last 7 days", 7 * 86400.0), ("Last 90 days", 90 * 86400.0))


def audit_row(e: Event) -> dict[str, Any]:
    """One audit record as the view and the exports show it."""
    d = e.data
    stage = e.kind.partition(".")[2] or "record"
    if stage == "outcome":
        result = ("done" if d.get("ok") else "failed") + (f": {d['message']}" if d.get("message") else "")
    elif stage == "attempt":
        result = "asked"
    else:
        result = ""
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time)),
            "epoch": round(e.time, 3), "operator": str(d.get("operator") or ""),
            "os_user": str(d.get("os_user") or ""),
            "endpoint_user": str(d.get("endpoint_user") or ""),
            "action": str(d.get("action") or ""), "target": str(d.get("target") or ""),
            "stage": stage, "reason": str(d.get("comment") or ""), "result": result}


def audit_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("epoch", *COLUMNS))
    for r in rows:
        w.writerow((r["epoch"], *(r[c] for c in COLUMNS)))
    return out.getvalue()


class AuditView(QDialog):
    """The journal's operator actions, newest last, for a chosen span."""

    def __init__(self, store_path: str | Path, *, clock: Callable[[], float] = time.time,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store_path = Path(store_path)
        self._clock = clock
        self.records: list[dict[str, Any]] = []
        self.setObjectName("AuditView")
        self.setWindowTitle("Audit trail (read-only)")
        self.resize(1500, 640)
        self.span = QComboBox(self)
        for words, s in SPANS:
            self.span.addItem(words, s)
        self.span.setCurrentIndex(1)
        self.span.activated.connect(lambda _i: self.refresh())
        self.summary = QLabel("", self)
        self.table = QTableWidget(0, len(HEADERS), self)
        self.table.setObjectName("AuditTable")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(len(HEADERS) - 1,
                                                           QHeaderView.ResizeMode.Stretch)
        for c, width in enumerate(WIDTHS):
            self.table.setColumnWidth(c, width)
        self.csv_button = QPushButton("Export CSV\u2026", self)
        self.json_button = QPushButton("Export JSON\u2026", self)
        self.csv_button.clicked.connect(lambda: self._export(".csv"))
        self.json_button.clicked.connect(lambda: self._export(".json"))
        self.status = QLabel("The audit trail cannot be edited from the console.", self)
        top = QHBoxLayout()
        top.addWidget(self.span)
        top.addWidget(self.summary, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.csv_button)
        bottom.addWidget(self.json_button)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        span = float(self.span.currentData() or 86400.0)
        now = self._clock()
        try:
            with JournalStore(self.store_path, readonly=True) as store:
                events = store.events(now - span, now, kinds=["action."])
        except JournalUnavailable as exc:
            events = []
            self.summary.setText(f"The journal cannot be read: {exc.words}")
        else:
            self.summary.setText(f"{len(events):,} records")
        self.records = [audit_row(e) for e in events]
        t = self.table
        t.setRowCount(len(self.records))
        for r, rec in enumerate(self.records):
            for c, key in enumerate(COLUMNS):
                item = QTableWidgetItem(str(rec[key]))
                item.setToolTip(str(rec[key]))  # the whole reason or result, however long
                t.setItem(r, c, item)

    def _export(self, suffix: str) -> None:
        pattern = "CSV files (*.csv)" if suffix == ".csv" else "JSON files (*.json)"
        name, _ = QFileDialog.getSaveFileName(self, "Export the audit trail", f"audit{suffix}", pattern)
        if not name:
            return
        try:
            out = self.export_csv(name) if suffix == ".csv" else self.export_json(name)
        except OSError as exc:
            self.status.setText(f"could not write {name}: {exc.strerror or exc}")
            return
        self.status.setText(f"wrote {out}")

    def export_csv(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(audit_csv(self.records), encoding="utf-8")
        return p

    def export_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.records, indent=1, ensure_ascii=False), encoding="utf-8")
        return p


__all__ = ["AuditView", "COLUMNS", "audit_csv", "audit_row"]

"""The incident timeline and the audit trail: what they list, notes, and their exports."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from PySide6.QtWidgets import QAbstractItemView

from console.journal_recorder import JournalRecorder, action_event
from console.journal_store import Event, JournalStore
from widgets.audit_view import AuditView
from widgets.timeline_dialog import IncidentScope, TimelineDialog

NOW = 1_800_000_000.0


def journal(path: Path) -> None:
    with JournalStore(path) as s:
        s.write([
            Event(NOW - 3000, "gpu.xid", "gpu:n0002/3", "XID 79 on n0002 GPU 3",
                  {"node": "n0002", "gpu": 3, "xid": 79}),
            Event(NOW - 2900, "alert.acknowledged", "alert:fp1",
                  "GpuXid on n0002 GPU 3 acknowledged by alice: ACK! swapping it tonight",
                  {"node": "n0002", "silences": [{"comment": "ACK! swapping it tonight"}]}),
            Event(NOW - 2800, "node.state", "node:n0002", "n0002: ALLOCATED → DRAINED (XID 79)",
                  {"node": "n0002", "from": "ALLOCATED", "to": "DRAINED", "reason": "XID 79"}),
            Event(NOW - 2700, "job.state", "job:101", "job 101 (hku): RUNNING → FAILED",
                  {"job_id": 101}),
            Event(NOW - 2600, "node.state", "node:n0009", "n0009: IDLE → DOWN",
                  {"node": "n0009"}),
            action_event({"time": NOW - 2500, "action": "drain_node", "operator": "alice",
                          "target": "n0002", "comment": "XID 79", "event": "attempt"},
                         os_user="ops", endpoint_users={"slurm": "slurm-console"}),
            action_event({"time": NOW - 2499, "action": "drain_node", "operator": "alice",
                          "target": "n0002", "event": "outcome", "ok": True,
                          "message": "node n0002 is draining"}, os_user="ops",
                         endpoint_users={"slurm": "slurm-console"}),
        ], cluster_rows=[{"t": NOW - 3000 + 60 * i, "delivered_pf": 10.0 + i, "installed_pf": 20.0}
                         for i in range(40)])


def dialog(qtbot, tmp_path: Path, **kw) -> TimelineDialog:  # type: ignore[no-untyped-def]
    path = tmp_path / "j.sqlite3"
    if not path.exists():
        journal(path)
    dlg = TimelineDialog(path, since=NOW - 3600, clock=lambda: NOW, **kw)
    qtbot.addWidget(dlg)
    return dlg


def test_window_lists_everything_in_order(qtbot, tmp_path: Path) -> None:
    dlg = dialog(qtbot, tmp_path)
    rows = dlg.rows()
    assert [r[1] for r in rows] == ["XID", "acknowledged", "node state", "job", "node state",
                                    "operator action", "action result"]
    assert rows[1][3] == "GpuXid on n0002 GPU 3 acknowledged by alice: ACK! swapping it tonight"
    assert dlg.table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert dlg.summary.text().startswith("7 events from ")


def test_one_incident_shows_only_what_concerns_it(qtbot, tmp_path: Path) -> None:
    scope = IncidentScope("XID 79 on n0002", NOW - 3000, nodes=frozenset({"n0002"}),
                          jobs=frozenset({101}), subjects=frozenset({"cause:c1"}))
    dlg = dialog(qtbot, tmp_path, scope=scope)
    assert [r[2] for r in dlg.rows()] == ["gpu:n0002/3", "alert:fp1", "node:n0002", "job:101"]
    assert "concerning XID 79 on n0002" in dlg.summary.text()
    assert dlg.windowTitle() == "Timeline \u2014 XID 79 on n0002"


def test_a_typed_note_becomes_a_journal_event(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal(path)
    writer = JournalRecorder(path, prune_every_s=float("inf"), exclusive=False)
    writer.start()
    try:
        dlg = dialog(qtbot, tmp_path, note_sink=writer.record, author="alice")
        dlg.note_edit.setText("vendor ticket 4411 opened for the GPU")
        dlg.note_button.click()
        assert dlg.note_edit.text() == ""

        def stored() -> bool:
            with JournalStore(path, readonly=True) as r:
                return bool(r.events(kinds=["note"]))

        qtbot.waitUntil(stored, timeout=5000)
        dlg.refresh()
        assert dlg.rows()[-1][1:] == ("note", "note:alice",
                                      "alice: vendor ticket 4411 opened for the GPU")
    finally:
        writer.stop()


def test_without_a_writer_notes_are_disabled_and_say_why(qtbot, tmp_path: Path) -> None:
    dlg = dialog(qtbot, tmp_path)
    assert not dlg.note_button.isEnabled()
    assert dlg.note_edit.placeholderText() == "notes need the console's journal writer"


def test_exports_csv_json_and_a_pdf_report(qtbot, tmp_path: Path) -> None:
    dlg = dialog(qtbot, tmp_path)
    with open(dlg.export_csv(tmp_path / "t.csv"), encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["time", "time_iso", "kind", "subject", "summary", "data"]
    assert [r[2] for r in rows[1:]] == [e.kind for e in dlg.events]
    assert json.loads(rows[3][5])["reason"] == "XID 79"
    data = json.loads(dlg.export_json(tmp_path / "t.json").read_text(encoding="utf-8"))
    assert [d["kind"] for d in data] == [e.kind for e in dlg.events]
    assert data[0]["data"] == {"node": "n0002", "gpu": 3, "xid": 79}
    pdf = dlg.export_pdf(tmp_path / "t.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", pdf)
    assert len(pages) == 2  # the plots, then the events


def test_audit_trail_is_read_only_and_says_who(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal(path)
    view = AuditView(path, clock=lambda: NOW)
    qtbot.addWidget(view)
    assert view.table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert [(r["operator"], r["os_user"], r["endpoint_user"], r["action"], r["target"],
             r["stage"], r["reason"], r["result"]) for r in view.records] == [
        ("alice", "ops", "slurm-console", "drain_node", "n0002", "attempt", "XID 79", "asked"),
        ("alice", "ops", "slurm-console", "drain_node", "n0002", "outcome", "",
         "done: node n0002 is draining")]
    assert view.table.item(0, 7).text() == "XID 79"
    with open(view.export_csv(tmp_path / "a.csv"), encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", "time", "operator", "os_user", "endpoint_user", "action",
                       "target", "stage", "reason", "result"]
    assert len(rows) == 3
    assert json.loads(view.export_json(tmp_path / "a.json").read_text())[1]["result"] == \
        "done: node n0002 is draining"

"""The journal database: read-back, retention, migrations, crash and disk safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from console.journal_recorder import JSONL_MIGRATED, JournalRecorder, Retention, action_event
from console.journal_store import (SCHEMA_VERSION, Event, JournalStore, JournalUnavailable,
                                   NodeMinute, why_words)

ROOT = Path(__file__).resolve().parents[2]


def test_events_and_figures_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with JournalStore(path) as s:
        s.write([Event(100.0, "node.state", "node:n1", "n1: IDLE → DRAINED (bad gpu)",
                       {"node": "n1", "reason": "bad gpu"}),
                 Event(160.0, "alert.firing", "alert:abc", "XID on n1", {"node": "n1"})],
                cluster_rows=[{"t": 90.0, "delivered_pf": 12.5, "installed_pf": None,
                               "jobs_running": 4.0, "detail": {"precision": "BF16 dense"}}],
                group_rows=[{"level": "tenant", "key": "hku", "t": 90.0, "gpus_in_use": 16.0,
                             "delivered_pf": None}],
                nodes=[NodeMinute(90.0, ("n1", "n2"),
                                  {"state": np.array([5, -1], np.int8),
                                   "util": np.array([np.nan, 40.0], np.float32)})])
    with JournalStore(path, readonly=True) as r:
        ev = r.events(50, 200)
        assert [(e.time, e.kind, e.subject, e.data) for e in ev] == [
            (100.0, "node.state", "node:n1", {"node": "n1", "reason": "bad gpu"}),
            (160.0, "alert.firing", "alert:abc", {"node": "n1"})]
        assert [e.kind for e in r.events(kinds=["alert."])] == ["alert.firing"]
        assert [e.kind for e in r.events(subjects=["node:n1"])] == ["node.state"]
        row = r.cluster_at(120.0)
        assert row is not None
        assert row["delivered_pf"] == 12.5 and row["jobs_running"] == 4.0
        assert row["installed_pf"] is None and row["gpus_total"] is None  # unknown: NULL, not 0
        assert r.cluster_at(1000.0) is None  # too far from any minute
        assert r.groups_at("tenant", 100.0) == {"hku": {
            "gpus_in_use": 16.0, "delivered_pf": None, "jobs_running": None,
            "jobs_pending": None, "gpus_pending": None}}
        nm = r.nodes_at(100.0)
        assert nm is not None and nm.names == ("n1", "n2")
        assert nm.arrays["state"].tolist() == [5, -1]
        assert np.isnan(nm.arrays["util"][0]) and nm.arrays["util"][1] == 40.0
        assert np.isnan(nm.arrays["temp"]).all()  # never given: unknown
        assert r.version() == SCHEMA_VERSION


def test_readonly_open_never_creates_a_database(tmp_path: Path) -> None:
    with pytest.raises(JournalUnavailable):
        JournalStore(tmp_path / "missing.sqlite3", readonly=True)
    assert not (tmp_path / "missing.sqlite3").exists()


def test_retention_prunes_in_small_batches(tmp_path: Path) -> None:
    with JournalStore(tmp_path / "j.sqlite3") as s:
        s.write([Event(float(i), "note", "", "") for i in range(1200)],
                cluster_rows=[{"t": float(i)} for i in range(0, 1200, 10)])
        assert s.prune(events_before=1000.0, aggregates_before=500.0, batch=400) == 400 + 50
        assert s.counts()["events"] == 800
        while s.prune(events_before=1000.0, aggregates_before=500.0, batch=400):
            pass
        assert s.counts()["events"] == 200
        assert min(e.time for e in s.events()) == 1000.0
        assert s.counts()["agg_cluster"] == 70  # 500..1190 step 10


def test_recorder_applies_retention_days(tmp_path: Path) -> None:
    day = 86400.0
    now = 100 * day
    path = tmp_path / "j.sqlite3"
    with JournalStore(path) as s:
        s.write([Event(now - 91 * day, "note"), Event(now - 89 * day, "note")],
                cluster_rows=[{"t": now - 31 * day}, {"t": now - 29 * day}])
    rec = JournalRecorder(path, retention=Retention(events_days=90, aggregates_days=30),
                          clock=lambda: now)
    rec.record([Event(now, "note", "", "hello")])
    rec.drain()
    rec.stop()
    with JournalStore(path, readonly=True) as r:
        assert [e.time for e in r.events()] == [now - 89 * day, now]
        assert r.cluster_series(0, now)[0].tolist() == [now - 29 * day]


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}');
CREATE INDEX events_time ON events (time);
PRAGMA user_version=1;
"""


def test_migrates_a_hand_made_version_1_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO events (time, kind, subject, data) VALUES (5.0, 'node.state', "
               "'node:n9', '{\"node\": \"n9\"}')")
    db.commit()
    db.close()
    with JournalStore(path) as s:
        assert s.version() == SCHEMA_VERSION
        (old,) = s.events()
        assert (old.time, old.kind, old.subject, old.summary, old.data) == \
            (5.0, "node.state", "node:n9", "", {"node": "n9"})
        s.write([Event(6.0, "note", "", "after the upgrade")], cluster_rows=[{"t": 30.0}])
        assert s.counts() == {"events": 2, "agg_cluster": 1, "agg_group": 0, "agg_nodes": 0}


def test_a_newer_database_is_refused_not_downgraded(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalUnavailable, match="newer console"):
        JournalStore(path)


def test_jsonl_audit_journal_is_migrated_once(tmp_path: Path) -> None:
    jsonl = tmp_path / "journal.jsonl"
    t0 = time.time() - 3600  # within the retention, or the first prune would remove them
    lines = [{"time": t0, "action": "drain_node", "operator": "ops", "target": "n0007",
              "comment": "XID 79", "event": "attempt"},
             {"time": t0 + 1, "action": "drain_node", "operator": "ops", "target": "n0007",
              "event": "outcome", "ok": True, "message": "node n0007 is draining",
              "token": "s3cr3t"}]
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"torn", encoding="utf-8")
    path = tmp_path / "j.sqlite3"
    for _ in range(2):  # a second start does not copy it again
        rec = JournalRecorder(path, jsonl=jsonl)
        rec.drain()
        rec.stop()
    with JournalStore(path, readonly=True) as r:
        ev = r.events()
        assert [(e.time, e.kind, e.subject) for e in ev] == [
            (t0, "action.attempt", "target:n0007"), (t0 + 1, "action.outcome", "target:n0007")]
        assert ev[0].summary == "ops asked to drain node n0007: XID 79"
        assert ev[1].summary == "drain node n0007 done: node n0007 is draining"
        assert ev[1].data["token"] == "***"
        assert ev[1].data["migrated_from"] == "journal.jsonl"
        assert r.meta(JSONL_MIGRATED) == "2 records from journal.jsonl"


def test_action_event_names_who_did_it() -> None:
    e = action_event({"time": 1.0, "action": "cancel_job", "operator": "alice", "target": "42",
                      "event": "attempt", "comment": ""}, os_user="root",
                     endpoint_users={"slurm": "slurmsvc"})
    assert (e.data["operator"], e.data["os_user"], e.data["endpoint_user"]) == \
        ("alice", "root", "slurmsvc")


class _FailingStore(JournalStore):
    """A store whose writes fail like a full disk while ``fail`` is set."""

    fail: BaseException | None = None

    def write(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        if _FailingStore.fail is not None:
            raise _FailingStore.fail
        super().write(*a, **k)


@pytest.mark.parametrize("error, words", [
    (OSError(28, "No space left on device"), "journal paused: the disk is full"),
    (sqlite3.OperationalError("database or disk is full"), "journal paused: the disk is full"),
    (sqlite3.OperationalError("attempt to write a readonly database"),
     "journal paused: the journal folder is read-only"),
])
def test_full_disk_pauses_keeps_events_and_resumes(tmp_path: Path, error: BaseException,
                                                    words: str) -> None:
    now = [1000.0]
    rec = JournalRecorder(tmp_path / "j.sqlite3", retry_s=30.0, clock=lambda: now[0],
                          store_factory=_FailingStore)
    rec.record([Event(1.0, "note", "", "before")])
    rec.drain()
    assert rec.status_words() is None
    _FailingStore.fail = error
    try:
        rec.record([Event(2.0, "note", "", "during")])
        rec.drain()
        assert rec.status_words() == words
        line = rec.source_status(now[0])
        assert line is not None and line.name == "journal" and line.error == words
        now[0] += 10  # before the retry is due: nothing is attempted
        rec.record([Event(3.0, "note", "", "still during")])
        rec.drain()
        assert rec.status_words() == words
    finally:
        _FailingStore.fail = None
    now[0] += 30
    rec.drain()
    assert rec.status_words() is None and rec.source_status(now[0]) is None
    rec.stop()
    with JournalStore(tmp_path / "j.sqlite3", readonly=True) as r:
        ev = r.events()
    assert [e.summary for e in ev[:3]] == ["before", "during", "still during"]
    assert ev[3].kind == "journal.resumed"
    assert ev[3].summary.startswith("journal resumed after 40 s paused")


class _ReadOnlyFolder:
    """A folder nobody can write into, that can be made writable again.

    As a user: permissions (0o500). As root, whom permissions do not stop: a small tmpfs mounted
    read-only over it, remounted read-write to make it writable, unmounted at the end.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.mounted = os.geteuid() == 0
        if self.mounted:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                           check=True, capture_output=True)
        else:
            folder.chmod(0o500)

    def make_writable(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True,
                           capture_output=True)
        else:
            self.folder.chmod(0o700)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=True, capture_output=True)
            self.mounted = False
        else:
            self.folder.chmod(0o700)


def test_read_only_folder_pauses_and_resumes_when_writable(tmp_path: Path) -> None:
    ro = _ReadOnlyFolder(tmp_path / "ro")
    now = [0.0]
    try:
        rec = JournalRecorder(ro.folder / "sub" / "j.sqlite3", retry_s=5.0, clock=lambda: now[0])
        rec.record([Event(1.0, "note")])
        rec.drain()
        assert rec.status_words() == "journal paused: the journal folder is read-only"
        ro.make_writable()
        now[0] += 6
        rec.drain()
        assert rec.status_words() is None
        rec.stop()
        with JournalStore(ro.folder / "sub" / "j.sqlite3", readonly=True) as r:
            assert [e.kind for e in r.events()][:1] == ["note"]
    finally:
        ro.close()


WRITER = textwrap.dedent("""
    import os, signal, sys
    from console.journal_store import Event, JournalStore
    s = JournalStore(sys.argv[1])
    s.write([Event(float(i), "note", "", f"committed {i}") for i in range(100)])
    db = s.db
    db.execute("BEGIN IMMEDIATE")
    for i in range(100, 5000):
        db.execute("INSERT INTO events (time, kind, subject, summary, data) "
                   "VALUES (?, 'note', '', 'never committed', '{}')", (float(i),))
    print("inside", flush=True)
    signal.pause()
""")


def test_a_writer_killed_inside_a_transaction_leaves_the_earlier_data(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "inside"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with JournalStore(path, readonly=True) as r:
        ev = r.events()
    assert len(ev) == 100 and {e.summary for e in ev} == {f"committed {i}" for i in range(100)}
    with JournalStore(path) as w:  # and it can be written again
        w.write([Event(200.0, "note", "", "after the crash")])
        assert w.counts()["events"] == 101
        assert w.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_storage_failures_are_named_by_evidence() -> None:
    assert why_words(OSError(28, "No space left on device")) == "the disk is full"
    assert why_words(OSError(30, "Read-only file system")) == "the journal folder is read-only"
    assert why_words(sqlite3.OperationalError("database is locked")) == \
        "the database is locked by another program"
    assert why_words(sqlite3.DatabaseError("file is not a database")) == \
        "the database file is damaged"


def test_newest_events_first_for_a_bounded_window(tmp_path: Path) -> None:
    with JournalStore(tmp_path / "j.sqlite3") as s:
        s.write([Event(float(i), "note", "", str(i)) for i in range(10)])
        assert [e.summary for e in s.events(limit=3)] == ["0", "1", "2"]
        assert [e.summary for e in s.events(limit=3, newest=True)] == ["7", "8", "9"]


def test_sqlite_reporting_a_full_database_pauses_then_resumes(tmp_path: Path) -> None:
    """Not an injected error: SQLite itself answers SQLITE_FULL when the file may not grow."""
    limit = {"pages": 0}

    def capped(path: Path) -> JournalStore:
        store = JournalStore(path)
        if limit["pages"]:
            store.db.execute(f"PRAGMA max_page_count={limit['pages']}")
        return store

    path = tmp_path / "j.sqlite3"
    with JournalStore(path) as s:
        limit["pages"] = int(s.db.execute("PRAGMA page_count").fetchone()[0]) + 1
    now = [0.0]
    rec = JournalRecorder(path, retry_s=30.0, clock=lambda: now[0], store_factory=capped)
    rec.record([Event(float(i), "note", "", "x" * 2000) for i in range(50)])
    rec.drain()
    assert rec.status_words() == "journal paused: the disk is full"
    limit["pages"] = 0  # space again: the next attempt opens the database afresh
    now[0] += 31
    rec.drain()
    assert rec.status_words() is None
    rec.stop()
    with JournalStore(path, readonly=True) as r:
        assert r.counts()["events"] == 51  # the 50 kept in memory, and "journal resumed"


def test_one_engine_writes_derived_events_another_stands_by(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "widgets"))
    import dataclasses

    from frames import NOW, make_test_frame

    path = tmp_path / "j.sqlite3"
    first = JournalRecorder(path)
    second = JournalRecorder(path)  # e.g. `aisc-console status` while the console runs
    base = make_test_frame(alert_list=())
    firing = dataclasses.replace(base, time=NOW + 10, alerts=make_test_frame().alerts)
    for rec in (first, second):
        rec.offer(base)
        rec.offer(firing)
    first.drain()
    second.record([Event(NOW + 11, "action.attempt", "target:n0001", "bob asked to drain")])
    second.drain()
    assert second.standby_for == str(os.getpid())
    with JournalStore(path, readonly=True) as r:
        kinds = [e.kind for e in r.events()]
    assert kinds.count("alert.firing") == len([a for a in firing.alerts if a.state == "firing"])
    assert kinds.count("action.attempt") == 1  # its own operator's actions are still kept
    first.stop()
    second.offer(dataclasses.replace(base, time=NOW + 20))  # the alerts resolved
    second.drain()
    assert second.standby_for == ""  # it writes now
    second.stop()
    with JournalStore(path, readonly=True) as r:
        assert [e.kind for e in r.events(kinds=["alert.resolved"])]

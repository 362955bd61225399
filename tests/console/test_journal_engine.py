"""The journal in the engine and on the command line, on the simulated cluster."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from console.cli import main
from console.config import demo_settings
from console.engine import Engine, run_sync
from console.journal_cli import parse_time
from console.journal_settings import JournalSettings
from console.journal_store import JournalStore, database_path


def journal_settings(folder: Path, nodes: int = 8):  # type: ignore[no-untyped-def]
    return dataclasses.replace(demo_settings(nodes=nodes, faults="none"),
                               journal=JournalSettings(folder=str(folder)))


def test_no_journal_unless_the_settings_ask(tmp_path: Path) -> None:
    e = Engine(demo_settings(nodes=4), detect=False)
    assert e.journal is None


def test_engine_writes_minutes_and_events_and_a_restart_shows_the_last_day(tmp_path: Path) -> None:
    settings = journal_settings(tmp_path)
    path = database_path("Simulated AISC", tmp_path)
    now = time.time()
    # An earlier run's minutes, an hour ago (as a console that ran then would have left them).
    minutes = [now - 3600 + 60 * i for i in range(30)]
    with JournalStore(path) as s:
        s.write(cluster_rows=[{"t": t, "delivered_pf": 10.0 + i, "installed_pf": 200.0,
                               "jobs_running": None} for i, t in enumerate(minutes)])
    e = Engine(settings, detect=False)
    with e:
        frame = e.wait_frames(1, timeout=20)
    h = frame.history
    seeded = np.isin(h.t, minutes)
    assert seeded.sum() == 30  # at once, in the first frame
    assert h.series["delivered_pf"][seeded].tolist() == [10.0 + i for i in range(30)]
    assert np.isnan(h.series["jobs_running"][seeded]).all()  # unknown then: a gap, not 0
    with JournalStore(path, readonly=True) as r:  # and this run's own minute was written
        assert r.cluster_at(time.time()) is not None
        assert r.cluster_at(time.time())["nodes_total"] == 8.0  # type: ignore[index]


def test_a_paused_journal_is_a_source_line_and_the_console_keeps_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def full(self, *a, **k):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JournalStore, "write", full)
    monkeypatch.setenv("AISC_CONSOLE_DATA_DIR", str(tmp_path))
    code = main(["status", "--nodes", "8", "--engine", "thread", "--after", "2.5",
                 "--timeout", "20"])
    out = capsys.readouterr().out
    assert "journal        failing  no data yet: journal paused: the disk is full" in out
    assert "simulator      ok" in out  # the figures still came
    assert code == 1
    e = Engine(journal_settings(tmp_path), detect=False)
    frame = run_sync(e, 1)
    assert e.journal is not None
    e.journal.drain()
    from console.journal_engine import with_journal_status

    line = with_journal_status(frame, e.journal).sources[-1]
    assert (line.name, line.state.value, line.error) == \
        ("journal", "failing", "journal paused: the disk is full")
    e.stop()


def test_timeline_and_status_at_on_the_simulated_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AISC_CONSOLE_DATA_DIR", str(tmp_path))
    assert main(["status", "--nodes", "8", "--seed", "3", "--speed", "120", "--engine", "thread",
                 "--after", "4", "--timeout", "20"]) == 0
    capsys.readouterr()
    assert main(["timeline", "--nodes", "8", "--since", "-1h", "--format", "json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert events, "the simulated jobs came and went: there are events"
    assert all(set(e) == {"time", "time_iso", "kind", "subject", "summary", "data"} for e in events)
    assert all(e["kind"] for e in events)
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    assert main(["timeline", "--nodes", "8", "--since", "-1h", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "time,time_iso,kind,subject,summary,data" and len(lines) == len(events) + 1
    assert main(["status", "--nodes", "8", "--at", "-1s", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["from_journal"] is True and d["nodes_total"] == 8 and d["gpus_total"] == 64
    assert isinstance(d["delivered_pf"], float) and math.isfinite(d["delivered_pf"])
    assert main(["status", "--nodes", "8", "--at", "-3h"]) == 1  # before anything was kept
    assert "No journal figures at" in capsys.readouterr().out


def test_times_iso_and_relative() -> None:
    now = 1_800_000_000.0
    assert parse_time("-2h", now) == now - 7200
    assert parse_time("-30m", now) == now - 1800
    assert parse_time("-1d", now) == now - 86400
    assert parse_time("now", now) == now
    assert parse_time("2027-01-15T08:00:00Z", now) == \
        datetime(2027, 1, 15, 8, tzinfo=timezone.utc).timestamp()
    assert parse_time("2027-01-15T10:00:00+02:00", now) == parse_time("2027-01-15T08:00Z", now)
    from console.config import ConfigError

    with pytest.raises(ConfigError, match="not a time"):
        parse_time("yesterday-ish", now)


def test_journal_settings_from_the_config() -> None:
    from console.config import ConfigError, parse_settings

    base = {"clusters": [{"name": "a", "sim": {}}]}
    assert parse_settings(base).journal is None  # not asked for: the command line decides
    s = parse_settings({**base, "journal": {"folder": "/srv/aisc", "events_days": 30,
                                            "aggregates_days": 7}})
    assert s.journal == JournalSettings(enabled=True, folder="/srv/aisc", events_days=30.0,
                                        aggregates_days=7.0)
    with pytest.raises(ConfigError, match="journal: unknown key"):
        parse_settings({**base, "journal": {"days": 3}})
    with pytest.raises(ConfigError, match="journal.events_days: a number of days above 0"):
        parse_settings({**base, "journal": {"events_days": 0}})
    off = parse_settings({**base, "journal": {"enabled": False}})
    from console.journal_engine import journal_path

    assert journal_path(off, off.clusters[0]) is None


def test_prometheus_backfill_fills_only_what_the_journal_lacks(tmp_path: Path) -> None:
    from console.config import ClusterSettings
    from console.journal_engine import history_seed
    from console.model import HistorySeed
    from console.state import ClusterState

    now = 1_800_000_000.0
    path = tmp_path / "j.sqlite3"
    centres = [now - 3600 + 60 * i + 30 for i in range(10)]
    with JournalStore(path) as s:  # the journal holds minutes 0..9 of the last hour
        s.write(cluster_rows=[{"t": t, "delivered_pf": 100.0} for t in centres])
    state = ClusterState(ClusterSettings(name="lab"), [("prometheus", "telemetry", 10.0)])
    seed = history_seed(path, now)
    assert seed is not None
    state.seed_history(seed, now)
    # Prometheus answers minutes 5..14: the first five are the journal's already.
    prom_t = np.array([now - 3600 + 60 * i + 30 for i in range(5, 15)])
    state.seed_history(HistorySeed({"delivered_pf": (prom_t, np.full(10, 7.0, np.float32))}), now)
    h = state.build_frame(now=now).history
    by_t = dict(zip(h.t.tolist(), h.series["delivered_pf"].tolist()))
    assert [by_t[t] for t in centres] == [100.0] * 10
    assert [by_t[t] for t in prom_t[5:].tolist()] == [7.0] * 5


def test_the_worker_process_journals_frames_and_the_audit_trail(tmp_path: Path) -> None:
    from console.engine_process import ProcessEngine

    settings = journal_settings(tmp_path)
    path = database_path("Simulated AISC", tmp_path)
    engine = ProcessEngine(settings, detect=False)
    with engine:
        frame = engine.wait_ready(timeout=60)
        node = frame.topology.node_names[0]
        assert engine.actions is not None
        result = engine.actions.drain_node(node, "journal test: bad fan").result(30)
        assert result.ok, result.message
        engine.wait_frames(2, timeout=30)
    with JournalStore(path, readonly=True) as r:  # the child wrote it; stop() flushed it
        audit = r.events(kinds=["action."])
        assert [(e.kind, e.data["action"], e.data["target"]) for e in audit] == [
            ("action.attempt", "drain_node", node), ("action.outcome", "drain_node", node)]
        assert audit[0].data["comment"] == "journal test: bad fan"
        assert audit[0].data["os_user"] and audit[1].data["ok"] is True
        assert r.cluster_at(time.time()) is not None


def test_only_the_journal_thread_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    writers: list[str] = []
    original = JournalStore.write

    def spy(self, *a, **k):  # type: ignore[no-untyped-def]
        writers.append(threading.current_thread().name)
        return original(self, *a, **k)

    monkeypatch.setattr(JournalStore, "write", spy)
    e = Engine(journal_settings(tmp_path), detect=False)
    with e:
        e.wait_frames(3, timeout=20)
        assert e.actions is not None
        assert e.actions.cancel_job(999_999).result(10) is not None  # an audited action
    assert writers and set(writers) == {"journal"}

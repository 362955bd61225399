"""The audit journal: append-only JSON lines, readable back, and never holding a secret."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from console.journal import MASK, Journal, default_path, redact, redact_text


def test_append_then_records_round_trip(tmp_path: Path) -> None:
    j = Journal(tmp_path / "sub" / "journal.jsonl")
    j.append({"action": "drain_node", "target": "n0001", "time": 10.0})
    j.append({"action": "cancel_job", "target": "42", "time": 11.0})
    recs = j.records()
    assert [r["action"] for r in recs] == ["drain_node", "cancel_job"]
    assert recs[0] == {"action": "drain_node", "target": "n0001", "time": 10.0}
    assert j.records(limit=1) == [recs[1]]


def test_time_added_when_missing(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    written = j.append({"action": "x"})
    assert isinstance(written["time"], float)
    assert j.records()[0]["time"] == written["time"]


def test_append_only_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal(path).append({"n": 1})
    Journal(path).append({"n": 2})  # a new Journal on the same file keeps what was there
    assert [r["n"] for r in Journal(path).records()] == [1, 2]
    assert len(path.read_text().splitlines()) == 2


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.append({"n": 1})
    with open(path, "a") as fh:
        fh.write('{"n": 2, "trunc')
    assert [r["n"] for r in j.records()] == [1]


def test_missing_file_reads_empty(tmp_path: Path) -> None:
    assert Journal(tmp_path / "none.jsonl").records() == []


def test_secrets_never_written(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.append({"action": "x", "token": "s3cr3t-tok", "details": {"password": "hunter2"},
              "message": "401 from http://admin:pw123@slurm:6820/?token=abc123 "
                         "X-SLURM-USER-TOKEN: eyJhbGciOi Authorization: Bearer zzz999"})
    text = path.read_text()
    for secret in ("s3cr3t-tok", "hunter2", "pw123", "abc123", "eyJhbGciOi", "zzz999"):
        assert secret not in text
    rec = j.records()[0]
    assert rec["token"] == MASK and rec["details"]["password"] == MASK
    assert rec["message"].startswith("401 from http://admin:***@slurm:6820/")


def test_redact_keeps_ordinary_values() -> None:
    assert redact({"target": "n0001", "gpus": 8, "ok": True, "ratio": 0.5, "v": None}) == {
        "target": "n0001", "gpus": 8, "ok": True, "ratio": 0.5, "v": None}
    assert redact_text("job 4812 cancelled") == "job 4812 cancelled"
    assert redact({"x": float("nan")}) == {"x": None}


def test_lines_are_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal(path).append({"a": float("inf"), "b": ("x", "y")})
    assert json.loads(path.read_text()) == {"a": None, "b": ["x", "y"], "time": json.loads(path.read_text())["time"]}


def test_concurrent_appends_do_not_interleave(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")

    def write(k: int) -> None:
        for i in range(50):
            j.append({"k": k, "i": i, "pad": "x" * 500})

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = j.records()
    assert len(recs) == 200
    assert sorted((r["k"], r["i"]) for r in recs) == [(k, i) for k in range(4) for i in range(50)]


def test_default_path_in_user_data_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "aisc-console" / "journal.jsonl"


def test_repr_has_path_only(tmp_path: Path) -> None:
    assert repr(Journal(tmp_path / "j.jsonl")) == f"Journal({str(tmp_path / 'j.jsonl')!r})"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG folders are Linux's")
def test_the_default_folder_is_never_relative_to_where_the_console_started(monkeypatch) -> None:
    """A relative $HOME or $XDG_DATA_HOME (stripped-down environments) must not put
    the journal under the current folder."""
    import pwd

    own_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("HOME", "relative/home")
    monkeypatch.setenv("XDG_DATA_HOME", ".local/share")
    path = default_path()
    assert path.is_absolute()
    assert path.is_relative_to(own_home / ".local" / "share")
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_path().is_relative_to(Path("/srv/data"))

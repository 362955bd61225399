"""`status` when the engine's worker process fails: the failure in words, exit code 1, no
traceback (a dead engine is never reported as a calm cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import cli
from console.config import ClusterSettings, PrometheusSettings, Settings


def test_status_names_a_dead_engine_and_exits_failing(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    # Accepted by the parent, refused by the worker process when it builds its sources.
    bad = Settings(clusters=(ClusterSettings(
        name="lab", prometheus=PrometheusSettings(url="ftp://nowhere")),))
    monkeypatch.setattr(cli, "resolve_settings", lambda args: bad)
    code = cli.main(["status", "--engine", "process", "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_SOURCE_FAILING
    assert out == ""
    assert err.startswith("aisc-console: console engine down: ")
    assert "must start with http" in err

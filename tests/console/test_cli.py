"""The headless commands: `status` (human and JSON contract) and argument handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import failing_sources, main, status_dict
from console.model import SourceState
from console.testing import frame_from_sim

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"installed_pf", "available_pf", "allocated_pf", "delivered_pf", "precision",
            "gpus_total", "gpus_healthy", "gpus_allocated", "jobs_running", "jobs_pending",
            "alerts_firing", "sources"}


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("AISC_CONSOLE_CONFIG", raising=False)


def test_status_json_holds_the_documented_contract() -> None:
    f = frame_from_sim(nodes=8, polls=2)
    d = status_dict(f)
    assert CONTRACT <= set(d)
    k = f.kpis
    assert d["gpus_total"] == 64 == k.gpus_total
    assert d["installed_pf"] == round(64 * 989.5 / 1000, 3)
    assert d["precision"] == "BF16 dense"
    assert d["jobs_running"] == k.jobs_running and d["jobs_pending"] == k.jobs_pending
    assert d["sources"][0]["name"] == "simulator" and d["sources"][0]["state"] == "ok"
    assert set(d["sources"][0]) >= {"name", "state", "age_s", "error"}
    json.dumps(d)  # serialisable as is


def test_status_command_prints_json_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", "--json", "--nodes", "8", "--seed", "2", "--timeout", "20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["gpus_total"] == 64 and out["simulated"] is True
    assert out["sources"][0]["error"] is None


def test_status_exits_non_zero_when_a_source_fails(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "down.toml"
    cfg.write_text('[[clusters]]\nname = "lab"\n[clusters.prometheus]\n'
                   'url = "http://127.0.0.1:9"\ninterval_s = 1\ntimeout_s = 1\n')
    code = main(["status", "--config", str(cfg), "--timeout", "20"])
    out = capsys.readouterr().out
    assert code == 1
    assert "failing" in out or "stale" in out
    assert "cannot connect" in out


def test_failing_sources_lists_names() -> None:
    f = frame_from_sim(nodes=4, polls=1)
    assert failing_sources(f) == []
    assert f.sources[0].state is SourceState.OK


def test_bad_arguments_are_reported_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--nodes", "0"]) == 2
    assert "--nodes must be between 1 and 4096" in capsys.readouterr().err
    assert main(["status", "--config", "/nonexistent/x.toml"]) == 2


def test_status_runs_in_a_fresh_interpreter_without_qt(tmp_path: Path) -> None:
    code = ("import sys, console.cli as c; rc = c.main(['status','--nodes','4','--timeout','20']);"
            "print('QT' if any(k.startswith('PySide6') for k in sys.modules) else 'NOQT'); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),  # its journal too
                                           "XDG_CONFIG_HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NOQT")
    assert "Delivered" in out.stdout and "SIMULATED CLUSTER" in out.stdout


# --- several clusters ----------------------------------------------------------------------------

TWO_SIMS = ('[[clusters]]\nname = "Alpha"\n[clusters.sim]\nseed = 3\nnodes = 4\ninterval_s = 0.5\n\n'
            '[[clusters]]\nname = "Beta"\n[clusters.sim]\nseed = 11\nnodes = 6\ninterval_s = 0.5\n')


def test_status_prints_every_cluster_when_several_are_configured(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "two.toml"
    cfg.write_text(TWO_SIMS)
    code = main(["status", "--config", str(cfg), "--timeout", "20"])
    out = capsys.readouterr().out
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["Alpha  [SIMULATED CLUSTER]", "Beta  [SIMULATED CLUSTER]"]
    assert "32 total" in blocks[0] and "48 total" in blocks[1]


def test_status_json_with_several_clusters_lists_each_single_cluster_object(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "two.toml"
    cfg.write_text(TWO_SIMS)
    code = main(["status", "--json", "--config", str(cfg), "--timeout", "20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == {"schema", "clusters"} and out["schema"] == 1
    assert [c["cluster"] for c in out["clusters"]] == ["Alpha", "Beta"]
    assert [c["gpus_total"] for c in out["clusters"]] == [32, 48]
    for c in out["clusters"]:
        assert CONTRACT <= set(c) and c["schema"] == 1 and c["simulated"] is True


def test_status_with_cluster_keeps_the_single_cluster_object(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "two.toml"
    cfg.write_text(TWO_SIMS)
    code = main(["status", "--json", "--config", str(cfg), "--cluster", "Beta", "--timeout", "20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "clusters" not in out and out["cluster"] == "Beta" and out["gpus_total"] == 48


def test_status_fails_when_any_source_of_any_cluster_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "mixed.toml"
    cfg.write_text('[[clusters]]\nname = "sim"\n[clusters.sim]\nnodes = 2\ninterval_s = 0.5\n\n'
                   '[[clusters]]\nname = "lab"\n[clusters.prometheus]\n'
                   'url = "http://127.0.0.1:9"\ninterval_s = 1\ntimeout_s = 1\n')
    code = main(["status", "--json", "--config", str(cfg), "--engine", "thread", "--timeout", "20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    sim, lab = out["clusters"]
    assert sim["cluster"] == "sim" and sim["sources"][0]["state"] == "ok"
    assert lab["cluster"] == "lab" and lab["sources"][0]["state"] in ("failing", "stale")
    assert "cannot connect" in lab["sources"][0]["error"]


def test_a_cluster_without_any_frame_counts_as_failing() -> None:
    from console.cli import no_frame_dict

    assert no_frame_dict("lab", False, 30.0) == {"schema": 1, "cluster": "lab", "simulated": False,
                                                 "error": "no data within 30 s", "sources": []}


def test_snapshot_takes_presentation_before_or_after_the_command() -> None:
    from console.cli import build_parser

    p = build_parser()
    assert p.parse_args(["snapshot", "--out", "x.png", "--presentation"]).presentation is True
    assert p.parse_args(["--presentation", "snapshot", "--out", "x.png"]).presentation is True
    assert p.parse_args(["snapshot", "--out", "x.png"]).presentation is False


# --- unknown is null, --after ------------------------------------------------------------------

def _telemetry_never_answered_frame():
    """A real state's frame: Slurm answered (16 GPUs, one CPU node), Prometheus never did."""
    import numpy as np

    from console.config import ClusterSettings
    from console.model import JobTable, NodeState, NodeTable, SchedulerUpdate
    from console.polling import PollResult
    from console.state import ClusterState

    s = ClusterState(ClusterSettings(name="lab"), [("prom", "telemetry", 10.0),
                                                   ("slurm", "scheduler", 10.0)], wall=lambda: 1000.0)
    nodes = NodeTable(names=("g1", "g2", "cpu1"), state=np.full(3, NodeState.IDLE, np.int8),
                      responding=np.ones(3, bool), reason=("",) * 3,
                      gpus=np.array([8, 8, 0], np.int16), gpus_alloc=np.zeros(3, np.int16),
                      partitions=(("gpu",), ("gpu",), ("cpu",)), gpu_types=("h100", "h100", ""))
    s.apply(PollResult(source="slurm", kind="scheduler", request_id=1, started_at=999.0,
                       fetched_at=999.0, latency_s=0.1,
                       updates=(SchedulerUpdate(time=999.0, nodes=nodes, jobs=JobTable.empty()),)))
    return s.build_frame(now=1000.0)


def test_status_json_keeps_every_key_and_says_null_for_unknown_figures() -> None:
    f = _telemetry_never_answered_frame()
    d = status_dict(f)
    full = status_dict(frame_from_sim(nodes=4, polls=1))
    assert set(d) == set(full)  # keys stay
    for key in ("delivered_pf", "gpus_healthy", "gpus_by_health", "busy_pf", "gpus_busy"):
        assert d[key] is None, key
    assert d["alerts_firing"] is None and d["alerts_by_severity"] is None  # no alert source
    assert d["gpus_total"] == 16 and d["nodes_total"] == 3  # the CPU node has no GPUs
    assert d["installed_pf"] == round(16 * 989.4 / 1000, 3)  # priced as H100 (gres), not H800
    assert d["jobs_running"] == 0 and d["allocated_pf"] == 0.0  # known zeros stay zeros
    assert d["nodes_by_state"] == {"IDLE": 3}
    slurm = next(s for s in d["sources"] if s["name"] == "slurm")
    assert "GPU model from Slurm gres for 2 nodes (h100)" in slurm["detail"]
    assert json.loads(json.dumps(d))["delivered_pf"] is None
    assert failing_sources(f) == ["prom"]


def test_status_text_says_no_data_never_zero() -> None:
    from console.cli import format_status

    text = format_status(_telemetry_never_answered_frame())
    assert "  Delivered   no data of 16 PF installed (BF16 dense)\n" in text
    assert "  Capacity    available 16 PF, allocated 0 PF, busy no data\n" in text
    assert "  GPUs        no data healthy, 0 in use, 16 total\n" in text
    assert "  Jobs        0 running, 0 pending (0 GPUs waiting)\n" in text
    assert "  Alerts      no data on alerts; 0 anomalies open\n" in text
    assert "prom           waiting  no data yet" in text


def test_settle_keeps_polling_for_the_time_asked_and_returns_the_newest_frame(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import console.cli as cli

    clock = [100.0]

    class Engine:
        built = 0

        def wait_frames(self, n: int = 1, timeout: float = 30.0) -> str:
            assert 0 < timeout <= 3.0
            clock[0] += 1.0  # one frame a second
            self.built += 1
            return f"frame{self.built}"

        def latest_frame(self) -> str:
            return f"frame{self.built}"

    monkeypatch.setattr(cli, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    e = Engine()
    assert cli._settle(e, "frame0", 0.0) == "frame0" and e.built == 0
    assert cli._settle(e, "frame0", 3.0) == "frame3" and e.built == 3


def test_status_after_polls_then_prints(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", "--json", "--nodes", "4", "--after", "1.5", "--timeout", "20",
                 "--engine", "thread"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["gpus_total"] == 32 and out["delivered_pf"] is not None
    assert main(["status", "--nodes", "4", "--after", "-1"]) == 2
    assert "--after must be a number of seconds" in capsys.readouterr().err


def test_status_text_with_nothing_known_has_no_number_but_the_anomaly_count() -> None:
    from console.cli import format_status
    from console.config import ClusterSettings
    from console.state import ClusterState

    f = ClusterState(ClusterSettings(name="lab"), [("prom", "telemetry", 10.0)],
                     wall=lambda: 1000.0).build_frame()
    lines = format_status(f).splitlines()
    assert lines[1:6] == [
        "  Delivered   no data; installed: no data (BF16 dense)",
        "  Capacity    available no data, allocated no data, busy no data",
        "  GPUs        no data healthy, no data in use, no data total",
        "  Jobs        no data running, no data pending (no data GPUs waiting)",
        "  Alerts      no data on alerts; 0 anomalies open",
    ]
    assert all(v is None for k, v in status_dict(f).items()
               if k.endswith(("_pf", "_by_health", "_by_state", "_by_severity")))


def test_status_waits_as_long_as_the_slowest_endpoint_may_take() -> None:
    """Without --timeout, status and snapshot wait 30 s, or an endpoint's deadline plus 5 s
    when that is longer (slurmrestd's default deadline is 60 s: it builds its whole answer
    first), so a poll still within its deadline is never reported as never answered."""
    from console.cli import READY_TIMEOUT_S, ready_timeout
    from console.config import parse_settings

    def settings(**endpoints: dict) -> object:
        return parse_settings({"clusters": [{"name": "c", **endpoints}]})

    assert READY_TIMEOUT_S == 30.0
    assert ready_timeout(settings(sim={"nodes": 8}), None) == 30.0  # a simulated cluster
    assert ready_timeout(settings(prometheus={"url": "http://p:9090"}), None) == 30.0
    assert ready_timeout(settings(slurm={"url": "http://s:6820"}), None) == 65.0
    assert ready_timeout(settings(slurm={"url": "http://s:6820", "timeout_s": 10}), None) == 30.0
    assert ready_timeout(settings(prometheus={"url": "http://p:9090", "timeout_s": 100}), None) == 105.0
    assert ready_timeout(settings(slurm={"url": "http://s:6820"}), 12.0) == 12.0  # --timeout wins

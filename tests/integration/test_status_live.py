"""The headless `aisc-console status --json` against the real stack, checked against ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from console.sources.http import HttpClient
from console.sources.prometheus import PrometheusClient

from .live import REPO, Stack, wait_until

PEAK_TF, BOOST_MHZ = 989.5, 1980.0  # H800, as the stack's exporter reports


@pytest.fixture(scope="module")
def config_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    res = stack.script("config")
    assert res.returncode == 0, res.stderr
    assert stack.token not in res.stdout  # the token stays out of the file
    p = tmp_path_factory.mktemp("console") / "lab.toml"
    p.write_text(res.stdout)
    return p


def status(stack: Stack, config: Path, *, token: str | None = None) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AISC_", "SLURM_"))}
    env["AISC_SECRET_LAB_SLURM"] = stack.token if token is None else token
    env["XDG_DATA_HOME"] = str(config.parent / "data")
    res = subprocess.run([sys.executable, "-m", "console.cli", "status", "--json", "--config",
                          str(config), "--timeout", "30"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    return res.returncode, json.loads(res.stdout), res.stderr


def squeue_states(stack: Stack) -> list[str]:
    return stack.slurm("squeue", "-h", "-o", "%T").split()


def test_status_matches_slurm_and_alertmanager(stack: Stack, config_file: Path) -> None:
    def ready() -> dict[str, Any] | None:
        code, d, err = status(stack, config_file)
        assert code == 0, (d, err)
        return d if d["alerts_firing"] >= 1 else None

    d = wait_until("a firing alert visible in status", ready, timeout_s=90, step_s=2)
    assert {s["name"]: s["state"] for s in d["sources"]} == {
        "prometheus": "ok", "prometheus-alerts": "ok", "alertmanager": "ok", "slurm": "ok"}
    states = squeue_states(stack)
    assert d["jobs_running"] == states.count("RUNNING")
    assert d["jobs_pending"] == states.count("PENDING")
    assert d["nodes_by_state"].get("DOWN") == 1 and d["nodes_by_state"].get("DRAINED") == 1
    sinfo_nodes = stack.slurm("sinfo", "-h", "-N", "-o", "%N").split()
    assert d["nodes_total"] == len(set(sinfo_nodes))
    assert d["precision"] == "BF16 dense"
    assert d["gpus_total"] == 8 * len(set(sinfo_nodes))
    assert d["installed_pf"] == pytest.approx(d["gpus_total"] * PEAK_TF / 1000, abs=1e-3)
    # The DOWN and the DRAINED node's 16 GPUs are not available.
    assert d["gpus_available"] == d["gpus_total"] - 16
    squeue_gpus = 0
    for line in stack.slurm("squeue", "-h", "-t", "R", "-o", "%b %D").splitlines():
        gres, n_nodes = line.split()
        squeue_gpus += int(gres.rsplit(":", 1)[1]) * int(n_nodes)
    assert d["gpus_allocated"] == squeue_gpus


def test_delivered_pf_matches_prometheus(stack: Stack, config_file: Path) -> None:
    prom = PrometheusClient(HttpClient(stack.urls["prometheus"]))
    q = (f"sum(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE * clamp_max(DCGM_FI_DEV_SM_CLOCK / {BOOST_MHZ}, 1))"
         f" * {PEAK_TF} / 1000")

    def agree() -> bool:
        before = prom.query_scalar(q)
        _, d, _ = status(stack, config_file)
        after = prom.query_scalar(q)
        # The exporter's values hold still for 10 s; retry when a scrape landed in between.
        return before == pytest.approx(after, abs=1e-9) and d["delivered_pf"] == pytest.approx(before, abs=1e-3)

    wait_until("status and Prometheus agree on delivered PF", agree, timeout_s=90, step_s=1)


def test_a_rejected_token_makes_status_fail_in_words(stack: Stack, config_file: Path) -> None:
    code, d, _ = status(stack, config_file, token="not-a-valid-token")
    slurm = next(s for s in d["sources"] if s["name"] == "slurm")
    assert code == 1
    assert slurm["state"] in ("failing", "stale")
    assert slurm["error_kind"] == "auth" and "token rejected or expired" in slurm["error"]
    assert "not-a-valid-token" not in json.dumps(d)

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
from .slurm_truth import GPU_GRES

#: BF16 dense peak (TFLOPS) per model fragment, and the boost clock (MHz) of both (FACTS 2).
PEAK_TF = {"H800": 989.5, "H100": 989.4}
BOOST_MHZ = 1980.0


def peak_of(model: str) -> float:
    return next(v for k, v in PEAK_TF.items() if k in model.upper())


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
    assert {k: d["nodes_by_state"].get(k) for k in ("DOWN", "DRAINED", "DRAINING", "UNKNOWN")} == \
        {"DOWN": 1, "DRAINED": 1, "DRAINING": 1, "UNKNOWN": 1}
    # node -> (sinfo state, GPUs from its gres: 0 on the CPU-only node)
    sinfo: dict[str, tuple[str, int]] = {}
    for line in stack.slurm("sinfo", "-h", "-N", "-o", "%N %T %G").splitlines():
        name, state, gres = line.split()
        m = GPU_GRES.search(gres)
        sinfo[name] = (state, int(m.group(1)) if m else 0)
    only_exporter = stack.info["exporter_only_nodes"]  # GPUs known from the exporter alone
    assert d["nodes_total"] == len(sinfo) + len(only_exporter)
    assert d["precision"] == "BF16 dense"
    gpus = {n: g for n, (_, g) in sinfo.items()} | {n: stack.info["node_gpus"][n] for n in only_exporter}
    assert d["gpus_total"] == sum(gpus.values())
    models = stack.info["node_models"]
    assert d["installed_pf"] == pytest.approx(sum(g * peak_of(models[n]) for n, g in gpus.items() if g) / 1000,
                                              abs=6e-4)
    # Only responding idle, mixed or allocated nodes offer their GPUs (not DOWN, drained,
    # draining or never registered; the exporter-only node is not schedulable at all).
    assert d["gpus_available"] == sum(g for st, g in sinfo.values()
                                      if st in ("idle", "mixed", "allocated"))
    squeue_gpus = 0
    for line in stack.slurm("squeue", "-h", "-t", "R", "-o", "%b %D").splitlines():
        gres, n_nodes = line.split()
        m = GPU_GRES.search(gres)  # N/A for the CPU-only job
        squeue_gpus += (int(m.group(1)) if m else 0) * int(n_nodes)
    assert d["gpus_allocated"] == squeue_gpus


def test_delivered_pf_matches_prometheus(stack: Stack, config_file: Path) -> None:
    prom = PrometheusClient(HttpClient(stack.urls["prometheus"]))
    # hpc_job duplicates collapsed per GPU (max), each model at its own peak
    by = "hostname, gpu"
    q = " + ".join(
        f'(sum(max by ({by}) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{modelName=~".*{frag}.*"}})'
        f' * clamp_max(max by ({by}) (DCGM_FI_DEV_SM_CLOCK{{modelName=~".*{frag}.*"}}) / {BOOST_MHZ}, 1))'
        f" * {peak} / 1000)" for frag, peak in PEAK_TF.items())

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

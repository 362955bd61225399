"""Cross-check: every figure of ``aisc-console status --json`` against an independent truth.

The stack has the awkward shapes real sites have (scripts/stack.py ``SHAPES``): two GPU models,
8- and 4-GPU nodes, a CPU-only node, a drained, a draining, a DOWN and a never-registered node,
a Slurm node whose exporter target is down, a node only the exporter knows, ``hpc_job``
duplicate series, lowercase ``hostname`` labels and no rack label. The truth is computed here
from what the servers themselves say (``sinfo``, ``squeue``, ``scontrol -d show job``, the
exporter's own ``/metrics`` and Alertmanager's API) and from the peak table below, written from
the domain facts (FACTS 2), never from the console's code. Every figure is printed in a table
(figure, truth, console; ``-s`` shows it, the log keeps it) and any difference fails the test.

The second test proves a quiet 22.05 cluster keeps the Slurm source ``ok``: slurmrestd 22.05
answers ``nodes?update_time=T`` with HTTP 500 "Unspecified error" (the body of a bad token)
when the node table changed since T and the partitions did not, which slurmctld's own
bookkeeping causes on a cluster where nothing visible happens; the console must not read that
as a rejected token.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .live import REPO, Stack, wait_until

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)  # the table lands in pytest's captured log, not only on stdout

#: BF16 dense tensor peak per GPU in TFLOPS (FACTS 2: H800 SXM 989.5, H100 SXM 989.4), keyed by
#: the model-name fragment, and the boost SM clock the clock correction divides by (1980 MHz,
#: the H100/H800 SXM maximum SM clock; the correction never raises a GPU above its peak).
PEAK_TFLOPS = {"H800": 989.5, "H100": 989.4}
BOOST_CLOCK_MHZ = {"H800": 1980.0, "H100": 1980.0}
#: Slurm gres type -> model fragment, for nodes no exporter describes.
GRES_TYPE_MODEL = {"h800": "H800", "h100": "H100"}
#: README "What the figures mean": busy = allocated and GPU utilisation above 5 %.
BUSY_ABOVE_PCT = 5.0
#: sinfo's long node states -> the names status --json counts them under.
SINFO_STATE = {"idle": "IDLE", "mixed": "MIXED", "allocated": "ALLOCATED", "completing": "COMPLETING",
               "drained": "DRAINED", "draining": "DRAINING", "down": "DOWN", "unknown": "UNKNOWN",
               "fail": "FAIL", "maint": "MAINT", "reserved": "RESERVED", "future": "FUTURE",
               "inval": "INVAL"}
#: Node states whose GPUs are available (README: not down, drained, failed or in maintenance).
AVAILABLE_STATES = {"IDLE", "MIXED", "ALLOCATED", "COMPLETING", "RESERVED"}
GPU_GRES = re.compile(r"gpu(?::([^:(,\s]+))?:(\d+)")
PF_TOLERANCE = 6e-4  # status --json rounds PF to 3 decimals: the only difference allowed
AFTER_S = 12.0  # more than two polls of every source (5 s) before status prints
QUIET_INTERVAL_S = 2.0


# ---------------------------------------------------------------------------------------------
# The console
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_text(stack: Stack) -> str:
    res = stack.script("config")
    assert res.returncode == 0, res.stderr
    assert stack.token not in res.stdout
    return res.stdout


def run_status(stack: Stack, config: Path, after_s: float) -> tuple[int, dict[str, Any], str]:
    """``status --json --after`` as an operator's script runs it; the token comes from the env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AISC_", "SLURM_"))}
    env[stack.info["token_env"]] = stack.token
    env["XDG_DATA_HOME"] = str(config.parent / "data")
    res = subprocess.run([sys.executable, "-m", "console.cli", "status", "--json", "--config", str(config),
                          "--timeout", "30", "--after", f"{after_s:g}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.stdout.strip(), f"status printed nothing (exit {res.returncode}): {res.stderr}"
    return res.returncode, json.loads(res.stdout), res.stderr


# ---------------------------------------------------------------------------------------------
# The truth, from the servers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmTruth:
    state: dict[str, str]  # node -> status --json state name
    responding: dict[str, bool]
    gres_gpus: dict[str, int]  # node -> GPUs in its gres (0: none)
    gres_type: dict[str, str]
    job_states: Counter[str]
    gpus_pending: int
    allocated: frozenset[tuple[str, int]]  # (node, GPU index) of running jobs, from scontrol -d

    def key(self) -> tuple:
        return (self.state, self.responding, self.gres_gpus, tuple(sorted(self.job_states.items())),
                self.gpus_pending, self.allocated)


def slurm_truth(stack: Stack) -> SlurmTruth:
    state: dict[str, str] = {}
    responding: dict[str, bool] = {}
    gres_gpus: dict[str, int] = {}
    gres_type: dict[str, str] = {}
    for line in stack.slurm("sinfo", "-h", "-N", "-o", "%N|%T|%G").splitlines():
        name, st, gres = line.split("|")
        state[name] = SINFO_STATE[st.rstrip("*~#!%$@^-")]
        responding[name] = not st.endswith("*")
        total = sum(int(m.group(2)) for m in GPU_GRES.finditer(gres))
        gres_gpus[name] = total
        types = {m.group(1) for m in GPU_GRES.finditer(gres) if m.group(1)}
        gres_type[name] = types.pop() if len(types) == 1 else ""
    jobs = Counter[str]()
    pending_gpus = 0
    running: list[str] = []
    for line in stack.slurm("squeue", "-h", "-o", "%i|%T|%b|%D").splitlines():
        jid, st, tres, n_nodes = line.split("|")
        jobs[st] += 1
        per_node = sum(int(m.group(2)) for m in GPU_GRES.finditer(tres))  # N/A: a CPU-only job
        if st == "PENDING":
            pending_gpus += per_node * int(n_nodes)
        elif st == "RUNNING":
            running.append(jid)
    allocated: set[tuple[str, int]] = set()
    for jid in running:
        detail = stack.slurm("scontrol", "-d", "show", "job", jid)
        for nodes, idx in re.findall(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=\S*?\(IDX:([\d,-]+)\)", detail):
            node_names = stack.slurm("scontrol", "show", "hostnames", nodes).split()
            for part in idx.split(","):
                lo, _, hi = part.partition("-")
                allocated |= {(n, g) for n in node_names for g in range(int(lo), int(hi or lo) + 1)}
    return SlurmTruth(state, responding, gres_gpus, gres_type, jobs, pending_gpus, frozenset(allocated))


@dataclass(frozen=True)
class ExporterTruth:
    """One reading of the exporter: per (host, GPU) the metrics, hpc_job duplicates collapsed."""

    values: dict[tuple[str, int], dict[str, float]]
    models: dict[str, str]  # host -> modelName
    duplicates: int  # series dropped by collapsing hpc_job duplicates

    def hosts(self) -> set[str]:
        return {h for h, _ in self.values}


def exporter_truth(stack: Stack) -> ExporterTruth:
    text = requests.get(stack.urls["exporter"], timeout=5).text
    label = stack.info["hostname_label"]
    values: dict[tuple[str, int], dict[str, float]] = {}
    models: dict[str, str] = {}
    seen: Counter[tuple[str, str, int]] = Counter()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if not s.name.startswith("DCGM_") or label not in s.labels:
                continue
            host, gpu = s.labels[label], int(s.labels["gpu"])
            seen[(s.name, host, gpu)] += 1
            per = values.setdefault((host, gpu), {})
            per[s.name] = max(per.get(s.name, -math.inf), s.value)  # duplicates carry one reading
            models[host] = s.labels["modelName"]
    return ExporterTruth(values, models, sum(c - 1 for c in seen.values()))


class ExporterSampler:
    """Reads the exporter every second while the console runs: the exporter advances every
    10 s and Prometheus scrapes every 5 s, so the console's figures belong to one of the
    readings taken during its run (the newest ones, normally)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.readings: list[ExporterTruth] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exporter-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            reading = exporter_truth(self.stack)
            if not self.readings or reading.values != self.readings[-1].values:
                self.readings.append(reading)
            if self._stop.wait(1.0):
                return

    def __enter__(self) -> "ExporterSampler":
        self.readings.append(exporter_truth(self.stack))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        reading = exporter_truth(self.stack)
        if reading.values != self.readings[-1].values:
            self.readings.append(reading)


def alertmanager_truth(stack: Stack) -> tuple[int, Counter[str]]:
    """Firing alerts (active, neither silenced nor inhibited) and their count per severity."""
    url = stack.urls["alertmanager"] + "/api/v2/alerts?active=true&silenced=false&inhibited=false"
    alerts = [a for a in requests.get(url, timeout=5).json() if a["status"]["state"] == "active"]
    return len(alerts), Counter(a["labels"].get("severity", "") for a in alerts)


def fragment(model: str) -> str:
    found = [f for f in PEAK_TFLOPS if f in model.upper()]
    assert len(found) == 1, f"no single peak-table row for {model!r}"
    return found[0]


@dataclass(frozen=True)
class Truth:
    figures: dict[str, Any]
    exporter: ExporterTruth


def compute_truth(stack: Stack, sl: SlurmTruth, ex: ExporterTruth, alerts: tuple[int, Counter[str]]) -> Truth:
    """Every figure of status --json, from the servers' own answers (README's definitions)."""
    slurm_nodes = set(sl.state)
    exporter_only = ex.hosts() - slurm_nodes
    # Inventory: a node's GPUs are its gres count, else the GPUs its exporter reports.
    gpus: dict[str, int] = dict(sl.gres_gpus)
    for host in exporter_only:
        gpus[host] = len({g for h, g in ex.values if h == host})
    # Model per node: the exporter's modelName, else the gres type.
    model: dict[str, str] = {}
    for node, n in gpus.items():
        if n:
            model[node] = fragment(ex.models[node]) if node in ex.models else GRES_TYPE_MODEL[sl.gres_type[node]]

    def peak(node: str) -> float:
        return PEAK_TFLOPS[model[node]]

    # The stack runs without injected faults: no GPU may be broken by its own signals, so the
    # figures below need no console thresholds (a broken GPU here would be a stack bug).
    broken = {k for k, v in ex.values.items()
              if v.get("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 0) > 0 or v.get("DCGM_FI_DEV_XID_ERRORS", 0) > 0}
    assert not broken, f"GPUs with XID or ECC errors on a fault-free stack: {sorted(broken)}"

    in_service = {n for n in slurm_nodes if sl.responding[n] and sl.state[n] in AVAILABLE_STATES | {"DRAINING"}}
    failed_nodes = {n for n in slurm_nodes if not sl.responding[n] or sl.state[n] in ("DOWN", "FAIL")}
    out_of_service = {n for n in slurm_nodes - failed_nodes if sl.state[n] in ("DRAINED", "MAINT")}
    available = {n for n in slurm_nodes if sl.responding[n] and sl.state[n] in AVAILABLE_STATES}
    no_exporter = {n for n in in_service if n not in ex.hosts()}
    with_data = in_service - no_exporter | exporter_only

    delivered = 0.0
    for (host, _g), v in ex.values.items():
        frag = fragment(ex.models[host])
        clock = min(1.0, v["DCGM_FI_DEV_SM_CLOCK"] / BOOST_CLOCK_MHZ[frag])
        delivered += v["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"] * clock * PEAK_TFLOPS[frag]
    busy = {(n, g) for n, g in sl.allocated
            if ex.values.get((n, g), {}).get("DCGM_FI_DEV_GPU_UTIL", 0.0) > BUSY_ABOVE_PCT}
    firing, by_severity = alerts
    figures: dict[str, Any] = {
        "nodes_total": len(gpus),
        "nodes_by_state": dict(Counter(sl.state.values())),
        "gpus_total": sum(gpus.values()),
        "installed_pf": sum(n * peak(node) for node, n in gpus.items() if n) / 1000,
        "gpus_available": sum(gpus[n] for n in available),
        "available_pf": sum(gpus[n] * peak(n) for n in available if gpus[n]) / 1000,
        "gpus_allocated": len(sl.allocated),
        "allocated_pf": sum(peak(n) for n, _ in sl.allocated) / 1000,
        "gpus_busy": len(busy),
        "busy_pf": sum(peak(n) for n, _ in busy) / 1000,
        "delivered_pf": delivered / 1000,
        "jobs_running": sl.job_states["RUNNING"],
        "jobs_pending": sl.job_states["PENDING"],
        "gpus_pending": sl.gpus_pending,
        "gpus_by_health.no_data": sum(gpus[n] for n in no_exporter),
        "gpus_by_health.failed": sum(gpus[n] for n in failed_nodes),
        "gpus_by_health.unavailable": sum(gpus[n] for n in out_of_service),
        "gpus_by_health.ok+degraded": sum(gpus[n] for n in with_data),
        "alerts_firing": firing,
        "alerts_by_severity": dict(by_severity),
    }
    return Truth(figures, ex)


def console_figures(d: dict[str, Any]) -> dict[str, Any]:
    """The same figures as status --json states them (None where it says null)."""
    health = d.get("gpus_by_health")
    pick = lambda k: None if health is None else health.get(k, 0)  # noqa: E731
    out = {k: d.get(k) for k in ("nodes_total", "nodes_by_state", "gpus_total", "installed_pf",
                                 "gpus_available", "available_pf", "gpus_allocated", "allocated_pf",
                                 "gpus_busy", "busy_pf", "delivered_pf", "jobs_running", "jobs_pending",
                                 "gpus_pending", "alerts_firing")}
    out["gpus_by_health.no_data"] = pick("no_data")
    out["gpus_by_health.failed"] = pick("failed")
    out["gpus_by_health.unavailable"] = pick("unavailable")
    out["gpus_by_health.ok+degraded"] = (None if health is None
                                         else health.get("ok", 0) + health.get("degraded", 0))
    sev = d.get("alerts_by_severity")
    out["alerts_by_severity"] = None if sev is None else {k: v for k, v in sev.items() if v}
    return out


def same(truth: Any, got: Any) -> bool:
    if isinstance(truth, float):
        return isinstance(got, (int, float)) and abs(truth - got) <= PF_TOLERANCE
    return truth == got


def table(rows: list[tuple[str, Any, Any, bool]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        if isinstance(v, dict):
            return ", ".join(f"{k}={v[k]}" for k in sorted(v)) or "{}"
        return "null" if v is None else str(v)
    cells = [(f, fmt(t), fmt(c), "" if ok else "DIFFERS") for f, t, c, ok in rows]
    w0, w1, w2 = (max(len(c[i]) for c in [("figure", "truth", "console"), *cells]) for i in range(3))
    lines = [f"{'figure':<{w0}}  {'truth':<{w1}}  {'console':<{w2}}", "-" * (w0 + w1 + w2 + 4)]
    lines += [f"{f:<{w0}}  {t:<{w1}}  {c:<{w2}}  {mark}".rstrip() for f, t, c, mark in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def test_status_figures_match_the_servers(stack: Stack, config_text: str, tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    config.write_text(config_text)
    # Let every scrape target be seen and the always-firing test alerts reach Alertmanager, so
    # the alert count is the settled one.
    wait_until("the stack's test alerts firing in Alertmanager", lambda: alertmanager_truth(stack)[0] >= 2,
               timeout_s=90, step_s=2)
    attempts: list[str] = []
    for _attempt in range(3):
        sl_before, am_before = slurm_truth(stack), alertmanager_truth(stack)
        with ExporterSampler(stack) as sampler:
            code, d, err = run_status(stack, config, AFTER_S)
        sl_after, am_after = slurm_truth(stack), alertmanager_truth(stack)
        if sl_before.key() != sl_after.key() or am_before != am_after:
            attempts.append("Slurm or Alertmanager changed during the run")
            continue  # the truth moved while the console polled: measure again
        break
    else:
        pytest.fail("; ".join(attempts))
    # The console's telemetry is one of the exporter readings taken during its run: compare
    # with the one that explains its delivered PF (the newest first), never a blend.
    truths = [compute_truth(stack, sl_after, r, am_after) for r in reversed(sampler.readings)]
    got = console_figures(d)
    truth = next((t for t in truths if same(t.figures["delivered_pf"], got["delivered_pf"])), truths[0])

    # The stack's shapes are really there (a stack bug must not pass for a console bug).
    ex = truth.exporter
    assert ex.duplicates > 0, "the exporter serves no hpc_job duplicates"
    assert "NVIDIA H800" in ex.models.values() and "NVIDIA H100 80GB HBM3" in ex.models.values()
    assert {n for n, g in sl_after.gres_gpus.items() if g == 0} == set(stack.info["cpu_nodes"])
    assert ex.hosts() - set(sl_after.state) == set(stack.info["exporter_only_nodes"])

    rows = [(k, v, got[k], same(v, got[k])) for k, v in truth.figures.items()]
    states = {s["name"]: s["state"] for s in d["sources"]}
    for name in ("prometheus", "alertmanager", "slurm"):
        rows.append((f"source {name}", "ok", states.get(name), states.get(name) == "ok"))
    rows.append(("exit code", 0, code, code == 0))
    rows.append(("exporter readings during the run", len(sampler.readings), "", True))
    rows.append(("gpus_healthy (thresholds: not derived)", "", d.get("gpus_healthy"), True))
    rows.append(("per-account GPUs (not in status --json)", "", "", True))
    text = table(rows)
    print("\ncross-check: status --json against sinfo/squeue/scontrol, /metrics, Alertmanager\n" + text)
    log.info("cross-check table\n%s", text)
    (tmp_path / "crosscheck.txt").write_text(text + "\n")
    differ = [r[0] for r in rows if not r[3]]
    errors = {s["name"]: s["error"] for s in d["sources"] if s.get("error")}
    assert not differ, f"status --json differs from the truth in: {', '.join(differ)}; " \
                       f"source errors: {errors}; stderr: {err[-500:]}"


def slurm_raw(stack: Stack, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(stack.urls["slurm"] + path, headers={
        "X-SLURM-USER-NAME": stack.user, "X-SLURM-USER-TOKEN": stack.token})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_quiet_cluster_keeps_the_slurm_source_ok(stack: Stack, config_text: str, tmp_path: Path) -> None:
    """slurmrestd 22.05 answers ``nodes?update_time=T`` with 500 "Unspecified error" (the body
    of a bad token) when the node table changed since T but the partitions did not: its v0.0.38
    handler then asks for partitions with the same T, gets "no change" and reports it as
    errno -1. On a cluster where nothing visible happens, slurmctld's own node bookkeeping is
    enough. Here the DOWN node's reason is set again to the very same text, then the console
    polls for more than three intervals while every ``update_time`` poll meets that 500."""
    down = stack.info["down_node"]
    reason = stack.info["node_reasons"][down]
    # Partitions unchanged for a minute: any update_time the console sends is past their change.
    wait_until("no partition change for 60 s",
               lambda: slurm_raw(stack, f"/slurm/v0.0.38/partitions?update_time={int(time.time()) - 60}")[0] == 304,
               timeout_s=90, step_s=2)
    nodes_before = stack.slurm("sinfo", "-h", "-N", "-o", "%N %T %E")
    since = int(time.time())
    wait_until("the next second", lambda: int(time.time()) > since, timeout_s=5, step_s=0.05)
    stack.slurm("scontrol", "update", f"nodename={down}", f"reason={reason}")  # changes nothing visible

    def trap() -> tuple[int, bytes]:
        return slurm_raw(stack, f"/slurm/v0.0.38/nodes?update_time={since}")
    status, body = trap()
    assert status == 500 and b"Unspecified error" in body, (status, body[-200:])
    assert slurm_raw(stack, "/slurm/v0.0.38/nodes")[0] == 200  # the token is good

    config = tmp_path / "quiet.toml"
    short = re.sub(r"(?m)^interval_s = \d+(\.\d+)?$", f"interval_s = {QUIET_INTERVAL_S:g}", config_text)
    assert short.count(f"interval_s = {QUIET_INTERVAL_S:g}") == 3, short
    config.write_text(short)
    quiet_s = 4.5 * QUIET_INTERVAL_S  # more than three poll intervals after the first answer
    code, d, err = run_status(stack, config, quiet_s)

    assert stack.slurm("sinfo", "-h", "-N", "-o", "%N %T %E") == nodes_before, "a node changed: not quiet"
    assert trap()[0] == 500  # the trap stayed armed for the whole run
    slurm = next(s for s in d["sources"] if s["name"] == "slurm")
    print(f"\nquiet period of {quiet_s:g} s at {QUIET_INTERVAL_S:g} s polls: slurm source {slurm}")
    assert (slurm["state"], slurm["error"], slurm["error_kind"]) == ("ok", None, None), slurm
    assert code == 0, (d["sources"], err[-500:])
    assert d["nodes_by_state"] is not None and sum(d["nodes_by_state"].values()) == len(stack.info["nodes"])

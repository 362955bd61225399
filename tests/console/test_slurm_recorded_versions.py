"""Every REST API version of today's Slurm, parsed from real recorded answers, without a server.

scripts/record_slurm_versions.py records what slurmrestd 24.11 (v0.0.40-42) and 26.05
(v0.0.42-45) answer on the loopback stack, together with what sinfo/squeue/scontrol of the same
release said at that moment (``truth`` in each INDEX.json). The same cluster seen through each
version's JSON must parse to exactly that truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.model import JobState, NodeState
from console.sources.slurm_parse import parse_jobs, parse_nodes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
SINFO_STATE = {"idle": NodeState.IDLE, "mixed": NodeState.MIXED, "allocated": NodeState.ALLOCATED,
               "drained": NodeState.DRAINED, "draining": NodeState.DRAINING, "down": NodeState.DOWN,
               "completing": NodeState.COMPLETING, "unknown": NodeState.UNKNOWN}


def recordings() -> list[tuple[str, str]]:
    out = []
    for index in sorted(FIXTURES.glob("*/INDEX.json")):
        meta = json.loads(index.read_text())
        out += [(index.parent.name, v) for v in meta["api_versions"]]
    return out


RECORDED = recordings()


def load(series: str, version: str) -> tuple[dict, dict, dict]:
    folder = FIXTURES / series
    meta = json.loads((folder / "INDEX.json").read_text())
    nodes = json.loads((folder / f"{version}_nodes.json").read_text())
    jobs = json.loads((folder / f"{version}_jobs.json").read_text())
    return meta["truth"], nodes, jobs


def test_both_releases_of_today_are_recorded() -> None:
    assert {"24.11", "26.05"} <= {s for s, _ in RECORDED}
    assert {v for _, v in RECORDED} >= {"v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44",
                                        "v0.0.45"}


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=[f"{s}-{v}" for s, v in RECORDED])
def test_nodes_parse_to_what_sinfo_said(series: str, version: str) -> None:
    truth, nodes, _ = load(series, version)
    table = parse_nodes(nodes["nodes"])
    assert set(table.names) == set(truth["nodes"])
    for i, name in enumerate(table.names):
        t = truth["nodes"][name]
        assert NodeState(int(table.state[i])) == SINFO_STATE[t["state"]], name
        assert bool(table.responding[i]) == t["responding"], name
        assert table.reason[i] == t["reason"], name


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=[f"{s}-{v}" for s, v in RECORDED])
def test_jobs_parse_to_what_squeue_and_scontrol_said(series: str, version: str) -> None:
    truth, _, jobs = load(series, version)
    table = parse_jobs(jobs["jobs"])
    accounts = table.account_names()
    got = {}
    for i in range(len(table)):
        rows = table.alloc_job == i
        gpus = sorted([table.alloc_node_names[n], int(g)]
                      for n, g in zip(table.alloc_node[rows], table.alloc_gpu[rows]))
        got[str(int(table.job_id[i]))] = {
            "state": JobState(int(table.state[i])).name, "reason": table.reasons[table.reason[i]],
            "account": str(accounts[i]), "gpus": gpus}
    assert got == truth["jobs"]
    assert any(j["gpus"] for j in got.values())  # the recording holds GPU allocations

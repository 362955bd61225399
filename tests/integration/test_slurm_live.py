"""The console's Slurm source against a live slurmrestd (v0.0.38), checked against sinfo/squeue."""

from __future__ import annotations

import re
import time
from collections import defaultdict

import pytest

from console.model import JobState, NodeState, SchedulerUpdate
from console.sources.base import ErrorKind, SourceError
from console.sources.http import NOT_MODIFIED, Auth
from console.sources.slurm import SlurmClient, SlurmSchedulerSource

from .live import Stack

SINFO_STATE = {"idle": NodeState.IDLE, "mixed": NodeState.MIXED, "allocated": NodeState.ALLOCATED,
               "drained": NodeState.DRAINED, "draining": NodeState.DRAINING, "down": NodeState.DOWN,
               "completing": NodeState.COMPLETING, "unknown": NodeState.UNKNOWN}
GPU_GRES = re.compile(r"gpu(?::[^:(,\s]+)?:(\d+)")  # gpu:N or gpu:TYPE:N; "(null)" on a CPU node


def client(stack: Stack, token: str | None = None) -> SlurmClient:
    return SlurmClient.from_url(stack.urls["slurm"],
                                auth=Auth("slurm_jwt", stack.user, token or stack.token), timeout=10)


@pytest.fixture(scope="module")
def update(stack: Stack) -> SchedulerUpdate:
    src = SlurmSchedulerSource(client(stack), interval_s=5)
    try:
        (upd,) = src.fetch()
    finally:
        src.close()
    assert isinstance(upd, SchedulerUpdate)
    return upd


def sinfo_nodes(stack: Stack) -> dict[str, tuple[str, bool, str]]:
    """node -> (state, responding, reason) as sinfo reports them."""
    out = stack.slurm("sinfo", "-h", "-N", "-o", "%N|%T|%E")
    nodes = {}
    for line in out.splitlines():
        name, state, reason = line.split("|")
        nodes[name] = (state.rstrip("*~#!%$@^-"), not state.endswith("*"), "" if reason == "none" else reason)
    return nodes


def squeue_jobs(stack: Stack) -> dict[int, dict[str, str]]:
    out = stack.slurm("squeue", "-h", "-o", "%i|%T|%r|%a|%b|%D|%N|%j|%P")
    jobs = {}
    for line in out.splitlines():
        jid, state, reason, account, tres, nnodes, nodelist, name, part = line.split("|")
        jobs[int(jid)] = {"state": state, "reason": reason, "account": account, "tres": tres,
                          "nodes": nnodes, "nodelist": nodelist, "name": name, "partition": part}
    return jobs


def test_api_version_detected_is_v0038(stack: Stack) -> None:
    c = client(stack)
    try:
        assert c.detect_version() == "v0.0.38"
        assert c.slurm_release == "" or c.slurm_release.startswith("22.05")
        c.ping()
        assert c.slurm_release.startswith("22.05")
    finally:
        c.close()


def test_node_states_match_sinfo(stack: Stack, update: SchedulerUpdate) -> None:
    truth = sinfo_nodes(stack)
    nodes = update.nodes
    assert nodes is not None
    assert set(nodes.names) == set(truth) == set(stack.info["nodes"])
    for i, name in enumerate(nodes.names):
        state, responding, reason = truth[name]
        assert NodeState(int(nodes.state[i])) == SINFO_STATE[state], name
        assert bool(nodes.responding[i]) == responding, name
        assert nodes.reason[i] == reason, name
    by_name = {n: NodeState(int(nodes.state[i])) for i, n in enumerate(nodes.names)}
    # The states the stack set up, spelled out (sinfo agreeing with us would not catch a stack bug).
    assert by_name[stack.info["down_node"]] == NodeState.DOWN
    assert by_name[stack.info["drained_node"]] == NodeState.DRAINED
    assert by_name[stack.info["draining_node"]] == NodeState.DRAINING
    for name in stack.info["unregistered_nodes"]:
        assert by_name[name] == NodeState.UNKNOWN
        assert not nodes.responding[nodes.names.index(name)], name
    assert by_name["gpu01"] == NodeState.ALLOCATED
    assert by_name["gpu02"] == NodeState.MIXED
    assert by_name["gpu03"] == NodeState.MIXED
    assert by_name[stack.info["exporter_down_node"]] == NodeState.IDLE
    assert by_name["cpu01"] == NodeState.MIXED
    for name, reason in stack.info["node_reasons"].items():
        assert nodes.reason[nodes.names.index(name)] == reason, name


def test_node_gpus_match_slurm(stack: Stack, update: SchedulerUpdate) -> None:
    out = stack.slurm("sinfo", "-h", "-N", "-O", "NodeList:20,Gres:30,GresUsed:40")
    truth: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        name, gres, used = line.split()
        total, m = GPU_GRES.search(gres), GPU_GRES.search(used)
        truth[name] = (int(total.group(1)) if total else 0, int(m.group(1)) if m else 0)
    # A CPU-only node has no GPUs at all (not 8 without data); the 4-GPU node has 4.
    assert {n: t for n, (t, _) in truth.items()} == {n: stack.info["node_gpus"][n] for n in stack.info["nodes"]}
    assert truth["cpu01"] == (0, 0) and truth["gpu05"][0] == 4
    nodes = update.nodes
    assert nodes is not None
    for i, name in enumerate(nodes.names):
        assert (int(nodes.gpus[i]), int(nodes.gpus_alloc[i])) == truth[name], name
    alloc = dict(zip(nodes.names, nodes.gpus_alloc.tolist()))
    assert alloc == {"cpu01": 0, "gpu01": 8, "gpu02": 8, "gpu03": 2, "gpu04": 0, "gpu05": 2, "gpu06": 0,
                     "gpu07": 0, "gpu08": 0}


def test_jobs_and_reasons_match_squeue(stack: Stack, update: SchedulerUpdate) -> None:
    truth = squeue_jobs(stack)
    jobs = update.jobs
    assert jobs is not None
    accounts = jobs.account_names()
    got = {}
    for i in range(len(jobs)):
        got[int(jobs.job_id[i])] = {
            "state": JobState(int(jobs.state[i])).name, "reason": jobs.reasons[jobs.reason[i]],
            "account": str(accounts[i]), "name": str(jobs.name[i]),
            "partition": jobs.partitions[jobs.partition[i]],
            "nodelist": str(jobs.node_list[i]),
        }
    assert set(got) == set(truth) == {j["id"] for j in stack.info["jobs"]}
    for jid, t in truth.items():
        g = got[jid]
        assert (g["state"], g["reason"], g["account"], g["name"], g["partition"]) == \
            (t["state"], t["reason"], t["account"], t["name"], t["partition"]), jid
        if t["state"] == "RUNNING":
            assert g["nodelist"] == t["nodelist"], jid
    pending_reasons = {g["reason"] for g in got.values() if g["state"] == "PENDING"}
    assert pending_reasons == {"Resources", "Priority", "JobHeldUser", "Dependency"}
    assert sum(g["state"] == "RUNNING" for g in got.values()) == 7


def test_gpus_per_account_match_squeue(stack: Stack, update: SchedulerUpdate) -> None:
    truth: dict[str, int] = defaultdict(int)
    for t in squeue_jobs(stack).values():
        if t["state"] == "RUNNING":
            m = GPU_GRES.search(t["tres"])  # "N/A" for a CPU-only job
            truth[t["account"]] += (int(m.group(1)) if m else 0) * int(t["nodes"])
    jobs = update.jobs
    assert jobs is not None
    got: dict[str, int] = defaultdict(int)
    accounts = jobs.account_names()
    for i in range(len(jobs)):
        if JobState(int(jobs.state[i])) == JobState.RUNNING:
            got[str(accounts[i])] += int(jobs.gpus[i])
    assert dict(got) == dict(truth) == {"hku": 8, "cuhk": 6, "polyu": 2, "hkust": 2, "cityu": 2, "hkbu": 0}


def test_gpu_indices_match_scontrol(stack: Stack, update: SchedulerUpdate) -> None:
    """Each running job's GPUs (node, index) are the ones slurmctld allocated."""
    jobs = update.jobs
    assert jobs is not None
    for i in range(len(jobs)):
        if JobState(int(jobs.state[i])) != JobState.RUNNING:
            continue
        jid = int(jobs.job_id[i])
        detail = stack.slurm("scontrol", "-d", "show", "job", str(jid))
        truth = set()
        for node, idx in re.findall(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=\S*?\(IDX:([\d,-]+)\)", detail):
            for part in idx.split(","):
                lo, _, hi = part.partition("-")
                truth |= {(node, g) for g in range(int(lo), int(hi or lo) + 1)}
        rows = jobs.alloc_job == i
        got = {(jobs.alloc_node_names[n], int(g))
               for n, g in zip(jobs.alloc_node[rows], jobs.alloc_gpu[rows])}
        asked_gpus = any(o.startswith("--gres=gpu") for j in stack.info["jobs"] if j["id"] == jid
                         for o in j["options"])
        assert bool(truth) == asked_gpus, detail  # the CPU-only job has no GPU indices
        assert got == truth, jid
        assert len(got) == int(jobs.gpus[i])


def test_unchanged_jobs_cost_a_304(stack: Stack) -> None:
    c = client(stack)
    try:
        assert c.jobs(update_time=time.time() + 3600) is NOT_MODIFIED
        body = c.jobs(update_time=1)
        assert body is not NOT_MODIFIED and len(body["jobs"]) == len(stack.info["jobs"])
    finally:
        c.close()


def test_bad_token_is_reported_as_rejected(stack: Stack) -> None:
    bad = "eyJhbGciOiJIUzI1NiJ9.bm90LWEtdG9rZW4.c2lnbmF0dXJl"
    src = SlurmSchedulerSource(client(stack, token=bad), interval_s=5)
    try:
        with pytest.raises(SourceError) as err:
            src.fetch()
    finally:
        src.close()
    assert err.value.kind == ErrorKind.AUTH
    assert "token rejected or expired" in err.value.message
    assert bad not in str(err.value) and bad not in repr(err.value)


def test_node_drain_is_refused_on_v0038_with_the_reason(stack: Stack) -> None:
    c = client(stack)
    try:
        assert c.supports_node_update() is False
        with pytest.raises(SourceError) as err:
            c.drain_node("gpu03", "integration test")
        assert err.value.kind == ErrorKind.CONFIG
        assert "v0.0.39" in err.value.message and "v0.0.38" in err.value.message
        # and the server itself indeed has no node update in this version
        with pytest.raises(SourceError) as raw:
            c.http.request("POST", "slurm/v0.0.38/node/gpu03", json={"state": ["DRAIN"]},
                           expect_json=False)
        assert raw.value.status == 405
    finally:
        c.close()
    assert sinfo_nodes(stack)["gpu03"][0] == "mixed"

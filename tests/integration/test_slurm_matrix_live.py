"""The console's Slurm source against each Slurm release a site runs today, live.

Parametrised over the matrix (tests/integration/matrix.py): 22.05 (Debian 12, REST API v0.0.38),
24.11 (trixie root, v0.0.40-42) and 26.05 (sid root, v0.0.42-45). Every figure the console reads
is compared with sinfo/squeue/scontrol of the same release, run inside that release's root.
Operator actions (REST API v0.0.40+) come last in this file: they change the cluster.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from console.actions import Actions
from console.journal import Journal
from console.model import JobState, NodeState, SchedulerUpdate
from console.sources import http as http_mod
from console.sources import decode_helper, slurm_parse
from console.sources.base import ErrorKind, SourceError
from console.sources.http import HttpClient
from console.sources.job_stream import JobTableStream
from console.sources.slurm import SlurmClient, SlurmSchedulerSource
from console.sources.stream_json import ListStream

from .live import Stack, wait_until
from .matrix import MATRIX, Release
from .slurm_truth import GPU_GRES, SINFO_STATE, client, sinfo_nodes, squeue_jobs

BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.bm90LWEtdG9rZW4.c2lnbmF0dXJl"  # well-formed, never valid


def release_of(stack: Stack) -> Release:
    suite = stack.info.get("suite")
    return next(r for r in MATRIX.values() if r.suite == (None if suite in (None, "bookworm") else suite))


def full_update(stack: Stack) -> SchedulerUpdate:
    src = SlurmSchedulerSource(client(stack), interval_s=5)
    try:
        (upd,) = src.fetch()
    finally:
        src.close()
    assert isinstance(upd, SchedulerUpdate)
    return upd


def job_ids(upd: SchedulerUpdate) -> set[int]:
    assert upd.jobs is not None
    return {int(j) for j in upd.jobs.job_id}


def raw(stack: Stack, path: str, token: str | None = "stack") -> tuple[int, str]:
    """A bare request (no console code): what the server itself answers."""
    headers = {}
    if token is not None:
        headers = {"X-SLURM-USER-NAME": stack.user,
                   "X-SLURM-USER-TOKEN": stack.token if token == "stack" else token}
    resp = requests.get(stack.urls["slurm"] + path, headers=headers, timeout=15)
    return resp.status_code, resp.text


# ---------------------------------------------------------------------------------------------
# What each release serves (measured facts the console must cope with)
# ---------------------------------------------------------------------------------------------


def test_served_versions_and_the_one_chosen(release_stack: Stack) -> None:
    rel = release_of(release_stack)
    status, text = raw(release_stack, "/openapi/v3")
    assert status == 200
    served = {p.split("/")[2] for p in json.loads(text)["paths"] if p.startswith("/slurm/v")}
    assert served == set(rel.api_versions)
    c = client(release_stack)
    try:
        assert c.detect_version() == rel.api_versions[0]  # the newest: the console knows them all
        c.ping()
        assert c.slurm_release.startswith(rel.series)
    finally:
        c.close()


def test_quiet_update_time_answers_as_measured(release_stack: Stack) -> None:
    rel = release_of(release_stack)
    newest = rel.api_versions[0]
    future = int(time.time()) + 3600
    status, text = raw(release_stack, f"/slurm/{newest}/jobs?update_time={future}")
    assert status == rel.quiet_jobs_status
    if status == 200:  # 24.11+: an empty list that means "unchanged", said in a warning
        body = json.loads(text)
        assert body["jobs"] == []
        assert any("No job changes since update_time" in str(w.get("description", ""))
                   for w in body["warnings"]), body["warnings"]


def test_unknown_api_version_is_404(release_stack: Stack) -> None:
    status, _ = raw(release_stack, "/slurm/v0.0.99/ping")
    assert status == 404


# ---------------------------------------------------------------------------------------------
# Nodes, jobs, GPUs, partitions: the console against sinfo/squeue/scontrol of the same release
# ---------------------------------------------------------------------------------------------


def test_node_states_and_flags_match_sinfo(release_stack: Stack) -> None:
    upd = full_update(release_stack)
    truth = sinfo_nodes(release_stack)
    nodes = upd.nodes
    assert nodes is not None
    assert set(nodes.names) == set(truth) == set(release_stack.info["nodes"])
    for i, name in enumerate(nodes.names):
        state, responding, reason = truth[name]
        assert NodeState(int(nodes.state[i])) == SINFO_STATE[state], name
        assert bool(nodes.responding[i]) == responding, name
        assert nodes.reason[i] == reason, name
    by_name = {n: NodeState(int(nodes.state[i])) for i, n in enumerate(nodes.names)}
    assert by_name[release_stack.info["down_node"]] == NodeState.DOWN
    assert by_name[release_stack.info["drained_node"]] == NodeState.DRAINED
    for node, reason in release_stack.info["node_reasons"].items():
        assert nodes.reason[nodes.names.index(node)] == reason


def test_node_gpus_match_sinfo(release_stack: Stack) -> None:
    upd = full_update(release_stack)
    out = release_stack.slurm("sinfo", "-h", "-N", "-O", "NodeList:20,Gres:40,GresUsed:60")
    truth: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        name, gres, used = line.split()
        total = GPU_GRES.search(gres)
        alloc = GPU_GRES.search(used)
        truth[name] = (int(total.group(1)) if total else 0, int(alloc.group(1)) if alloc else 0)
    nodes = upd.nodes
    assert nodes is not None
    got = {n: (int(nodes.gpus[i]), int(nodes.gpus_alloc[i])) for i, n in enumerate(nodes.names)}
    assert got == truth
    assert sum(a for _, a in got.values()) > 0  # the job mix holds GPUs: the check is not vacuous


def test_jobs_and_pending_reasons_match_squeue(release_stack: Stack) -> None:
    assert_jobs_match_squeue(full_update(release_stack), release_stack)


@pytest.mark.parametrize("helper", [True, False], ids=["helper process", "one process"])
def test_jobs_decoded_in_many_small_runs_match_squeue(release_stack: Stack, helper: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own answer, received in 997-byte chunks and decoded a few items at a time
    (the path every large answer takes; the test clusters' answers otherwise fit one run),
    each run tabulated on its own, in the decoding helper process or in this one, and the
    tables joined: the same table, checked against squeue."""
    monkeypatch.setenv("AISC_CONSOLE_DECODE_HELPER", "1" if helper else "0")
    monkeypatch.setattr(decode_helper, "_cores", lambda: 2)
    decode_helper.shutdown()
    if helper:  # started and ready before the poll, as it is from the second large answer on
        h = decode_helper.acquire()
        assert h is not None and h.wait_ready(60), h and h.broken
        decode_helper.release(h)
    real = slurm_parse.listing_stream
    streams: list[ListStream] = []

    def factory(key: str, min_run: int | None = None):  # type: ignore[no-untyped-def]
        make = real(key, min_run=1)
        assert make is not None

        def recorded() -> ListStream:
            streams.append(make())
            return streams[-1]
        return recorded

    assert http_mod._CHUNK > 997
    monkeypatch.setattr(http_mod, "_CHUNK", 997)
    monkeypatch.setattr(slurm_parse, "listing_stream", factory)
    try:
        upd = full_update(release_stack)
    finally:
        decode_helper.shutdown()
    assert [s.key for s in streams] == ["nodes", "jobs"]
    assert not any(s.failed for s in streams), [s.why for s in streams]
    assert upd.jobs is not None and len(upd.jobs) == len(release_stack.info["jobs"])
    jobs_stream = streams[1]
    assert isinstance(jobs_stream, JobTableStream)
    assert jobs_stream.runs >= 5  # tabulated a few items at a time, as a large answer is
    assert (jobs_stream.sent > 0) is helper  # runs went to the helper process, or none did
    assert_jobs_match_squeue(upd, release_stack)


def assert_jobs_match_squeue(upd: SchedulerUpdate, release_stack: Stack) -> None:
    truth = squeue_jobs(release_stack)
    jobs = upd.jobs
    assert jobs is not None
    accounts = jobs.account_names()
    got = {}
    for i in range(len(jobs)):
        got[int(jobs.job_id[i])] = {
            "state": JobState(int(jobs.state[i])).name, "reason": jobs.reasons[jobs.reason[i]],
            "account": str(accounts[i]), "name": str(jobs.name[i]),
            "partition": jobs.partitions[jobs.partition[i]], "nodelist": str(jobs.node_list[i]),
        }
    assert set(got) == set(truth) == {j["id"] for j in release_stack.info["jobs"]}
    for jid, t in truth.items():
        g = got[jid]
        assert (g["state"], g["reason"], g["account"], g["name"], g["partition"]) == \
            (t["state"], t["reason"], t["account"], t["name"], t["partition"]), jid
        if t["state"] == "RUNNING":
            assert g["nodelist"] == t["nodelist"], jid
    expected = {(j["expected_state"], j["expected_reason"]) for j in release_stack.info["jobs"]}
    assert {(g["state"], g["reason"]) for g in got.values()} == expected


def test_gpus_per_account_match_squeue(release_stack: Stack) -> None:
    upd = full_update(release_stack)
    truth: dict[str, int] = defaultdict(int)
    for t in squeue_jobs(release_stack).values():
        if t["state"] == "RUNNING":
            m = GPU_GRES.search(t["tres"])
            truth[t["account"]] += (int(m.group(1)) if m else 0) * int(t["nodes"])
    jobs = upd.jobs
    assert jobs is not None
    got: dict[str, int] = defaultdict(int)
    accounts = jobs.account_names()
    for i in range(len(jobs)):
        if JobState(int(jobs.state[i])) == JobState.RUNNING:
            got[str(accounts[i])] += int(jobs.gpus[i])
    assert dict(got) == dict(truth)
    assert sum(truth.values()) > 0


def test_gpu_indices_per_node_match_scontrol(release_stack: Stack) -> None:
    upd = full_update(release_stack)
    jobs = upd.jobs
    assert jobs is not None
    running = 0
    for i in range(len(jobs)):
        if JobState(int(jobs.state[i])) != JobState.RUNNING:
            continue
        jid = int(jobs.job_id[i])
        detail = release_stack.slurm("scontrol", "-d", "show", "job", str(jid))
        truth = set()
        for node, idx in re.findall(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=\S*?\(IDX:([\d,-]+)\)", detail):
            for part in idx.split(","):
                lo, _, hi = part.partition("-")
                truth |= {(node, g) for g in range(int(lo), int(hi or lo) + 1)}
        rows = jobs.alloc_job == i
        got = {(jobs.alloc_node_names[n], int(g)) for n, g in zip(jobs.alloc_node[rows], jobs.alloc_gpu[rows])}
        if not truth:  # a CPU-only job holds no GPU
            assert not got and int(jobs.gpus[i]) == 0, jid
            continue
        running += 1
        assert got == truth, jid
        assert len(got) == int(jobs.gpus[i]), jid
    assert running > 0


def test_partitions_match_scontrol(release_stack: Stack) -> None:
    c = client(release_stack)
    try:
        parts = c.partitions()
    finally:
        c.close()
    out = release_stack.slurm("scontrol", "-o", "show", "partition")
    truth = {m.group(1): m.group(2) for m in re.finditer(r"PartitionName=(\S+).*? Nodes=(\S+)", out)}
    assert {str(p["name"]) for p in parts} == set(truth)
    upd = full_update(release_stack)
    assert set(upd.partitions) == set(truth)


# ---------------------------------------------------------------------------------------------
# Polling: quiet polls mean "unchanged", never "empty"
# ---------------------------------------------------------------------------------------------


def test_quiet_polls_keep_the_queue(release_stack: Stack) -> None:
    """After the first full answer, quiet polls say "unchanged" (None) and never empty a table.

    From v0.0.40 on the source asks for changes since the server's own ``last_update``, so
    quiet polls are answered "unchanged" (304, or on 24.11+ jobs 200 with an empty list and a
    "No job changes" warning). v0.0.38 gives no ``last_update``: the source asks since its
    previous request minus a 30 s clock-skew margin, and 22.05's controller counts a job change
    every few seconds (measured: 200 for update_time 20 s ago, 304 for 5 s ago, 45 s after the
    start), so there every poll is a full answer: still whole, never empty.
    """
    src = SlurmSchedulerSource(client(release_stack), interval_s=5)
    expected_jobs = {j["id"] for j in release_stack.info["jobs"]}
    expected_nodes = set(release_stack.info["nodes"])
    polls: list[SchedulerUpdate] = []

    def poll() -> bool:
        (upd,) = src.fetch()
        assert isinstance(upd, SchedulerUpdate)
        polls.append(upd)
        if upd.jobs is not None:  # a table sent again is whole, never empty
            assert job_ids(upd) == expected_jobs
        if upd.nodes is not None:
            assert set(upd.nodes.names) == expected_nodes
        return upd.jobs is None

    has_last_update = release_of(release_stack).api_versions[0] != "v0.0.38"
    try:
        assert not poll() and polls[0].nodes is not None  # the first answer is the full tables
        if has_last_update:
            # Three polls in a row answered as unchanged. The controller itself may change a
            # job between two of them (its backfill pass revisits pending jobs every 30 s),
            # and then a whole table is the right answer (poll() checks it is whole): so the
            # run of three is waited for rather than taken from the first three polls.
            wait_until("three quiet polls in a row answered as unchanged",
                       lambda: all(poll() for _ in range(3)), timeout_s=90, step_s=1)
            quiet = polls[-3:]
        else:
            quiet = [poll() for _ in range(3)]
    finally:
        src.close()
    # Unchanged ("None") where the server tells its last_update; whole tables otherwise.
    if has_last_update:
        assert [u.jobs is None for u in quiet] == [True] * 3
    else:
        assert quiet == [False] * 3


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


def assert_auth_error(stack: Stack, slurm: SlurmClient, words: str) -> SourceError:
    src = SlurmSchedulerSource(slurm, interval_s=5)
    try:
        with pytest.raises(SourceError) as err:
            src.fetch()
    finally:
        src.close()
    assert err.value.kind == ErrorKind.AUTH
    assert words in err.value.message
    assert stack.token not in str(err.value)
    return err.value


def test_bad_token_is_rejected_in_words(release_stack: Stack) -> None:
    rel = release_of(release_stack)
    status, _ = raw(release_stack, f"/slurm/{rel.api_versions[0]}/jobs", token=BAD_TOKEN)
    assert status == rel.bad_token_status
    err = assert_auth_error(release_stack, client(release_stack, token=BAD_TOKEN),
                            "token rejected or expired")
    assert BAD_TOKEN not in str(err) and BAD_TOKEN not in repr(err)


def test_expired_token_is_rejected_in_words(release_stack: Stack) -> None:
    out = release_stack.slurm("scontrol", "token", f"username={release_stack.user}", "lifespan=1")
    token = re.search(r"SLURM_JWT=(\S+)", out).group(1)
    rel = release_of(release_stack)
    # Not /ping: from 24.11 on it answers 200 to any token (with the controller "DOWN").
    path = f"/slurm/{rel.api_versions[0]}/jobs"
    wait_until("the one-second token to expire",
               lambda: raw(release_stack, path, token=token)[0] == rel.bad_token_status, timeout_s=15)
    assert_auth_error(release_stack, client(release_stack, token=token), "token rejected or expired")


def test_no_token_asks_for_credentials(release_stack: Stack) -> None:
    rel = release_of(release_stack)
    status, _ = raw(release_stack, f"/slurm/{rel.api_versions[0]}/jobs", token=None)
    assert status == 401
    assert_auth_error(release_stack, SlurmClient(HttpClient(release_stack.urls["slurm"], timeout=10)),
                      "authentication required")


# ---------------------------------------------------------------------------------------------
# Operator actions (v0.0.40+): last, they change the cluster
# ---------------------------------------------------------------------------------------------


def node_line(stack: Stack, node: str) -> str:
    return stack.slurm("scontrol", "-o", "show", "node", node)


def test_node_drain_is_refused_on_v0038_with_the_reason(stack: Stack) -> None:
    """22.05 serves only v0.0.38, which has no node update: the console refuses in words
    before asking, and the server itself indeed answers 405."""
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


def audit(journal: Journal, action: str) -> list[dict]:
    return [r for r in journal.records() if r.get("action") == action]


@pytest.fixture
def actions(rest_actions_stack: Stack, tmp_path: Path) -> Iterator[tuple[Actions, Journal]]:
    release_stack = rest_actions_stack
    src = SlurmSchedulerSource(client(release_stack), interval_s=5)
    src.client.detect_version()  # capabilities are decided from the known version
    journal = Journal(tmp_path / "audit.jsonl")
    acts = Actions([src], journal, operator="integration-test")
    try:
        yield acts, journal
    finally:
        acts.close()
        src.close()


def test_drain_and_resume_a_node(rest_actions_stack: Stack, actions: tuple[Actions, Journal]) -> None:
    acts, journal = actions
    release_stack = rest_actions_stack
    states = sinfo_nodes(release_stack)
    node = next(n for n in release_stack.info["slurmd_nodes"]
                if states[n][0] in ("idle", "mixed", "allocated"))
    before = re.search(r"State=(\S+)", node_line(release_stack, node)).group(1)
    reason = f"integration test {release_of(release_stack).series}: fan check"
    assert acts.capabilities()["drain_node"] is None
    res = acts.drain_node(node, reason).result(timeout=60)
    assert res.ok, res.message
    line = node_line(release_stack, node)
    assert "DRAIN" in re.search(r"State=(\S+)", line).group(1), line
    assert re.search(r"Reason=(.*?) \[", line).group(1) == reason, line
    res = acts.resume_node(node).result(timeout=60)
    assert res.ok, res.message
    # slurmctld marks a resumed node NOT_RESPONDING until its immediate ping is answered.
    wait_until(f"{node} back to {before}", lambda: re.search(
        r"State=(\S+)", node_line(release_stack, node)).group(1) == before, timeout_s=30)
    drains = audit(journal, "drain_node")
    assert [(r["event"], r["target"], r.get("ok")) for r in drains] == \
        [("attempt", node, None), ("outcome", node, True)]
    assert drains[0]["comment"] == reason and drains[0]["operator"] == "integration-test"
    assert [(r["event"], r.get("ok")) for r in audit(journal, "resume_node")] == \
        [("attempt", None), ("outcome", True)]


def test_cancel_a_pending_job(rest_actions_stack: Stack, actions: tuple[Actions, Journal]) -> None:
    acts, journal = actions
    release_stack = rest_actions_stack
    pending = [j for j in release_stack.info["jobs"]
               if j["expected_state"] == "PENDING" and j["expected_reason"] == "Priority"]
    job = pending[0]["id"]
    res = acts.cancel_job(job).result(timeout=60)
    assert res.ok, res.message
    state = wait_until(f"job {job} cancelled", lambda: re.search(
        r"JobState=(\S+)", release_stack.slurm("scontrol", "-o", "show", "job", str(job))).group(1)
        == "CANCELLED", timeout_s=20)
    assert state
    assert str(job) not in release_stack.slurm("squeue", "-h", "-o", "%i").split()
    assert [(r["event"], r["target"], r.get("ok")) for r in audit(journal, "cancel_job")] == \
        [("attempt", str(job), None), ("outcome", str(job), True)]

"""slurmrestd client and scheduler source: real v0.0.38 answers and hand-written v0.0.40-42
fixtures (written from the published OpenAPI schemas)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_sources_http import FIXTURES, ReplayServer, capture, recorded_stack, server  # noqa: F401

from console import slurm_reasons
from console.model import JobState, NodeState
from console.sources import slurm_parse as sp
from console.sources.base import ErrorKind, SourceError
from console.sources.http import Auth
from console.sources.slurm import SlurmClient, SlurmSchedulerSource

V38 = "/slurm/v0.0.38"


def _v38(server: ReplayServer) -> SlurmClient:
    server.add("GET", "/openapi/v3", 200, capture("slurm_openapi_v3.200.json"))
    return SlurmClient.from_url(server.url, auth=Auth("slurm_jwt", user="ops", secret="tok"))


def test_detects_v0038_from_openapi(server: ReplayServer) -> None:
    c = _v38(server)
    assert c.detect_version() == "v0.0.38"
    assert c.detect_version() == "v0.0.38"
    assert [r["path"] for r in server.requests] == ["/openapi/v3"]  # remembered


def test_detects_by_probing_ping_newest_first(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 404, "Unable find requested URL.", {"Content-Type": "text/plain"})
    server.add("GET", "/slurm/v0.0.41/ping", 200, {"pings": []})
    c = SlurmClient.from_url(server.url)
    assert c.detect_version() == "v0.0.41"
    assert [r["path"] for r in server.requests] == ["/openapi/v3"] + [
        f"/slurm/v0.0.{n}/ping" for n in (45, 44, 43, 42, 41)]


def test_source_v0038_nodes_jobs_and_304(server: ReplayServer) -> None:
    c = _v38(server)
    server.add("GET", f"{V38}/nodes", 200, capture("slurm_nodes.200.json"))
    server.add("GET", f"{V38}/jobs", 200, capture("slurm_jobs.200.json"))
    src = SlurmSchedulerSource(c)
    (u,) = src.fetch()
    assert u.api_version == "v0.0.38" and c.slurm_release == "22.05.8"
    # The recording stack's shapes (scripts/stack.py): a CPU-only node, a 4-GPU node, a drained
    # and a draining node, an idle one, one DOWN and one that never registered.
    stack = recorded_stack()
    n = u.nodes
    assert n.names == ("cpu01", "gpu01", "gpu02", "gpu03", "gpu04", "gpu05", "gpu06", "gpu07", "gpu08")
    assert [NodeState(s).name for s in n.state] == ["MIXED", "ALLOCATED", "MIXED", "MIXED", "DRAINED",
                                                    "DRAINING", "IDLE", "DOWN", "UNKNOWN"]
    assert n.responding.tolist() == [True] * 7 + [False, False]
    assert n.gpus.tolist() == [stack["node_gpus"][x] for x in n.names] == [0, 8, 8, 8, 8, 4, 8, 8, 8]
    assert n.gpus_alloc.tolist() == [0, 8, 8, 2, 0, 2, 0, 0, 0]
    assert {x: r for x, r in zip(n.names, n.reason) if r} == stack["node_reasons"]
    assert set(u.partitions) == {"gpu", "debug", "cpu"}
    j = u.jobs
    row = {str(x["name"]): int(x["id"]) for x in stack["jobs"] + stack["extra_jobs"]}
    row = {name: int(np.flatnonzero(j.job_id == jid)[0]) for name, jid in row.items()}
    assert j.gpus[row["pretrain-llm"]] == 8 and j.gpus[row["finetune-a"]] == 4
    assert j.gpus[row["scale-2node"]] == 16 and j.gpus[row["cpu-prep"]] == 0
    assert j.state[row["exits-3"]] == JobState.FAILED and j.exit_code[row["exits-3"]] == 3
    assert j.time_limit_s[row["exits-3"]] == 300 and j.time_limit_s[row["no-limit-held"]] == math.inf
    assert j.state[row["cancelled"]] == JobState.CANCELLED
    assert [j.reasons[j.reason[row[x]]] for x in ("scale-2node", "queued-small", "held-job",
                                                   "after-pretrain")] == [
        "Resources", "Priority", "JobHeldUser", "Dependency"]
    arr = row["array-held"]  # pending, not yet split into tasks
    assert (j.array_job_id[arr], j.array_task_id[arr]) == (j.job_id[arr], -1)
    assert j.array_task_id[row["pretrain-llm"]] == -1
    assert math.isnan(j.start_time[row["queued-small"]])
    coords = {(str(j.name[a]), j.alloc_node_names[n_], int(g))
              for a, n_, g in zip(j.alloc_job, j.alloc_node, j.alloc_gpu)}
    assert coords == ({("pretrain-llm", "gpu01", g) for g in range(8)}
                      | {("finetune-a", "gpu02", g) for g in range(4)}
                      | {("eval-b", "gpu02", 4), ("eval-b", "gpu02", 5)}
                      | {("vision-c", "gpu02", 6), ("vision-c", "gpu02", 7)}
                      | {("notebook-d", "gpu03", g) for g in range(2)}
                      | {("firmware-e", "gpu05", g) for g in range(2)})
    # second poll: both 304 -> unchanged
    server.add("GET", f"{V38}/nodes", 304, b"")
    server.add("GET", f"{V38}/jobs", 304, b"")
    (u2,) = src.fetch()
    assert u2.nodes is None and u2.jobs is None and u2.partitions == u.partitions
    assert "update_time" in server.requests[-1]["query"]


@pytest.mark.parametrize("version", ["v0.0.40", "v0.0.41", "v0.0.42"])
def test_fixture_versions_parse_the_same(server: ReplayServer, version: str) -> None:
    nodes = json.loads((FIXTURES / f"{version}_nodes.json").read_text())
    jobs = json.loads((FIXTURES / f"{version}_jobs.json").read_text())
    server.add("GET", f"/slurm/{version}/nodes", 200, nodes)
    server.add("GET", f"/slurm/{version}/jobs", 200, jobs)
    src = SlurmSchedulerSource(SlurmClient.from_url(server.url, version=version))
    (u,) = src.fetch()
    n = u.nodes
    assert [NodeState(s).name for s in n.state] == ["MIXED", "DRAINING", "DRAINED", "DOWN",
                                                    "DRAINING", "MAINT", "IDLE", "ALLOCATED"]
    assert n.responding.tolist() == [True, True, True, False, True, True, True, True]
    assert n.gpus.tolist() == [8] * 7 + [0] and n.gpus_alloc.tolist() == [4, 8, 0, 0, 0, 0, 0, 0]
    assert n.gpu_types == ("h800",) * 7 + ("",)
    assert n.partitions[1] == ("gpu", "debug")
    j = u.jobs
    row = {int(x): i for i, x in enumerate(j.job_id)}
    assert [JobState(j.state[row[k]]).name for k in range(101, 108)] == [
        "RUNNING", "PENDING", "PENDING", "FAILED", "CANCELLED", "COMPLETING", "RUNNING"]
    assert j.gpus.tolist() == [12, 8, 16, 0, 0, 2, 0]
    assert j.exit_code.tolist() == [0, -1, -1, 3, 143, 0, -1]
    assert j.time_limit_s[row[101]] == 86400 and j.time_limit_s[row[102]] == math.inf \
        and j.time_limit_s[row[103]] == math.inf
    assert j.start_time[row[101]] == 1795939000 - 3000 and math.isnan(j.start_time[row[102]])
    assert (j.array_job_id[row[106]], j.array_task_id[row[106]]) == (100, 2)
    assert j.array_task_id[row[101]] == -1
    assert j.accounts[j.account[row[101]]] == "hku"
    a = j.alloc_job == row[101]
    assert [j.alloc_node_names[x] for x in j.alloc_node[a]] == ["n01"] * 4 + ["n02"] * 8
    assert j.alloc_gpu[a].tolist() == [0, 1, 2, 3] + list(range(8))
    # next poll sends the server's own last_update
    src.fetch()
    assert server.requests[-2]["query"]["update_time"] == ["1795939000"]
    assert server.requests[-1]["query"]["update_time"] == ["1795938995"]


def test_bad_token_500_unspecified_is_auth_when_ping_confirms(server: ReplayServer) -> None:
    c = _v38(server)
    server.add("GET", f"{V38}/nodes", 500, capture("slurm_auth_expired_token.500.json"))
    server.add("GET", f"{V38}/ping", 500, capture("slurm_auth_expired_token.500.json"))
    e = pytest.raises(SourceError, SlurmSchedulerSource(c).fetch).value
    assert e.kind is ErrorKind.AUTH and e.message.startswith("token rejected or expired")
    assert "server error" not in e.message
    assert [r["path"] for r in server.requests][-2:] == [f"{V38}/nodes", f"{V38}/ping"]


def test_bad_token_on_openapi_probe_is_auth(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 500, capture("slurm_auth_bad_token.500.json"))
    server.add("GET", f"{V38}/ping", 500, capture("slurm_auth_bad_token.500.json"))
    e = pytest.raises(SourceError, SlurmClient.from_url(server.url).detect_version).value
    assert e.kind is ErrorKind.AUTH and e.message.startswith("token rejected or expired")
    assert "/openapi/v3 and to GET /slurm/v0.0.38/ping" in e.message


def test_no_credentials_401_is_auth(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 401, capture("slurm_auth_none.401.json"), {"Content-Type": "text/plain"})
    e = pytest.raises(SourceError, SlurmClient.from_url(server.url).detect_version).value
    assert e.kind is ErrorKind.AUTH
    assert e.message.startswith("authentication required: no user name or token sent")


def test_drain_needs_v0039(server: ReplayServer) -> None:
    c = _v38(server)
    e = pytest.raises(SourceError, c.drain_node, "gpu03", "xid").value
    assert e.kind is ErrorKind.CONFIG
    assert e.message == ("draining a node over REST needs Slurm 23.02 (API v0.0.39) or newer; "
                         "this server offers v0.0.38")
    assert not any(r["method"] == "POST" for r in server.requests)


def test_drain_and_resume_on_v0042(server: ReplayServer) -> None:
    server.add("POST", "/slurm/v0.0.42/node/n03", 200, {"errors": [], "warnings": []})
    c = SlurmClient.from_url(server.url, version="v0.0.42")
    c.drain_node("n03", "XID 79")
    c.resume_node("n03")
    assert [json.loads(r["body"]) for r in server.requests] == [
        {"state": ["DRAIN"], "reason": "XID 79"}, {"state": ["RESUME"]}]


def test_cancel_job(server: ReplayServer) -> None:
    c = _v38(server)
    server.add("DELETE", f"{V38}/job/16", 200, capture("slurm_job_cancel.200.json"))
    server.add("DELETE", f"{V38}/job/99999", 500, capture("slurm_job_cancel_unknown.500.json"))
    server.add("DELETE", f"{V38}/job/3", 500, capture("slurm_as_nobody_cancel_root_job.500.json"))
    c.cancel_job(16)
    e = pytest.raises(SourceError, c.cancel_job, 99999).value
    assert e.kind is ErrorKind.HTTP and "Invalid job id specified" in e.message
    e = pytest.raises(SourceError, c.cancel_job, 3).value
    assert e.kind is ErrorKind.AUTH and "Access/permission denied" in e.message


def test_wrong_shape_is_bad_payload(server: ReplayServer) -> None:
    c = _v38(server)
    server.add("GET", f"{V38}/nodes", 200, {"meta": {}, "nodes": {"gpu01": {}}})
    e = pytest.raises(SourceError, SlurmSchedulerSource(c).fetch).value
    assert e.kind is ErrorKind.BAD_PAYLOAD and "no list of nodes" in e.message


def test_partitions_diag_ping(server: ReplayServer) -> None:
    c = _v38(server)
    server.add("GET", f"{V38}/partitions", 200, capture("slurm_partitions.200.json"))
    server.add("GET", f"{V38}/diag", 200, capture("slurm_diag.200.json"))
    server.add("GET", f"{V38}/ping", 200, capture("slurm_ping.200.json"))
    expected = tuple(p["name"] for p in json.loads(capture("slurm_partitions.200.json"))["partitions"])
    assert sp.partition_names(c.partitions()) == expected and set(expected) == {"gpu", "cpu", "debug"}
    assert "schedule_cycle_last" in c.diag()
    assert c.ping()[0]["ping"] == "UP"


# ---- pure parsing --------------------------------------------------------------------------


def test_noval_numbers_and_exit_codes() -> None:
    assert sp.nv(5) == 5 and sp.nv(None) is None
    assert sp.nv({"set": True, "infinite": False, "number": 7}) == 7
    assert sp.nv({"set": False, "infinite": True, "number": 0}) == math.inf
    assert sp.nv({"set": False, "infinite": False, "number": 0}) is None
    assert sp.exit_code(0) == 0 and sp.exit_code(768) == 3 and sp.exit_code(9) == 137
    assert sp.exit_code({"set": True, "number": 256}) == 1
    assert sp.exit_code({"status": ["SIGNALED"], "return_code": {"set": True, "number": 0},
                         "signal": {"id": {"set": True, "number": 9}, "name": "KILL"}}) == 137
    assert sp.exit_code({"status": ["ERROR"], "return_code": {"set": True, "number": 2}}) == 2


def test_node_state_rules() -> None:
    assert sp.node_state("idle", ["DRAIN"]) == (NodeState.DRAINED, True)
    assert sp.node_state("mixed", ["DRAIN"]) == (NodeState.DRAINING, True)
    assert sp.node_state(["IDLE", "DRAIN", "COMPLETING"]) == (NodeState.DRAINING, True)
    assert sp.node_state(["DOWN", "NOT_RESPONDING"]) == (NodeState.DOWN, False)
    assert sp.node_state(["IDLE", "POWERED_DOWN"]) == (NodeState.POWERED_DOWN, True)
    assert sp.node_state(["IDLE", "INVALID_REG"]) == (NodeState.INVAL, True)


def test_job_state_lists_and_strings() -> None:
    assert sp.job_state("RUNNING") == JobState.RUNNING
    assert sp.job_state(["PENDING", "REQUEUED"]) == JobState.PENDING
    assert sp.job_state(["COMPLETED", "COMPLETING"]) == JobState.COMPLETING
    assert sp.job_state(["RUNNING", "CONFIGURING"]) == JobState.CONFIGURING
    assert sp.job_state("REQUEUE_HOLD") == JobState.PENDING
    assert sp.job_state([]) == JobState.OTHER


def test_gres_strings() -> None:
    assert sp.gres_count("gpu:8(S:0-1)") == 8
    assert sp.gres_count("gpu:h800:4(IDX:0-3)") == 4
    assert sp.gres_count("gpu:a100:2(S:0),gpu:h100:4(S:1),shard:20") == 6
    assert sp.gres_count("gres:gpu:8") == 8 and sp.gres_count("gres/gpu:h800:4") == 4
    assert sp.gres_indices("gpu:h800:4(IDX:0-1,5,7)") == [0, 1, 5, 7]
    assert sp.gres_indices("gpu:h100:0(IDX:N/A)") == []
    assert sp.tres_gpus("cpu=4,gres/gpu=8,gres/gpu:h800=8") == 8
    assert sp.tres_gpus("cpu=128,mem=800G,node=2,billing=128") == 0


def test_fifty_thousand_jobs_build_columns() -> None:
    base = json.loads(capture("slurm_jobs.200.json"))["jobs"]
    one = sp.parse_jobs(base)
    jobs = [dict(base[i % len(base)], job_id=i + 1) for i in range(50_000)]
    t = sp.parse_jobs(jobs)
    assert len(t) == 50_000 and t.job_id[-1] == 50_000
    assert t.gpus.tolist() == [int(one.gpus[i % len(base)]) for i in range(50_000)]
    per_job = np.bincount(one.alloc_job, minlength=len(base))
    assert len(t.alloc_job) == sum(int(per_job[i % len(base)]) for i in range(50_000))


def test_pending_reasons_in_plain_words() -> None:
    assert slurm_reasons.explain("Resources") == ("queueing", "waiting for GPUs to free up")
    assert slurm_reasons.explain("AssocGrpGRES") == ("quota", "tenant's GPU quota reached")
    assert slurm_reasons.group("QOSGrpNodeLimit") == "quota"
    assert slurm_reasons.group("ReqNodeNotAvail, UnavailableNodes:gpu[04-05]") == "infrastructure"
    assert slurm_reasons.group("JobHeldUser") == "user"
    assert slurm_reasons.explain("SomethingNew") == ("other", "SomethingNew")
    assert slurm_reasons.explain("None") == ("other", "")
    assert np.all([slurm_reasons.group(r) in slurm_reasons.GROUPS for r in ("Priority", "NodeDown")])

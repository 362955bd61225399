"""slurmrestd v0.0.40..v0.0.45: recorded 26.05 answers, ``update_time`` by evidence, errors named
only when a second request confirms them, version re-detection and operator actions."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from test_sources_http import FIXTURES, ReplayServer, server  # noqa: F401

from console.model import JobState, NodeState
from console.sources import slurm_parse as sp
from console.sources.base import ErrorKind, SourceError
from console.sources.http import Auth
from console.sources.slurm import SLURM_RELEASE, SUPPORTED_VERSIONS, SlurmClient, SlurmSchedulerSource

R2605: Path = FIXTURES / "26.05"
V45 = "/slurm/v0.0.45"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig"
UNSPECIFIED = {"errors": [{"error": "Unspecified error", "errno": -1}]}  # 22.05, STACK.md
LAST_UPDATE = 1796351259  # last_update of the recorded 26.05 full answers


def rec(name: str) -> bytes:
    """A recorded 26.05 answer from the repository's fixtures."""
    return (R2605 / name).read_bytes()


def client(server: ReplayServer, version: str | None = None) -> SlurmClient:
    return SlurmClient.from_url(server.url, version,
                                auth=Auth("slurm_jwt", user="ops", secret=TOKEN))


def by_update_time(server: ReplayServer, path: str, with_ut: tuple[int, bytes | dict],
                   without: tuple[int, bytes | dict]) -> None:
    """Route ``path`` to one answer when ``update_time`` is in the query, another otherwise."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        status, body = with_ut if "update_time" in parse_qs(urlsplit(h.path).query) else without
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        if payload:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    server.add_handler("GET", path, handle)


def queries(server: ReplayServer, path: str) -> list[dict]:
    return [r["query"] for r in server.requests if r["path"] == path]


def full_v45(server: ReplayServer) -> None:
    server.add("GET", f"{V45}/nodes", 200, rec("slurm_v0.0.45_nodes.json"))
    server.add("GET", f"{V45}/jobs", 200, rec("slurm_v0.0.45_jobs.json"))


# ---- versions ------------------------------------------------------------------------------


def test_newest_known_version_is_chosen_from_the_26_05_spec(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 200, rec("openapi_v3_paths.json"))
    c = client(server)
    assert c.detect_version() == "v0.0.45"
    assert c.offered == ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42")
    assert SUPPORTED_VERSIONS[:3] == ("v0.0.45", "v0.0.44", "v0.0.43")
    assert [SLURM_RELEASE[v] for v in ("v0.0.43", "v0.0.44", "v0.0.45")] == ["25.05", "25.11", "26.05"]


def test_404_for_the_detected_version_detects_again(server: ReplayServer) -> None:
    """An upgraded server that dropped the version in use: detect again, use the new one."""
    server.add("GET", "/openapi/v3", 200, {"paths": {"/slurm/v0.0.45/ping": {}}})
    full_v45(server)
    c = client(server)
    c.version = "v0.0.41"  # detected before the upgrade
    (u,) = SlurmSchedulerSource(c).fetch()
    assert u.api_version == "v0.0.45" and len(u.nodes) == 3
    assert [r["path"] for r in server.requests][:3] == [
        "/slurm/v0.0.41/nodes", "/openapi/v3", f"{V45}/nodes"]


def test_404_for_a_pinned_version_is_config_in_words(server: ReplayServer) -> None:
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.41")).fetch).value
    assert e.kind is ErrorKind.CONFIG and e.status == 404
    assert "does not serve REST API v0.0.41" in e.message
    assert "remove api_version from the config" in e.message
    assert [r["path"] for r in server.requests] == ["/slurm/v0.0.41/nodes"]


# ---- recorded 26.05 answers --------------------------------------------------------------


@pytest.mark.parametrize("version", ["v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45"])
def test_26_05_jobs_parse_alike_in_every_version(version: str) -> None:
    jobs = json.loads(rec(f"slurm_{version}_jobs.json"))["jobs"]
    j = sp.parse_jobs(jobs)
    assert j.job_id.tolist() == [1, 2, 3]
    assert [JobState(s).name for s in j.state] == ["RUNNING", "RUNNING", "PENDING"]
    assert [j.accounts[a] for a in j.account] == ["acme", "uni", "acme"]
    assert j.gpus.tolist() == [4, 8, 8]  # pending: from tres_per_node "gres/gpu:8"
    assert [j.reasons[r] for r in j.reason] == ["None", "None", "Resources"]
    assert j.partitions[j.partition[0]] == "gpu" and j.nodes.tolist() == [1, 1, 1]
    coords = [(int(j.job_id[a]), j.alloc_node_names[n], int(g))
              for a, n, g in zip(j.alloc_job, j.alloc_node, j.alloc_gpu)]
    assert coords == [(1, "t01", g) for g in range(4)] + [(2, "t02", g) for g in range(8)]


def test_26_05_nodes_cpu_node_has_no_gpus_and_types_are_read() -> None:
    n = sp.parse_nodes(json.loads(rec("slurm_v0.0.45_nodes.json"))["nodes"])
    assert n.names == ("c01", "t01", "t02")
    assert [NodeState(s).name for s in n.state] == ["IDLE", "MIXED", "MIXED"]
    assert n.gpus.tolist() == [0, 8, 8] and n.gpus_alloc.tolist() == [0, 4, 8]
    assert n.gpu_types == ("", "h100", "h100")
    assert n.partitions == (("cpu",), ("gpu",), ("gpu",))


def test_gres_strings_give_counts_and_types() -> None:
    assert sp.gres_gpus_and_type("gpu:H100:8(S:0-1)") == (8, "h100")
    assert sp.gres_gpus_and_type("gpu:a100:4,gpu:h100:4") == (8, "a100")  # equal: the first
    assert sp.gres_gpus_and_type("gpu:a100:2(S:0),gpu:h100:6(S:1),shard:20") == (8, "h100")
    assert sp.gres_gpus_and_type("gpu:8") == (8, "")
    assert sp.gres_gpus_and_type("gpu:4(S:0)") == (4, "")
    assert sp.gres_gpus_and_type("gpu:mi300x:8(IDX:0-7)") == (8, "mi300x")
    assert sp.gres_gpus_and_type("") == (0, "") and sp.gres_gpus_and_type(None) == (0, "")
    assert sp.gres_gpus_and_type("shard:4,nic:2") == (0, "")
    n = sp.parse_nodes([{"name": "a", "state": ["IDLE"], "gres": "gpu:h100:4"},
                        {"name": "b", "state": ["IDLE"], "gres": "gpu:b200:8(S:0-1)"},
                        {"name": "c", "state": ["IDLE"], "gres": ""},
                        {"name": "d", "state": ["IDLE"]}])
    assert n.gpus.tolist() == [4, 8, 0, 0] and n.gpu_types == ("h100", "b200", "", "")


def test_26_05_source_first_poll_then_quiet_polls_keep_the_tables(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 200, rec("openapi_v3_paths.json"))
    by_update_time(server, f"{V45}/nodes", (304, b""), (200, rec("slurm_v0.0.45_nodes.json")))
    by_update_time(server, f"{V45}/jobs", (200, rec("slurm_v0.0.45_jobs_update_time.json")),
                   (200, rec("slurm_v0.0.45_jobs.json")))
    src = SlurmSchedulerSource(client(server))
    (u1,) = src.fetch()
    assert u1.api_version == "v0.0.45" and src.client.slurm_release == "26.05.5"
    assert len(u1.jobs) == 3 and u1.nodes.gpus.sum() == 16
    (u2,) = src.fetch()
    (u3,) = src.fetch()
    for u in (u2, u3):  # 304 and "200, [] and No job changes": unchanged, never an empty queue
        assert u.nodes is None and u.jobs is None and u.warnings == ()
    # last_update 0 in the "no changes" answer keeps the server's previous last_update
    assert [q.get("update_time") for q in queries(server, f"{V45}/jobs")] == [
        None, [str(LAST_UPDATE)], [str(LAST_UPDATE)]]
    assert [q.get("update_time") for q in queries(server, f"{V45}/nodes")] == [
        None, [str(LAST_UPDATE)], [str(LAST_UPDATE)]]


def test_empty_list_without_the_servers_word_is_checked_in_full(server: ReplayServer) -> None:
    full_v45(server)
    src = SlurmSchedulerSource(client(server, "v0.0.45"))
    src.fetch()
    silent_empty = dict(json.loads(rec("slurm_v0.0.45_jobs_update_time.json")), warnings=[])
    by_update_time(server, f"{V45}/jobs", (200, silent_empty), (200, rec("slurm_v0.0.45_jobs.json")))
    server.add("GET", f"{V45}/nodes", 304, b"")
    (u,) = src.fetch()
    assert len(u.jobs) == 3  # the full answer, not the unexplained empty list
    assert [("update_time" in q) for q in queries(server, f"{V45}/jobs")] == [False, True, False]
    # and when the full answer is empty too, the queue really is empty
    by_update_time(server, f"{V45}/jobs", (200, silent_empty), (200, silent_empty))
    (u,) = src.fetch()
    assert u.jobs is not None and len(u.jobs) == 0


# ---- update_time refused: 422 / 500 ------------------------------------------------------


@pytest.mark.parametrize(("key", "status", "body"), [
    ("jobs", 422, {"errors": [{"error": "Unexpected query parameter update_time"}]}),
    ("nodes", 500, {"errors": [{"error": "Unable to query nodes"}]}),
])
def test_v0040_refused_update_time_polls_that_endpoint_in_full(
        server: ReplayServer, key: str, status: int, body: dict) -> None:
    v40 = "/slurm/v0.0.40"
    for k in ("nodes", "jobs"):
        full = json.loads((FIXTURES / f"v0.0.40_{k}.json").read_text())
        if k == key:
            by_update_time(server, f"{v40}/{k}", (status, body), (200, full))
        else:
            server.add("GET", f"{v40}/{k}", 200, full)
    src = SlurmSchedulerSource(client(server, "v0.0.40"))
    (u1,) = src.fetch()
    (u2,) = src.fetch()
    assert getattr(u2, key) is not None and len(getattr(u2, key)) == len(getattr(u1, key))
    note = f"update_time not usable on {key} (slurmrestd answered {status}); {key} are polled in full"
    assert note in u2.warnings
    (u3,) = src.fetch()  # remembered: one request per poll, no update_time
    assert note in u3.warnings and getattr(u3, key) is not None
    assert [("update_time" in q) for q in queries(server, f"{v40}/{key}")] == [False, True, False,
                                                                              False]


def test_2205_quiet_nodes_500_is_not_a_token_problem(server: ReplayServer) -> None:
    """22.05: ``nodes?update_time`` answers 500 "Unspecified error" when no node changed."""
    v38 = "/slurm/v0.0.38"
    nodes = {"meta": {}, "errors": [], "nodes": [
        {"name": "gpu01", "state": "idle", "state_flags": [], "gres": "gpu:h100:8(S:0-1)"}]}
    by_update_time(server, f"{v38}/nodes", (500, UNSPECIFIED), (200, nodes))
    by_update_time(server, f"{v38}/jobs", (304, b""), (200, {"meta": {}, "errors": [], "jobs": []}))
    src = SlurmSchedulerSource(client(server, "v0.0.38"))
    for _ in range(4):
        (u,) = src.fetch()
        assert u.nodes is not None and u.nodes.gpu_types == ("h100",)
    assert [("update_time" in q) for q in queries(server, f"{v38}/nodes")] == [
        False, True, False, False, False]
    assert not [r for r in server.requests if r["path"].endswith("/ping")]


def test_2205_unspecified_with_and_without_update_time_is_a_token_problem(
        server: ReplayServer) -> None:
    v38 = "/slurm/v0.0.38"
    nodes = {"meta": {}, "errors": [], "nodes": [{"name": "gpu01", "state": "idle", "gres": ""}]}
    server.add("GET", f"{v38}/nodes", 200, nodes)
    server.add("GET", f"{v38}/jobs", 200, {"meta": {}, "errors": [], "jobs": []})
    src = SlurmSchedulerSource(client(server, "v0.0.38"))
    src.fetch()
    server.add("GET", f"{v38}/nodes", 500, UNSPECIFIED)  # the token expired meanwhile
    e = pytest.raises(SourceError, src.fetch).value
    assert e.kind is ErrorKind.AUTH and e.message.startswith("token rejected or expired")
    assert "with and without update_time" in e.message and TOKEN not in e.message


def test_unspecified_error_while_ping_works_is_a_server_error(server: ReplayServer) -> None:
    v38 = "/slurm/v0.0.38"
    server.add("GET", f"{v38}/nodes", 500, UNSPECIFIED)
    server.add("GET", f"{v38}/ping", 200, {"meta": {}, "errors": [], "pings": [{"ping": "UP"}]})
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.38")).fetch).value
    assert e.kind is ErrorKind.HTTP and e.status == 500
    assert "token" in e.message and "not the token" in e.message and "rejected" not in e.message


# ---- auth on 24.11+ -----------------------------------------------------------------------


def test_511_protocol_authentication_error_is_a_rejected_token(server: ReplayServer) -> None:
    server.add("GET", f"{V45}/nodes", 511, rec("slurm_v0.0.45_jobs_badtoken.json"))
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.45")).fetch).value
    assert e.kind is ErrorKind.AUTH and e.status == 511
    assert e.message.startswith("token rejected or expired")
    assert "511 'Protocol authentication error'" in e.message
    assert TOKEN not in e.message and TOKEN not in repr(e)
    assert [r["path"] for r in server.requests] == [f"{V45}/nodes"]  # no confirmation needed


def test_401_with_credentials_sent_says_what_to_check(server: ReplayServer) -> None:
    server.add("GET", f"{V45}/nodes", 401, b"Authentication failure", {"Content-Type": "text/plain"})
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.45")).fetch).value
    assert e.kind is ErrorKind.AUTH
    assert e.message.startswith("authentication failed at slurmrestd")
    assert "user name and a token" in e.message


# ---- operator actions (v0.0.40+) --------------------------------------------------------


@pytest.mark.parametrize("version", ["v0.0.40", "v0.0.43", "v0.0.45"])
def test_drain_resume_cancel_bodies(server: ReplayServer, version: str) -> None:
    ok = {"meta": {}, "errors": [], "warnings": []}
    server.add("POST", f"/slurm/{version}/node/t01", 200, ok)
    server.add("DELETE", f"/slurm/{version}/job/7", 200, dict(ok, status=[]))
    c = client(server, version)
    c.drain_node("t01", "XID 79")
    c.resume_node("t01")
    c.cancel_job(7)
    assert [(r["method"], r["path"]) for r in server.requests] == [
        ("POST", f"/slurm/{version}/node/t01"), ("POST", f"/slurm/{version}/node/t01"),
        ("DELETE", f"/slurm/{version}/job/7")]
    assert [json.loads(r["body"]) for r in server.requests[:2]] == [
        {"state": ["DRAIN"], "reason": "XID 79"}, {"state": ["RESUME"]}]


def test_action_answers_error_arrays_are_read(server: ReplayServer) -> None:
    c = client(server, "v0.0.45")

    def signal_status(code: int, message: str) -> dict:
        return {"meta": {}, "errors": [], "warnings": [], "status": [
            {"error": {"string": message, "code": code, "message": message},
             "step_id": "", "job_id": {"set": True, "infinite": False, "number": 9},
             "federation": {"sibling": ""}}]}

    server.add("DELETE", f"{V45}/job/9", 200, signal_status(2017, "Invalid job id specified"))
    e = pytest.raises(SourceError, c.cancel_job, 9).value
    assert e.kind is ErrorKind.HTTP and e.message.endswith("cancel job 9: Invalid job id specified")
    server.add("DELETE", f"{V45}/job/9", 200,
               signal_status(2021, "Job/step already completing or completed"))
    c.cancel_job(9)  # cancelling an ended job again succeeds
    server.add("POST", f"{V45}/node/zz", 200, {"meta": {}, "warnings": [], "errors": [
        {"error": "Invalid node name specified", "error_number": 2008}]})
    e = pytest.raises(SourceError, c.drain_node, "zz", "test").value
    assert e.kind is ErrorKind.HTTP and "drain node zz: Invalid node name specified" in e.message
    server.add("POST", f"{V45}/node/t01", 500, {"meta": {}, "errors": [
        {"error": "Access/permission denied", "error_number": 2002}]})
    e = pytest.raises(SourceError, c.resume_node, "t01").value
    assert e.kind is ErrorKind.AUTH and "permission denied" in e.message


def test_last_update_zero_in_a_full_answer_is_not_sent_back(server: ReplayServer) -> None:
    jobs = dict(json.loads(rec("slurm_v0.0.45_jobs.json")),
                last_update={"set": True, "infinite": False, "number": 0})
    server.add("GET", f"{V45}/nodes", 304, b"")
    server.add("GET", f"{V45}/jobs", 200, jobs)
    src = SlurmSchedulerSource(client(server, "v0.0.45"), skew_margin_s=30.0)
    before = time.time()
    src.fetch()
    after = time.time()
    src.fetch()
    (sent,) = queries(server, f"{V45}/jobs")[1]["update_time"]
    assert int(before) - 31 <= int(sent) <= after - 29  # our request time minus the margin, not 0


def test_26_05_partitions_and_ping(server: ReplayServer) -> None:
    server.add("GET", f"{V45}/partitions", 200, rec("slurm_v0.0.45_partitions.json"))
    server.add("GET", f"{V45}/ping", 200, rec("slurm_v0.0.45_ping.json"))
    c = client(server, "v0.0.45")
    assert sorted(sp.partition_names(c.partitions())) == ["cpu", "gpu"]
    (p,) = c.ping()
    assert p["responding"] is True and p["status"] == "No error"


def test_403_from_a_proxy_is_not_blamed_on_slurm_rights(server: ReplayServer) -> None:
    server.add("GET", f"{V45}/nodes", 403, b"<html><body>Forbidden</body></html>",
               {"Content-Type": "text/html"})
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.45")).fetch).value
    assert e.kind is ErrorKind.AUTH and e.status == 403
    assert "access denied" in e.message and "token's user" not in e.message

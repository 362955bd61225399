"""slurmrestd v0.0.40..v0.0.45: the project's recorded 24.11 and 26.05 answers, ``update_time``
by evidence, errors named only when a second request confirms them, version re-detection and
operator actions.

The answers come from scripts/record_slurm_versions.py (tests/fixtures/slurm/<series>/); every
figure the recording's ``truth`` (what sinfo/squeue/scontrol said at that moment) gives is
asserted from it, and every status from the recording's INDEX.json, so a re-recording cannot
leave a stale number behind.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from test_slurm_recorded_versions import SINFO_STATE
from test_sources_http import FIXTURES, ReplayServer, server  # noqa: F401

from console.model import JobState, NodeState
from console.sources import slurm_parse as sp
from console.sources.base import ErrorKind, SourceError
from console.sources.http import Auth
from console.sources.slurm import (
    SLURM_RELEASE,
    SUPPORTED_VERSIONS,
    SlurmClient,
    SlurmSchedulerSource,
    says_unchanged,
)

R2605: Path = FIXTURES / "26.05"
R2411: Path = FIXTURES / "24.11"
V45 = "/slurm/v0.0.45"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig"
UNSPECIFIED = {"errors": [{"error": "Unspecified error", "errno": -1}]}  # 22.05, STACK.md
#: An answer recorded with ``update_time`` an hour ahead: nothing can have changed since.
AHEAD = "update_time=(an hour ahead"


def index(folder: Path) -> dict:
    """A recording's INDEX.json: release, API versions, ``truth`` and each answer's request."""
    return json.loads((folder / "INDEX.json").read_text())


I2605, I2411 = index(R2605), index(R2411)
TRUTH = I2605["truth"]


def rec(name: str, folder: Path = R2605) -> bytes:
    """A recorded answer's body from the repository's fixtures."""
    return (folder / name).read_bytes()


def recorded(folder: Path, *, file: str | None = None,
             request: str | None = None) -> tuple[int, bytes]:
    """(status, body) of one recorded answer, found by its file or by the start of its request;
    the status is the one the server gave (INDEX.json), a 304 has the empty body it had."""
    for a in index(folder)["answers"]:
        if (file is not None and a["file"] == file) or (
                request is not None and a["request"].startswith(request)):
            return a["status"], rec(a["file"], folder) if a["file"] else b""
    raise LookupError(f"no recorded answer {file or request!r} in {folder.name}")


def last_update(name: str) -> int:
    """The server's ``last_update`` in a recorded 26.05 answer (sent back as ``update_time``)."""
    return int(json.loads(rec(name))["last_update"]["number"])


def truth_gpus_per_node() -> Counter[str]:
    """GPUs in use per node, as ``scontrol -d show job`` said (the recording's truth)."""
    return Counter(node for j in TRUTH["jobs"].values() for node, _ in j["gpus"])


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
    server.add("GET", f"{V45}/nodes", 200, rec("v0.0.45_nodes.json"))
    server.add("GET", f"{V45}/jobs", 200, rec("v0.0.45_jobs.json"))


# ---- versions ------------------------------------------------------------------------------


def test_newest_known_version_is_chosen_from_the_26_05_spec(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 200, rec("openapi_v3.paths.json"))
    c = client(server)
    assert c.detect_version() == "v0.0.45" == I2605["api_versions"][-1]
    assert c.offered == tuple(sorted(I2605["api_versions"], reverse=True))
    assert c.offered == ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42")
    assert SUPPORTED_VERSIONS[:3] == ("v0.0.45", "v0.0.44", "v0.0.43")
    assert [SLURM_RELEASE[v] for v in ("v0.0.43", "v0.0.44", "v0.0.45")] == ["25.05", "25.11", "26.05"]


def test_404_for_the_detected_version_detects_again(server: ReplayServer) -> None:
    """An upgraded server that dropped the version in use: detect again, use the new one."""
    server.add("GET", "/openapi/v3", 200, rec("openapi_v3.paths.json"))
    full_v45(server)
    c = client(server)
    c.version = "v0.0.41"  # detected before the upgrade
    (u,) = SlurmSchedulerSource(c).fetch()
    assert u.api_version == "v0.0.45" and len(u.nodes) == len(TRUTH["nodes"])
    assert [r["path"] for r in server.requests][:3] == [
        "/slurm/v0.0.41/nodes", "/openapi/v3", f"{V45}/nodes"]


def test_404_for_a_pinned_version_is_config_in_words(server: ReplayServer) -> None:
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.41")).fetch).value
    assert e.kind is ErrorKind.CONFIG and e.status == 404
    assert "does not serve REST API v0.0.41" in e.message
    assert "remove api_version from the config" in e.message
    assert [r["path"] for r in server.requests] == ["/slurm/v0.0.41/nodes"]


# ---- recorded 26.05 answers --------------------------------------------------------------

#: Not in the truth (squeue's %i|%T|%r|%a): GPUs of the pending jobs, from their tres_per_node
#: "gres/gpu:N" times the nodes asked for (job 8 asks two nodes of 8), and the partitions.
PENDING_GPUS = {"8": 16, "9": 1, "10": 4, "11": 8}
CPU_JOBS = {"7"}  # the one job of partition "cpu", on cpu01


@pytest.mark.parametrize("version", I2605["api_versions"])
def test_26_05_jobs_parse_alike_in_every_version(version: str) -> None:
    j = sp.parse_jobs(json.loads(rec(f"{version}_jobs.json"))["jobs"])
    ids = [str(int(i)) for i in j.job_id]
    assert sorted(ids) == sorted(TRUTH["jobs"])
    want = [TRUTH["jobs"][i] for i in ids]
    assert [JobState(s).name for s in j.state] == [t["state"] for t in want]
    assert [j.accounts[a] for a in j.account] == [t["account"] for t in want]
    assert [j.reasons[r] for r in j.reason] == [t["reason"] for t in want]
    running = {i: len(t["gpus"]) for i, t in zip(ids, want) if t["state"] == "RUNNING"}
    assert {i: int(g) for i, g in zip(ids, j.gpus) if i in running} == running
    assert {i: int(g) for i, g in zip(ids, j.gpus) if i not in running} == PENDING_GPUS
    assert {i: j.partitions[p] for i, p in zip(ids, j.partition)} == {
        i: "cpu" if i in CPU_JOBS else "gpu" for i in ids}
    assert {i: int(n) for i, n in zip(ids, j.nodes) if n != 1} == {"8": 2}
    coords = sorted([ids[a], j.alloc_node_names[n], int(g)]
                    for a, n, g in zip(j.alloc_job, j.alloc_node, j.alloc_gpu))
    assert coords == sorted([i, node, g] for i, t in TRUTH["jobs"].items() for node, g in t["gpus"])


@pytest.mark.parametrize("version", I2605["api_versions"])
def test_26_05_nodes_cpu_node_has_no_gpus_and_types_are_read(version: str) -> None:
    n = sp.parse_nodes(json.loads(rec(f"{version}_nodes.json"))["nodes"])
    assert n.names == tuple(sorted(TRUTH["nodes"]))
    assert [NodeState(s) for s in n.state] == [SINFO_STATE[TRUTH["nodes"][x]["state"]]
                                               for x in n.names]
    used = truth_gpus_per_node()
    assert n.gpus_alloc.tolist() == [used[x] for x in n.names]
    # Not in the truth (sinfo's %N|%T|%E): the stack's gres.conf as the answer gives it.
    assert dict(zip(n.names, n.gpus.tolist())) == {
        "cpu01": 0, "gpu01": 8, "gpu02": 8, "gpu03": 8, "gpu04": 8, "gpu05": 4, "gpu06": 8,
        "gpu07": 8, "gpu08": 8}
    assert dict(zip(n.names, n.gpu_types)) == {
        "cpu01": "", "gpu01": "h800", "gpu02": "h800", "gpu03": "h100", "gpu04": "h100",
        "gpu05": "h100", "gpu06": "h800", "gpu07": "h800", "gpu08": "h800"}
    assert dict(zip(n.names, n.partitions)) == {
        x: ("cpu",) if x == "cpu01" else ("gpu", "debug") if x in ("gpu03", "gpu04") else ("gpu",)
        for x in n.names}


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


def test_26_05_quiet_answers_are_recorded_as_the_server_gave_them() -> None:
    """What the source tests below replay: 304 for nodes, "200, [] and No job changes" for jobs."""
    for v in I2605["api_versions"]:
        assert recorded(R2605, request=f"GET /slurm/{v}/nodes?{AHEAD}") == (304, b"")
        status, body = recorded(R2605, request=f"GET /slurm/{v}/jobs?{AHEAD}")
        quiet = json.loads(body)
        assert status == 200 and quiet["jobs"] == [] and says_unchanged(quiet)
        assert quiet["warnings"][0]["description"].startswith("No job changes since update_time[")


def test_26_05_source_first_poll_then_quiet_polls_keep_the_tables(server: ReplayServer) -> None:
    server.add("GET", "/openapi/v3", 200, rec("openapi_v3.paths.json"))
    by_update_time(server, f"{V45}/nodes", recorded(R2605, request=f"GET {V45}/nodes?{AHEAD}"),
                   (200, rec("v0.0.45_nodes.json")))
    by_update_time(server, f"{V45}/jobs", recorded(R2605, request=f"GET {V45}/jobs?{AHEAD}"),
                   (200, rec("v0.0.45_jobs.json")))
    src = SlurmSchedulerSource(client(server))
    (u1,) = src.fetch()
    assert u1.api_version == "v0.0.45" and src.client.slurm_release == I2605["slurm_release"]
    assert len(u1.jobs) == len(TRUTH["jobs"]) and len(u1.nodes) == len(TRUTH["nodes"])
    assert int(u1.nodes.gpus_alloc.sum()) == sum(truth_gpus_per_node().values())
    (u2,) = src.fetch()
    (u3,) = src.fetch()
    for u in (u2, u3):  # 304 and "200, [] and No job changes": unchanged, never an empty queue
        assert u.nodes is None and u.jobs is None and u.warnings == ()
    # last_update 0 in the "no changes" answer keeps the server's previous last_update
    jobs_since, nodes_since = last_update("v0.0.45_jobs.json"), last_update("v0.0.45_nodes.json")
    assert [q.get("update_time") for q in queries(server, f"{V45}/jobs")] == [
        None, [str(jobs_since)], [str(jobs_since)]]
    assert [q.get("update_time") for q in queries(server, f"{V45}/nodes")] == [
        None, [str(nodes_since)], [str(nodes_since)]]


def test_empty_list_without_the_servers_word_is_checked_in_full(server: ReplayServer) -> None:
    full_v45(server)
    src = SlurmSchedulerSource(client(server, "v0.0.45"))
    src.fetch()
    silent_empty = dict(json.loads(rec("v0.0.45_jobs_update_time_ahead.200.json")), warnings=[])
    by_update_time(server, f"{V45}/jobs", (200, silent_empty), (200, rec("v0.0.45_jobs.json")))
    server.add("GET", f"{V45}/nodes", 304, b"")
    (u,) = src.fetch()
    assert len(u.jobs) == len(TRUTH["jobs"])  # the full answer, not the unexplained empty list
    assert [("update_time" in q) for q in queries(server, f"{V45}/jobs")] == [False, True, False]
    # and when the full answer is empty too, the queue really is empty
    by_update_time(server, f"{V45}/jobs", (200, silent_empty), (200, silent_empty))
    (u,) = src.fetch()
    assert u.jobs is not None and len(u.jobs) == 0


# ---- update_time refused: 422 / 500 (24.11) ----------------------------------------------


def refusals() -> list[tuple[str, str, int, str]]:
    """(version, endpoint, status, file) of each 24.11 answer refusing ``update_time``, once per
    version and endpoint, as recorded."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for a in I2411["answers"]:
        path = a["request"].split(" ", 1)[1]
        if "?update_time=" in path and a["status"] not in (200, 304):
            _, _, version, key = path.split("?")[0].split("/")
            out.setdefault((version, key), (a["status"], a["file"]))
    return [(v, k, s, f) for (v, k), (s, f) in out.items()]


REFUSALS = refusals()


def test_24_11_refusals_are_recorded() -> None:
    """v0.0.40 refuses jobs?update_time with 422 and nodes?update_time with 500 (STACK.md)."""
    assert {(v, k, s) for v, k, s, _ in REFUSALS} >= {("v0.0.40", "jobs", 422),
                                                      ("v0.0.40", "nodes", 500)}


@pytest.mark.parametrize(("version", "key", "status", "file"), REFUSALS,
                         ids=[f"{v}-{k}-{s}" for v, k, s, _ in REFUSALS])
def test_24_11_refused_update_time_polls_that_endpoint_in_full(
        server: ReplayServer, version: str, key: str, status: int, file: str) -> None:
    base = f"/slurm/{version}"
    for k in ("nodes", "jobs"):
        full = rec(f"{version}_{k}.json", R2411)
        if k == key:
            by_update_time(server, f"{base}/{k}", (status, rec(file, R2411)), (200, full))
        else:
            server.add("GET", f"{base}/{k}", 200, full)
    src = SlurmSchedulerSource(client(server, version))
    (u1,) = src.fetch()
    (u2,) = src.fetch()
    assert len(getattr(u1, key)) == len(I2411["truth"][key])
    assert getattr(u2, key) is not None and len(getattr(u2, key)) == len(getattr(u1, key))
    note = f"update_time not usable on {key} (slurmrestd answered {status}); {key} are polled in full"
    assert note in u2.warnings
    (u3,) = src.fetch()  # remembered: one request per poll, no update_time
    assert note in u3.warnings and getattr(u3, key) is not None
    assert [("update_time" in q) for q in queries(server, f"{base}/{key}")] == [False, True, False,
                                                                               False]
    assert not [r for r in server.requests if r["path"].endswith("/ping")]


# ---- 22.05's 500 "Unspecified error" ---------------------------------------------------
# The body STACK.md gives (22.05 is the host's own stack, not one of these recordings).


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


def auth_answers(kind: str) -> list[tuple[Path, str]]:
    """(folder, file) of each recorded ``jobs`` answer to a bad token or to no token at all."""
    return [(folder, a["file"]) for folder, meta in ((R2411, I2411), (R2605, I2605))
            for a in meta["answers"] if f"_{kind}." in (a["file"] or "")]


BADTOKEN, NOTOKEN = auth_answers("badtoken"), auth_answers("notoken")


def test_both_releases_recorded_their_auth_answers() -> None:
    assert [(f.name, n) for f, n in BADTOKEN] == [("24.11", "v0.0.42_jobs_badtoken.511.json"),
                                                 ("26.05", "v0.0.45_jobs_badtoken.511.json")]
    assert [(f.name, n) for f, n in NOTOKEN] == [("24.11", "v0.0.42_jobs_notoken.401.json"),
                                                ("26.05", "v0.0.45_jobs_notoken.401.json")]


def serve_jobs_answer(server: ReplayServer, folder: Path, file: str) -> tuple[str, int]:
    """The recorded full nodes answer and, for jobs, the recorded answer ``file``; returns
    (version, the status the server gave)."""
    version = file.split("_")[0]
    status, body = recorded(folder, file=file)
    server.add("GET", f"/slurm/{version}/nodes", 200, rec(f"{version}_nodes.json", folder))
    content = "application/json" if body.lstrip().startswith(b"{") else "text/plain"
    server.add("GET", f"/slurm/{version}/jobs", status, body, {"Content-Type": content})
    return version, status


@pytest.mark.parametrize(("folder", "file"), BADTOKEN, ids=[f.name for f, _ in BADTOKEN])
def test_511_protocol_authentication_error_is_a_rejected_token(
        server: ReplayServer, folder: Path, file: str) -> None:
    version, status = serve_jobs_answer(server, folder, file)
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, version)).fetch).value
    assert e.kind is ErrorKind.AUTH and e.status == status == 511
    assert e.message.startswith("token rejected or expired")
    assert "511 'Protocol authentication error'" in e.message
    assert TOKEN not in e.message and TOKEN not in repr(e)
    # no confirmation needed: the jobs answer alone names the token
    assert [r["path"] for r in server.requests] == [f"/slurm/{version}/nodes",
                                                    f"/slurm/{version}/jobs"]


@pytest.mark.parametrize(("folder", "file"), NOTOKEN, ids=[f.name for f, _ in NOTOKEN])
def test_401_with_credentials_sent_says_what_to_check(
        server: ReplayServer, folder: Path, file: str) -> None:
    version, status = serve_jobs_answer(server, folder, file)
    assert status == 401 and rec(file, folder) == b"Authentication failure"
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, version)).fetch).value
    assert e.kind is ErrorKind.AUTH and e.status == 401
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
    jobs = dict(json.loads(rec("v0.0.45_jobs.json")),
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
    server.add("GET", f"{V45}/partitions", 200, rec("v0.0.45_partitions.json"))
    server.add("GET", f"{V45}/ping", 200, rec("v0.0.45_ping.json"))
    c = client(server, "v0.0.45")
    # the partitions the recorded nodes answer puts its nodes in, each named once
    in_use = {p for node in json.loads(rec("v0.0.45_nodes.json"))["nodes"] for p in node["partitions"]}
    assert sorted(sp.partition_names(c.partitions())) == sorted(in_use) == ["cpu", "debug", "gpu"]
    (p,) = c.ping()
    assert p["responding"] is True and p["status"] == "No error"


def test_403_from_a_proxy_is_not_blamed_on_slurm_rights(server: ReplayServer) -> None:
    server.add("GET", f"{V45}/nodes", 403, b"<html><body>Forbidden</body></html>",
               {"Content-Type": "text/html"})
    e = pytest.raises(SourceError, SlurmSchedulerSource(client(server, "v0.0.45")).fetch).value
    assert e.kind is ErrorKind.AUTH and e.status == 403
    assert "access denied" in e.message and "token's user" not in e.message

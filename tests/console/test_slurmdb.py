"""The accounting source over slurmrestd, on real recorded answers served by a loopback replay.

What is checked: the requests it makes (the period widened for the server's unknown time zone,
a chunk at a time, the parameters each version takes), the jobs it keeps (by their own times),
the notes it writes for what a version or a site does not offer (never zeros), and the errors,
classified by evidence, when the jobs themselves cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sources_http import ReplayServer

from console.sources import slurmdb_parse as P
from console.sources.base import ErrorKind, SourceError
from console.sources.http import Auth
from console.sources.slurm import SlurmClient
from console.sources.slurmdb import TZ_MARGIN_S, SlurmdbAccountingSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurmdb"
AUTH = Auth("slurm_jwt", user="ops", secret="tok")


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    s = ReplayServer()
    try:
        yield s
    finally:
        s.close()


def body(series: str, name: str) -> bytes:
    return (FIXTURES / series / name).read_bytes()


def index(series: str) -> dict:
    return json.loads((FIXTURES / series / "INDEX.json").read_text())


def serve(server: ReplayServer, series: str, version: str, *, shares: bool = True) -> SlurmdbAccountingSource:
    """A source pinned to ``version`` whose server answers what ``series`` recorded."""
    for name in ("jobs", "associations", "qos"):
        server.add("GET", f"/slurmdb/{version}/{name}", 200, body(series, f"{version}_{name}.json"))
    if shares and (FIXTURES / series / f"{version}_shares.json").exists():
        server.add("GET", f"/slurm/{version}/shares", 200, body(series, f"{version}_shares.json"))
    client = SlurmClient.from_url(server.url, version, auth=AUTH)
    return SlurmdbAccountingSource(client, clock=lambda: 1_800_000_000.0)


def jobs_requests(server: ReplayServer) -> list[dict]:
    return [r for r in server.requests if r["path"].endswith("/jobs")]


def test_v0038_reads_jobs_limits_and_says_what_22_05_lacks(server: ReplayServer) -> None:
    meta = index("22.05")
    src = serve(server, "22.05", "v0.0.38")
    since, until = meta["period"]["since"], meta["period"]["until"]
    snap = src.read(since, until)
    expected = P.parse_jobs(json.loads(body("22.05", "v0.0.38_jobs.json"))["jobs"])
    assert sorted(snap.jobs, key=lambda j: int(j.job_id)) == sorted(
        [j for j in expected if P.overlaps(j, since, until)], key=lambda j: int(j.job_id))
    assert {j.state for j in snap.jobs} >= {"COMPLETED", "FAILED", "CANCELLED", "RUNNING"}
    assert (snap.since, snap.until, snap.taken_at) == (since, until, 1_800_000_000.0)
    limits = {(lim.scope, lim.name): lim for lim in snap.limits}
    assert limits[("account", "hku")].gpus == 40
    assert limits[("account", "hku")].gpu_minutes == 600_000
    assert limits[("account", "hku")].used_gpu_minutes is None  # 22.05 does not say: unknown
    assert limits[("qos", "interactive")].gpus == 4
    assert limits[("qos", "interactive")].gpu_minutes is None
    assert snap.shares == []
    assert any("/shares needs Slurm 23.02" in n and "v0.0.38" in n for n in snap.notes)
    assert any("QOS GPU-minute limits (GrpTRESMins) unknown" in n for n in snap.notes)
    assert not any(r["path"].endswith("/shares") for r in server.requests)  # not even asked


def test_v0038_asks_dates_widened_by_a_day_and_no_newer_parameters(server: ReplayServer) -> None:
    src = serve(server, "22.05", "v0.0.38")
    since = 1_796_342_400.0  # 2026-12-04T00:00:00Z
    src.read(since, since + 3600)
    # the server reads the words in its own zone: a day before to a day after, a day at a time
    assert [(r["query"]["start_time"], r["query"]["end_time"]) for r in jobs_requests(server)] == [
        (["2026-12-03T00:00:00"], ["2026-12-04T00:00:00"]),
        (["2026-12-04T00:00:00"], ["2026-12-05T00:00:00"]),
        (["2026-12-05T00:00:00"], ["2026-12-05T01:00:00"])]
    assert all("disable_truncate_usage_time" not in r["query"] for r in jobs_requests(server))


def test_chunks_a_long_period_and_keeps_each_job_once(server: ReplayServer) -> None:
    meta = index("24.11")
    src = serve(server, "24.11", "v0.0.42")
    since = float(meta["period"]["since"])
    src.chunk_s = 3600.0
    until = since + 2 * 3600
    snap = src.read(since, until)
    reqs = jobs_requests(server)
    # [since - a day, until + a day] in hours: 50 windows, each following the previous one
    assert len(reqs) == int((until - since + 2 * TZ_MARGIN_S) // 3600)
    edges = [(r["query"]["start_time"][0], r["query"]["end_time"][0]) for r in reqs]
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
    assert all(r["query"]["disable_truncate_usage_time"] == ["true"] for r in reqs)
    assert all(r["query"]["skip_steps"] == ["true"] for r in reqs)
    ids = [j.job_id for j in snap.jobs]
    assert len(ids) == len(set(ids))  # the same answer every chunk: still one record per job


def test_keeps_jobs_by_their_own_times_at_the_edges(server: ReplayServer) -> None:
    src = serve(server, "24.11", "v0.0.42")
    all_jobs = {j.job_id: j for j in P.parse_jobs(json.loads(body("24.11", "v0.0.42_jobs.json"))["jobs"])}
    pretrain = next(j for j in all_jobs.values() if j.gpus == 8 and j.state == "COMPLETED")
    assert pretrain.start is not None and pretrain.end is not None
    # A period starting exactly when the job ended keeps it (it ended inside); one starting a
    # second later does not; one ending exactly when it started does not.
    assert pretrain.job_id in {j.job_id for j in src.read(pretrain.end, pretrain.end + 60).jobs}
    assert pretrain.job_id not in {j.job_id for j in src.read(pretrain.end + 1, pretrain.end + 60).jobs}
    assert pretrain.job_id not in {j.job_id for j in src.read(pretrain.start - 60, pretrain.start).jobs}
    running = [j for j in all_jobs.values() if j.state == "RUNNING"]
    late = src.read(pretrain.end + 10_000, pretrain.end + 20_000).jobs
    assert {j.job_id for j in late} == {j.job_id for j in running}  # only what still runs
    assert all(j.end is None for j in late)


def test_v0042_fills_quota_use_and_fair_share_from_shares(server: ReplayServer) -> None:
    meta = index("24.11")
    src = serve(server, "24.11", "v0.0.42")
    snap = src.read(meta["period"]["since"], meta["period"]["until"])
    rows = P.share_rows(json.loads(body("24.11", "v0.0.42_shares.json")))
    used = P.used_gpu_minutes(rows)
    accounts = {lim.name: lim for lim in snap.limits if lim.scope == "account"}
    assert accounts["hku"].used_gpu_minutes == used["hku"] > 0
    assert accounts["hkbu"].used_gpu_minutes == used["hkbu"]
    qos = {lim.name: lim for lim in snap.limits if lim.scope == "qos"}
    assert qos["interactive"].gpu_minutes == 6000
    assert {f.account for f in snap.shares} == {"hku", "cuhk", "polyu", "hkust", "cityu", "hkbu"}
    assert snap.notes == ()


def test_missing_shares_and_qos_become_notes_not_zeros(server: ReplayServer) -> None:
    meta = index("24.11")
    src = serve(server, "24.11", "v0.0.42", shares=False)
    server.add("GET", "/slurmdb/v0.0.42/qos", 500, {"errors": [{"error": "Unable to query QOS"}]})
    snap = src.read(meta["period"]["since"], meta["period"]["until"])
    assert snap.jobs and snap.shares == []
    assert [lim for lim in snap.limits if lim.scope == "qos"] == []
    assert all(lim.used_gpu_minutes is None for lim in snap.limits)
    assert any(n.startswith("QOS limits unknown") and "Unable to query QOS" in n for n in snap.notes)
    assert any(n.startswith("fair share unknown") and "404" in n for n in snap.notes)


def test_no_slurmdb_plugin_is_a_config_error_in_words(server: ReplayServer) -> None:
    client = SlurmClient.from_url(server.url, "v0.0.42", auth=AUTH)
    src = SlurmdbAccountingSource(client)
    with pytest.raises(SourceError) as e:
        src.read(1_796_342_400.0, 1_796_346_000.0)
    assert e.value.kind is ErrorKind.CONFIG and e.value.status == 404
    assert "does not serve Slurm accounting" in e.value.message
    assert "openapi/slurmdbd" in e.value.message
    client38 = SlurmClient.from_url(server.url, "v0.0.38", auth=AUTH)
    with pytest.raises(SourceError) as e:
        SlurmdbAccountingSource(client38).read(1_796_342_400.0, 1_796_346_000.0)
    assert "openapi/dbv0.0.38" in e.value.message


def test_a_refused_time_is_a_query_error_with_slurm_words(server: ReplayServer) -> None:
    server.add("GET", "/slurmdb/v0.0.41/jobs", 200, {"jobs": [], "errors": [
        {"description": "Parsing of 1796369170 for timestamp failed", "error_number": 9202,
         "error": "Unable to convert Data type", "source": "#/end_time/"}]})
    src = SlurmdbAccountingSource(SlurmClient.from_url(server.url, "v0.0.41", auth=AUTH))
    with pytest.raises(SourceError) as e:
        src.read(1_796_342_400.0, 1_796_346_000.0)
    assert e.value.kind is ErrorKind.QUERY
    assert "Parsing of 1796369170 for timestamp failed" in e.value.message


def test_a_jobs_answer_without_a_list_is_a_bad_payload(server: ReplayServer) -> None:
    server.add("GET", "/slurmdb/v0.0.42/jobs", 200, {"jobs": {"1": {}}})
    src = SlurmdbAccountingSource(SlurmClient.from_url(server.url, "v0.0.42", auth=AUTH))
    with pytest.raises(SourceError) as e:
        src.read(1_796_342_400.0, 1_796_346_000.0)
    assert e.value.kind is ErrorKind.BAD_PAYLOAD


def test_22_05_unspecified_500_is_named_a_token_problem_only_when_ping_fails_too(
        server: ReplayServer) -> None:
    unspecified = {"errors": [{"error": "Unspecified error", "errno": -1}]}
    server.add("GET", "/slurmdb/v0.0.38/jobs", 500, unspecified)
    server.add("GET", "/slurm/v0.0.38/ping", 500, unspecified)
    src = SlurmdbAccountingSource(SlurmClient.from_url(server.url, "v0.0.38", auth=AUTH))
    with pytest.raises(SourceError) as e:
        src.read(1_796_342_400.0, 1_796_346_000.0)
    assert e.value.kind is ErrorKind.AUTH and "token rejected or expired" in e.value.message
    server.add("GET", "/slurm/v0.0.38/ping", 200, {"pings": []})
    with pytest.raises(SourceError) as e:
        src.read(1_796_342_400.0, 1_796_346_000.0)
    assert e.value.kind is ErrorKind.HTTP and "not the token" in e.value.message


def test_no_gpu_tres_anywhere_is_said(server: ReplayServer) -> None:
    job = {"job_id": 5, "account": "hku", "user": "u", "partition": "gpu", "cluster": "c",
           "state": {"current": ["COMPLETED"]}, "nodes": "gpu01", "qos": "normal",
           "time": {"submission": 100, "start": 110, "end": 200},
           "tres": {"allocated": [{"type": "cpu", "name": "", "id": 1, "count": 8}]}}
    server.add("GET", "/slurmdb/v0.0.42/jobs", 200, {"jobs": [job]})
    server.add("GET", "/slurmdb/v0.0.42/associations", 200, {"associations": []})
    server.add("GET", "/slurmdb/v0.0.42/qos", 200, {"qos": []})
    server.add("GET", "/slurm/v0.0.42/shares", 200, {"shares": {"shares": []}})
    src = SlurmdbAccountingSource(SlurmClient.from_url(server.url, "v0.0.42", auth=AUTH))
    snap = src.read(0.0, 1000.0)
    assert [(j.job_id, j.gpus) for j in snap.jobs] == [("5", 0)]
    assert any("AccountingStorageTRES=gres/gpu" in n for n in snap.notes)


def test_an_empty_period_is_refused() -> None:
    src = SlurmdbAccountingSource(SlurmClient.from_url("http://127.0.0.1:9", "v0.0.42", auth=AUTH))
    with pytest.raises(SourceError) as e:
        src.read(100.0, 100.0)
    assert e.value.kind is ErrorKind.CONFIG


def test_built_from_the_config_with_its_own_client_and_a_longer_read_timeout() -> None:
    from console.config import ClusterSettings, SlurmSettings
    from console.sources.slurmdb import MIN_READ_TIMEOUT_S, build_accounting_source

    assert build_accounting_source(ClusterSettings(name="lab")) is None  # no slurmrestd
    cluster = ClusterSettings(name="lab", slurm=SlurmSettings(
        url="http://127.0.0.1:6820", auth="slurm_jwt", user="ops", timeout_s=5.0,
        api_version="v0.0.42"))
    src = build_accounting_source(cluster)
    assert isinstance(src, SlurmdbAccountingSource)
    assert src.client.version == "v0.0.42" and src.client.pinned
    assert src.client.http.timeout == (3.05, MIN_READ_TIMEOUT_S)
    assert src.client.http.auth.kind == "slurm_jwt"
    assert src.name == "lab slurmdbd"


EMPTY = [(p.parent.name, p.name.split("_")[0]) for p in sorted(FIXTURES.glob("*/v*_jobs_empty.json"))]


@pytest.mark.parametrize(("series", "version"), EMPTY, ids=[f"{s}-{v}" for s, v in EMPTY])
def test_a_period_without_jobs_is_empty_not_an_error(server: ReplayServer, series: str,
                                                     version: str) -> None:
    """22.05 says "Nothing found" as an error (9003) and 24.11+ as a warning: both are no jobs."""
    src = serve(server, series, version)
    server.add("GET", f"/slurmdb/{version}/jobs", 200, body(series, f"{version}_jobs_empty.json"))
    snap = src.read(1_790_000_000.0, 1_790_003_600.0)
    assert snap.jobs == []
    assert not any("gres/gpu" in n for n in snap.notes)  # no jobs is not "no GPU accounting"


def test_the_empty_answers_of_every_release_are_recorded() -> None:
    assert {s for s, _ in EMPTY} == {"22.05", "24.11", "26.05"}


def _with_other_cluster(series: str, version: str) -> dict:
    """A recorded jobs answer plus a copy of its first job on another cluster of the slurmdbd."""
    answer = json.loads(body(series, f"{version}_jobs.json"))
    other = dict(answer["jobs"][0], cluster="other-cluster")
    answer["jobs"].append(other)
    return answer


def test_keeps_the_cluster_slurmrestd_names_as_its_own(server: ReplayServer) -> None:
    meta = index("24.11")
    src = serve(server, "24.11", "v0.0.42")
    server.add("GET", "/slurmdb/v0.0.42/jobs", 200, _with_other_cluster("24.11", "v0.0.42"))
    snap = src.read(meta["period"]["since"], meta["period"]["until"])
    assert src.served_cluster == "aisc-lab"  # meta.slurm.cluster of the answer
    expected = [j for j in P.parse_jobs(json.loads(body("24.11", "v0.0.42_jobs.json"))["jobs"])
                if P.overlaps(j, meta["period"]["since"], meta["period"]["until"])]
    assert sorted(snap.jobs, key=lambda j: int(j.job_id)) == sorted(
        expected, key=lambda j: int(j.job_id))  # the other cluster's copy is out
    assert not any("several clusters" in n for n in snap.notes)
    later = jobs_requests(server)[1:]
    assert later and all(r["query"]["cluster"] == ["aisc-lab"] for r in later)


def test_22_05_names_no_cluster_so_several_are_counted_together_and_said(
        server: ReplayServer) -> None:
    meta = index("22.05")
    src = serve(server, "22.05", "v0.0.38")
    server.add("GET", "/slurmdb/v0.0.38/jobs", 200, _with_other_cluster("22.05", "v0.0.38"))
    snap = src.read(meta["period"]["since"], meta["period"]["until"])
    assert src.served_cluster is None
    kept = [j for j in P.parse_jobs(json.loads(body("22.05", "v0.0.38_jobs.json"))["jobs"])
            if P.overlaps(j, meta["period"]["since"], meta["period"]["until"])]
    assert len(snap.jobs) == len(kept) + 1  # the other cluster's copy of job 1 counts too
    assert any("several clusters (aisc-lab, other-cluster)" in n for n in snap.notes)

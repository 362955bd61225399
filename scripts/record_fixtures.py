#!/usr/bin/env python3
"""Record the real answers the source tests replay, from the project's own loopback stack.

    python scripts/record_fixtures.py --out tests/fixtures/recorded

Why: the Prometheus, Alertmanager and slurmrestd source tests replay real answers (bodies,
statuses, error texts) instead of hand-written ones, because hand-written answers drift from
what servers really send. Those answers must live in the repository so that the tests run from
a plain clone, and a script must be able to make them again when the stack's shape or a server
version changes. This one starts ``scripts/stack.py`` into a temporary folder (and
VictoriaMetrics on loopback, scraping the same exporter, when the ``victoria-metrics`` package is
installed), asks every question the tests need, writes each answer as ``NAME.STATUS.json`` and
an index (``INDEX.json`` for the tests, ``INDEX.md`` for people), and stops everything it
started, also when a step fails.

What is rewritten, and only that: the stack's temporary folders become ``/srv/lab`` and the
machine's host name ``lab-host`` (nothing machine-specific is committed), and any token an
answer might echo becomes ``<redacted>`` (none of the servers echoes one today; the script checks
every body). Everything else is byte for byte.

Exit codes: 0 recorded; 3 the stack cannot run here (as ``scripts/stack.py``); 4 a service or a
recording step failed (the message says which).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

SCRIPTS = Path(__file__).resolve().parent
STACK = SCRIPTS / "stack.py"
PATH_PLACEHOLDER = "/srv/lab"
HOST_PLACEHOLDER = "lab-host"
REDACTED = "<redacted>"
BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.bm90LWEtdG9rZW4.c2lnbmF0dXJl"  # well-formed, never valid
V38 = "/slurm/v0.0.38"
UNKNOWN_JOB = 99999
UNKNOWN_SILENCE = "00000000-0000-0000-0000-000000000000"
EXIT_FAILED = 4


class RecordError(Exception):
    """A step of the recording failed; the message says which and why, in words."""


@dataclass
class Answer:
    """One recorded exchange: what was asked, what came back, and what it shows."""

    name: str
    method: str
    url: str  # path and query only: the port is the stack's own and changes every start
    status: int
    body: bytes
    shows: str

    @property
    def file(self) -> str:
        return f"{self.name}.{self.status}.json"


def http(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None,
         timeout: float = 30.0) -> tuple[int, bytes]:
    """One request; an HTTP error status is an answer like any other, not an exception."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass  # not up yet, or not the answer yet: ask again
        time.sleep(1.0)
    raise RecordError(f"gave up waiting for {what} after {timeout_s:.0f} s")


@dataclass
class Recorder:
    """Asks the running stack its questions and keeps the answers, scrubbed, in order."""

    info: dict
    secrets: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    shows_prefix: str = ""  # names another engine asked the same questions, in the index

    def scrub(self, body: bytes) -> bytes:
        """Folders and host name replaced, tokens redacted; the rest untouched."""
        if not body:
            return body
        text = body.decode("utf-8")
        folders = sorted({self.info["state_dir"], self.info.get("public_dir", ""),
                          self.info.get("root", "")} - {""},
                         key=len, reverse=True)
        for folder in folders:
            text = text.replace(folder, PATH_PLACEHOLDER).replace(
                folder.replace("/", "\\/"), PATH_PLACEHOLDER.replace("/", "\\/"))
        host = socket.gethostname()
        for fmt in ('"{}"', "//{}:", "//{}/", "\\/\\/{}:", "\\/\\/{}\\/"):  # plain, and "/" escaped
            text = text.replace(fmt.format(host), fmt.format(HOST_PLACEHOLDER))
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text.encode("utf-8")

    def ask(self, name: str, base: str, method: str, path: str, shows: str, *,
            headers: dict[str, str] | None = None, body: object = None,
            expect: int | None = None) -> Answer:
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        status, raw = http(method, self.info["urls"][base] + path, hdrs, data)
        if expect is not None and status != expect:
            raise RecordError(f"{name}: {method} {path} answered {status}, expected {expect}: "
                              f"{self.scrub(raw)[:200]!r}")
        answer = Answer(name, method, path, status, self.scrub(raw), self.shows_prefix + shows)
        self.answers.append(answer)
        return answer


def q(**params: str | int | float) -> str:
    return "?" + urlencode(params, quote_via=quote)


# ---------------------------------------------------------------------------------------------
# What is asked
# ---------------------------------------------------------------------------------------------


def host_label(info: dict) -> str:
    """The exporter's host label as the stack serves it (``Hostname`` or ``hostname``).

    Asked of the GPU series themselves: the label list also holds the labels of alerts and
    of the down target, which name the node their own way.
    """
    query = "count by (Hostname, hostname) (DCGM_FI_DEV_GPU_TEMP)"
    rows = json.loads(http("GET", info["urls"]["prometheus"] + "/api/v1/query" + q(query=query))[1])
    labels = {k for row in rows["data"]["result"] for k in row["metric"]}
    if len(labels) != 1:
        raise RecordError(f"the GPU series carry host labels {sorted(labels)}; expected one")
    return labels.pop()


def record_prometheus(r: Recorder, prefix: str, base: str, host: str, node: str) -> None:
    """The queries and metadata the Prometheus client and telemetry source tests replay."""
    now = int(time.time())
    h = host
    r.ask(f"{prefix}_query_instant_vector", base, "GET",
          "/api/v1/query" + q(query=f'DCGM_FI_DEV_GPU_TEMP{{{h}="{node}"}}'),
          f"an instant vector: the temperature of every GPU of {node}", expect=200)
    r.ask(f"{prefix}_query_scalar", base, "GET", "/api/v1/query" + q(query="scalar(max(DCGM_FI_DEV_GPU_TEMP))"),
          "a scalar() answer (VictoriaMetrics answers it as a one-sample vector)", expect=200)
    r.ask(f"{prefix}_query_syntax_error", base, "GET",
          "/api/v1/query" + q(query=f"sum by ({h} (DCGM_FI_DEV_GPU_UTIL)"),
          "a PromQL syntax error")
    r.ask(f"{prefix}_query_range", base, "GET", "/api/v1/query_range" + q(
        query=f"avg by ({h}) (DCGM_FI_DEV_GPU_UTIL)", start=now - 60, end=now, step=15),
          "a range query: one matrix row per node", expect=200)
    r.ask(f"{prefix}_series", base, "GET",
          "/api/v1/series" + q(**{"match[]": f'DCGM_FI_DEV_XID_ERRORS{{{h}="{node}"}}'}),
          f"the XID series of {node}", expect=200)
    r.ask(f"{prefix}_labels", base, "GET", "/api/v1/labels", "every label name", expect=200)
    r.ask(f"{prefix}_alerts", base, "GET", "/api/v1/alerts", "the rule alerts (firing and pending)",
          expect=200)
    r.ask(f"{prefix}_buildinfo", base, "GET", "/api/v1/status/buildinfo", "the server's version",
          expect=200)
    if prefix != "prom":
        return
    r.ask("prom_query_up", base, "GET", "/api/v1/query" + q(query="up"),
          "every scrape target's up, the down exporter's included", expect=200)
    r.ask("prom_query_empty_result", base, "GET",
          "/api/v1/query" + q(query=f'DCGM_FI_DEV_GPU_TEMP{{{h}="nope"}}'),
          "a query that matches nothing: success with an empty vector", expect=200)
    r.ask("prom_query_sum_by_host", base, "GET",
          "/api/v1/query" + q(query=f"sum by ({h}) (DCGM_FI_DEV_POWER_USAGE)"),
          "power summed per node", expect=200)
    r.ask("prom_query_unknown_func", base, "GET", "/api/v1/query" + q(query="foo(up)"),
          "an unknown function", expect=400)
    r.ask("prom_query_missing_param", base, "GET", "/api/v1/query", "no query parameter", expect=400)
    r.ask("prom_query_exec_error_many_to_many", base, "GET",
          "/api/v1/query" + q(query=f"DCGM_FI_DEV_GPU_UTIL + on({h}) DCGM_FI_DEV_GPU_TEMP"),
          "an execution error: many-to-many matching", expect=422)
    r.ask("prom_query_range_too_many_points", base, "GET",
          "/api/v1/query_range" + q(query="up", start=0, end=now, step=1),
          "a range query over 11,000 points per series", expect=400)
    r.ask("prom_label_host_values", base, "GET", f"/api/v1/label/{h}/values",
          "every node name the exporter reports", expect=200)
    r.ask("prom_targets", base, "GET", "/api/v1/targets", "the scrape targets, one of them down",
          expect=200)


def record_vm(r: Recorder, host: str, node: str) -> None:
    """The same questions of VictoriaMetrics: the answers that differ from Prometheus'."""
    r.shows_prefix = "VictoriaMetrics, same exporter: "
    try:
        record_prometheus(r, "vmcmp", "victoriametrics", host, node)
    finally:
        r.shows_prefix = ""


def record_alertmanager(r: Recorder, host: str) -> None:
    """Alerts, groups, and a silence's life: created, shown, silencing, expired, unknown."""
    r.ask("am_status", "alertmanager", "GET", "/api/v2/status", "version and config", expect=200)
    r.ask("am_alerts", "alertmanager", "GET", "/api/v2/alerts", "the firing alerts", expect=200)
    r.ask("am_alerts_groups", "alertmanager", "GET", "/api/v2/alerts/groups",
          "the alerts grouped by the route's group_by", expect=200)
    r.ask("am_silences_empty", "alertmanager", "GET", "/api/v2/silences", "no silence yet", expect=200)
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"
    silence = {"matchers": [{"name": "alertname", "value": "AiscStackTestAlert", "isRegex": False,
                             "isEqual": True},
                            {"name": host, "value": "gpu0[0-9]", "isRegex": True, "isEqual": True}],
               "startsAt": iso(now - 60), "endsAt": iso(now + 3600), "createdBy": "ops-console",
               "comment": "maintenance: fan replacement"}
    sid = json.loads(r.ask("am_silence_create", "alertmanager", "POST", "/api/v2/silences",
                           "a silence created", body=silence, expect=200).body)["silenceID"]
    r.ask("am_silence_create_bad", "alertmanager", "POST", "/api/v2/silences",
          "a silence without matchers, refused", body=dict(silence, matchers=[]), expect=422)
    r.ask("am_silence_get", "alertmanager", "GET", f"/api/v2/silence/{sid}", "the silence", expect=200)
    r.ask("am_silences", "alertmanager", "GET", "/api/v2/silences", "one active silence", expect=200)

    def silenced() -> bool:
        alerts = json.loads(http("GET", r.info["urls"]["alertmanager"] + "/api/v2/alerts")[1])
        return any(a["status"]["silencedBy"] == [sid] for a in alerts)
    wait_until("Alertmanager to mark the alert silenced", silenced, 30)
    r.ask("am_alerts_with_silenced", "alertmanager", "GET",
          "/api/v2/alerts" + q(active="true", silenced="true", inhibited="true"),
          "the firing alerts, one of them silenced", expect=200)
    r.ask("am_silence_delete", "alertmanager", "DELETE", f"/api/v2/silence/{sid}",
          "the silence expired", expect=200)
    r.ask("am_silence_delete_again", "alertmanager", "DELETE", f"/api/v2/silence/{sid}",
          "the same silence expired again: 200 again", expect=200)
    r.ask("am_silence_delete_unknown", "alertmanager", "DELETE", f"/api/v2/silence/{UNKNOWN_SILENCE}",
          "a silence that never existed", expect=500)
    r.ask("am_silences_after_delete", "alertmanager", "GET", "/api/v2/silences",
          "the silence, now expired", expect=200)


def slurm_token(info: dict, user: str, lifespan_s: int) -> str:
    out = subprocess.run(["scontrol", "token", f"username={user}", f"lifespan={lifespan_s}"],
                         env=slurm_env(info), capture_output=True, text=True, timeout=20)
    m = re.search(r"SLURM_JWT=(\S+)", out.stdout)
    if not m:
        raise RecordError(f"`scontrol token username={user}` printed no token: {out.stderr.strip()}")
    return m.group(1)


def slurm_env(info: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = info["slurm_conf"]
    return env


#: Jobs the recorder adds to the stack's mix before the listings, so that the answers also
#: show the ends and shapes a job list has on a real cluster: (name, sbatch options, state).
EXTRA_JOBS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("exits-3", ("-p", "cpu", "-w", "cpu01", "-c", "1", "-t", "5", "--wrap", "exit 3"), "FAILED"),
    ("array-held", ("--array=1-3", "--hold", "--gres=gpu:1", "-t", "30", "--wrap", "sleep 600"),
     "PENDING"),
    ("no-limit-held", ("-p", "cpu", "--hold", "-t", "UNLIMITED", "--wrap", "sleep 600"), "PENDING"),
    ("cancelled", ("--hold", "-t", "30", "--wrap", "sleep 600"), "CANCELLED"),
)


def sbatch(info: dict, name: str, *opts: str) -> int:
    out = subprocess.run(["sbatch", "--parsable", "-J", name, "--account=hku", "-o", "/dev/null", *opts],
                         env=slurm_env(info), capture_output=True, text=True, timeout=20,
                         cwd=info["state_dir"])
    if out.returncode != 0:
        raise RecordError(f"sbatch of job {name} failed: {out.stderr.strip()}")
    return int(out.stdout.strip().split(";")[0])


def submit_extra_jobs(info: dict) -> list[dict]:
    jobs = []
    for name, opts, state in EXTRA_JOBS:
        job_id = sbatch(info, name, *opts)
        if state == "CANCELLED":
            subprocess.run(["scancel", str(job_id)], env=slurm_env(info), capture_output=True, timeout=20)
        jobs.append({"id": job_id, "name": name, "expected_state": state})
    return jobs


def wait_extra_jobs(info: dict, jobs: list[dict]) -> None:
    seen: dict[str, str] = {}

    def settled() -> bool:
        # %A: an array's own job id (%i would say "12_[1-3]")
        out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%A %T"], env=slurm_env(info),
                             capture_output=True, text=True, timeout=10, check=False).stdout
        seen.clear()
        for line in out.splitlines():
            job_id, _, state = line.strip().partition(" ")
            seen[job_id] = state
        return all(seen.get(str(j["id"])) == j["expected_state"] for j in jobs)
    try:
        wait_until("the added jobs reaching their states", settled, 60)
    except RecordError as exc:
        raise RecordError(f"{exc}; squeue says {seen}") from None


def record_slurm(r: Recorder) -> None:
    """Listings first (the cluster as the stack built it), then auth failures, then changes."""
    info = r.info
    user = info["slurm_user"]
    auth = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": info["token"]}
    ask = lambda name, method, path, shows, headers=auth, expect=None: r.ask(
        name, "slurm", method, path, shows, headers=headers, expect=expect)
    ask("slurm_openapi_v3", "GET", "/openapi/v3", "the OpenAPI document: which API versions exist",
        expect=200)
    ask("slurm_ping", "GET", f"{V38}/ping", "slurmctld answers", expect=200)
    ask("slurm_diag", "GET", f"{V38}/diag", "scheduler statistics", expect=200)
    ask("slurm_nodes", "GET", f"{V38}/nodes", "every node, with gres, state and reason", expect=200)
    ask("slurm_jobs", "GET", f"{V38}/jobs", "the stack's job mix", expect=200)
    ask("slurm_partitions", "GET", f"{V38}/partitions", "the partitions", expect=200)
    ask("slurm_v0.0.37_nodes", "GET", "/slurm/v0.0.37/nodes", "the nodes in the older API", expect=200)
    ask("slurm_v0.0.37_jobs", "GET", "/slurm/v0.0.37/jobs", "the jobs in the older API", expect=200)
    ask("slurm_v0.0.36_ping", "GET", "/slurm/v0.0.36/ping", "ping in the oldest API served", expect=200)
    # "Nothing changed since T": an hour ahead, and a moment ago as a poll asks it (Slurm
    # 22.05 answers the latter on nodes with 500 "Unspecified error", the bad token's body).
    ahead, recent = int(time.time()) + 3600, int(time.time()) - 2
    ask("slurm_jobs_update_time_future", "GET", f"{V38}/jobs?update_time={ahead}",
        "jobs unchanged since update_time (an hour ahead)")
    ask("slurm_nodes_update_time_future", "GET", f"{V38}/nodes?update_time={ahead}",
        "nodes unchanged since update_time (an hour ahead)")
    ask("slurm_jobs_update_time_recent", "GET", f"{V38}/jobs?update_time={recent}",
        "jobs unchanged since update_time (2 s before the request)")
    ask("slurm_nodes_update_time_recent", "GET", f"{V38}/nodes?update_time={recent}",
        "nodes unchanged since update_time (2 s before the request)")
    ask("slurm_job_unknown", "GET", f"{V38}/job/{UNKNOWN_JOB}", "a job id that does not exist")
    ask("slurm_unknown_path", "GET", f"{V38}/nope", "a path slurmrestd does not serve")
    ask("slurm_node_update_not_in_v0038", "POST", f"{V38}/node/gpu01",
        "draining a node over REST: not in v0.0.38")
    # Authentication failures. The expired token lived 1 s: wait past its end.
    ask("slurm_auth_none", "GET", f"{V38}/ping", "no user name, no token", headers={}, expect=401)
    ask("slurm_auth_token_only_no_user", "GET", f"{V38}/jobs", "a token without a user name",
        headers={"X-SLURM-USER-TOKEN": info["token"]}, expect=401)
    bad = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": BAD_TOKEN}
    ask("slurm_auth_bad_token", "GET", f"{V38}/ping", "a token slurmctld did not sign", headers=bad)
    ask("slurm_auth_bad_token_jobs", "GET", f"{V38}/jobs", "a bad token on a listing", headers=bad)
    expired_token = slurm_token(info, user, 1)
    r.secrets.append(expired_token)
    time.sleep(2.5)
    expired = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": expired_token}
    ask("slurm_auth_expired_token", "GET", f"{V38}/ping", "an expired token", headers=expired)
    ask("slurm_auth_expired_token_jobs", "GET", f"{V38}/jobs", "an expired token on a listing",
        headers=expired)
    # Changes last, so the listings above show the stack as it was built.
    nobody_token = slurm_token(info, "nobody", 600)
    r.secrets.append(nobody_token)
    running = next(j["id"] for j in info["jobs"] if j["expected_state"] == "RUNNING")
    ask("slurm_as_nobody_cancel_root_job", "DELETE", f"{V38}/job/{running}",
        "user nobody cancelling root's job: refused",
        headers={"X-SLURM-USER-NAME": "nobody", "X-SLURM-USER-TOKEN": nobody_token})
    job = sbatch(r.info, "to-cancel", "--hold", "-t", "10", "--wrap", "sleep 600")
    ask("slurm_job_cancel", "DELETE", f"{V38}/job/{job}", "a held job cancelled", expect=200)
    ask("slurm_job_cancel_again", "DELETE", f"{V38}/job/{job}", "the same job cancelled again")
    ask("slurm_job_after_cancel", "GET", f"{V38}/job/{job}", "the cancelled job", expect=200)
    ask("slurm_job_cancel_unknown", "DELETE", f"{V38}/job/{UNKNOWN_JOB}", "cancelling a job id that "
        "does not exist")
    # A poll after a node-only change: a short job ran on cpu01 since T (node records changed,
    # partitions did not), the situation of a quiet cluster's steady polling.
    since = int(time.time())
    time.sleep(1.2)
    short = sbatch(info, "short", "-p", "cpu", "-w", "cpu01", "-c", "1", "-t", "5", "--wrap", "true")
    wait_extra_jobs(info, [{"id": short, "expected_state": "COMPLETED"}])
    after = ask("slurm_nodes_update_time_after_job", "GET", f"{V38}/nodes?update_time={since}",
                "nodes since T, when only a short job on cpu01 ran since T (no partition change)")
    if after.status == 500:
        after.shows += ": Slurm 22.05's 500 'Unspecified error', the same body as a bad token's"
    ask("slurm_jobs_update_time_after_job", "GET", f"{V38}/jobs?update_time={since}",
        "jobs since T, when a short job on cpu01 ran since T")


# ---------------------------------------------------------------------------------------------
# Stack, VictoriaMetrics, and the output folder
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_victoriametrics(info: dict, folder: Path) -> subprocess.Popen | None:
    """VictoriaMetrics scraping the stack's exporter, or None when the package is absent.

    ``-search.latencyOffset=1s``: by default it hides the last 30 s of samples, which on a
    stack a minute old would leave most queries empty.
    """
    binary = shutil.which("victoria-metrics")
    if binary is None:
        return None
    exporter = info["urls"]["exporter"].split("//", 1)[1].split("/", 1)[0]
    cfg = folder / "vm-scrape.yml"
    cfg.write_text("global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: dcgm\n"
                   f"    honor_labels: true\n    static_configs:\n      - targets: [\"{exporter}\"]\n")
    port = free_port()
    with open(folder / "victoria-metrics.log", "ab") as log:
        proc = subprocess.Popen([binary, f"-httpListenAddr=127.0.0.1:{port}",
                                 f"-storageDataPath={folder / 'vm-data'}", f"-promscrape.config={cfg}",
                                 "-search.latencyOffset=1s", "-retentionPeriod=1d"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    info["urls"]["victoriametrics"] = f"http://127.0.0.1:{port}"
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def query_result(base: str, query: str) -> list:
    return json.loads(http("GET", base + "/api/v1/query" + q(query=query))[1])["data"]["result"]


def rule_alerts(info: dict) -> list[dict]:
    return json.loads(http("GET", info["urls"]["prometheus"] + "/api/v1/alerts")[1])["data"]["alerts"]


def wait_for_prometheus(info: dict) -> None:
    """Until the answers show what the tests need, and no later.

    Samples for the range query (20 s), the down target, the always-firing test alerts in
    Alertmanager, and the console's own DcgmExporterDown still *pending* (its ``for: 1m`` has
    not run out): so the rule alerts hold both states and Alertmanager exactly the test alerts.
    """
    prom, am = info["urls"]["prometheus"], info["urls"]["alertmanager"]

    def ready() -> bool:
        states = {(a["labels"]["alertname"], a["state"]) for a in rule_alerts(info)}
        return (("DcgmExporterDown", "pending") in states
                and sum(state == "firing" for _, state in states) >= 2
                and len(json.loads(http("GET", am + "/api/v2/alerts")[1])) >= 2
                and bool(query_result(prom, "up == 0"))
                and bool(query_result(prom, "count_over_time(up[1m]) >= 4")))
    wait_until("Prometheus samples, a down target and its alerts", ready, 120)


def wait_for_victoriametrics(info: dict) -> None:
    vm = info["urls"]["victoriametrics"]
    wait_until("VictoriaMetrics samples",
               lambda: bool(query_result(vm, "count_over_time(DCGM_FI_DEV_GPU_TEMP[1m]) >= 4")), 120)


def write_out(out: Path, answers: list[Answer], facts: dict) -> None:
    """Replace the folder's recorded files with these answers, plus INDEX.json and INDEX.md."""
    out.mkdir(parents=True, exist_ok=True)
    try:  # remove what the last recording wrote; files this script did not write are left alone
        previous = json.loads((out / "INDEX.json").read_text())["answers"]
    except (OSError, ValueError, KeyError):
        previous = []
    for entry in previous:
        (out / Path(entry["file"]).name).unlink(missing_ok=True)
    for a in answers:
        (out / a.file).write_bytes(a.body)
    index = {"recorded": time.strftime("%Y-%m-%d"), "by": "scripts/record_fixtures.py",
             "paths_rewritten_to": PATH_PLACEHOLDER, "host_name_rewritten_to": HOST_PLACEHOLDER,
             "stack": facts,
             "answers": [{"file": a.file, "method": a.method, "request": a.url, "status": a.status,
                          "shows": a.shows} for a in answers]}
    (out / "INDEX.json").write_text(json.dumps(index, indent=1) + "\n")
    lines = ["# Recorded answers of the project's loopback stack",
             "",
             "Written by `python scripts/record_fixtures.py --out tests/fixtures/recorded` (run it",
             "again to re-record). File = NAME.STATUS.json, the body as the server sent it, except",
             f"that the stack's temporary folders read `{PATH_PLACEHOLDER}` and the host name "
             f"`{HOST_PLACEHOLDER}`.",
             "Ports are the stack's own (chosen free at each start); INDEX.json holds the same",
             "list and the stack's facts (ports, nodes, jobs) for the tests.",
             "",
             "| file | request | shows |", "|---|---|---|"]
    lines += [f"| {a.file} | {a.method} {a.url.replace('|', '%7C')} | {a.shows} |" for a in answers]
    (out / "INDEX.md").write_text("\n".join(lines) + "\n")


def stack_facts(info: dict, host: str, with_vm: bool) -> dict:
    """What the tests may rely on, from the stack's own record (no token, no folder)."""
    private = ("token", "state_dir", "public_dir", "root", "slurm_conf", "munge_socket", "processes",
               "urls", "started", "stopped", "jobs")
    facts = {k: v for k, v in info.items() if not k.startswith(private)}
    facts["ports"] = info["ports"]
    facts["host_label"] = host
    facts["jobs"] = [{k: j[k] for k in ("id", "name", "account", "expected_state", "expected_reason")}
                     for j in info.get("jobs", [])]
    facts["victoriametrics"] = with_vm
    return facts


def record(out: Path, python: str, with_vm: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="aisc-record-"))
    state = tmp / "stack"
    vm: subprocess.Popen | None = None
    try:
        # The stack's commands run in the caller's folder, and Slurm records that folder as
        # its jobs' working directory: run from the state folder, which scrub() rewrites.
        state.mkdir()
        res = subprocess.run([python, str(STACK), "start", "--dir", str(state)], cwd=state)
        if res.returncode != 0:
            return res.returncode
        info = json.loads((state / "stack.json").read_text())
        recorder = Recorder(info, secrets=[info["token"]])
        if with_vm:
            vm = start_victoriametrics(info, tmp)
            if vm is None:
                print("record: victoria-metrics is not installed; the vmcmp_* answers are not "
                      "recorded (apt-get install victoria-metrics)", file=sys.stderr)
        extra = submit_extra_jobs(info)
        wait_for_prometheus(info)
        host = host_label(info)
        values = http("GET", info["urls"]["prometheus"] + f"/api/v1/label/{host}/values")[1]
        node = min(json.loads(values)["data"])  # the first node the exporter reports
        record_prometheus(recorder, "prom", "prometheus", host, node)
        record_alertmanager(recorder, host)
        (alerts,) = [a for a in recorder.answers if a.name == "prom_alerts"]
        if ("DcgmExporterDown", "pending") not in {(a["labels"]["alertname"], a["state"])
                                                   for a in json.loads(alerts.body)["data"]["alerts"]}:
            raise RecordError("DcgmExporterDown fired before it was recorded pending; run again")
        if vm is not None:
            wait_for_victoriametrics(info)
            record_vm(recorder, host, node)
        wait_extra_jobs(info, extra)
        record_slurm(recorder)
        for a in recorder.answers:  # scrub() replaced them; this proves it
            if any(s.encode() in a.body for s in recorder.secrets):
                raise RecordError(f"{a.file} still holds a token")
            for local in (str(tmp), os.getcwd()):
                if local.encode() in a.body or local.replace("/", "\\/").encode() in a.body:
                    raise RecordError(f"{a.file} names a folder of this machine ({local})")
        facts = stack_facts(info, host, vm is not None)
        facts["exporter_node_queried"] = node
        facts["extra_jobs"] = extra
        write_out(out, recorder.answers, facts)
        total = sum(len(a.body) for a in recorder.answers)
        print(f"recorded {len(recorder.answers)} answers ({total / 1e6:.2f} MB) into {out}")
        return 0
    except RecordError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if vm is not None:
            stop_process(vm)
        if (state / "stack.json").exists():
            subprocess.run([python, str(STACK), "stop", "--dir", str(state)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to (re)write, e.g. tests/fixtures/recorded")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that can import the console, for the stack's exporter")
    ap.add_argument("--no-victoriametrics", action="store_true",
                    help="do not start VictoriaMetrics (the vmcmp_* answers are then not recorded)")
    args = ap.parse_args(argv)
    return record(args.out.resolve(), args.python, not args.no_victoriametrics)


if __name__ == "__main__":
    sys.exit(main())

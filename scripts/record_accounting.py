#!/usr/bin/env python3
"""Record slurmrestd's accounting answers (slurmdbd) of each Slurm release into the test fixtures.

    python scripts/record_accounting.py --dir STATE_DIR        # a stack started with --accounting
    python scripts/record_accounting.py --suite bookworm --suite trixie --suite sid  # start, record, stop

Why: the accounting reader (console/sources/slurmdb.py) must read every API version's
``/slurmdb/vX/jobs``, ``associations``, ``qos`` and ``/slurm/vX/shares`` without a server, and
hand-written fixtures drift from what servers send. This asks the loopback stack of
scripts/stack.py (started with ``--accounting``: slurmdbd, tenants with GPU quotas, finished
jobs) for every version it serves and writes each answer, with the stack's folders rewritten
to ``/srv/lab`` (as scripts/record_slurm_versions.py does), to
``tests/fixtures/slurmdb/<release series>/``:

- ``vX_jobs.json``, ``vX_associations.json``, ``vX_qos.json``, ``vX_shares.json``: 200 answers;
- ``vX_jobs_empty.json``: the jobs of a period a month before the stack existed (none);
- ``vX_NAME.STATUS.json``: any other answer (``/shares`` is 404 on 22.05);
- ``INDEX.json``: each request, its status and file, the period asked for, and ``truth``: what
  the same release's own ``sacct``, ``sacctmgr`` and ``sshare`` said at that moment (times as
  epoch seconds via ``SLURM_TIME_FORMAT=%s``), which tests/console/test_slurmdb_recorded.py
  compares every version against.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record_slurm_versions as rsv  # noqa: E402 - the scripts folder: get() and scrub()
import stack_roots  # noqa: E402 - run a command inside the stack's root

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "slurmdb"
STACK = Path(__file__).resolve().parent / "stack.py"
SACCT_FIELDS = "JobID,Account,User,Partition,State,Submit,Start,End,ElapsedRaw,AllocTRES,QOS,NodeList"


def truth(info: dict, start: str, end: str) -> dict:
    """The same release's commands: job records, limits and fair share, as plain values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = info["slurm_conf"]
    env["SLURM_TIME_FORMAT"] = "%s"  # epoch seconds: no time zone to guess

    def run(*argv: str) -> list[list[str]]:
        out = subprocess.run(stack_roots.slurm_argv(info, list(argv)), env=env, capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return [line.split("|") for line in out.splitlines() if line.strip()]

    names = SACCT_FIELDS.split(",")
    jobs = [dict(zip(names, row)) for row in
            run("sacct", "-X", "-a", "-n", "-P", "-S", start, "-E", end, f"--format={SACCT_FIELDS}")]
    assoc = [dict(zip(("Cluster", "Account", "User", "Partition", "GrpTRES", "GrpTRESMins"), row))
             for row in run("sacctmgr", "-n", "-P", "show", "assoc",
                            "format=Cluster,Account,User,Partition,GrpTRES,GrpTRESMins")]
    qos = [dict(zip(("Name", "GrpTRES", "GrpTRESMins"), row))
           for row in run("sacctmgr", "-n", "-P", "show", "qos", "format=Name,GrpTRES,GrpTRESMins")]
    shares = [dict(zip(("Account", "User", "RawShares", "GrpTRESRaw"), row))
              for row in run("sshare", "-a", "-n", "-P", "-o", "Account,User,RawShares,GrpTRESRaw")]
    return {"sacct": jobs, "assoc": assoc, "qos": qos, "sshare": shares}


def scrub(body: bytes, info: dict) -> bytes:
    """As record_slurm_versions.scrub, and the checkout's folder too: the plain stack submits
    its job mix from the caller's folder, which becomes the jobs' working directory."""
    return rsv.scrub(body, info).replace(
        str(REPO).replace("/", "\\/").encode(), rsv.PLACEHOLDER.replace("/", "\\/").encode()).replace(
        str(REPO).encode(), rsv.PLACEHOLDER.encode())


def utc_words(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def steady(t: dict) -> list[dict]:
    """The job records without what moves by itself (a running job's elapsed seconds)."""
    return [{k: v for k, v in j.items() if k != "ElapsedRaw"} for j in t["sacct"]]


def served(base: str, headers: dict[str, str]) -> tuple[list[str], list[str]]:
    """(/slurmdb/ versions, /slurm/ versions) the server's OpenAPI document names."""
    status, body = rsv.get(f"{base}/openapi/v3", headers)
    if status != 200:
        raise SystemExit(f"record: /openapi/v3 answered {status}; is the token valid?")
    paths = json.loads(body).get("paths", {})
    # v0.0.36/37 (22.05's older plugins) are left out: the console reads v0.0.38 and newer.
    db = sorted({p.split("/")[2] for p in paths if p.startswith("/slurmdb/v")} - {"v0.0.36", "v0.0.37"})
    ctld = sorted({p.split("/")[2] for p in paths if p.startswith("/slurm/v")})
    if not db:
        raise SystemExit("record: this slurmrestd serves no /slurmdb/ paths; start the stack "
                         "with --accounting")
    return db, ctld


def record(state_dir: Path, out_root: Path = OUT) -> Path:
    info = json.loads((state_dir / "stack.json").read_text())
    base = info["urls"]["slurm"]
    auth = {"X-SLURM-USER-NAME": info["slurm_user"], "X-SLURM-USER-TOKEN": info["token"]}
    db_versions, ctld_versions = served(base, auth)
    # The period: from an hour before the stack started to an hour from now, in UTC words
    # (the server reads them in its own zone; the stack's machine runs in UTC).
    since = int(info["started_at"] - info["started_s"]) - 3600
    until = int(time.time()) + 3600
    words = [utc_words(t) for t in (since, until)]
    query = urllib.parse.urlencode({"start_time": words[0], "end_time": words[1], "skip_steps": "true"})
    # A period long before the stack existed: what "no jobs" looks like in each version.
    empty = urllib.parse.urlencode({"start_time": utc_words(since - 30 * 86400),
                                    "end_time": utc_words(since - 29 * 86400), "skip_steps": "true"})
    release = ""
    index: list[dict] = []
    files: dict[str, bytes] = {}
    for attempt in range(5):  # the answers and the truth must describe one moment
        index.clear()
        files.clear()
        before = truth(info, words[0], words[1])
        for v in db_versions:
            asks = [("jobs", f"/slurmdb/{v}/jobs?{query}"), ("associations", f"/slurmdb/{v}/associations"),
                    ("qos", f"/slurmdb/{v}/qos")]
            asks.append(("shares", f"/slurm/{v}/shares"))
            asks.append(("jobs_empty", f"/slurmdb/{v}/jobs?{empty}"))
            for name, path in asks:
                status, body = rsv.get(base + path, auth)
                if status == 200 and not release:
                    meta = json.loads(body).get("meta", {})
                    release = (meta.get("slurm") or meta.get("Slurm") or {}).get("release", "")
                fname = f"{v}_{name}.json" if status == 200 else f"{v}_{name}.{status}.json"
                if body:
                    files[fname] = scrub(body, info)
                index.append({"request": f"GET {path}", "status": status,
                              "file": fname if body else None})
        after = truth(info, words[0], words[1])
        if steady(before) == steady(after):
            break
        time.sleep(2)
    else:
        raise SystemExit("record: the job records kept changing while they were recorded")
    series = ".".join(release.split(".")[:2]) if release else info.get("slurm_series", "unknown")
    folder = out_root / series
    folder.mkdir(parents=True, exist_ok=True)
    try:  # replace what this script recorded last time
        previous = json.loads((folder / "INDEX.json").read_text())["answers"]
    except (OSError, ValueError, KeyError):
        previous = []
    for entry in previous:
        if entry.get("file"):
            (folder / entry["file"]).unlink(missing_ok=True)
    for fname, body in files.items():
        (folder / fname).write_bytes(body)
    acct = info.get("accounting", {})
    (folder / "INDEX.json").write_text(json.dumps({
        "slurm_release": release, "slurmdb_versions": db_versions, "slurm_versions": ctld_versions,
        "recorded": time.strftime("%Y-%m-%d"),
        "stack": "scripts/stack.py start --accounting --suite " + info.get("suite", "bookworm"),
        "period": {"since": since, "until": until, "start_time": words[0], "end_time": words[1]},
        "recorded_at": int(time.time()), "cluster": info.get("slurm_cluster_name"),
        "tenants": acct.get("tenants"), "qos": acct.get("qos"),
        "history_jobs": acct.get("history_jobs"),
        "paths_rewritten_to": rsv.PLACEHOLDER, "truth": after, "answers": index}, indent=1) + "\n")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, action="append", default=[],
                    help="state folder of a running stack started with --accounting")
    ap.add_argument("--suite", action="append", default=[],
                    help="start an accounting stack of this suite (bookworm, trixie, sid), record, stop")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not args.dir and not args.suite:
        ap.error("give --dir or --suite")
    for d in args.dir:
        print(f"recorded {record(d.resolve(), args.out)}")
    for suite in args.suite:
        with tempfile.TemporaryDirectory(prefix=f"aisc-record-{suite}-") as tmp:
            state = Path(tmp) / "stack"
            res = subprocess.run([sys.executable, str(STACK), "start", "--accounting", "--suite", suite,
                                  "--dir", str(state)])
            try:
                if res.returncode != 0:
                    return res.returncode
                print(f"recorded {record(state, args.out)}")
            finally:
                subprocess.run([sys.executable, str(STACK), "stop", "--dir", str(state)],
                               capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Record slurmrestd's answers of each Slurm release of the matrix into the test fixtures.

    python scripts/record_slurm_versions.py --dir STATE_DIR          # a stack already running
    python scripts/record_slurm_versions.py --suite trixie --suite sid   # start, record, stop

Why: the parser tests must cover every REST API version a site runs (v0.0.40 to v0.0.45)
without a live server, and hand-written fixtures drift from what servers really send. This
asks a live slurmrestd of the loopback stack (scripts/stack.py) for every version it serves
and writes each answer, byte for byte but for the stack's own folders (rewritten to
``/srv/lab`` so nothing machine-specific is committed), to
``tests/fixtures/slurm/<release series>/``:

- ``vX_nodes.json``, ``vX_jobs.json``, ``vX_partitions.json``, ``vX_ping.json``: 200 answers;
- ``vX_NAME.STATUS.json``: the other answers (``update_time`` on a quiet cluster, a bad token,
  no token); a 304 has no body and appears in the index only;
- ``openapi_v3.paths.json``: the server's OpenAPI document reduced to its path names (the
  whole document is nearly 1 MB; the version detection needs only the paths);
- ``INDEX.json``: for each file, the request, the HTTP status and the Slurm release, and
  ``truth``: what sinfo/squeue/scontrol of the same release said at that moment, which the
  parser tests (tests/console/test_slurm_recorded_versions.py) compare every version against.

Files of the folder this script did not write (another recording's) are left alone.

Re-run it after a root was rebuilt with newer packages (``stack_roots.py remove SUITE``, then this).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "slurm"
STACK = Path(__file__).resolve().parent / "stack.py"
PLACEHOLDER = "/srv/lab"
HOST_PLACEHOLDER = "lab-host"
BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.bm90LWEtdG9rZW4.c2lnbmF0dXJl"  # well-formed, never valid


def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrub(body: bytes, info: dict) -> bytes:
    """The stack's folders (as JSON writes them, "/" possibly escaped) become /srv/lab."""
    text = body.decode("utf-8")
    folders = sorted({info["state_dir"], info.get("public_dir", ""), info.get("root", "")} - {""},
                     key=len, reverse=True)
    for folder in folders:
        text = text.replace(folder, PLACEHOLDER).replace(folder.replace("/", "\\/"),
                                                         PLACEHOLDER.replace("/", "\\/"))
    # The machine's own name (ping's "hostname") is not the project's business either.
    text = text.replace(f'"{socket.gethostname()}"', f'"{HOST_PLACEHOLDER}"')
    return text.encode("utf-8")


def ground_truth(info: dict) -> dict:
    """What the same release's own commands say (inside its root): the parsers' expected answer.

    Node states as ``sinfo`` words, jobs as ``squeue`` sees them, and each running job's GPUs
    as (node, index) pairs from ``scontrol -d show job``.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import stack_roots  # the scripts folder: run a command inside the stack's root

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = info["slurm_conf"]

    def run(*argv: str) -> str:
        return subprocess.run(stack_roots.slurm_argv(info, list(argv)), env=env, capture_output=True,
                              text=True, timeout=30, check=True).stdout

    nodes = {}
    for line in run("sinfo", "-h", "-N", "-o", "%N|%T|%E").splitlines():
        name, state, reason = line.split("|")
        nodes[name] = {"state": state.rstrip("*~#!%$@^-"), "responding": not state.endswith("*"),
                       "reason": "" if reason == "none" else reason}
    jobs = {}
    for line in run("squeue", "-h", "-o", "%i|%T|%r|%a").splitlines():
        jid, state, reason, account = line.split("|")
        detail = run("scontrol", "-d", "show", "job", jid)
        gpus = []
        for node, idx in re.findall(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=\S*?\(IDX:([\d,-]+)\)", detail):
            for part in idx.split(","):
                lo, _, hi = part.partition("-")
                gpus += [[node, g] for g in range(int(lo), int(hi or lo) + 1)]
        jobs[jid] = {"state": state, "reason": reason, "account": account, "gpus": sorted(gpus)}
    return {"nodes": nodes, "jobs": jobs}


def served_versions(base: str, headers: dict[str, str]) -> tuple[list[str], dict]:
    status, body = get(f"{base}/openapi/v3", headers)
    if status != 200:
        raise SystemExit(f"record: /openapi/v3 answered {status}; is the token valid?")
    spec = json.loads(body)
    versions = sorted({p.split("/")[2] for p in spec.get("paths", {}) if p.startswith("/slurm/v")})
    reduced = {"openapi": spec.get("openapi"), "info": spec.get("info"),
               "paths": {p: {} for p in sorted(spec.get("paths", {}))}}
    return versions, reduced


def record(state_dir: Path, out_root: Path = OUT) -> Path:
    """Record every answer of the stack in ``state_dir``; return the folder written."""
    info = json.loads((state_dir / "stack.json").read_text())
    base = info["urls"]["slurm"]
    auth = {"X-SLURM-USER-NAME": info["slurm_user"], "X-SLURM-USER-TOKEN": info["token"]}
    versions, reduced = served_versions(base, auth)
    release = ""
    index: list[dict] = []
    files: dict[str, bytes] = {}

    def ask(version: str, name: str, query: str = "", headers: dict[str, str] | None = None,
            label: str = "") -> int:
        nonlocal release
        path = f"/slurm/{version}/{name}" + (f"?{query}" if query else "")
        status, body = get(base + path, auth if headers is None else headers)
        if status == 200 and not release:
            meta = json.loads(body).get("meta", {})
            release = (meta.get("slurm") or {}).get("release", "")
        stem = f"{version}_{name}" + ("" if not query else "_" + query.split("=")[0] + label)
        if headers is not None:
            stem += "_badtoken" if headers.get("X-SLURM-USER-TOKEN") else "_notoken"
        fname = f"{stem}.json" if status == 200 and not query and headers is None else f"{stem}.{status}.json"
        entry = {"request": f"GET {path}", "status": status, "file": fname if body else None}
        if body:
            files[fname] = scrub(body, info)
        index.append(entry)
        return status

    # The answers and the truth must describe one moment: record until the truth taken before
    # and after the answers agree (a stack that just started is still settling).
    for _ in range(10):
        truth = ground_truth(info)
        index.clear()
        files.clear()
        for v in versions:
            for name in ("nodes", "jobs", "partitions", "ping"):
                ask(v, name)
        if ground_truth(info) == truth:
            break
        time.sleep(3)
    else:
        raise SystemExit("record: the cluster kept changing while it was recorded")
    ahead = int(time.time()) + 3600  # nothing can have changed since: the "unchanged" answers
    recent = int(time.time()) - 2  # nodes: what a poll shortly after a change gets
    for v in versions:
        ask(v, "jobs", f"update_time={ahead}", label="_ahead")
        ask(v, "nodes", f"update_time={ahead}", label="_ahead")
        ask(v, "nodes", f"update_time={recent}", label="_recent")
    newest = versions[-1]
    ask(newest, "jobs", headers={"X-SLURM-USER-NAME": info["slurm_user"], "X-SLURM-USER-TOKEN": BAD_TOKEN})
    ask(newest, "jobs", headers={})
    series = ".".join(release.split(".")[:2]) if release else info.get("slurm_series", "unknown")
    folder = out_root / series
    folder.mkdir(parents=True, exist_ok=True)
    try:  # replace what this script recorded last time; other files in the folder are not ours
        previous = json.loads((folder / "INDEX.json").read_text())["answers"]
    except (OSError, ValueError, KeyError):
        previous = []
    for entry in previous:
        if entry.get("file"):
            (folder / entry["file"]).unlink(missing_ok=True)
    for fname, body in files.items():
        (folder / fname).write_bytes(body)
    (folder / "openapi_v3.paths.json").write_text(json.dumps(reduced, indent=1) + "\n")
    for entry in index:  # the update_time answers depend on the moment: say which
        entry["request"] = entry["request"].replace(
            f"update_time={ahead}", "update_time=(an hour ahead: nothing changed since)").replace(
            f"update_time={recent}", "update_time=(2 s before the request)")
    (folder / "INDEX.json").write_text(json.dumps(
        {"slurm_release": release, "api_versions": versions, "recorded": time.strftime("%Y-%m-%d"),
         "stack": "scripts/stack.py start --suite " + info.get("suite", "bookworm"),
         "paths_rewritten_to": PLACEHOLDER, "host_name_rewritten_to": HOST_PLACEHOLDER,
         "truth": truth, "answers": index}, indent=1) + "\n")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, help="state folder of a running stack")
    ap.add_argument("--suite", action="append", default=[], help="start a stack of this suite, record, stop")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not args.dir and not args.suite:
        ap.error("give --dir or --suite")
    if args.dir:
        print(f"recorded {record(args.dir.resolve(), args.out)}")
    for suite in args.suite:
        with tempfile.TemporaryDirectory(prefix=f"aisc-record-{suite}-") as tmp:
            state = Path(tmp) / "stack"
            res = subprocess.run([sys.executable, str(STACK), "start", "--suite", suite, "--dir", str(state)])
            try:
                if res.returncode != 0:
                    return res.returncode
                print(f"recorded {record(state, args.out)}")
            finally:
                subprocess.run([sys.executable, str(STACK), "stop", "--dir", str(state)], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

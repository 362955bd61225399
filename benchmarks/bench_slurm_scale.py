"""How slurmrestd itself answers as the job list grows, and what the console adds to it.

    python benchmarks/bench_slurm_scale.py [--suite sid] [--jobs 2500 5000 9500] [--repeat 3]

Starts the project's own real stack (``scripts/stack.py``, Debian's Slurm: ``bookworm`` 22.05,
``trixie`` 24.11, ``sid`` 26.05) in a temporary folder, submits held jobs with ``sbatch`` (one
record each: pending array tasks stay one record until they start) up to each ``--jobs``
figure, and for each API version the server offers times ``GET /jobs``:

* on a bare socket: when the first byte arrives (slurmrestd builds its whole answer first) and
  when the last one does;
* through the console's own Slurm source (``/nodes`` and ``/jobs``, decoded while they arrive,
  the job table built), with the decoding helper process and without it, in the same rounds:
  wall time and CPU time (this process's and the helper's),
  with a deadline long enough for any of these sizes (the default, 60 s, is the point of the
  figures).

Slurm's default ``MaxJobCount`` is 10,000, which the stack keeps: larger figures are refused by
``sbatch``. Stops the stack at the end (only what it started). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.sources import decode_helper  # noqa: E402
from console.sources.base import SourceError  # noqa: E402
from console.sources.http import Auth  # noqa: E402
from console.sources.slurm import SUPPORTED_VERSIONS, SlurmClient, SlurmSchedulerSource  # noqa: E402


class Stack:
    """The stack's facts (``stack.json``) and its Slurm commands, inside its root if it has one."""

    def __init__(self, folder: Path) -> None:
        self.info: dict[str, Any] = json.loads((folder / "stack.json").read_text())
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        self.env["SLURM_CONF"] = self.info["slurm_conf"]

    def run(self, *argv: str) -> str:
        root = self.info.get("root")
        res = subprocess.run(["chroot", root, *argv] if root else list(argv), env=self.env,
                             capture_output=True, text=True, timeout=120)
        if res.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
        return res.stdout

    def job_count(self) -> int:
        return len([x for x in self.run("squeue", "-h", "-r", "-o", "%i").split() if x])

    def submit_held(self, n: int) -> None:
        """``n`` held one-GPU jobs, four ``sbatch`` at a time (each is a process)."""
        def one(i: int) -> None:
            self.run("sbatch", "--hold", "--parsable", "-J", f"scale-{i % 97}", "--account=hku",
                     "-o", "/dev/null", "--gres=gpu:1", "-t", "60", "--wrap", "sleep 1")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(n)))


def bare_get(url: str, path: str, headers: dict[str, str]) -> tuple[float, float, int]:
    """(first byte, last byte, bytes) of one GET on a plain socket, seconds from sending."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=600) as s:
        t0 = time.perf_counter()
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        first = s.recv(1 << 20)
        t_first = time.perf_counter() - t0
        n = len(first)
        while chunk := s.recv(1 << 20):
            n += len(chunk)
        return t_first, time.perf_counter() - t0, n


def helper_cpu_s() -> float:
    """CPU seconds the decoding helper process has used so far (0 without one)."""
    h = decode_helper._HELPER
    if h is None or not h.alive:
        return 0.0
    with open(f"/proc/{h.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # from the state on: utime, stime at 11, 12
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def console_poll(url: str, version: str, auth: Auth) -> tuple[float, float, str]:
    """(wall, CPU of this process and the decoding helper, what) of one poll by the console's
    Slurm source."""
    client = SlurmClient.from_url(url, version=version, auth=auth, timeout=(3.05, 600.0))
    src = SlurmSchedulerSource(client, use_update_time=False)
    h0 = helper_cpu_s()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        (update,) = src.fetch()
        what = f"{len(update.jobs.job_id):,} jobs" if update.jobs is not None else "no jobs"
    except SourceError as e:
        what = f"{e.kind.value}: {e.message}"
    finally:
        client.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu + max(0.0, helper_cpu_s() - h0), what


def _helper(on: bool) -> None:
    """Let the console's Slurm poll use the decoding helper process, or not."""
    os.environ["AISC_CONSOLE_DECODE_HELPER"] = "1" if on else "0"


def measure(stack: Stack, versions: list[str], repeat: int) -> None:
    """Per round: a bare GET, the console's poll with the decoding helper, and without it, one
    after the other, so that each ratio compares answers of the same minute (slurmrestd's own
    time varies by half between rounds)."""
    info = stack.info
    url = info["urls"]["slurm"]
    user = info.get("slurm_user") or "root"
    headers = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": info["token"]}
    auth = Auth("slurm_jwt", user, info["token"])
    was = os.environ.get("AISC_CONSOLE_DECODE_HELPER")
    try:
        for v in versions:
            _helper(True)
            console_poll(url, v, auth)  # the helper process starts with the first large answer
            bare, polls = [], {True: [], False: []}
            for _ in range(repeat):
                bare.append(bare_get(url, f"/slurm/{v}/jobs", headers))
                for on in (True, False):
                    _helper(on)
                    polls[on].append(console_poll(url, v, auth))
            first = statistics.median(b[0] for b in bare)
            last = statistics.median(b[1] for b in bare)
            print(f"  {v}: {bare[-1][2] / 1e6:6.1f} MB; slurmrestd first byte {first:6.2f} s, last "
                  f"{last:6.2f} s (runs: {', '.join(f'{b[1]:.2f}' for b in bare)})")
            for on in (True, False):
                wall = statistics.median(p[0] for p in polls[on])
                cpu = statistics.median(p[1] for p in polls[on])
                ratio = statistics.median(p[0] / b[1] for p, b in zip(polls[on], bare))
                print(f"    console poll, helper {'on ' if on else 'off'}: {wall:6.2f} s wall, "
                      f"{cpu * 1000:4.0f} ms CPU (with the helper's), {ratio:.2f}x the bare GET of "
                      f"its round (median) -> {polls[on][-1][2]}")
    finally:
        if was is None:
            os.environ.pop("AISC_CONSOLE_DECODE_HELPER", None)
        else:
            os.environ["AISC_CONSOLE_DECODE_HELPER"] = was


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="sid", choices=("bookworm", "trixie", "sid"))
    ap.add_argument("--jobs", type=int, nargs="+", default=[2500, 5000, 9500])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--versions", nargs="*", help="API versions (default: every one offered)")
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="aisc-scale-"))
    script = [sys.executable, str(ROOT / "scripts" / "stack.py"), "--dir", str(folder),
              "--suite", args.suite]
    started = subprocess.run([*script, "start"], capture_output=True, text=True)
    try:
        if started.returncode:
            print(f"the stack did not start: {started.stderr.strip()[-2000:]}")
            return 1
        stack = Stack(folder)
        # the versions the console reads (22.05 also offers v0.0.36 and v0.0.37)
        versions = args.versions or [v for v in stack.info["slurm_api_versions"]
                                     if v in SUPPORTED_VERSIONS]
        release = stack.run("sinfo", "--version").strip()
        print(f"{release} ({args.suite}), API {', '.join(versions)}; "
              f"medians of {args.repeat}")
        for target in sorted(args.jobs):
            have = stack.job_count()
            t0 = time.perf_counter()
            if target > have:
                stack.submit_held(target - have)
            n = stack.job_count()
            print(f"{n:,} jobs in the queue (submitted in {time.perf_counter() - t0:.0f} s)")
            measure(stack, versions, args.repeat)
    finally:
        subprocess.run([*script, "stop"], capture_output=True, text=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: does the console's engine level off over a simulated day at 4,096 nodes?

    python benchmarks/bench_soak.py [--minutes 10] [--nodes 4096] [--hours 24] [--sample-s 30]
                                    [--speed X] [--engine auto|thread|process]

Runs the simulated cluster headless (no GUI, so no Qt timers to count: the engine's own timers
are threads, counted with them) with the engine chosen
as the CLI chooses it (``--engine auto``: a worker process above 1,024 nodes) and a time warp
(``--speed``, by default 50 % more than makes ``--hours`` simulated hours pass in
``--minutes`` of wall time, as polls run late on a busy machine). Every ``--sample-s`` wall
seconds it samples the resident memory, threads and open file descriptors of this process and
of the engine's worker process, and the simulated time of the newest frame, with the sizes
of what a frame carries that grows with the simulated day (job table rows, open anomalies,
rows of the accounting view: this month's jobs, by design). At the end it prints RSS over
time, the RSS slope of each process over the last half of the run in MiB per wall hour and per
simulated hour (a leak shows as a slope that does not fall towards zero), and thread and
descriptor counts first, last and at most. It ends once ``--hours`` have been simulated, or
after ``--minutes`` of wall time, whichever comes first.

Why: a console left on a wall for weeks must not grow. Figures are printed, never asserted
(machines are noisy). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from console.config import demo_settings
from console.engine_process import make_engine
from console.model import Frame

SIM_INTERVAL_S = 2.0  # the simulator's poll interval (SimSettings.interval_s)


@dataclass(frozen=True)
class Sample:
    """One look at the processes: wall seconds since the start and what /proc says."""

    wall_s: float
    sim_h: float  # simulated hours since the first frame (NaN before it)
    frames: int
    jobs: int  # rows of the newest frame's job table (-1 before the first frame)
    anomalies: int  # open anomalies in the newest frame
    acct_rows: int  # jobs in the frame's accounting view (-1 without one)
    rss_mib: float  # this process
    threads: int
    fds: int
    child_rss_mib: float  # the engine's worker process (NaN when in-process)
    child_threads: int
    child_fds: int


def _proc_status(pid: int, key: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def rss_mib(pid: int | None) -> float:
    """Resident set size in MiB; NaN when the process is gone or there is no /proc."""
    if pid is None:
        return math.nan
    v = _proc_status(pid, "VmRSS")  # "123456 kB"
    return int(v.split()[0]) / 1024 if v else math.nan


def threads(pid: int | None) -> int:
    """Thread count; -1 when unknown."""
    v = _proc_status(pid, "Threads") if pid is not None else None
    return int(v) if v else -1


def fds(pid: int | None) -> int:
    """Open file descriptors; -1 when unknown."""
    if pid is None:
        return -1
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def slope_mib_per_h(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (wall seconds, MiB) in MiB per hour; NaN with < 2 points."""
    pts = [(t, v) for t, v in samples if not math.isnan(v)]
    if len(pts) < 2:
        return math.nan
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    if den == 0:
        return math.nan
    return sum((t - mt) * (v - mv) for t, v in pts) / den * 3600.0


def accounting_rows(frame: Frame | None) -> int:
    """Jobs in the frame's accounting view (a month of them grows with the month), -1 if none."""
    view = getattr(frame, "accounting", None)
    table = getattr(view, "table", None)
    job_id = getattr(table, "job_id", None)
    return -1 if job_id is None else len(job_id)


def run(args: argparse.Namespace) -> list[Sample]:
    wall = args.minutes * 60.0
    # Polls run late on a busy machine (the simulator at 4,096 nodes takes about 12 ms per
    # 2 s step, so a poll at speed 180 computes for 2 s): ask 50 % more than the bare ratio,
    # and end once --hours have passed.
    speed = args.speed or 1.5 * args.hours * 3600.0 / wall
    settings = demo_settings(seed=args.seed, nodes=args.nodes, speed=speed, faults="default")
    engine = make_engine(settings, mode=args.engine)
    kind = type(engine).__name__
    print(f"soak: {args.nodes:,} simulated nodes x 8 GPUs, speed {speed:g} "
          f"({SIM_INTERVAL_S * speed / 3600:.3f} simulated h per poll of {SIM_INTERVAL_S:g} s), "
          f"{args.minutes:g} min of wall time, engine {kind} (--engine {args.engine}), "
          "headless: no GUI, no Qt timers")
    first: list[float] = []
    lock = threading.Lock()
    frames = [0]

    def on_frame(frame: Frame) -> None:
        with lock:
            frames[0] += 1
            if not first:
                first.append(frame.data_now or frame.time)

    me = os.getpid()
    samples: list[Sample] = []
    engine.subscribe(on_frame)
    with engine:
        engine.wait_ready(timeout=300)
        t0 = time.monotonic()
        next_at = t0
        while True:
            now = time.monotonic()
            if now >= next_at:
                f = engine.latest_frame()
                with lock:
                    sim_h = ((f.data_now or f.time) - first[0]) / 3600 if f and first else math.nan
                    n = frames[0]
                child = getattr(engine, "pid", None)
                jobs = len(f.jobs.job_id) if f else -1  # what the engine holds grows with these
                s = Sample(now - t0, sim_h, n, jobs, len(f.anomalies) if f else 0,
                           accounting_rows(f), rss_mib(me), threads(me), fds(me),
                           rss_mib(child), threads(child), fds(child))
                samples.append(s)
                print(f"  {s.wall_s / 60:5.1f} min  sim {s.sim_h:6.2f} h  frames {s.frames:5d}  "
                      f"jobs {s.jobs:6d}  anomalies {s.anomalies:4d}  acct {s.acct_rows:6d}  "
                      f"RSS {s.rss_mib:7.1f} MiB (worker {s.child_rss_mib:7.1f} MiB)  "
                      f"threads {s.threads}/{s.child_threads}  fds {s.fds}/{s.child_fds}",
                      flush=True)
                next_at += args.sample_s
                if s.wall_s >= wall or s.sim_h >= args.hours:
                    break
            time.sleep(max(0.0, min(next_at, t0 + wall + 0.01) - time.monotonic()))
        restarts = getattr(engine, "restarts", 0)
    if restarts:
        print(f"  the worker process was restarted {restarts} times")
    return samples


def report(samples: list[Sample]) -> None:
    if not samples:
        print("no samples")
        return
    a, z = samples[0], samples[-1]
    half = [s for s in samples if s.wall_s >= z.wall_s / 2]
    warp = z.sim_h / max(z.wall_s / 3600, 1e-9)  # simulated hours per wall hour

    def per_sim_h(slope: float) -> str:
        return f"{slope / warp:+.2f}" if warp > 0 and not math.isnan(slope) else "nan"

    total = [(s.wall_s, s.rss_mib + (0.0 if math.isnan(s.child_rss_mib) else s.child_rss_mib))
             for s in samples]
    print("summary")
    print(f"  wall {z.wall_s / 60:.1f} min, simulated {z.sim_h:.2f} h, {z.frames} frames "
          f"({warp:.0f} simulated h per wall h)")
    mine = slope_mib_per_h([(s.wall_s, s.rss_mib) for s in half])
    print(f"  RSS this process   first {a.rss_mib:7.1f} MiB  last {z.rss_mib:7.1f} MiB  "
          f"max {max(s.rss_mib for s in samples):7.1f} MiB  slope over the last half "
          f"{mine:+.1f} MiB per wall h = {per_sim_h(mine)} MiB per simulated h")
    if not math.isnan(z.child_rss_mib):
        child = slope_mib_per_h([(s.wall_s, s.child_rss_mib) for s in half])
        print(f"  RSS worker process first {a.child_rss_mib:7.1f} MiB  last {z.child_rss_mib:7.1f} "
              f"MiB  max {max(s.child_rss_mib for s in samples):7.1f} MiB  slope over the last "
              f"half {child:+.1f} MiB per wall h = {per_sim_h(child)} MiB per simulated h")
    both = slope_mib_per_h([p for p in total if p[0] >= z.wall_s / 2])
    print(f"  RSS both           slope over the last half {both:+.1f} MiB per wall hour "
          f"= {per_sim_h(both)} MiB per simulated hour")
    print(f"  job table rows     {a.jobs} -> {z.jobs}, open anomalies {a.anomalies} -> {z.anomalies}, "
          f"accounting view rows {a.acct_rows} -> {z.acct_rows}")
    print(f"  threads            this process {a.threads} -> {z.threads} "
          f"(max {max(s.threads for s in samples)}), worker {a.child_threads} -> "
          f"{z.child_threads} (max {max(s.child_threads for s in samples)})")
    print(f"  file descriptors   this process {a.fds} -> {z.fds} (max {max(s.fds for s in samples)}), "
          f"worker {a.child_fds} -> {z.child_fds} (max {max(s.child_fds for s in samples)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="wall time of the run")
    ap.add_argument("--nodes", type=int, default=4096)
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours to pass")
    ap.add_argument("--speed", type=float, default=0.0,
                    help="time warp (default: --hours simulated in --minutes)")
    ap.add_argument("--sample-s", type=float, default=30.0, help="wall seconds between samples")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--engine", choices=("auto", "thread", "process"), default="auto")
    args = ap.parse_args()
    report(run(args))


if __name__ == "__main__":
    main()

"""What a fleet of simulated clusters costs: memory, CPU and frame rate, one engine per cluster.

    python benchmarks/bench_fleet.py [--clusters 3] [--nodes 384] [--seconds 20] [--mode auto]

Builds a `console.fleet.Fleet` of ``--clusters`` simulated clusters of ``--nodes`` nodes (8 GPUs
each, different seeds), runs it for ``--seconds`` of wall time at the simulator's default 2 s
interval, and prints the resident memory of this process (and of worker processes, in
"process" mode) before and after, the CPU time per wall second, and the frames each cluster
delivered. It also times `fleet_rows` over the newest frames. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path

from console.config import ClusterSettings, Settings, SimSettings
from console.fleet import Fleet, fleet_rows


def rss_mib(pid: int | None = None) -> float:
    """Resident set size from /proc (Linux); NaN where there is no /proc."""
    path = Path(f"/proc/{pid or os.getpid()}/statm")
    try:
        pages = int(path.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=384)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--mode", choices=("auto", "thread", "process"), default="auto")
    args = ap.parse_args()

    settings = Settings(clusters=tuple(
        ClusterSettings(name=f"sim-{i + 1}", sim=SimSettings(seed=7 + i, nodes=args.nodes))
        for i in range(args.clusters)))
    base = rss_mib()
    fleet = Fleet(settings, mode=args.mode)
    counts = {n: 0 for n in fleet.names}
    lock = threading.Lock()

    def count(name: str, _frame: object) -> None:
        with lock:
            counts[name] += 1

    fleet.subscribe(count)
    built = rss_mib()
    with fleet:
        fleet.wait_ready(timeout=60)
        c0, t0 = cpu_s(), time.monotonic()
        time.sleep(args.seconds)
        c1, t1 = cpu_s(), time.monotonic()
        frames = fleet.latest_frames()
        after = rss_mib()
        children = [getattr(fleet.engine(n), "pid", None) for n in fleet.names]
        child_rss = [rss_mib(p) for p in children if p]
        reps = 1000
        r0 = time.perf_counter()
        for _ in range(reps):
            fleet_rows(frames, time.time())
        rows_ms = (time.perf_counter() - r0) / reps * 1000
    print(f"fleet of {args.clusters} simulated clusters x {args.nodes} nodes x 8 GPUs, mode {args.mode}")
    print(f"  engines: {', '.join(type(fleet.engine(n)).__name__ for n in fleet.names)}")
    print(f"  RSS before {base:.0f} MiB, engines built {built:.0f} MiB, after {args.seconds:.0f} s "
          f"{after:.0f} MiB (+{after - base:.0f} MiB, {(after - base) / args.clusters:.1f} MiB per cluster)")
    if child_rss:
        print(f"  worker processes: {', '.join(f'{r:.0f} MiB' for r in child_rss)}")
    print(f"  CPU of this process: {(c1 - c0) / (t1 - t0) * 100:.1f} % of one core")
    print(f"  frames per cluster in {t1 - t0:.0f} s: "
          + ", ".join(f"{n} {c}" for n, c in counts.items()))
    print(f"  fleet_rows over {args.clusters} frames: {rows_ms * 1000:.0f} \u00b5s")


if __name__ == "__main__":
    main()

"""Print what the simulated cluster costs per tick at the default size and at 4,096 nodes.

Figures are printed, never asserted (machines are noisy). Run:
``python benchmarks/bench_sim.py [--ticks N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from console.sim import SimCluster, SimConfig

T0 = 1_800_000_000.0


def bench(nodes: int, ticks: int) -> None:
    t = time.perf_counter()
    c = SimCluster(SimConfig(nodes=nodes, t0=T0))
    build_ms = (time.perf_counter() - t) * 1000
    step, updates, jobs_ms = [], [], []
    for _ in range(ticks):
        t = time.perf_counter()
        c.step(c.config.tick_s)
        step.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        c.updates()
        updates.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        c.job_table()
        jobs_ms.append((time.perf_counter() - t) * 1000)
    jobs = c.job_table()
    print(f"{nodes:>5} nodes x {c.config.gpus_per_node} GPUs ({nodes * c.config.gpus_per_node:,} GPUs), "
          f"{len(jobs):,} jobs in the table")
    print(f"      build {build_ms:8.1f} ms")
    for label, xs in (("tick (step 5 s)", step), ("updates()", updates), ("job_table()", jobs_ms)):
        print(f"      {label:<16} median {statistics.median(xs):7.2f} ms   max {max(xs):7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ticks", type=int, default=60)
    args = ap.parse_args()
    for nodes in (384, 4096):
        bench(nodes, args.ticks)


if __name__ == "__main__":
    main()

"""What the simulated centre's accounting costs in memory: its history and one view.

    python benchmarks/bench_accounting_memory.py [--nodes 4096] [--tracemalloc]

Builds a simulated cluster (starting 2026-12-04 06:00 UTC, so the history holds November and
four days of December, as at the start of a month), backfills its accounting history, then
does one read and builds the view the panels get, printing the resident memory each step adds,
the time each takes, the view's rows and its pickled size (what crosses to the GUI process once
per read). With ``--tracemalloc`` it also prints the bytes Python allocated for the history
(slower, and tracemalloc's own bookkeeping inflates the RSS figures: run without it for those).

Why: the history is the engine's largest resident (benchmarks/bench_soak.py shows the worker
process's RSS set by it). Figures are printed, never asserted. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
import tracemalloc
from datetime import timezone
from pathlib import Path

from console.accounting.service import price_book, read_window_start
from console.accounting.view import build_view
from console.config import TenantSettings, demo_settings
from console.sim.accounting import SimAccounting
from console.sim.cluster import SimCluster
from console.sim.config import SimConfig

T0 = 1_796_342_400.0 + 6 * 3600  # 2026-12-04 06:00 UTC


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=4096)
    ap.add_argument("--tracemalloc", action="store_true")
    args = ap.parse_args()
    cluster = SimCluster(SimConfig(nodes=args.nodes, t0=T0, faults="none"))
    acc = SimAccounting(cluster, tz=timezone.utc)
    cluster.step(600)
    gc.collect()
    base = rss_mib()
    if args.tracemalloc:
        tracemalloc.start()
    t = time.perf_counter()
    acc._ensure_backfill()
    took = time.perf_counter() - t
    gc.collect()
    traced = f", Python allocated {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB" \
        if args.tracemalloc else ""
    print(f"{args.nodes:,} nodes: backfilled history {took:.1f} s, RSS +{rss_mib() - base:.0f} MiB"
          f"{traced}")
    extra = [TenantSettings(x.account, x.display, str(x.kind), float(x.subsidy),
                            float(x.price_per_gpu_hour)) for x in cluster.tenants]
    book = price_book(demo_settings(nodes=args.nodes).clusters[0], extra)
    now = cluster.time
    t = time.perf_counter()
    snap = acc.read(read_window_start(now, timezone.utc), now)
    # A columnar read carries the simulator's observations in its table (console/accounting/).
    own = {} if hasattr(snap.jobs, "table") else acc.observations()
    view = build_view(snap, book, timezone.utc, "simulator", own)
    took = time.perf_counter() - t
    del snap, own
    gc.collect()
    print(f"one read and its view {took:.1f} s, RSS +{rss_mib() - base:.0f} MiB since the start")
    blob = pickle.dumps(view, protocol=5)
    print(f"view: {len(view.table):,} rows, {len(blob) / 2**20:.1f} MiB pickled")


if __name__ == "__main__":
    main()

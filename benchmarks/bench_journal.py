"""The journal's cost per poll in the engine, and its database size per simulated day.

Drives the simulated cluster synchronously on simulated time (as bench_detection does), builds
every frame with the state (and the anomaly detector, so its events are journalled too), and
hands each frame to a `JournalRecorder` writing a real database in a temporary folder:

- engine thread: the cost of handing the frame over (``offer``), all the engine pays;
- journal thread: diffing, minute aggregation and the batched write, per poll;
- size: the database (with its WAL checkpointed) after the simulated span, scaled to a day.

Usage::

    python benchmarks/bench_journal.py --nodes 4096 --hours 2
    python benchmarks/bench_journal.py --nodes 384 --hours 24 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_detection import SimDriver  # noqa: E402 - benchmarks are scripts, not a package

from console.journal_recorder import JournalRecorder  # noqa: E402
from console.journal_store import JournalStore  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def run(nodes: int, hours: float, tick_s: float, seed: int, detect: bool) -> dict[str, object]:
    drv = SimDriver(nodes, seed, tick_s, "default", 1.0)
    if not detect:
        drv.state.detector = None
    folder = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    path = folder / "journal.sqlite3"
    rec = JournalRecorder(path, clock=lambda: drv.sim.time)
    polls = int(hours * 3600 / tick_s)
    offer_ms: list[float] = []
    journal_ms: list[float] = []
    build_ms: list[float] = []
    for _ in range(polls):
        t0 = time.perf_counter()
        frame = drv.poll()
        t1 = time.perf_counter()
        rec.offer(frame)  # what the engine thread pays
        t2 = time.perf_counter()
        rec.drain()  # what the journal thread does with it (diff, minute, batched write)
        t3 = time.perf_counter()
        build_ms.append((t1 - t0) * 1000)
        offer_ms.append((t2 - t1) * 1000)
        journal_ms.append((t3 - t2) * 1000)
    rec.stop()
    with JournalStore(path) as s:
        s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = s.counts()
        kinds = dict(s.db.execute("SELECT kind, count(*) FROM events GROUP BY kind "
                                  "ORDER BY 2 DESC").fetchall())
    size = sum(p.stat().st_size for p in folder.iterdir())
    span_h = polls * tick_s / 3600
    return {
        "nodes": nodes, "gpus": nodes * 8, "polls": polls, "tick_s": tick_s,
        "simulated_hours": round(span_h, 2),
        "engine_offer_ms": {"median": round(statistics.median(offer_ms), 4),
                            "max": round(max(offer_ms), 4)},
        "journal_per_poll_ms": {"median": round(statistics.median(journal_ms), 2),
                                "p95": round(pct(journal_ms, 0.95), 2),
                                "max": round(max(journal_ms), 2),
                                "mean": round(statistics.fmean(journal_ms), 2)},
        "frame_build_ms_median": round(statistics.median(build_ms), 1),
        "rows": counts, "events_by_kind": kinds,
        "db_bytes": size, "db_mb_per_day": round(size / 1e6 * 24 / span_h, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=4096)
    ap.add_argument("--hours", type=float, default=2.0, help="simulated span")
    ap.add_argument("--tick", type=float, default=15.0, help="simulated seconds per poll")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-detect", action="store_true", help="no anomaly detector (faster)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = run(a.nodes, a.hours, a.tick, a.seed, not a.no_detect)
    if a.json:
        print(json.dumps(out, indent=1))
        return
    j = out["journal_per_poll_ms"]
    assert isinstance(j, dict)
    print(f"{out['nodes']:,} nodes, {out['polls']} polls of {out['tick_s']:.0f} s "
          f"({out['simulated_hours']} simulated hours)")
    print(f"  engine thread (offer): median {out['engine_offer_ms']['median']} ms")  # type: ignore[index]
    print(f"  journal thread per poll: median {j['median']} ms, p95 {j['p95']} ms, "
          f"max {j['max']} ms, mean {j['mean']} ms")
    print(f"  database: {out['db_bytes']:,} bytes -> {out['db_mb_per_day']} MB per simulated day")
    print(f"  rows: {out['rows']}")
    print(f"  events: {out['events_by_kind']}")


if __name__ == "__main__":
    main()

"""Pipeline benchmark: the simulated cluster through the real engine and panels, off-screen.

Prints, per cluster size: simulator tick, state update (merge + figures + anomaly detection),
GUI-thread work per frame (bridge hand-over, every panel's render, and a synchronous repaint of
the whole window at the given size), and the process's resident memory. Figures only; nothing
is asserted. Run: ``python benchmarks/bench_pipeline.py [--sizes 384 4096] [--polls 40]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def fmt(xs: list[float]) -> str:
    """Median and max in milliseconds."""
    return f"median {statistics.median(xs) * 1000:7.1f} ms   max {max(xs) * 1000:7.1f} ms"


def run(nodes: int, polls: int, size: tuple[int, int], warmup: int, paint: str,
        metric: str) -> None:
    from console.config import demo_settings
    from console.engine import Engine
    from console.polling import PollResult
    from widgets.app import create_app
    from widgets.main_window import MainWindow
    from widgets.panel import PanelContext

    app = create_app(1.0)
    engine = Engine(demo_settings(nodes=nodes, seed=7, faults="default", speed=1.0))
    src = engine.sources[0]
    window = MainWindow(PanelContext(), persist=False)
    window.setFixedSize(*size)
    window.panels["heatmap"].set_metric(metric)
    window.show()
    # Wait until the window system has exposed the window: an unexposed window skips painting,
    # which would make the paint cost look free. (A benchmark may spin the event loop; the
    # product never does.)
    deadline = time.monotonic() + 10
    while not window.windowHandle().isExposed() and time.monotonic() < deadline:
        app.processEvents()
    app.processEvents()
    tick, update, gui, pipeline = [], [], [], []
    for i in range(polls + warmup):
        t0 = time.perf_counter()
        updates = tuple(src.fetch())
        t1 = time.perf_counter()
        now = time.time()
        engine.state.apply(PollResult(source=src.name, kind=src.kind, request_id=i + 1,
                                      started_at=now, fetched_at=now, latency_s=t1 - t0,
                                      updates=updates))
        frame = engine.state.build_frame()
        t2 = time.perf_counter()
        window.show_frame(frame)
        window.render_all()
        if paint == "grab":
            window.grab()  # every widget renders into an image: the worst case
        elif paint == "window":
            window.repaint()  # the whole window repainted, changed or not
        else:
            app.processEvents()  # what the event loop does next: paint the changed regions
        t3 = time.perf_counter()
        if i >= warmup:
            tick.append(t1 - t0)
            update.append(t2 - t1)
            gui.append(t3 - t2)
            pipeline.append(t2 - t0)
    gc.collect()
    print(f"\n{nodes} nodes x 8 GPUs = {nodes * 8:,} GPUs, {len(frame.jobs):,} jobs in the table, "
          f"window {size[0]}x{size[1]}, {polls} polls, paint by {paint}, map shows {metric}")
    print(f"  simulator tick            {fmt(tick)}")
    print(f"  state update + analytics  {fmt(update)}")
    print(f"  whole pipeline per poll   {fmt(pipeline)}")
    print(f"  GUI thread per frame      {fmt(gui)}")
    print(f"  RSS                       {rss_mib():7.0f} MiB")
    window.close()
    window.deleteLater()
    app.sendPostedEvents()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[384, 4096])
    p.add_argument("--polls", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--paint", choices=("events", "window", "grab"), default="events",
                   help="events: paint what changed, as the event loop does (default); window: "
                        "repaint the whole window; grab: render everything to an image")
    p.add_argument("--metric", default="health",
                   help="what the health map shows: health (redrawn when a GPU's health changes) "
                        "or a continuous metric such as util (redrawn every frame)")
    a = p.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, Qt platform "
          f"{os.environ.get('QT_QPA_PLATFORM')}")
    for n in a.sizes:
        # Each size in its own process would isolate RSS; here sizes run in order, smallest first.
        run(n, a.polls, (w, h), a.warmup, a.paint, a.metric)


if __name__ == "__main__":
    main()

"""Score the console's live series detector on a corpus in NAB's layout.

    python benchmarks/run_nab.py DATA_DIR LABELS_JSON --out RESULTS_DIR

DATA_DIR holds ``CATEGORY/FILE.csv`` (``timestamp,value``); LABELS_JSON maps
``CATEGORY/FILE.csv`` to its anomaly windows (NAB's ``combined_windows.json``). Each file is
streamed one row at a time through `SeriesDetector` with the settings the console uses live;
results go to ``RESULTS_DIR/aisc/CATEGORY/aisc_FILE.csv`` and the scores (NAB's three profiles,
one corpus-wide threshold each, normalised null = 0, perfect = 100) are printed per category,
followed by the detector's cost per step (one series, and a bank of series stepped at once as
the console does), measured apart from CSV parsing and scoring.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from console.analytics.anomaly import DetectorConfig
from console.analytics.detectors.series import SeriesDetector, SeriesSettings
from console.analytics.nab import (
    PROFILES,
    load_labels,
    optimise,
    run_corpus,
)

def step_cost_us(settings: SeriesSettings, n_series: int, steps: int = 2000,
                 seed: int = 1) -> tuple[float, float]:
    """Median and mean microseconds per `step` over a full window (the console's steady state).

    The mean includes the steps that close a coarse block and run the second shape test.
    """
    rng = np.random.default_rng(seed)
    det = SeriesDetector(n_series, settings)
    data = 100.0 + rng.normal(0.0, 5.0, (settings.window + steps, n_series))
    for row in data[:settings.window]:
        det.step(row)
    times = np.empty(steps)
    for i, row in enumerate(data[settings.window:]):
        t = time.perf_counter()
        det.step(row)
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e6), float(np.mean(times) * 1e6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("labels", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="results folder (NAB layout); omitted = no files")
    args = ap.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"not a folder: {args.data_dir}", file=sys.stderr)
        return 2
    labels = load_labels(args.labels)
    settings = DetectorConfig().series
    t0 = time.perf_counter()
    files = run_corpus(args.data_dir, labels, args.out, settings)
    elapsed = time.perf_counter() - t0
    rows = sum(f.scores.size for f in files)
    print(f"{len(files)} files, {sum(f.n_windows for f in files)} windows, run in {elapsed:.1f} s "
          f"({rows} scored rows); settings: {settings}")
    results = [optimise(files, p) for p in PROFILES]
    cats = sorted({c for r in results for c in r.by_category})
    header = f"{'category':<28}" + "".join(f"{p:>22}" for p in PROFILES)
    print(header)
    for c in cats:
        cells = []
        for r in results:
            v = r.by_category.get(c, float("nan"))
            cells.append(f"{'(no windows)' if math.isnan(v) else f'{v:.1f}':>22}")
        print(f"{c:<28}" + "".join(cells))
    print(f"{'ALL (corpus threshold)':<28}" + "".join(f"{r.score:>22.1f}" for r in results))
    print(f"{'threshold':<28}" + "".join(f"{r.threshold:>22.4f}" for r in results))
    for n in (1, 8, 64):
        med, mean = step_cost_us(settings, n)
        print(f"cost per step, {n:>2} series at once: median {med:6.0f} us, mean {mean:6.0f} us "
              f"({mean / n:6.1f} us per series)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

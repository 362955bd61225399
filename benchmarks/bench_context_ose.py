"""CAD OSE port: agreement with NAB's recorded stream, and cost per step.

    python benchmarks/bench_context_ose.py DATA_DIR ANCHOR_DIR [--nab-2016-parse]
    python benchmarks/bench_context_ose.py DATA_DIR --cost [--series 64] [--steps 4000]
    ... [--backend auto|c|python]

Agreement: every file of ``DATA_DIR`` (NAB layout, ``CATEGORY/FILE.csv``) is streamed through
`ContextOSE` with what NAB gives the detector (the file's min/max, rest period from its
length), and each row's score is compared with ``ANCHOR_DIR/CATEGORY/contextOSE_FILE.csv.gz``
(NAB's recorded score, six significant digits): a row agrees when the port's score, written
as NAB wrote it (12 significant digits) and rounded to six, is the recorded text.
``--nab-2016-parse`` reads the values as the pandas of 2016 that produced the recording did
(its fast parser is not correctly rounded: on a few values it lands one unit in the last
place away from Python's ``float``).

The CPU time per step of each file is printed beside it.

Cost: ``--series`` detectors step together, one row each per step, as the live console steps
its series; the series are the corpus' files of at least ``--steps`` rows (repeated from the
middle when there are fewer files than series). Prints CPU time per series per step over
successive blocks of steps, since the detector's memory, and so its cost, grows with age.
Figures are printed, never asserted.

``--backend`` chooses the core: ``c`` the compiled one (an error if it is not built), ``python``
the pure-Python port, ``auto`` (the default) what `ContextOSE` is, as the console runs it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from console.analytics.detectors import context_ose
from console.analytics.detectors.context_ose import ContextOSE, PythonContextOSE, nab_rest_period

#: The core the benchmark runs (set from ``--backend``).
CORE: Any = ContextOSE


def pandas_2016_float(text: str) -> float:
    """The value pandas' fast C parser (``xstrtod``, 2016) gave: digits accumulated in a
    double, then scaled by powers of ten by repeated squaring. Plain decimals only."""
    p = text.strip()
    negative = p[:1] == "-"
    p = p.lstrip("+-")
    number = 0.0
    exponent = 0
    i = 0
    while i < len(p) and p[i].isdigit():
        number = number * 10.0 + (ord(p[i]) - 48)
        i += 1
    if i < len(p) and p[i] == ".":
        i += 1
        while i < len(p) and p[i].isdigit():
            number = number * 10.0 + (ord(p[i]) - 48)
            i += 1
            exponent -= 1
    if i != len(p):
        return float(text)  # exponents etc.: not met in NAB's files
    if negative:
        number = -number
    p10, n = 10.0, -exponent
    while n:
        if n & 1:
            number /= p10
        n >>= 1
        p10 *= p10
    return number


def read_values(path: Path, legacy: bool) -> np.ndarray:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    parse = pandas_2016_float if legacy else float
    return np.array([parse(r[1]) for r in rows if r], dtype=np.float64)


def read_recorded(path: Path) -> list[str]:
    with gzip.open(path, "rt", newline="") as fh:
        return [r[1] for r in list(csv.reader(fh))[1:] if r]


def as_recorded(score: float) -> str:
    """A score as the anchor files hold it: NAB's results files have Python 2's ``str()`` of
    it (12 significant digits), and the anchors round that text to 6 significant digits."""
    return f"{float(f'{score:.12g}'):.6g}"


def nab_detector(values: np.ndarray) -> Any:
    return CORE(float(values.min()), float(values.max()),
                rest_period=nab_rest_period(values.shape[0]))


def agreement(data_dir: Path, anchor_dir: Path, legacy: bool) -> None:
    files = sorted(p.relative_to(data_dir) for p in data_dir.glob("*/*.csv"))
    total = same_total = 0
    cpu_total = 0.0
    print(f"{'file':58s} {'rows':>6s} {'identical':>9s} {'max |diff|':>10s} {'us/step':>8s}"
          "  first differing row")
    for rel in files:
        values = read_values(data_dir / rel, legacy)
        recorded = read_recorded(anchor_dir / rel.parent / f"contextOSE_{rel.name}.gz")
        det = nab_detector(values)
        t0 = time.process_time()
        got = [det.step(v) for v in values]
        cpu = time.process_time() - t0
        cpu_total += cpu
        same = [as_recorded(g) == r for g, r in zip(got, recorded)]
        diff = max(abs(g - float(r)) for g, r in zip(got, recorded))
        first = same.index(False) if not all(same) else "-"
        total += len(same)
        same_total += sum(same)
        print(f"{str(rel):58s} {len(same):6d} {sum(same) / len(same):9.4f} {diff:10.1e} "
              f"{cpu / len(same) * 1e6:8.1f}  {first}")
    print(f"all files: {same_total} of {total} rows identical ({same_total / total:.4%}); "
          f"{cpu_total / total * 1e6:.1f} us/step over all rows (CPU time)")


def cost(data_dir: Path, n_series: int, steps: int, block: int) -> None:
    files = sorted(p for p in data_dir.glob("*/*.csv"))
    loaded = [(p, read_values(p, False)) for p in files]
    series = [(f"{p.parent.name}/{p.name}", v) for p, v in loaded if v.shape[0] >= steps]
    chosen = []
    names = []
    for i in range(n_series):
        name, v = series[i % len(series)]
        if i >= len(series):  # a second copy starts mid-file so the series differ
            v = np.roll(v, v.shape[0] // 2)
            name += " (from mid-file)"
        chosen.append(v[:steps])
        names.append(name)
    dets = [nab_detector(v) for v in chosen]
    print(f"{n_series} series stepping together ({len(series)} distinct files of >= {steps} rows)")
    print(f"{'steps':>13s} {'us/series/step':>15s} {'slowest series':>15s}")
    per_series = np.zeros(n_series)
    for start in range(0, steps, block):
        per_series[:] = 0.0
        t_all = time.process_time()
        for t in range(start, min(start + block, steps)):
            for j, det in enumerate(dets):
                t0 = time.process_time()
                det.step(chosen[j][t])
                per_series[j] += time.process_time() - t0
        elapsed = time.process_time() - t_all
        n = min(block, steps - start)
        print(f"{start:6d}-{start + n:6d} {elapsed / n / n_series * 1e6:15.1f} "
              f"{per_series.max() / n * 1e6:15.1f}")
    last = per_series / n * 1e6
    print(f"last block, per series: median {statistics.median(last):.1f}, "
          f"90th percentile {np.percentile(last, 90):.1f}, max {last.max():.1f} us/step")
    for j in np.argsort(last)[::-1][:5]:
        print(f"  slowest: {names[j]:55s} {last[j]:8.1f} us/step, {dets[j].n_contexts} contexts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("anchor_dir", type=Path, nargs="?")
    ap.add_argument("--nab-2016-parse", action="store_true")
    ap.add_argument("--cost", action="store_true")
    ap.add_argument("--series", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--block", type=int, default=1000)
    ap.add_argument("--backend", choices=("auto", "c", "python"), default="auto")
    args = ap.parse_args()
    global CORE
    if args.backend == "python":
        CORE = PythonContextOSE
    elif args.backend == "c":
        if context_ose.NATIVE_UNAVAILABLE is not None:
            ap.error(f"the compiled core is not in use: {context_ose.NATIVE_UNAVAILABLE}")
        CORE = ContextOSE
    print(f"CAD OSE core: {CORE.__module__}.{CORE.__qualname__}")
    if args.cost:
        cost(args.data_dir, args.series, args.steps, args.block)
    else:
        if args.anchor_dir is None:
            ap.error("ANCHOR_DIR is needed to check agreement (or pass --cost)")
        agreement(args.data_dir, args.anchor_dir, args.nab_2016_parse)


if __name__ == "__main__":
    main()

"""Score a detector (by default the console's live one) on a corpus in NAB's layout, honestly.

    python benchmarks/run_nab.py DATA_DIR LABELS_JSON --out RESULTS_DIR
    python benchmarks/run_nab.py DATA_DIR LABELS_JSON --loco --anchors ANCHORS_DIR
    python benchmarks/run_nab.py DATA_DIR LABELS_JSON --detector ensemble --loco --grid alarm

DATA_DIR holds ``CATEGORY/FILE.csv`` (``timestamp,value``); LABELS_JSON maps
``CATEGORY/FILE.csv`` to its anomaly windows (NAB's ``combined_windows.json``). Each file is
streamed one row at a time through the detector named by ``--detector`` (see `detectors`;
``series``, the default, is `SeriesDetector` with the settings the console uses live, through
the same code the console runs); results go to ``RESULTS_DIR/aisc/CATEGORY/aisc_FILE.csv``
(NAB's format, for NAB's own scorer).

Printed, for NAB's three profiles (null = 0, perfect = 100):

- the whole-corpus score with NAB's threshold search (every distinct score tried), per category,
  and at the console's live alarm (0.5, no threshold chosen);
- with ``--loco``, leave-one-category-out: for each category, the settings (from ``--grid``)
  and the threshold are chosen on the other categories, then the held-out one is scored. The
  mean of the held-out scores is the headline figure: nothing in it was tuned on what it scores.
  A category without windows (``artificialNoAnomaly``) has no normalised score; its false
  positives' raw cost is shown instead. The grid's own whole-corpus scores are printed too, so
  a knife edge (neighbouring values more than 3 points apart) shows;
- with ``--anchors``, the published detectors' streams (``ANCHORS/DETECTOR/CATEGORY/
  DETECTOR_FILE.csv.gz``) scored by the same scorer, side by side with the console: whole
  corpus, and leave-one-category-out (threshold chosen on the other categories);
- the detector's cost per step (one series, and a bank stepped at once as the console does).

``--cache DIR`` keeps each setting's score streams (keyed by the settings), so a rerun after a
change elsewhere only recomputes what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from console.analytics.anomaly import DetectorConfig
from console.analytics.detectors.ensemble import LIVE_REST, EnsembleSettings, PeerSettings, bounded_peer, combine
from console.analytics.detectors.series import SeriesSettings
from console.analytics.nab import (
    PROFILES,
    AnySettings,
    HeldOut,
    LabelledSeries,
    ScoredFile,
    anchor_corpus,
    category_of,
    for_file,
    leave_one_category_out,
    load_corpus,
    load_labels,
    make_detector,
    optimise,
    prepare_file,
    run_stream,
    score_at,
    write_result,
)

ANCHORS = ("numenta", "ARTime", "contextOSE", "knncad", "windowedGaussian")
ANCHOR_TITLES = {"numenta": "HTM", "ARTime": "ARTime", "contextOSE": "CAD OSE",
                 "knncad": "KNN CAD", "windowedGaussian": "wind. Gaussian"}
SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def detectors(live: SeriesSettings) -> dict[str, AnySettings]:
    """The detectors ``--detector`` can score, by name, with their default settings.

    ``series`` is the console's live detector with its live settings; ``context_ose`` is the
    CAD OSE port alone (raw scores, given each file's range and rest period as NAB gives them);
    ``ensemble`` is the series detector and CAD OSE together (range given, as NAB does);
    ``ensemble_learned`` is the same with each series' range learned from its first samples and
    a fixed rest period, as the console would have to run it live.
    """
    ens = EnsembleSettings()
    return {
        "series": live,
        "context_ose": PeerSettings(kind="context_ose"),
        "ensemble": ens,
        "ensemble_learned": replace(ens, peer=replace(bounded_peer(), rest_period=LIVE_REST, learn=LEARN,
                                                      learn_margin=LEARN_MARGIN)),
    }


#: The detector the console runs live (what ``--detector`` scores by default).
LIVE_DETECTOR = "series"

#: Samples from which ``ensemble_learned`` learns each series' range (NAB's longest probation,
#: 2.6 days at 5 minutes), widened by half of it on each side. The best of three tried
#: (300 / 0.1, 300 / 1.0, 750 / 0.5) on all five categories: its figure is not a held-out one.
LEARN = 750
LEARN_MARGIN = 0.5


def grids(base: AnySettings) -> dict[str, Callable[[], dict[str, AnySettings]]]:
    """Named sets of settings for leave-one-category-out to choose from (the base settings
    first, so they win ties). Each varies one thing over neighbouring values, so knife edges
    show. Grids that vary the series detector apply to the ensemble's series part too."""
    if isinstance(base, PeerSettings):
        return {"live": lambda: {"live": base}}
    ens = base if isinstance(base, EnsembleSettings) else None
    live = ens.series if ens is not None else base
    assert isinstance(live, SeriesSettings)

    def wrap(cands: dict[str, SeriesSettings]) -> dict[str, AnySettings]:
        return dict(cands) if ens is None else {k: replace(ens, series=v) for k, v in cands.items()}

    out: dict[str, Callable[[], dict[str, AnySettings]]] = {
        "live": lambda: {"live": base},
        "refractory": lambda: wrap({f"refractory={r}": replace(live, refractory=r)
                                    for r in (live.refractory, 200, 300, 400, 650, 800)}),
        # Per-series adaptive quiet time: ends once the series stayed calm this many samples.
        "calm": lambda: wrap({"live": live, **{f"calm={c}": replace(live, calm=c) for c in (30, 60, 120)}}),
        # The quiet time, fixed or ending once the series settled (calm), and its length.
        "quiet": lambda: wrap({
            **{f"calm={c}": replace(live, calm=c, refractory=500) for c in (0, 30, 60, 120)},
            **{f"calm=120,refractory={r}": replace(live, calm=120, refractory=r) for r in (300, 800, 1500)}}),
        # Numenta's likelihood over the detector's z, at neighbouring alarm levels.
        "likelihood": lambda: wrap({"live": live, **{
            f"likelihood=2000,z_alarm={z}": replace(live, likelihood=2000, z_alarm=z)
            for z in (3.0, 4.0, 6.0)}}),
        # How long a window must be before a value past its range counts (a young window
        # breaks its own records by chance; short files spend much of their length young).
        "young": lambda: wrap({f"range_min_history={r}": replace(live, range_min_history=r)
                               for r in (live.range_min_history, 150, 300, 450)}),
        "z_alarm": lambda: wrap({f"z_alarm={z}": replace(live, z_alarm=z)
                                 for z in (live.z_alarm, 6.0, 7.0, 8.0, 9.0, 10.0)}),
    }
    if ens is not None:
        # The ensemble's alarm level (the same for both parts). NAB's sweep finds the same
        # threshold for every level (a level only rescales the score): what moves is the score
        # at the live alarm, 0.5 (the grid's "AT 0.5" column), where knife edges show.
        out["alarm"] = lambda: {f"alarm={a}": replace(ens, alarm=a)
                                for a in (ens.alarm, 0.65, 0.7, 0.73, 0.77, 0.8, 0.85)}
        peer = ens.peer
        if peer is not None:
            # CAD OSE's memory cap (contexts; the replay kept at a twentieth of it), 0 = unbounded.
            out["cap"] = lambda: {f"max_contexts={c}": replace(ens, peer=replace(
                peer, max_contexts=c, replay=c // 20)) for c in dict.fromkeys(
                    (peer.max_contexts, 0, 1000, 2000, 4000, 8000, 16000))}
    return out


def cached_stream(series: LabelledSeries, settings: AnySettings, cache: Path | None) -> np.ndarray:
    """The detector's scores on one file, kept in ``cache`` under a key of settings and file.

    An ensemble's parts do not interact: its stream is its parts' cached streams put together
    by the same `combine` the detector uses, so trying another alarm level costs nothing.
    """
    if isinstance(settings, EnsembleSettings) and settings.peer is not None and cache is not None:
        return combine(cached_stream(series, settings.series, cache),
                       cached_stream(series, settings.peer, cache), settings.alarm)
    if cache is None:
        return run_stream(series.values, settings)
    key = hashlib.sha1(f"{settings!r}|{series.name}|{series.values.size}".encode()).hexdigest()[:16]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    scores = run_stream(series.values, settings)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return scores


def score_corpus(corpus: Sequence[LabelledSeries], settings: AnySettings, cache: Path | None,
                 out: Path | None = None) -> list[ScoredFile]:
    prepared = []
    for series in corpus:
        scores = cached_stream(series, settings, cache)
        if out is not None:
            write_result(out, series, scores)
        prepared.append(prepare_file(series.name, series.stamps, scores, series.windows))
    return prepared


def step_cost_us(settings: AnySettings, n_series: int, steps: int = 2000, seed: int = 1,
                 value_range: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Median, mean and 90th percentile microseconds per `step` over a full window (the
    console's steady state), on noise (100 +- 5).

    Each series' range (CAD OSE's quantisation) is the noise's own minimum and maximum by
    default: the noise then fills every bin, the costly case for CAD OSE (every step is a new
    situation). ``value_range`` gives a fixed range instead, as a physical bound does live.
    The mean includes the steps that close a coarse block and run the second shape test.
    """
    rng = np.random.default_rng(seed)
    data = 100.0 + rng.normal(0.0, 5.0, (WARM + steps, n_series))
    det = make_detector(for_file(settings, WARM + steps), n_series,
                        [value_range or (float(c.min()), float(c.max())) for c in data.T])
    for row in data[:WARM]:
        det.step(row)
    times = np.empty(steps)
    for i, row in enumerate(data[WARM:]):
        t = time.perf_counter()
        det.step(row)
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e6), float(np.mean(times) * 1e6), float(np.percentile(times, 90) * 1e6)


#: Steps before the cost is measured: the series detector's window is full by then.
WARM = 600


def fmt(v: float, width: int = 10) -> str:
    return f"{'-' if math.isnan(v) else f'{v:.1f}':>{width}}"


def print_corpus(files: Sequence[ScoredFile]) -> None:
    results = [optimise(files, p) for p in PROFILES]
    cats = sorted({c for r in results for c in r.by_category})
    print(f"{'category':<28}" + "".join(f"{SHORT[p]:>10}" for p in PROFILES))
    for c in cats:
        print(f"{c:<28}" + "".join(fmt(r.by_category.get(c, float('nan'))) for r in results))
    print(f"{'ALL (corpus threshold)':<28}" + "".join(fmt(r.score) for r in results))
    print(f"{'threshold':<28}" + "".join(f"{r.threshold:>10.4f}" for r in results))
    # What the console does live: alarm at 0.5, nothing chosen by the sweep.
    print(f"{'ALL at the live alarm 0.5':<28}" + "".join(fmt(score_at(files, 0.5, p)) for p in PROFILES))


def loco_mean(held: Sequence[HeldOut]) -> float:
    vals = [h.score for h in held if not math.isnan(h.score)]
    return float(np.mean(vals)) if vals else float("nan")


def print_loco(runs: Mapping[str, Sequence[ScoredFile]]) -> dict[str, list[HeldOut]]:
    table = {p: leave_one_category_out(runs, p) for p in PROFILES}
    print(f"{'held-out category':<28}" + "".join(f"{SHORT[p]:>10}" for p in PROFILES)
          + "   settings chosen on the others (standard / low FP / low FN)")
    for i, h in enumerate(table["standard"]):
        cells = []
        for p in PROFILES:
            x = table[p][i]
            cells.append(fmt(x.score) if not math.isnan(x.score) else f"{f'fp {x.fp_cost:.2f}':>10}")
        print(f"{h.category:<28}" + "".join(cells) + "   " + " / ".join(table[p][i].choice for p in PROFILES))
    print(f"{'MEAN (categories w/ windows)':<28}" + "".join(fmt(loco_mean(table[p])) for p in PROFILES))
    return table


def print_grid(runs: Mapping[str, Sequence[ScoredFile]]) -> None:
    """Each candidate alone: whole corpus, leave-one-category-out with only the threshold
    chosen on the other categories, and the whole corpus at the live alarm (0.5, nothing
    chosen: what the console does). Neighbours more than 3 points apart are knife edges."""
    rows = {label: [optimise(files, p).score for p in PROFILES]
            + [loco_mean(leave_one_category_out({label: files}, p)) for p in PROFILES]
            + [score_at(files, 0.5, "standard")]
            for label, files in runs.items()}
    print(f"{'candidate':<28}" + "".join(f"{'ALL ' + SHORT[p]:>14}" for p in PROFILES)
          + "".join(f"{'LOCO ' + SHORT[p]:>14}" for p in PROFILES) + f"{'AT 0.5 std':>14}")
    for label, vals in rows.items():
        print(f"{label:<28}" + "".join(fmt(v, 14) for v in vals))
    ordered = sorted(rows, key=_grid_order)
    for a, b in zip(ordered, ordered[1:]):
        for i, what in ((0, "whole-corpus"), (3, "LOCO"), (6, "live-alarm (0.5)")):
            jump = abs(rows[a][i] - rows[b][i])
            if jump > 3.0:
                print(f"knife edge: {a} -> {b} moves the {what} standard score by {jump:.1f} points")


def _grid_order(label: str) -> float:
    try:
        return float(label.rpartition("=")[2])
    except ValueError:
        return -math.inf


def print_anchors(console: Sequence[ScoredFile], anchor_dir: Path, names: Sequence[str],
                  labels: Mapping[str, Sequence[Sequence[str]]], title: str = "console") -> None:
    """One table: the detector scored (``title``) and each published detector, same files,
    same scorer."""
    detectors: dict[str, Sequence[ScoredFile]] = {title: console}
    for d in ANCHORS:
        detectors[ANCHOR_TITLES[d]] = anchor_corpus(anchor_dir, d, names, labels)
    cats = sorted({category_of(f) for f in console})
    print(f"{'detector':<16}" + "".join(f"{'ALL ' + SHORT[p]:>14}" for p in PROFILES)
          + "".join(f"{'LOCO ' + SHORT[p]:>14}" for p in PROFILES)
          + "".join(f"{c[:12]:>14}" for c in cats))
    for title, files in detectors.items():
        whole = [optimise(files, p).score for p in PROFILES]
        loco = [leave_one_category_out({title: files}, p) for p in PROFILES]
        per_cat = {h.category: h.score for h in loco[0]}
        print(f"{title:<16}" + "".join(fmt(v, 14) for v in whole)
              + "".join(fmt(loco_mean(h), 14) for h in loco)
              + "".join(fmt(per_cat[c], 14) for c in cats))
    print("(ALL: one threshold for the whole corpus; LOCO: each category scored at the threshold "
          "chosen on the others, mean over categories with windows; per category: LOCO standard)")


def main(argv: list[str] | None = None) -> int:
    live = DetectorConfig().series
    names = detectors(live)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("labels", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="results folder (NAB layout); omitted = no files")
    ap.add_argument("--detector", default=LIVE_DETECTOR, choices=list(names),
                    help=f"detector to score (default {LIVE_DETECTOR!r}: the one the console runs live)")
    ap.add_argument("--loco", action="store_true", help="leave-one-category-out over --grid")
    ap.add_argument("--grid", default="live", help="settings to choose from: " + ", ".join(grids(names["ensemble"])))
    ap.add_argument("--anchors", type=Path, default=None, help="published detectors' streams to score alongside")
    ap.add_argument("--cache", type=Path, default=None, help="folder keeping score streams between runs")
    ap.add_argument("--no-cost", action="store_true", help="skip the cost-per-step measurement")
    ap.add_argument("--cost-range", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                    help="the range given to each series in the cost run (noise 100 +- 5); "
                         "default: the noise's own min and max (the costly case)")
    args = ap.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"not a folder: {args.data_dir}", file=sys.stderr)
        return 2
    labels = load_labels(args.labels)
    base = names[args.detector]
    all_grids = grids(base)
    if args.grid not in all_grids:
        print(f"unknown grid {args.grid!r} for {args.detector}: choose from {', '.join(all_grids)}",
              file=sys.stderr)
        return 2
    try:
        make_detector(for_file(base, WARM), 1, [(0.0, 1.0)])
    except ImportError as exc:
        print(f"detector {args.detector!r} is not available here: {exc}", file=sys.stderr)
        return 2
    corpus = load_corpus(args.data_dir, labels)
    t0 = time.perf_counter()
    files = score_corpus(corpus, base, args.cache, args.out)
    elapsed = time.perf_counter() - t0
    rows = sum(f.scores.size for f in files)
    print(f"{len(files)} files, {sum(f.n_windows for f in files)} windows, run in {elapsed:.1f} s "
          f"({rows} scored rows); detector {args.detector}: {base}")
    print(f"\nWhole corpus, {args.detector}, NAB's threshold search (every distinct score):")
    print_corpus(files)
    if args.loco:
        runs = {label: (files if s == base else score_corpus(corpus, s, args.cache))
                for label, s in all_grids[args.grid]().items()}
        print(f"\nLeave-one-category-out, settings chosen from grid {args.grid!r}:")
        print_loco(runs)
        if len(runs) > 1:
            print()
            print_grid(runs)
    if args.anchors is not None:
        print(f"\nSide by side, same files, same scorer ({args.detector} = its default settings):")
        print_anchors(files, args.anchors, [s.name for s in corpus], labels, args.detector)
    if not args.no_cost:
        print()
        for n in (1, 8, 64):
            cost_range = tuple(args.cost_range) if args.cost_range else None
            med, mean, p90 = step_cost_us(base, n, value_range=cost_range)
            print(f"cost per step, {n:>2} series at once: median {med:6.0f} us, mean {mean:6.0f} us, "
                  f"90th pct {p90:6.0f} us (per series: mean {mean / n:6.1f} us, 90th pct {p90 / n:6.1f} us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

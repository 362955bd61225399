"""NAB (Numenta Anomaly Benchmark): run a detector as a stream, and score it.

The runner reads any folder in NAB's layout (``DATA/CATEGORY/FILE.csv`` with
``timestamp,value``, labels as ``{"CATEGORY/FILE.csv": [[start, end], ...]}``), feeds the rows
one at a time to a detector (by default `SeriesDetector` with the console's live settings; the
settings' type says which detector: see `make_detector`), and writes
``RESULTS/DETECTOR/CATEGORY/DETECTOR_FILE.csv`` (``timestamp,value,anomaly_score,label``).
Detectors that quantise values get what NAB gives every detector: the file's minimum and
maximum (`value_range`) and, for CAD OSE, a rest period from the file's length (`for_file`).

The scorer follows NAB's own rules (sweeper.py of numenta/NAB): probationary period
(15% of rows, at most 750), per-window credit for the earliest detection weighted by the
scaled sigmoid, false positives weighted by their distance past the previous window, misses
costing fnWeight, one threshold per profile chosen to maximise the corpus total, and the result
normalised so that the null detector scores 0 and the perfect detector 100.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from console.analytics.detectors.ensemble import EnsembleDetector, EnsembleSettings, PeerBank, PeerSettings
from console.analytics.detectors.series import SeriesDetector, SeriesSettings

#: Settings of any detector the runner can score; the type says which detector runs.
AnySettings = SeriesSettings | EnsembleSettings | PeerSettings

PROFILES: Mapping[str, Mapping[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}

DETECTOR_NAME = "aisc"


def scaled_sigmoid(x: float) -> float:
    """NAB's weighting: 2*sigmoid(-5x) - 1, and -1 far (x > 3) past a window."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probationary_length(n_rows: int, fraction: float = 0.15) -> int:
    return int(min(math.floor(fraction * n_rows), fraction * 5000))


def parse_time(text: str) -> datetime:
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return datetime.fromisoformat(text)


@dataclass
class ScoredFile:
    """One file prepared for the threshold sweep: per scored row, its score and its weight.

    ``window`` is the window index of each row (-1 outside windows); ``unweighted`` is the
    scaled-sigmoid value NAB attaches to a detection at that row (positive inside windows,
    negative outside).
    """

    name: str
    scores: np.ndarray
    window: np.ndarray
    unweighted: np.ndarray
    n_windows: int


def prepare_file(name: str, timestamps: Sequence[datetime], scores: Sequence[float] | np.ndarray,
                 windows: Sequence[tuple[datetime, datetime]]) -> ScoredFile:
    """Attach NAB's per-row weights (the loop mirrors NAB's sweeper row by row)."""
    n = len(timestamps)
    index = {t: i for i, t in enumerate(timestamps)}
    spans: list[tuple[int, int]] = []
    for start, end in windows:
        # NAB's windows start and end on rows; tolerate windows not aligned to rows.
        lo = index.get(start)
        hi = index.get(end)
        if lo is None:
            lo = int(np.searchsorted(np.array(timestamps, dtype="datetime64[us]"),
                                     np.datetime64(start, "us"), side="left"))
        if hi is None:
            hi = int(np.searchsorted(np.array(timestamps, dtype="datetime64[us]"),
                                     np.datetime64(end, "us"), side="right")) - 1
        if lo <= hi and lo < n:
            spans.append((lo, min(hi, n - 1)))
    spans.sort()
    max_tp = scaled_sigmoid(-1.0)
    window_of = np.full(n, -1, dtype=np.int64)
    unweighted = np.zeros(n, dtype=np.float64)
    prev_right: int | None = None
    prev_width: float | None = None
    k = 0
    cur: tuple[int, int] | None = None
    for i in range(n):
        if cur is None and k < len(spans) and i == spans[k][0]:
            cur = spans[k]
            k += 1
        if cur is not None:
            width = float(cur[1] - cur[0] + 1)
            pos = -(cur[1] - i + 1) / width
            unweighted[i] = scaled_sigmoid(pos) / max_tp
            window_of[i] = k - 1
        else:
            if prev_right is None:
                unweighted[i] = -1.0
            else:
                denom = max(prev_width - 1.0, 1.0)
                unweighted[i] = scaled_sigmoid(abs(prev_right - i) / denom)
        if cur is not None and i == cur[1]:
            prev_right, prev_width = i, float(cur[1] - cur[0] + 1)
            cur = None
    start = probationary_length(n)
    return ScoredFile(name, np.asarray(scores, dtype=np.float64)[start:], window_of[start:],
                      unweighted[start:], len(spans))


def raw_score(f: ScoredFile, threshold: float, profile: Mapping[str, float]) -> float:
    """The file's raw NAB score at one threshold (detection = score >= threshold)."""
    det = f.scores >= threshold
    tp = 0.0
    hit = np.zeros(f.n_windows, dtype=bool)
    inside = det & (f.window >= 0)
    if inside.any():
        # The earliest detection in a window has the largest weight: take the max per window.
        w = f.window[inside]
        best = np.full(f.n_windows, -np.inf)
        np.maximum.at(best, w, f.unweighted[inside])
        hit = np.isfinite(best)
        tp = float(best[hit].sum()) * profile["tp"]
    fp = float(f.unweighted[det & (f.window < 0)].sum()) * profile["fp"]
    fn = -profile["fn"] * float(f.n_windows - hit.sum())
    return tp + fp + fn


def null_and_perfect(files: Iterable[ScoredFile], profile: Mapping[str, float]) -> tuple[float, float]:
    n_windows = sum(f.n_windows for f in files)
    return -profile["fn"] * n_windows, profile["tp"] * n_windows


def normalise(raw: float, null: float, perfect: float) -> float:
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def sweep(files: Sequence[ScoredFile], profile: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct score as a threshold (plus inf = no detection) and the corpus raw total
    at each, exactly as NAB's sweeper tries them.

    Sampling thresholds (quantiles) misses NAB's own optimum by a little: the alarm-level scores
    that decide it are a few tens among hundreds of thousands. Rows are taken from the highest
    score down; a false positive adds its weight once it is detected, and a window's credit
    changes only when a row earlier in it (a larger weight) joins, so the totals at all
    thresholds are one cumulative sum.
    """
    files = [f for f in files if f.scores.size]
    n_windows = sum(f.n_windows for f in files)
    null = -profile["fn"] * n_windows
    if not files:
        return np.array([np.inf]), np.array([null])
    scores = np.concatenate([f.scores for f in files])
    unweighted = np.concatenate([f.unweighted for f in files])
    offsets = np.cumsum([0] + [f.n_windows for f in files[:-1]])
    window = np.concatenate([np.where(f.window >= 0, f.window + o, -1) for f, o in zip(files, offsets)])
    delta = np.where(window < 0, profile["fp"] * unweighted, 0.0)
    inside = np.flatnonzero(window >= 0)
    if inside.size:
        # Per window, rows by falling score; the credit is tp x the running max of weights.
        order = inside[np.lexsort((-scores[inside], window[inside]))]
        w = window[order]
        u = unweighted[order]
        run = np.maximum.accumulate(u + 4.0 * w) - 4.0 * w  # weights lie in [0, 1]: groups apart
        first = np.r_[True, w[1:] != w[:-1]]
        prev = np.r_[0.0, run[:-1]]
        delta[order] = np.where(first, profile["tp"] * run + profile["fn"],
                                profile["tp"] * (run - prev))
    by_score = np.argsort(-scores, kind="stable")
    s_sorted = scores[by_score]
    totals = null + np.cumsum(delta[by_score])
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    return (np.concatenate([[np.inf], s_sorted[last_of_tie]]),
            np.concatenate([[null], totals[last_of_tie]]))


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    score: float  # normalised, whole corpus
    by_category: Mapping[str, float]


def category_of(f: ScoredFile) -> str:
    return f.name.split("/")[0]


def score_at(files: Sequence[ScoredFile], threshold: float, profile_name: str) -> float:
    """Normalised score of ``files`` at a given threshold (NaN when they hold no window)."""
    profile = PROFILES[profile_name]
    raw = sum(raw_score(f, threshold, profile) for f in files)
    null, perfect = null_and_perfect(files, profile)
    return normalise(raw, null, perfect) if perfect != null else float("nan")


def optimise(files: Sequence[ScoredFile], profile_name: str) -> ProfileResult:
    """Choose the one threshold that maximises the corpus total, as NAB does per profile
    (the highest such threshold when several tie)."""
    profile = PROFILES[profile_name]
    thresholds, totals = sweep(files, profile)
    k = int(np.argmax(totals))
    best_t, best_raw = float(thresholds[k]), float(totals[k])
    null, perfect = null_and_perfect(files, profile)
    cats: dict[str, list[ScoredFile]] = {}
    for f in files:
        cats.setdefault(category_of(f), []).append(f)
    by_cat = {cat: score_at(fs, best_t, profile_name) for cat, fs in sorted(cats.items())}
    return ProfileResult(profile_name, best_t, normalise(best_raw, null, perfect), by_cat)


@dataclass(frozen=True)
class HeldOut:
    """One category scored with everything (settings, threshold) chosen on the others."""

    category: str
    choice: str  # the label of the settings chosen on the other categories
    threshold: float
    score: float  # normalised on the held-out category; NaN when it has no window
    fp_cost: float  # raw cost of its false positives (<= 0): all a windowless category can lose


def leave_one_category_out(runs: Mapping[str, Sequence[ScoredFile]], profile_name: str) -> list[HeldOut]:
    """For each category: pick the settings (a key of ``runs``) and the threshold that score
    best on the other categories, then score the held-out one with them.

    ``runs`` maps a label of settings to the corpus scored with those settings; the first label
    wins ties. This is the figure that says how the detector does on data nothing was tuned on.
    """
    profile = PROFILES[profile_name]
    any_run = next(iter(runs.values()))
    cats = sorted({category_of(f) for f in any_run})
    out: list[HeldOut] = []
    for cat in cats:
        best: tuple[float, str, float] | None = None
        for label, files in runs.items():
            train = [f for f in files if category_of(f) != cat]
            res = optimise(train, profile_name)
            if best is None or res.score > best[0]:
                best = (res.score, label, res.threshold)
        assert best is not None
        _, label, t = best
        test = [f for f in runs[label] if category_of(f) == cat]
        fp = sum(float(f.unweighted[(f.scores >= t) & (f.window < 0)].sum()) for f in test) * profile["fp"]
        out.append(HeldOut(cat, label, t, score_at(test, t, profile_name), fp))
    return out


# ---------------------------------------------------------------------------------------------
# Corpus I/O and the streaming run
# ---------------------------------------------------------------------------------------------


def read_series(path: Path) -> tuple[list[str], np.ndarray]:
    stamps: list[str] = []
    values: list[float] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        col = header.index("value") if header and "value" in header else 1
        tcol = header.index("timestamp") if header and "timestamp" in header else 0
        for row in reader:
            if not row:
                continue
            stamps.append(row[tcol])
            try:
                values.append(float(row[col]))
            except ValueError:
                values.append(float("nan"))
    return stamps, np.asarray(values, dtype=np.float64)


def value_range(values: np.ndarray) -> tuple[float, float]:
    """The file's minimum and maximum, as NAB hands them to every detector (``inputMin`` /
    ``inputMax``); only detectors that quantise values (here CAD OSE) read them."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def make_detector(settings: AnySettings | None, n_series: int = 1,
                  ranges: Sequence[tuple[float, float]] | None = None) -> Any:
    """The detector the settings describe (`SeriesDetector` for None), over ``n_series``.

    One place that turns settings into a detector, so the runner, the cost measurement and the
    console build the same thing from the same settings.
    """
    if settings is None or isinstance(settings, SeriesSettings):
        return SeriesDetector(n_series, settings)
    if isinstance(settings, EnsembleSettings):
        return EnsembleDetector(n_series, settings, ranges)
    if isinstance(settings, PeerSettings):
        return PeerBank(n_series, settings, ranges)
    raise TypeError(f"no detector for {type(settings).__name__}")


def for_file(settings: AnySettings | None, n_rows: int) -> AnySettings | None:
    """The settings with NAB's per-file rules filled in: a peer's rest period left to NAB
    (None) becomes a fifth of the file's probationary period, as NAB passes it to CAD OSE."""
    peer = settings.peer if isinstance(settings, EnsembleSettings) else settings
    if not isinstance(peer, PeerSettings) or peer.rest_period is not None:
        return settings
    filled = replace(peer, rest_period=int(probationary_length(n_rows) / 5.0))
    return replace(settings, peer=filled) if isinstance(settings, EnsembleSettings) else filled


def run_stream(values: np.ndarray, settings: AnySettings | None = None) -> np.ndarray:
    """Feed one series row by row to a detector (the live series detector by default); no row
    sees the ones after it. A peer alone gives its raw score, as its published stream does."""
    det = make_detector(for_file(settings, values.shape[0]), 1, [value_range(values)])
    out = np.zeros(values.shape[0], dtype=np.float64)
    one = np.zeros(1)
    for i, v in enumerate(values):
        one[0] = v
        out[i] = det.step(one)[0]
    return out


def list_files(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)).replace("\\", "/") for p in data_dir.rglob("*.csv"))


def label_rows(stamps: Sequence[datetime], windows: Sequence[tuple[datetime, datetime]]) -> np.ndarray:
    t = np.array(stamps, dtype="datetime64[us]")
    lab = np.zeros(len(stamps), dtype=np.int64)
    for a, b in windows:
        lab[(t >= np.datetime64(a, "us")) & (t <= np.datetime64(b, "us"))] = 1
    return lab


@dataclass
class LabelledSeries:
    """One corpus file read once: its rows, their times and its anomaly windows."""

    name: str  # CATEGORY/FILE.csv
    stamps_text: list[str]
    stamps: list[datetime]
    values: np.ndarray
    windows: list[tuple[datetime, datetime]]


def load_corpus(data_dir: Path, labels: Mapping[str, Sequence[Sequence[str]]]) -> list[LabelledSeries]:
    """Read every CSV under ``data_dir`` (parsing the times is most of the cost: done once)."""
    out: list[LabelledSeries] = []
    for rel in list_files(data_dir):
        stamps_text, values = read_series(data_dir / rel)
        stamps = [parse_time(s) for s in stamps_text]
        windows = [(parse_time(a), parse_time(b)) for a, b in labels.get(rel, [])]
        out.append(LabelledSeries(rel, stamps_text, stamps, values, windows))
    return out


def write_result(out_dir: Path, series: LabelledSeries, scores: np.ndarray,
                 detector: str = DETECTOR_NAME) -> None:
    """``out_dir/DETECTOR/CATEGORY/DETECTOR_FILE.csv`` in NAB's result format."""
    cat, _, fname = series.name.rpartition("/")
    target = out_dir / detector / cat / f"{detector}_{fname}"
    target.parent.mkdir(parents=True, exist_ok=True)
    lab = label_rows(series.stamps, series.windows)
    with target.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        for ts, v, s, lb in zip(series.stamps_text, series.values, scores, lab):
            w.writerow([ts, repr(float(v)) if math.isfinite(v) else "", f"{s:.6f}", int(lb)])


def run_corpus(data_dir: Path | Sequence[LabelledSeries], labels: Mapping[str, Sequence[Sequence[str]]],
               out_dir: Path | None, settings: AnySettings | None = None,
               detector: str = DETECTOR_NAME) -> list[ScoredFile]:
    """Run every CSV under ``data_dir`` (or an already loaded corpus); write NAB-layout results
    when ``out_dir`` is given."""
    corpus = load_corpus(data_dir, labels) if isinstance(data_dir, Path) else data_dir
    prepared: list[ScoredFile] = []
    for series in corpus:
        scores = run_stream(series.values, settings)
        if out_dir is not None:
            write_result(out_dir, series, scores, detector)
        prepared.append(prepare_file(series.name, series.stamps, scores, series.windows))
    return prepared


def load_labels(path: Path) -> dict[str, list[list[str]]]:
    with path.open() as fh:
        return json.load(fh)


def read_anchor(path: Path) -> tuple[list[str], np.ndarray]:
    """A published detector's stream (``timestamp,anomaly_score``, gzip or plain CSV)."""
    opener = gzip.open if path.suffix == ".gz" else open
    stamps: list[str] = []
    scores: list[float] = []
    with opener(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        col = header.index("anomaly_score") if "anomaly_score" in header else 1
        tcol = header.index("timestamp") if "timestamp" in header else 0
        for row in reader:
            if row:
                stamps.append(row[tcol])
                scores.append(float(row[col]))
    return stamps, np.asarray(scores, dtype=np.float64)


def anchor_corpus(anchor_dir: Path, detector: str, names: Sequence[str],
                  labels: Mapping[str, Sequence[Sequence[str]]]) -> list[ScoredFile]:
    """Prepare a published detector's streams (``anchor_dir/DETECTOR/CATEGORY/DETECTOR_FILE.csv.gz``)
    for the same scorer as the console's, for the files ``names`` (``CATEGORY/FILE.csv``).

    Its timestamps are its own rows, so the windows and probation are placed on them exactly as
    for the console's stream of the same file. A missing stream is an error, not a zero score.
    """
    prepared: list[ScoredFile] = []
    for rel in names:
        cat, _, fname = rel.rpartition("/")
        base = anchor_dir / detector / cat / f"{detector}_{fname}"
        path = base.with_name(base.name + ".gz")
        if not path.exists():
            path = base
        if not path.exists():
            raise FileNotFoundError(f"no {detector} stream for {rel}")
        stamps_text, scores = read_anchor(path)
        stamps = [parse_time(s) for s in stamps_text]
        windows = [(parse_time(a), parse_time(b)) for a, b in labels.get(rel, [])]
        prepared.append(prepare_file(rel, stamps, scores, windows))
    return prepared

"""NAB (Numenta Anomaly Benchmark): run the live series detector as a stream, and score it.

The runner reads any folder in NAB's layout (``DATA/CATEGORY/FILE.csv`` with
``timestamp,value``, labels as ``{"CATEGORY/FILE.csv": [[start, end], ...]}``), feeds the rows
one at a time to `SeriesDetector` with the console's live settings, and writes
``RESULTS/DETECTOR/CATEGORY/DETECTOR_FILE.csv`` (``timestamp,value,anomaly_score,label``).

The scorer follows NAB's own rules (sweeper.py of numenta/NAB): probationary period
(15% of rows, at most 750), per-window credit for the earliest detection weighted by the
scaled sigmoid, false positives weighted by their distance past the previous window, misses
costing fnWeight, one threshold per profile chosen to maximise the corpus total, and the result
normalised so that the null detector scores 0 and the perfect detector 100.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from console.analytics.detectors.series import SeriesDetector, SeriesSettings

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


def prepare_file(name: str, timestamps: Sequence[datetime], scores: Sequence[float],
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


def candidate_thresholds(files: Sequence[ScoredFile], max_candidates: int = 400) -> np.ndarray:
    """Score values to try (plus inf = no detection): all distinct ones when few; else quantiles
    of the distinct scores together with every one of the highest ``max_candidates``.

    NAB's own sweep tries every distinct score. Quantiles alone fall mostly in the mass of low
    scores, and the few alarm-level scores that matter (a detector has tens of them over a
    corpus) can lie between two quantiles, so the best threshold is missed.
    """
    allv = np.concatenate([f.scores for f in files]) if files else np.zeros(0)
    uniq = np.unique(allv[np.isfinite(allv)])
    if uniq.size > max_candidates:
        quantiles = np.quantile(uniq, np.linspace(0.0, 1.0, max_candidates))
        uniq = np.union1d(quantiles, uniq[-max_candidates:])
    return np.concatenate([uniq, [np.inf]])


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    score: float  # normalised, whole corpus
    by_category: Mapping[str, float]


def optimise(files: Sequence[ScoredFile], profile_name: str) -> ProfileResult:
    """Choose the one threshold that maximises the corpus total, as NAB does per profile."""
    profile = PROFILES[profile_name]
    best_t, best_raw = np.inf, -np.inf
    for t in candidate_thresholds(files):
        total = sum(raw_score(f, float(t), profile) for f in files)
        if total > best_raw:
            best_t, best_raw = float(t), total
    null, perfect = null_and_perfect(files, profile)
    cats: dict[str, list[ScoredFile]] = {}
    for f in files:
        cats.setdefault(f.name.split("/")[0], []).append(f)
    by_cat: dict[str, float] = {}
    for cat, fs in sorted(cats.items()):
        raw = sum(raw_score(f, best_t, profile) for f in fs)
        n0, p0 = null_and_perfect(fs, profile)
        by_cat[cat] = normalise(raw, n0, p0) if p0 != n0 else float("nan")
    return ProfileResult(profile_name, best_t, normalise(best_raw, null, perfect), by_cat)


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


def run_stream(values: np.ndarray, settings: SeriesSettings | None = None) -> np.ndarray:
    """Feed one series row by row to the live detector; no row sees the ones after it."""
    det = SeriesDetector(1, settings)
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


def run_corpus(data_dir: Path, labels: Mapping[str, Sequence[Sequence[str]]], out_dir: Path | None,
               settings: SeriesSettings | None = None,
               detector: str = DETECTOR_NAME) -> list[ScoredFile]:
    """Run every CSV under ``data_dir``; write NAB-layout results when ``out_dir`` is given."""
    prepared: list[ScoredFile] = []
    for rel in list_files(data_dir):
        stamps_text, values = read_series(data_dir / rel)
        stamps = [parse_time(s) for s in stamps_text]
        windows = [(parse_time(a), parse_time(b)) for a, b in labels.get(rel, [])]
        scores = run_stream(values, settings)
        if out_dir is not None:
            cat, _, fname = rel.rpartition("/")
            target = out_dir / detector / cat / f"{detector}_{fname}"
            target.parent.mkdir(parents=True, exist_ok=True)
            lab = label_rows(stamps, windows)
            with target.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["timestamp", "value", "anomaly_score", "label"])
                for ts, v, s, lb in zip(stamps_text, values, scores, lab):
                    w.writerow([ts, repr(float(v)) if math.isfinite(v) else "", f"{s:.6f}", int(lb)])
        prepared.append(prepare_file(rel, stamps, scores, windows))
    return prepared


def load_labels(path: Path) -> dict[str, list[list[str]]]:
    with path.open() as fh:
        return json.load(fh)

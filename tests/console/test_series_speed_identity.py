"""The faster series detector gives exactly the scores of the one it replaced.

`SeriesDetector` keeps its windows' statistics incrementally (`window_stats`) instead of
recomputing them at every step. `_series_reference.py` is the detector as it was before; both
run side by side here on NAB's files, on synthetic series built to reach every rule (random
walks, steps, spikes, drifts, a daily cycle, NaN gaps, flat and integer series, infinities,
negative zeros) and on 64 series at once, and every score, z and median must be the same float
(NaN where NaN). The settings are the ones the console and the NAB runner use.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import _series_reference as reference  # beside this file (pytest puts its folder on the path)
from console.analytics.anomaly import DetectorConfig
from console.analytics.detectors.ensemble import EnsembleSettings
from console.analytics.detectors.series import SeriesDetector, SeriesSettings
from console.analytics.detectors.window_stats import SortedWindow, StretchDistances

NAB = Path(__file__).resolve().parents[1] / "fixtures" / "nab"

LIVE = DetectorConfig().series
#: What the console and the NAB runner run: the live settings (also the ensemble's series part,
#: asserted below), the queues' variant (`workload`), and neighbours that NAB's
#: leave-one-category-out grids try.
SETTINGS = {
    "live": LIVE,
    "queues": replace(LIVE, up_only=True, range_min_history=LIVE.min_history, refractory=LIVE.min_history),
    "calm": replace(LIVE, calm=120),
    "likelihood": replace(LIVE, likelihood=2000, z_alarm=4.0),
    "young": replace(LIVE, range_min_history=150, refractory=200),
    "no blocks": replace(LIVE, coarse=0),
    "small windows": replace(LIVE, window=100, nn_history=50, range_min_history=100, embed=3, coarse=4),
}


def _run(cls: type, data: np.ndarray, settings: SeriesSettings) -> tuple[np.ndarray, ...]:
    """Scores, z, medians and the rule that fired, row by row, and the detector."""
    det = cls(data.shape[1], settings)
    scores, z, med, part = (np.empty_like(data) for _ in range(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, row in enumerate(data):
            scores[i] = det.step(row)
            z[i] = det.last_z
            med[i] = det.last_median
            part[i] = det.last_part
    return scores, z, med, part, det


def _assert_same(data: np.ndarray, settings: SeriesSettings) -> tuple[np.ndarray, SeriesDetector]:
    want = _run(reference.SeriesDetector, data, settings)
    got = _run(SeriesDetector, data, settings)
    for name, a, b in zip(("score", "z", "median", "rule"), want[:4], got[:4]):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        assert same.all(), f"{name} differs first at (row, series) {np.argwhere(~same)[0].tolist()}"
    return got[0], got[4]


def _nab(rel: str) -> np.ndarray:
    return np.genfromtxt(NAB / rel, delimiter=",", skip_header=1, usecols=1)


def _synthetic(rows: int, seed: int) -> np.ndarray:
    """Eight series, one per kind of behaviour the detector's rules answer to."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    walk = np.cumsum(rng.normal(0.0, 1.0, rows))
    step = rng.normal(10.0, 1.0, rows)
    step[rows // 2:] += 15.0
    spikes = rng.normal(50.0, 2.0, rows)
    spikes[rng.choice(rows, 6, replace=False)] += 80.0
    gaps = 20.0 + 5.0 * np.sin(2 * np.pi * t / 288) + rng.normal(0.0, 0.3, rows)
    gaps[rng.random(rows) < 0.02] = np.nan
    gaps[rows // 3:rows // 3 + 30] = np.nan
    flat = np.full(rows, 7.0)
    flat[rows - rows // 5:] = 7.5
    counts = np.round(rng.poisson(0.4, rows).astype(float))  # MAD 0: the mean-deviation scale
    drift = 100.0 + 0.02 * t + rng.normal(0.0, 0.5, rows)
    odd = rng.normal(0.0, 1.0, rows)
    odd[::7] = -0.0
    odd[rows // 2] = np.inf
    odd[rows // 2 + 300:rows // 2 + 310] = -np.inf
    return np.stack([walk, step, spikes, gaps, flat, counts, drift, odd], axis=1)


@pytest.mark.parametrize("rel", ["artificialWithAnomaly/art_daily_jumpsdown.csv",
                                 "artificialWithAnomaly/art_daily_nojump.csv",
                                 "contextOSE/speed_7578_head.csv"])
def test_nab_files_score_the_same_one_series_at_a_time(rel: str) -> None:
    x = _nab(rel)[:, None]
    scores, _ = _assert_same(x, LIVE)
    assert (scores > 0.0).any()  # the files are judged: the comparison is not idle


def test_nab_files_score_the_same_as_columns_of_one_detector() -> None:
    data = np.stack([_nab("artificialWithAnomaly/art_daily_jumpsdown.csv"),
                     _nab("artificialWithAnomaly/art_daily_nojump.csv")], axis=1)
    _, det = _assert_same(data, LIVE)
    # The daily cycle is recognised (distances to a period ago are being kept, for both), so the
    # seasonal test was part of what was compared.
    assert det._season.past is not None and (det._season.past.count >= 20).all()


def test_the_ensemble_runs_the_live_settings() -> None:
    assert EnsembleSettings().series == LIVE  # so "live" below covers the ensemble's part too


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_synthetic_series_score_the_same_under_every_setting_used(name: str) -> None:
    # Long enough for the daily cycle's period to be found and judged (live), or past a full
    # window and its quiet times (the others).
    data = _synthetic(1800 if name == "live" else 1300, seed=sum(map(ord, name)))
    scores, det = _assert_same(data, SETTINGS[name])
    assert (scores >= 0.5).any()
    if name == "live":  # the daily cycle with gaps is judged as one
        assert det._season.past is not None and det._season.past.count[3] >= 20


def test_sixty_four_series_at_once_score_the_same() -> None:
    rng = np.random.default_rng(64)
    rows = 1000
    data = 100.0 + np.cumsum(rng.normal(0.0, 1.0, (rows, 64)), axis=0) * rng.uniform(0.1, 3.0, 64)
    data[:, 8:16] = np.round(data[:, 8:16] / 10.0)  # coarse integer steps: many ties
    data[rng.random(data.shape) < 0.02] = np.nan
    data[400:700, 20] = np.nan  # a long gap
    data[:, 21] = np.nan  # a series that never reports
    data[700:, 22] += 200.0  # a step
    data[850, 23] = 1e6  # a spike
    scores, det = _assert_same(data, LIVE)
    assert (scores >= 0.5).any() and set(np.unique(det.last_part)) <= {0, 1, 2, 3}


def _nan_median(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=0)


@pytest.mark.parametrize("n", [1, 5])
def test_sorted_window_median_and_deviation_are_numpys(n: int) -> None:
    # Ties (rounded values), gaps, empty and partly filled windows, one push at a time.
    rng = np.random.default_rng(n)
    size = 37
    win = SortedWindow(n, size)
    history = np.full((size, n), np.nan)
    for i in range(300):
        v = np.round(rng.normal(0.0, 3.0, n), 1 if i % 3 else 0)
        v[rng.random(n) < 0.15] = np.nan
        if i < 60 and n > 1:
            v[-1] = np.nan  # a series still empty while the others fill
        win.push(v)
        history = np.vstack([history[1:], v])
        med = _nan_median(history)
        assert np.array_equal(win.median(), med, equal_nan=True)
        assert np.array_equal(win.mad(med), _nan_median(np.abs(history - med)), equal_nan=True)
        lo, hi = win.extremes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert np.array_equal(lo, np.nanmin(history, axis=0), equal_nan=True)
            assert np.array_equal(hi, np.nanmax(history, axis=0), equal_nan=True)
        assert np.array_equal(win.count, np.isfinite(history).sum(axis=0))
        assert win.raw.view().tobytes() == history.tobytes()


@pytest.mark.parametrize("n", [3, 9])  # 9: the least is found by halving the rows first
def test_stretch_distances_are_the_nearest_earlier_stretch(n: int) -> None:
    rng = np.random.default_rng(n)
    size, m = 200, 4
    dist = StretchDistances(size, n, m)
    past = np.full((size, n), np.nan)
    for i in range(260):
        x = rng.normal(0.0, 1.0, n)
        if i % 11 == 0:
            x[1] = np.nan
        dist.add(past, x)
        length = min(i + 1, size)
        if length >= 3 * m:
            series = np.vstack([past[-length + 1:], x])
            want = np.full(n, np.nan)
            for c in range(n):
                # In the stretch's order, squares as products (as numpy squares arrays).
                diffs = [[series[p + k, c] - series[length - m + k, c] for k in range(m)]
                         for p in range(length - 2 * m + 1)]
                sums = [sum(d * d for d in row) for row in diffs]
                ok = [v for v in sums if not np.isnan(v)]
                want[c] = min(ok) if ok else np.nan
            assert np.array_equal(dist.nearest_sq(length), want, equal_nan=True)
        past = np.vstack([past[1:], x])

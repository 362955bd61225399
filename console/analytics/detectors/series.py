"""Streaming change detection on many series at once (cluster, partition, tenant, queue).

Two scores, both against the *previous* ``window`` samples only (no look-ahead):

- **range break**: a value beyond everything in the window by ``range_margin`` of its range
  (the "spatial anomaly" rule NAB's best detectors add): failures push a metric to where it
  has never been. Only once the window is full: a young window breaks its own records by chance;
- **novelty of the recent shape**: the distance from the last ``embed`` samples to their
  nearest neighbour among all earlier stretches of the window (the idea of KNN-CAD), as a z
  against recent nearest-neighbour distances. A daily cycle or a square wave repeats itself
  and stays quiet; a cycle that freezes does not. The spread is at least ``novelty_rel``
  times the median distance, so noisy series need a proportionally larger surprise.

A plain robust z of the value (median / MAD) is computed too; it is not scored by default
(``point_weight`` 0): ops series are spiky and multi-modal, and on NAB it only added false
alarms. Why not a mean/standard deviation baseline at all: it is dragged by the very spikes
it should flag (NAB's "windowed Gaussian" scores 39.6).

The largest z maps to [0, 1] as ``z^2 / (z^2 + z_alarm^2)``, so the live alarm threshold is
simply ``score >= 0.5``. After an alarm a series stays quiet for ``refractory`` samples: one
change is one anomaly, not dozens. The same class and the same `SeriesSettings` run live
(columns = series) and over NAB's files (one column, one row at a time), so the NAB score
measures what the console actually does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class SeriesSettings:
    """Settings in samples, so they mean the same at any poll interval."""

    window: int = 600  # baseline length (samples)
    embed: int = 6  # samples in the shape compared by the novelty score
    nn_history: int = 300  # nearest-neighbour distances kept to judge the current one
    min_history: int = 40  # samples needed before any score is given
    z_alarm: float = 6.0  # z at which the score reaches 0.5 (the live alarm)
    refractory: int = 500  # samples of silence after an alarm
    range_margin: float = 0.05  # a value this share of the window's range outside it breaks it
    range_z: float = 8.0  # z given to a clear range break
    range_min_z: float = 0.0  # ... and this far from the median (0: the margin alone decides)
    range_min_history: int = 600  # a young window breaks its own records by chance: wait till full
    novelty_rel: float = 3.0  # least spread of nearest distances, as a multiple of their median
    novelty_floor: float = 0.1  # ... and in robust sigmas of the series
    rel_floor: float = 0.002  # scale floor relative to |median|, so flat series do not explode
    abs_floor: float = 1e-6
    point_weight: float = 0.0  # weight of the plain robust z of the value (0 = not used)
    up_only: bool = False  # score rises only (queue surge); the default scores both ways


def _quiet_nan(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


class SeriesDetector:
    """Vectorised over ``n_series`` columns; `step` takes one value per series (NaN = no data)."""

    def __init__(self, n_series: int, settings: SeriesSettings | None = None) -> None:
        self.settings = settings or SeriesSettings()
        s = self.settings
        self.n = int(n_series)
        self._buf = np.full((s.window, self.n), np.nan, dtype=np.float64)  # oldest first
        self._nn = np.full((s.nn_history, self.n), np.nan, dtype=np.float64)
        self._quiet = np.zeros(self.n, dtype=np.int64)  # refractory countdown per series
        self._filled = 0
        self.last_z = np.zeros(self.n)
        self.last_median = np.full(self.n, np.nan)
        self.last_part = np.zeros(self.n, dtype=np.int64)
        self.quiet = np.zeros(self.n, dtype=bool)  # True while a series is in its refractory time

    def step(self, values: np.ndarray) -> np.ndarray:
        """Score one new sample per series against the past; returns float64[n] in [0, 1]."""
        s = self.settings
        x = np.asarray(values, dtype=np.float64).reshape(self.n)
        buf = self._buf
        z = np.zeros(self.n)
        if self._filled >= s.min_history:
            z = self._z(x, buf)
        if s.up_only:
            z = np.maximum(z, 0.0)
        else:
            z = np.abs(z)
        self.last_z = z
        z2 = z * z
        score = z2 / (z2 + s.z_alarm * s.z_alarm)
        quiet = self._quiet > 0
        score = np.where(quiet, 0.0, score)
        alarm = (~quiet) & (score >= 0.5)
        self._quiet = np.where(alarm, s.refractory, np.maximum(self._quiet - 1, 0))
        self.quiet = self._quiet > 0
        # The sample joins the history only after it was scored: no look-ahead.
        buf[:-1] = buf[1:]
        buf[-1] = x
        self._filled = min(self._filled + 1, s.window)
        return score

    def _z(self, x: np.ndarray, buf: np.ndarray) -> np.ndarray:
        s = self.settings
        hist = buf[-self._filled:]
        med = _quiet_nan(np.nanmedian, hist, axis=0)
        dev = np.abs(hist - med)
        mad = _quiet_nan(np.nanmedian, dev, axis=0)
        scale = _MAD_TO_SIGMA * mad
        # Integer or mostly-constant series have MAD 0: fall back to the mean deviation.
        scale = np.where(scale > 0, scale, 1.2533 * _quiet_nan(np.nanmean, dev, axis=0))
        scale = np.maximum(np.nan_to_num(scale, nan=0.0),
                           np.maximum(s.rel_floor * np.abs(np.nan_to_num(med)), s.abs_floor))
        self.last_median = med
        with np.errstate(all="ignore"):
            z_point = (x - med) / scale
        # Range break: beyond the window's extremes by a share of its range.
        hi = _quiet_nan(np.nanmax, hist, axis=0)
        lo = _quiet_nan(np.nanmin, hist, axis=0)
        span = np.maximum(hi - lo, scale)
        margin = s.range_margin * span
        with np.errstate(all="ignore"):
            over = np.maximum(x - hi, lo - x) / span  # how far outside, as a share of the range
        far = (np.abs(np.nan_to_num(z_point)) >= s.range_min_z) & (self._filled >= s.range_min_history)
        broke_up = (x > hi + margin) & far
        broke_down = (x < lo - margin) & far
        grade = s.range_z * (1.0 + np.nan_to_num(over, nan=0.0))
        z_range = np.where(broke_up, grade, np.where(broke_down, -grade, 0.0))
        # Novelty: nearest earlier stretch of the same length, judged against recent distances.
        m = s.embed
        z_nov = np.zeros(self.n)
        if hist.shape[0] >= 3 * m:
            series = np.vstack([hist[-(hist.shape[0] - 1):], x[None, :]]) if hist.shape[0] > 1 else x[None, :]
            emb = sliding_window_view(series, m, axis=0)  # [positions, n, m]
            cur = emb[-1]
            cand = emb[:-m]
            with np.errstate(all="ignore"):
                d = np.sqrt(np.mean((cand - cur[None]) ** 2, axis=2)) / scale
            nn = _quiet_nan(np.nanmin, d, axis=0)
            self.last_nn = nn
            past = self._nn
            known = np.isfinite(past).sum(axis=0)
            base = _quiet_nan(np.nanmedian, past, axis=0)
            spread = _MAD_TO_SIGMA * _quiet_nan(np.nanmedian, np.abs(past - base), axis=0)
            spread = np.maximum(np.nan_to_num(spread), np.maximum(s.novelty_rel * np.nan_to_num(base), s.novelty_floor))
            with np.errstate(all="ignore"):
                zn = (nn - base) / spread
            z_nov = np.where((known >= 20) & np.isfinite(zn), np.maximum(zn, 0.0), 0.0)
            past[:-1] = past[1:]
            past[-1] = nn
            # Direction of a shape change follows the value's side of the median.
            z_nov = np.where(x >= med, z_nov, -z_nov)
        cands = np.stack([np.nan_to_num(z_point) * s.point_weight, z_range, z_nov])
        pick = np.argmax(np.abs(cands), axis=0)
        self.last_part = pick  # 0 value, 1 range break, 2 shape novelty: says which rule fired
        self.last_parts = (z_point, z_range, z_nov)
        z = cands[pick, np.arange(self.n)]
        return np.where(np.isfinite(x), z, 0.0)

"""A frozen copy of the series detector as it was before its cost per step was cut.

`test_series_speed_identity.py` runs it side by side with `console.analytics.detectors.series`
and asserts that every score is exactly the same float. Keep it unchanged: it is the definition
the faster detector is held to (the module's own description of the method is in series.py).
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
    # Samples of silence after an alarm. Not a principled value, and a knife edge: on NAB's 42
    # files of five categories (with ``escalate`` 1.5, standard profile, whole corpus) 200, 300,
    # 400, 500, 650 and 800 score 53.5, 43.6, 52.0, 46.2, 36.8 and 36.0 (an alarm just before a
    # labelled window hides it; too short repeats). Choosing it by leave-one-category-out does
    # not beat keeping 500 (54.2 against 55.4 held-out mean), so it stays.
    refractory: int = 500
    range_margin: float = 0.05  # a value this share of the window's range outside it breaks it
    range_z: float = 8.0  # z given to a clear range break
    range_min_z: float = 0.0  # ... and this far from the median (0: the margin alone decides)
    # A young window breaks its own records by chance: wait till full. On NAB 300 scores 3.4
    # points more held out than 450 or 600 (a knife edge), all of it on one category (traffic):
    # chosen by leave-one-category-out among 150 / 300 / 450 / 600, the held-out mean stays 55.4.
    range_min_history: int = 600
    # During the quiet time after an alarm, a value beyond the range the window had at the alarm
    # by this many times that range is a new, larger anomaly, not a repeat (0 = off): see
    # `SeriesDetector._escalations`. On NAB 1.25-3.0 all score 63-65 (57 without).
    escalate: float = 1.5
    novelty_rel: float = 3.0  # least spread of nearest distances, as a multiple of their median
    novelty_floor: float = 0.1  # ... and in robust sigmas of the series
    rel_floor: float = 0.002  # scale floor relative to |median|, so flat series do not explode
    abs_floor: float = 1e-6
    point_weight: float = 0.0  # weight of the plain robust z of the value (0 = not used)
    # Samples per block of the coarse shape test (0 = off). 8 lets ``window`` blocks reach 8x
    # further back than the fine test while a block stays short next to a daily cycle; on
    # NAB 4, 8 and 12 score alike (within 1 point), 24 blurs the shapes and gains nothing.
    up_only: bool = False  # score rises only (queue surge); the default scores both ways
    coarse: int = 8
    # Least autocorrelation of the block means at the detected period for the seasonal test
    # (> 1 = off). 0.95: only series whose blocks clearly repeat (the period explains ~90% of
    # their variance) are judged against past periods; on NAB 0.5, 0.8 and 0.95 scored within
    # 0.5 points (one-period version), and the high bar keeps the test off merely cyclic-ish
    # series live.
    seasonal_acf: float = 0.95
    # Adaptive quiet time (0 = off, the full ``refractory``): the quiet time after an alarm ends
    # early once z has stayed below half the alarm level for this many samples in a row, so a
    # series that settled (a step absorbed by its window) is judged again, while one still
    # moving stays quiet. See `SeriesDetector._settled`. Off live: on NAB's five categories,
    # leave-one-category-out choosing among calm 0, 30, 60, 120 (and refractory 300-1500 with
    # 120) holds out 53.0 / 40.7 / 61.5 (standard / low FP / low FN) against 55.4 / 46.7 / 60.2
    # for off: the folds pick 30, which fails on the held-out category. Fixed at 120 it holds
    # out 58.9 / 46.4 / 65.1 and makes ``refractory`` robust (300-1500: 57.5-58.9), but 120
    # was read off all five categories, so it is not a held-out figure. 30 / 60 / 120 score
    # 18.6 / 29.5 / 46.4 low FP: a knife edge.
    calm: int = 0
    # Likelihood on top (0 = off): samples over which each series learns how large its own
    # short-term mean of z (over ``likelihood_avg`` samples) usually is; the scored z becomes
    # how far the current short-term mean lies above that, in its own standard deviations (the
    # idea of Numenta's anomaly likelihood). A series that breaks records every day stops
    # alarming on each; one that never moves alarms on its first break. See `_Likelihood`.
    # Off live: on NAB's five categories, leave-one-category-out choosing among off and 2000
    # with z_alarm 3, 4, 6 holds out 44.1 / 36.6 / 48.4 against 55.4 / 46.7 / 60.2 for off,
    # though the whole corpus gains (51.2 at z_alarm 3 against 46.2); z_alarm 4 -> 6 moves it by
    # 11 points (a knife edge).
    likelihood: int = 0
    likelihood_avg: int = 10
    likelihood_floor: float = 0.2  # least standard deviation of the short-term mean (in z)


def _quiet_nan(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _reduce0(plain, nan_aware, a: np.ndarray) -> np.ndarray:
    """Column reduction ignoring NaN; the NaN-aware numpy call only when a NaN is present.

    The NaN-aware reductions, and the warning filter an all-NaN column needs, cost several
    times the plain ones; with many steps per poll on few series, that overhead dominates.
    """
    if np.isnan(a).any():
        return _quiet_nan(nan_aware, a, axis=0)
    return plain(a, axis=0)


def _zero_nan(a: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a), 0.0, a)


def _median0(a: np.ndarray) -> np.ndarray:
    """Column medians ignoring NaN, as ``np.nanmedian(a, axis=0)``.

    ``nanmedian`` takes a masked-array path that costs ~50x a plain median; columns without
    any NaN (nearly all of them once a window is full) take the plain path instead.
    """
    gaps = np.isnan(a).any(axis=0)
    if not gaps.any():
        return np.median(a, axis=0)
    out = np.empty(a.shape[1])
    full = ~gaps
    if full.any():
        out[full] = np.median(a[:, full], axis=0)
    out[gaps] = _quiet_nan(np.nanmedian, a[:, gaps], axis=0)
    return out


class SeriesDetector:
    """Vectorised over ``n_series`` columns; `step` takes one value per series (NaN = no data)."""

    def __init__(self, n_series: int, settings: SeriesSettings | None = None) -> None:
        self.settings = settings or SeriesSettings()
        s = self.settings
        self.n = int(n_series)
        self._buf = np.full((s.window, self.n), np.nan, dtype=np.float64)  # oldest first
        self._quiet = np.zeros(self.n, dtype=np.int64)  # refractory countdown per series
        self._filled = 0
        self._fine = _Shape(self.n, s)
        self._coarse = _Shape(self.n, s)
        self._cbuf = np.full((s.window, self.n), np.nan, dtype=np.float64)  # block means, oldest first
        self._cfilled = 0
        self._season = _Seasonal(self.n, s)
        self._block_sum = np.zeros(self.n)
        self._block_count = np.zeros(self.n, dtype=np.int64)
        self._steps = 0
        # The window's range at the last alarm (with the alarming value), for escalations.
        self._alarm_lo = np.full(self.n, np.nan)
        self._alarm_hi = np.full(self.n, np.nan)
        self._alarm_span = np.full(self.n, np.nan)
        nan = np.full(self.n, np.nan)
        self._lo, self._hi, self._span = nan, nan.copy(), nan.copy()  # of the window just judged
        self._block_mean: np.ndarray | None = None  # set at a block's last sample, else None
        self.last_z = np.zeros(self.n)
        self.last_median = np.full(self.n, np.nan)
        self.last_part = np.zeros(self.n, dtype=np.int64)
        self.quiet = np.zeros(self.n, dtype=bool)  # True while a series is in its refractory time
        self._lik = _Likelihood(self.n, s) if s.likelihood > 0 else None
        self._calm_run = np.zeros(self.n, dtype=np.int64)  # calm samples in a row while quiet

    def step(self, values: np.ndarray) -> np.ndarray:
        """Score one new sample per series against the past; returns float64[n] in [0, 1]."""
        s = self.settings
        x = np.asarray(values, dtype=np.float64).reshape(self.n)
        buf = self._buf
        z = np.zeros(self.n)
        self._block_mean = self._add_to_block(x) if s.coarse > 0 else None
        if self._filled >= s.min_history:
            z = self._z(x, buf)
        if s.up_only:
            z = np.maximum(z, 0.0)
        else:
            z = np.abs(z)
        if self._lik is not None:
            z = self._lik.z(z)
        self.last_z = z
        z2 = z * z
        score = z2 / (z2 + s.z_alarm * s.z_alarm)
        quiet = self._quiet > 0
        if s.calm > 0 and quiet.any():
            quiet = self._settled(z, quiet)
        if s.escalate > 0 and quiet.any():
            score, quiet = self._escalations(x, score, quiet)
        score = np.where(quiet, 0.0, score)
        alarm = (~quiet) & (score >= 0.5)
        if alarm.any():
            self._alarm_hi = np.where(alarm, np.fmax(self._hi, x), self._alarm_hi)
            self._alarm_lo = np.where(alarm, np.fmin(self._lo, x), self._alarm_lo)
            self._alarm_span = np.where(alarm, self._span, self._alarm_span)
        self._quiet = np.where(alarm, s.refractory, np.maximum(self._quiet - 1, 0))
        self.quiet = self._quiet > 0
        # The sample joins the history only after it was scored: no look-ahead.
        buf[:-1] = buf[1:]
        buf[-1] = x
        self._filled = min(self._filled + 1, s.window)
        if s.coarse > 0 and self._block_end:
            self._push_block()
        return score

    def _escalations(self, x: np.ndarray, score: np.ndarray,
                     quiet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Let a much larger break through the quiet time after an alarm.

        The quiet time keeps one change from raising dozens of alarms, but it also hid the real
        failure when a first, smaller move came just before it: a temperature that dips, is
        flagged, then falls off a cliff. A value beyond the range at the alarm by ``escalate``
        times that range has not been seen even at the alarm: it is graded as a range break
        against that range, and starts a new quiet time.
        """
        s = self.settings
        with np.errstate(all="ignore"):
            beyond = np.maximum(x - self._alarm_hi, self._alarm_lo - x) / self._alarm_span
        beyond = _zero_nan(beyond)
        esc = quiet & (beyond > s.escalate)
        if not esc.any():
            return score, quiet
        z = s.range_z * (1.0 + beyond)
        graded = z * z / (z * z + s.z_alarm * s.z_alarm)
        return np.where(esc, np.maximum(score, graded), score), quiet & ~esc

    def _settled(self, z: np.ndarray, quiet: np.ndarray) -> np.ndarray:
        """End the quiet time of series whose z stayed below half the alarm for ``calm`` samples.

        One fixed quiet time is a knife edge on NAB (a window that opens inside it is missed,
        one sample too short repeats the alarm); letting each series end its own quiet time once
        it settled makes the count matter less.
        """
        s = self.settings
        self._calm_run = np.where(quiet & (z < 0.5 * s.z_alarm), self._calm_run + 1, 0)
        ended = quiet & (self._calm_run >= s.calm)
        if ended.any():
            self._quiet = np.where(ended, 0, self._quiet)
            self._calm_run = np.where(ended, 0, self._calm_run)
        return quiet & ~ended

    @property
    def _block_end(self) -> bool:
        return self.settings.coarse > 0 and self._steps % self.settings.coarse == 0

    def _add_to_block(self, x: np.ndarray) -> np.ndarray | None:
        """Accumulate the sample into its block; at a block's last sample return the block mean."""
        ok = np.isfinite(x)
        self._block_sum += np.where(ok, x, 0.0)
        self._block_count += ok
        self._steps += 1
        if not self._block_end:
            return None
        with np.errstate(all="ignore"):
            return np.where(self._block_count > 0, self._block_sum / np.maximum(self._block_count, 1), np.nan)

    def _push_block(self) -> None:
        cb = self._cbuf
        cb[:-1] = cb[1:]
        cb[-1] = self._block_mean
        self._cfilled = min(self._cfilled + 1, self.settings.window)
        self._block_sum[:] = 0.0
        self._block_count[:] = 0

    def _z(self, x: np.ndarray, buf: np.ndarray) -> np.ndarray:
        s = self.settings
        hist = buf[-self._filled:]
        med, scale = _robust(hist, s)
        self.last_median = med
        with np.errstate(all="ignore"):
            z_point = (x - med) / scale
        # Range break: beyond the window's extremes by a share of its range.
        hi = _reduce0(np.max, np.nanmax, hist)
        lo = _reduce0(np.min, np.nanmin, hist)
        span = np.maximum(hi - lo, scale)
        self._lo, self._hi, self._span = lo, hi, span
        margin = s.range_margin * span
        with np.errstate(all="ignore"):
            over = np.maximum(x - hi, lo - x) / span  # how far outside, as a share of the range
        far = (np.abs(_zero_nan(z_point)) >= s.range_min_z) & (self._filled >= s.range_min_history)
        broke_up = (x > hi + margin) & far
        broke_down = (x < lo - margin) & far
        grade = s.range_z * (1.0 + _zero_nan(over))
        z_range = np.where(broke_up, grade, np.where(broke_down, -grade, 0.0))
        # Novelty: nearest earlier stretch of the same length, judged against recent distances.
        z_nov = self._fine.z(hist, x, scale)
        self.last_nn = self._fine.last_nn
        # Direction of a shape change follows the value's side of the median.
        z_nov = np.where(x >= med, z_nov, -z_nov)
        z_coarse = np.zeros(self.n)
        if self._block_mean is not None and self._cfilled >= 3 * s.embed + 1:
            chist = self._cbuf[-self._cfilled:]
            cmed, cscale = _robust(chist, s)
            bm = self._block_mean
            z_coarse = self._coarse.z(chist, bm, cscale)
            z_coarse = np.where(bm >= cmed, z_coarse, -z_coarse)
            if s.seasonal_acf <= 1.0:
                z_season = self._season.z(chist, bm, cscale)
                z_season = np.where(bm >= cmed, z_season, -z_season)
                # One slot for both block tests: they judge the same block means.
                z_coarse = np.where(np.abs(z_season) > np.abs(z_coarse), z_season, z_coarse)
        cands = np.stack([_zero_nan(z_point) * s.point_weight, z_range, z_nov, z_coarse])
        pick = np.argmax(np.abs(cands), axis=0)
        # 0 value, 1 range break, 2 shape novelty, 3 coarse shape novelty or seasonal departure:
        # says which rule fired
        self.last_part = pick
        self.last_parts = (z_point, z_range, z_nov, z_coarse)
        z = cands[pick, np.arange(self.n)]
        return np.where(np.isfinite(x), z, 0.0)


def _robust(hist: np.ndarray, s: SeriesSettings) -> tuple[np.ndarray, np.ndarray]:
    """Column median and robust scale (MAD as sigma), floored so flat series do not explode."""
    med = _median0(hist)
    dev = np.abs(hist - med)
    scale = _MAD_TO_SIGMA * _median0(dev)
    # Integer or mostly-constant series have MAD 0: fall back to the mean deviation.
    scale = np.where(scale > 0, scale, 1.2533 * _reduce0(np.mean, np.nanmean, dev))
    scale = np.maximum(_zero_nan(scale), np.maximum(s.rel_floor * np.abs(_zero_nan(med)), s.abs_floor))
    return med, scale


class _Shape:
    """Nearest-neighbour novelty of the last ``embed`` values of a series (one per column).

    Kept apart so the same test runs on the samples and on block means; each scale keeps its
    own history of nearest distances, since a distance means something different at each.
    """

    def __init__(self, n: int, s: SeriesSettings) -> None:
        self.s = s
        self.n = n
        self.past = np.full((s.nn_history, n), np.nan, dtype=np.float64)
        self.kept = 0  # rows of ``past`` written so far (the rest are NaN)
        self.last_nn = np.full(n, np.nan)

    def z(self, hist: np.ndarray, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """How unusual the stretch ending in ``x`` (not yet in ``hist``) is; >= 0, 0 = not judged."""
        s = self.s
        m = s.embed
        if hist.shape[0] < 3 * m:
            return np.zeros(self.n)
        series = np.vstack([hist[1:], x[None, :]])
        emb = sliding_window_view(series, m, axis=0)  # [positions, n, m]
        cur = emb[-1]
        cand = emb[:-m]
        with np.errstate(all="ignore"):
            d = np.sqrt(np.mean((cand - cur[None]) ** 2, axis=2)) / scale
        nn = _reduce0(np.min, np.nanmin, d)
        self.last_nn = nn
        past = self.past[-self.kept:] if self.kept else self.past
        known = np.isfinite(past).sum(axis=0)
        base = _median0(past)
        spread = _MAD_TO_SIGMA * _median0(np.abs(past - base))
        spread = np.maximum(_zero_nan(spread), np.maximum(s.novelty_rel * _zero_nan(base), s.novelty_floor))
        with np.errstate(all="ignore"):
            zn = (nn - base) / spread
        self.past[:-1] = self.past[1:]
        self.past[-1] = nn
        self.kept = min(self.kept + 1, s.nn_history)
        return np.where((known >= 20) & np.isfinite(zn), np.maximum(zn, 0.0), 0.0)


def _period(hist: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the lag in [lo, hi) with the highest autocorrelation, and that value.

    Through the FFT (one transform for all columns), normalised per lag by its overlap, so a
    long lag is not penalised for having fewer pairs. Gaps count as the column mean.
    """
    rows = hist.shape[0]
    a = _zero_nan(hist - _reduce0(np.mean, np.nanmean, hist))
    nfft = 1 << int(np.ceil(np.log2(2 * rows)))
    f = np.fft.rfft(a, nfft, axis=0)
    ac = np.fft.irfft(f * np.conj(f), nfft, axis=0)[:hi]
    with np.errstate(all="ignore"):
        ac = ac / (ac[0] * ((rows - np.arange(hi)) / rows)[:, None])
    seg = np.where(np.isfinite(ac[lo:hi]), ac[lo:hi], -np.inf)
    # Every multiple of a period correlates about as well as the period: take the shortest lag
    # within 0.02 of the best (noise decides between near-equal multiples otherwise), then climb
    # to the top of its peak (a broad peak enters the tolerance before its top).
    cols = np.arange(a.shape[1])
    top = seg.max(axis=0)
    k = np.argmax(seg >= top - 0.02, axis=0)
    while True:
        nxt = np.minimum(k + 1, seg.shape[0] - 1)
        up = seg[nxt, cols] > seg[k, cols]
        if not up.any():
            break
        k = np.where(up, nxt, k)
    return k + lo, seg[k, cols]


class _Seasonal:
    """Distance of the last ``embed`` block means from the same blocks one period earlier.

    The period is re-estimated every ``embed`` blocks (one FFT of the block history; a period
    does not change from block to block, and this keeps the test near the cost of the others) from
    lags of ``embed`` blocks (shorter repeats are shapes the other tests see) to a third of the
    history (room for the two periods compared with). Distances are kept only while the series is
    periodic, so the baseline they form is the usual period-to-period change.
    """

    def __init__(self, n: int, s: SeriesSettings) -> None:
        self.s = s
        self.n = n
        self.past = np.full((s.nn_history, n), np.nan, dtype=np.float64)
        self.kept = 0
        self.age = 0  # blocks judged; the period is re-estimated every ``embed`` of them
        self.period: np.ndarray | None = None
        self.acf = np.zeros(n)

    def z(self, chist: np.ndarray, bm: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """How far the blocks ending in ``bm`` (not yet in ``chist``) are from a period ago; >= 0."""
        s = self.s
        m = s.embed
        rows = chist.shape[0] + 1
        if rows // 3 <= m:
            return np.zeros(self.n)
        if self.age % m == 0 or self.period is None:
            self.period, self.acf = _period(chist, m, rows // 3)
        self.age += 1
        period, acf = self.period, self.acf
        series = np.vstack([chist, bm[None, :]])
        cols = np.arange(self.n)
        at = rows - 1 - np.arange(m)[:, None]
        cur = series[at, cols]
        # Against one and two periods back, keeping the nearer: the period after an anomaly
        # would otherwise be flagged for differing from the anomaly itself.
        d = np.full(self.n, np.inf)
        for k in (1, 2):
            back = series[at - k * period[None, :], cols]
            with np.errstate(all="ignore"):
                dk = np.sqrt(_reduce0(np.mean, np.nanmean, (cur - back) ** 2)) / scale
            d = np.fmin(d, dk)
        d = np.where(np.isfinite(d), d, np.nan)
        periodic = acf >= s.seasonal_acf
        self.kept = min(self.kept + 1, s.nn_history)
        self.past[:-1] = self.past[1:]
        if not periodic.any():  # the usual case live: skip the (gappy, so slow) baseline
            self.past[-1] = np.nan
            return np.zeros(self.n)
        past = self.past[-self.kept:-1]  # the distances before this one
        self.past[-1] = np.where(periodic, d, np.nan)
        known = np.isfinite(past).sum(axis=0)
        if past.shape[0] < 20:
            return np.zeros(self.n)
        base = _median0(past)
        spread = _MAD_TO_SIGMA * _median0(np.abs(past - base))
        spread = np.maximum(_zero_nan(spread), np.maximum(s.novelty_rel * _zero_nan(base), s.novelty_floor))
        with np.errstate(all="ignore"):
            zn = (d - base) / spread
        return np.where(periodic & (known >= 20) & np.isfinite(zn), np.maximum(zn, 0.0), 0.0)


class _Likelihood:
    """How unusual a series' recent z is for that series (Numenta's anomaly likelihood, online).

    The short-term mean of the last ``likelihood_avg`` z values is compared with the running
    mean and standard deviation of that same short-term mean (exponentially weighted over
    ``likelihood`` samples). Until ``likelihood // 4`` samples were seen the statistics are
    young and nothing is scored: a young estimate would call any first bump unusual. O(n) per
    step: a ring of z values and two running moments per series.
    """

    def __init__(self, n: int, s: SeriesSettings) -> None:
        self.s = s
        self.ring = np.zeros((max(s.likelihood_avg, 1), n))
        self.pos = 0
        self.seen = 0
        self.mean = np.zeros(n)
        self.sq = np.zeros(n)
        self.alpha = 1.0 / s.likelihood

    def z(self, z: np.ndarray) -> np.ndarray:
        """The likelihood z of this step (>= 0), then the step joins the statistics."""
        s = self.s
        self.ring[self.pos] = z
        self.pos = (self.pos + 1) % self.ring.shape[0]
        avg = self.ring.mean(axis=0)
        std = np.sqrt(np.maximum(self.sq - self.mean * self.mean, 0.0))
        std = np.maximum(std, s.likelihood_floor)
        ready = self.seen >= s.likelihood // 4
        out = np.maximum((avg - self.mean) / std, 0.0) if ready else np.zeros_like(z)
        a = self.alpha if ready else 1.0 / (self.seen + 1)  # plain mean while young
        self.mean += a * (avg - self.mean)
        self.sq += a * (avg * avg - self.sq)
        self.seen += 1
        return out

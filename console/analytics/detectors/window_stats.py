"""Sliding-window statistics of many series, kept up to date one sample at a time.

The series detector needs, at every step and for every series, the median and the median
absolute deviation of a window of 600 samples, the window's extremes, and the distance from the
newest stretch of samples to its nearest earlier stretch. Recomputed from scratch that is a
partial sort (``np.partition``) of every window four times a step and a 600 x 6 distance matrix
per series: the bulk of the detector's cost. Here each is kept incrementally, and each gives
*exactly* the floats numpy gives when recomputing (the detector's scores must not move):

- `Ring`: the last ``size`` rows as one contiguous array, oldest first, without moving the
  window at every step (each row is written twice, ``size`` apart);
- `SortedWindow`: each series' window kept sorted (one deletion and one insertion per step).
  Order statistics are exact, so the median (the middle value, or the mean of the two middle
  ones, as numpy takes it) is the same float; the median absolute deviation is found without
  sorting the deviations (see `SortedWindow.mad`);
- `StretchDistances`: the squared differences between each sample and the sample that came
  ``k`` steps later are computed once, when the later sample arrives, and summed over the
  stretch in the same order numpy's mean sums them.

NaN is "no value": a NaN never enters a sorted window, and a window without any value gives NaN.
"""

from __future__ import annotations

import warnings

import numpy as np


class Ring:
    """The last ``size`` rows pushed (``n`` columns), oldest first, as a contiguous view.

    Rows never pushed are NaN. The view has the shape and strides of a ``(size, n)`` array
    shifted by one row per push (what the detector did before), at the cost of two row writes.
    """

    def __init__(self, size: int, n: int) -> None:
        self.size = int(size)
        self._a = np.full((2 * self.size, n), np.nan, dtype=np.float64)
        self._pos = 0  # where the next row goes (and its twin, ``size`` rows further)

    def push(self, row: np.ndarray) -> None:
        p = self._pos
        self._a[p] = row
        self._a[p + self.size] = row
        self._pos = p + 1 if p + 1 < self.size else 0

    def view(self) -> np.ndarray:
        """All ``size`` rows, oldest first (a view: valid until the next push)."""
        return self._a[self._pos:self._pos + self.size]

    def last(self, rows: int) -> np.ndarray:
        """The newest ``rows`` rows, oldest first (a view)."""
        end = self._pos + self.size
        return self._a[end - rows:end]

    def oldest(self) -> np.ndarray:
        """The row the next push replaces (NaN while the ring is not full)."""
        return self._a[self._pos]


class SortedWindow:
    """For ``n`` series, the values among the last ``size`` pushed, each series' sorted.

    Per push, per series: the value leaving the window is deleted and the new one inserted
    (their places found by a binary search run for all series at once; the values between the
    two places move by one), O(size) vectorised over the series instead of a sort, or a
    selection, of every window for every statistic.
    """

    def __init__(self, n: int, size: int) -> None:
        self.n = int(n)
        self.size = int(size)
        self.raw = Ring(self.size, self.n)
        # Sorted values in columns 1..count, NaN elsewhere: the NaN columns at both ends are
        # what a shift by one brings in, and the NaN past the end reaches as far as the binary
        # search probes. Two buffers, written alternately (no copy of a copy); each is updated
        # as one flat array (no loop over its rows).
        bits = max(self.size, 1).bit_length()
        # The search first counts, in one comparison, the values below the key among every
        # ``_stride``-th value, then halves within that stride: a few operations on small
        # arrays instead of one per halving of the whole row.
        fine = min(bits, _FINE_BITS)
        self._stride = 1 << fine
        self._probes = [1 << b for b in range(fine - 1, -1, -1)]
        width = self.size + self._stride + 1
        self._a = np.full((self.n, width), np.nan, dtype=np.float64)
        self._b = np.full((self.n, width), np.nan, dtype=np.float64)
        self.count = np.zeros(self.n, dtype=np.int64)  # values (not NaN) in each window
        self._uniform = True  # every window holds as many values (set when a count changes)
        self.pushed = 0
        self._rows = np.arange(self.n)
        self._starts = np.tile(self._rows * width, 2)  # where each row starts, twice
        self._keys = np.empty(2 * self.n, dtype=np.float64)
        self._from = _from_table(self.size, width)
        self._dev = np.empty(self.n * self.size, dtype=np.float64)
        self._pair = np.empty(self.n * self.size, dtype=np.float64)

    @property
    def sorted(self) -> np.ndarray:
        """Each series' values ascending, then NaN: ``[n, size]`` (a view)."""
        return self._a[:, 1:self.size + 1]

    def push(self, values: np.ndarray) -> None:
        """One value per series joins (NaN: none); the oldest leaves once the window is full."""
        # The sorted rows hold -0.0 as 0.0 (``+ 0.0``), so that the value deleted later is
        # found by order; the raw rows keep the values as given.
        new = np.asarray(values, dtype=np.float64) + 0.0
        old = self.raw.oldest() + 0.0
        self.raw.push(values)
        self.pushed += 1
        gone = old == old  # not NaN
        came = new == new
        if self.n == 1:
            self._push_one(float(old[0]) if gone[0] else None, float(new[0]) if came[0] else None)
            return
        n = self.n
        n_gone, n_came = int(np.count_nonzero(gone)), int(np.count_nonzero(came))
        if n_gone == 0 and n_came == 0:
            return
        size = self.size
        # Where the leaving value sits (the first of its equals), and where the new one goes
        # once it has left; past the end when there is nothing to delete or insert.
        keys = self._keys
        keys[:n] = old
        keys[n:] = new
        at = self._search(keys)
        steady = n_gone == n and n_came == n  # every window full and every series reporting
        if steady:
            p = at[:n]
            q = at[n:] - (old < new)
        else:
            p = np.where(gone, at[:n], size + 1)
            q = np.where(came, at[n:] - (gone & (old < new)), size)
        # Places p <= j < q take their right neighbour, q < j <= p their left one.
        ge, lt = self._from
        q1 = q + 1
        right = (ge[p] & lt[q]).ravel()
        left = (ge[q1] & lt[p + 1]).ravel()
        src, dst = self._a, self._b
        flat_src, flat_dst = src.ravel(), dst.ravel()
        np.copyto(flat_dst, flat_src)
        np.copyto(flat_dst[:-1], flat_src[1:], where=right[:-1])
        np.copyto(flat_dst[1:], flat_src[:-1], where=left[1:])
        if n_came == n:
            dst[self._rows, q1] = new
        elif n_came:
            dst[self._rows[came], q1[came]] = new[came]
        self._a, self._b = dst, src
        if not steady:
            # A new array, not an update in place: a count read before the push stays as it was.
            self.count = self.count + came - gone
            self._uniform = bool((self.count == self.count[0]).all())

    def _search(self, keys: np.ndarray) -> np.ndarray:
        """Per key (the first ``n`` for the rows in order, then again), how many values of its
        row are less than it: a binary search stepped for all rows at once, by halving probes
        (NaN, past a row's values, is never less)."""
        stride = self._stride
        marks = self._a[:, stride::stride]  # the stride-th, 2 stride-th, ... value of each row
        below = (marks[None, :, :] < keys.reshape(2, self.n, 1)).sum(axis=2).ravel()
        at = self._starts + below * stride
        flat = self._a.ravel()
        for probe in self._probes:
            np.add(at, probe, out=at, where=flat[probe:].take(at) < keys)
        return at - self._starts

    def _push_one(self, old: float | None, new: float | None) -> None:
        """One series: a binary search and one shift of part of the row."""
        row = self._a[0]
        c = int(self.count[0])
        if old is not None:
            p = int(np.searchsorted(row[1:c + 1], old, side="left")) + 1
            row[p:c] = row[p + 1:c + 1]
            row[c] = np.nan
            c -= 1
        if new is not None:
            q = int(np.searchsorted(row[1:c + 1], new, side="left")) + 1
            row[q + 1:c + 2] = row[q:c + 1]
            row[q] = new
            c += 1
        self.count = np.array([c], dtype=np.int64)  # one series: always uniform

    def extremes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each window's least and greatest value (NaN for an empty window)."""
        a = self._a
        return a[:, 1].copy(), a[self._rows, self.count]  # column 0 is NaN

    def median(self) -> np.ndarray:
        """Each window's median, the same float as ``np.nanmedian`` (NaN when empty)."""
        c = self.count
        a = self._a
        if self._uniform:
            k = int(c[0])
            if k == 0:
                return np.full(self.n, np.nan)
            if k % 2:
                return a[:, k // 2 + 1].copy()
            return (a[:, k // 2] + a[:, k // 2 + 1]) / 2.0
        h = c // 2
        odd = (c % 2) == 1
        lo = a[self._rows, np.where(odd, h + 1, h)]
        hi = a[self._rows, h + 1]
        mid = np.where(odd, lo, (lo + hi) / 2.0)
        return np.where(c > 0, mid, np.nan)

    def mad(self, med: np.ndarray) -> np.ndarray:
        """Each window's median of ``|value - med|``, the same float as ``np.nanmedian``.

        Along a sorted window the deviations from any centre fall, then rise (rounding is
        monotone, so this holds for the computed floats too). The j-th smallest of such a
        sequence is the least, over the runs of j + 1 neighbours, of the larger deviation at
        the run's two ends: the j + 1 nearest values form such a run, and every run of j + 1
        values reaches at least that far. So two vectorised passes replace a partial sort of
        the deviations. A centre at infinity (deviations NaN) takes numpy's own path.
        """
        c = self.count
        if self._uniform:
            k0 = int(c[0])
            if k0 and not bool(np.isfinite(med).all()):
                return _nan_median(np.abs(self.raw.view() - med))
            return self._mad_of(slice(None), k0, med)
        if not bool(np.isfinite(med[c > 0]).all()):
            return _nan_median(np.abs(self.raw.view() - med))
        out = np.full(self.n, np.nan)
        for k in np.unique(c):
            rows = np.flatnonzero(c == k)
            out[rows] = self._mad_of(rows, int(k), med[rows])
        return out

    def _mad_of(self, rows: slice | np.ndarray, k: int, med: np.ndarray) -> np.ndarray:
        """The median deviation from ``med`` of ``rows``, each holding ``k`` values."""
        if k == 0:
            return np.full(med.shape[0], np.nan)
        vals = self._a[rows, 1:k + 1]
        m = vals.shape[0]
        # Rows of exactly k, back to back, so that the run ends' larger deviation is one
        # operation over the flat buffer (a run that would cross into the next row is simply
        # not read back).
        size = m * k
        dev = self._dev[:size]
        np.subtract(vals, med[:, None], out=dev.reshape(m, k))
        np.abs(dev, out=dev)
        hi = self._kth_v(dev, m, k, k // 2)
        return hi if k % 2 else (self._kth_v(dev, m, k, k // 2 - 1) + hi) / 2.0

    def _kth_v(self, dev: np.ndarray, m: int, k: int, j: int) -> np.ndarray:
        """Per row of ``dev`` (m rows of k, flat), the j-th smallest (from 0) of a
        falling-then-rising row without NaN."""
        if j == 0:
            return dev.reshape(m, k).min(axis=1)
        size = m * k
        pair = self._pair[:size]
        np.maximum(dev[:size - j], dev[j:], out=pair[:size - j])
        return pair.reshape(m, k)[:, :k - j].min(axis=1)

    def finite_count(self) -> np.ndarray:
        """Values per window that are finite (``count`` less any infinity)."""
        lo, hi = self.extremes()
        if not (np.isinf(lo).any() or np.isinf(hi).any()):
            return self.count
        return np.isfinite(self.raw.view()).sum(axis=0)


#: Halvings left to the binary search after the count among every 2**_FINE_BITS-th value.
_FINE_BITS = 5

_FROM: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _from_table(size: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Over a row of ``width`` columns whose column c holds the (c - 1)-th value:
    ``ge[a, c] = a <= c - 1 < size`` and ``lt[a, c] = 0 <= c - 1 < a``, for a in 0..size + 2.
    A row per place, shared by windows of a size, so the masks of the places that move are
    row lookups, not comparisons; the NaN columns are never in a mask."""
    tables = _FROM.get((size, width))
    if tables is None:
        value = np.arange(width) - 1
        place = np.arange(size + 3)[:, None]
        ge = (value >= place) & (value < size)
        lt = (value < place) & (value >= 0)
        ge.setflags(write=False)
        lt.setflags(write=False)
        tables = _FROM[(size, width)] = (ge, lt)
    return tables


def _nan_median(a: np.ndarray) -> np.ndarray:
    """Column medians ignoring NaN (NaN for an empty column), quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(a, axis=0), dtype=np.float64)


class StretchDistances:
    """Distances from the newest ``m`` values of each series to every earlier stretch of ``m``.

    The stretch starting ``i`` samples back is compared term by term with the newest one, and
    the k-th term of that comparison pairs two samples a fixed number of steps apart: the
    squared difference between a sample and a later one is the same number whichever stretch
    it is read for. So each step computes only the squared differences of the new sample with
    the window before it (``sq``), and a stretch's sum adds, term by term in the stretch's
    order (as numpy's mean over the stretch adds them), the ``sq`` of the last ``m`` steps
    at one and the same place in the window.
    """

    def __init__(self, size: int, n: int, m: int) -> None:
        self.size, self.m = int(size), int(m)
        self._sq = np.full((self.m, self.size, n), np.nan, dtype=np.float64)
        self._acc = np.empty((max(self.size - self.m + 1, 0), n), dtype=np.float64)
        self._t = 0

    def add(self, window: np.ndarray, x: np.ndarray) -> None:
        """The new values ``x`` against the ``size`` rows before them (NaN where none)."""
        e = self._sq[self._t % self.m]
        np.subtract(window, x, out=e)
        np.multiply(e, e, out=e)
        self._t += 1

    def nearest_sq(self, length: int) -> np.ndarray:
        """Per series, the least sum of squared differences between the newest stretch and a
        stretch that ends before it starts, within the newest ``length`` samples (NaN: none).

        Called after `add` for the newest sample; ``length`` counts that sample.
        """
        m, size = self.m, self.size
        lo, hi = size + m - length, size - m + 1
        if hi <= lo:
            return np.full(self._sq.shape[2], np.nan)
        oldest = self._t % m
        acc = self._acc[:hi - lo]
        first = self._sq[oldest, lo:hi]
        if m == 1:
            acc[...] = first
        else:
            np.add(first, self._sq[(oldest + 1) % m, lo:hi], out=acc)
            for k in range(2, m):
                np.add(acc, self._sq[(oldest + k) % m, lo:hi], out=acc)
        # The least per series (NaN ignored): halving the rows first is cheaper than numpy's
        # reduction down the rows of many series, and the least is the same whatever the order.
        rows = hi - lo
        if acc.shape[1] >= 8:
            while rows > 64:
                half = rows // 2
                np.fmin(acc[:half], acc[half:2 * half], out=acc[:half])
                if rows % 2:
                    np.fmin(acc[0], acc[2 * half], out=acc[0])
                rows = half
        return np.fmin.reduce(acc[:rows], axis=0)

"""Bounded history: a raw ring for recent points and a coarse ring of one-minute means.

Python lists of samples cost 10x the memory and stall the garbage collector (PERF.md); these are
preallocated numpy rings, time-major, float64 time and float32 values, NaN for gaps. Width can
grow (a new tenant appears), length never does.
"""

from __future__ import annotations

import numpy as np


class Ring:
    """A fixed-capacity ring of rows ``(t, values[width])``."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.t = np.full(capacity, np.nan, np.float64)
        self.v = np.full((capacity, width), np.nan, np.float32)
        self.n = 0
        self.head = 0  # next write position

    @property
    def width(self) -> int:
        return self.v.shape[1]

    def widen(self, width: int) -> None:
        if width > self.width:
            extra = np.full((self.capacity, width - self.width), np.nan, np.float32)
            self.v = np.concatenate([self.v, extra], axis=1)

    def append(self, t: float, values: np.ndarray) -> None:
        self.widen(values.shape[0])
        self.t[self.head] = t
        row = self.v[self.head]
        row[:] = np.nan
        row[: values.shape[0]] = values
        self.head = (self.head + 1) % self.capacity
        self.n = min(self.n + 1, self.capacity)

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies in time order (oldest first)."""
        if self.n < self.capacity:
            return self.t[: self.n].copy(), self.v[: self.n].copy()
        idx = np.r_[self.head:self.capacity, 0:self.head]
        return self.t[idx], self.v[idx]

    def last_t(self) -> float | None:
        if self.n == 0:
            return None
        return float(self.t[(self.head - 1) % self.capacity])


class TieredHistory:
    """Raw points for the recent past, one-minute means for the long past (a week by default)."""

    def __init__(self, width: int, raw_capacity: int = 2880, coarse_capacity: int = 10080,
                 coarse_step_s: float = 60.0) -> None:
        self.raw = Ring(raw_capacity, width)
        self.coarse = Ring(coarse_capacity, width)
        self.coarse_step_s = coarse_step_s
        self._bucket: float | None = None
        self._sum = np.zeros(width, np.float64)
        self._count = np.zeros(width, np.int64)

    def append(self, t: float, values: np.ndarray) -> None:
        last = self.raw.last_t()
        if last is not None and t <= last:
            return  # time must advance; a repeated frame adds nothing
        self.raw.append(t, values)
        bucket = float(np.floor(t / self.coarse_step_s) * self.coarse_step_s)
        if self._bucket is not None and bucket != self._bucket:
            self._flush()
        self._bucket = bucket
        if values.shape[0] > self._sum.shape[0]:
            grow = values.shape[0] - self._sum.shape[0]
            self._sum = np.concatenate([self._sum, np.zeros(grow)])
            self._count = np.concatenate([self._count, np.zeros(grow, np.int64)])
        ok = np.isfinite(values)
        self._sum[: values.shape[0]][ok] += values[ok]
        self._count[: values.shape[0]][ok] += 1

    def _flush(self) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        assert self._bucket is not None
        self.coarse.append(self._bucket + self.coarse_step_s / 2, mean.astype(np.float32))
        self._sum[:] = 0
        self._count[:] = 0

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """Coarse points older than the raw window, then the raw points: one time-ordered series."""
        rt, rv = self.raw.view()
        ct, cv = self.coarse.view()
        width = max(rv.shape[1], cv.shape[1])
        if cv.shape[1] < width:
            cv = np.pad(cv, ((0, 0), (0, width - cv.shape[1])), constant_values=np.nan)
        if rt.size:
            keep = ct < rt[0]
            ct, cv = ct[keep], cv[keep]
        return np.concatenate([ct, rt]), np.concatenate([cv, rv])

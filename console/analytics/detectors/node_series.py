"""Change detection on every node's own series: its power draw and its GPUs' temperature.

Peer comparison (`gpu.py`) finds a GPU unlike its neighbours *now*; this finds a node unlike
*itself a while ago*: a node whose draw halves while its job keeps running (throttling, a GPU
gone quiet, a stalled rank) or whose GPUs run hotter at the same work (a failing fan, a blocked
air path) even when its peers do the same. Only those directions are reported: power rising or
temperature falling under the same jobs is a node getting back to work or to normal (the end of
a power cap, of a cooling fault), which an operator does not need paged as a change.

Why not the NAB-scored `SeriesDetector` here: a node's series is only comparable with itself
while the same jobs run on it. A job starting or ending moves power by kilowatts and is not an
anomaly, so each node's baseline restarts whenever its set of jobs changes, and must be short
enough to be useful soon after. That rules out a 600-sample window with shape memory; it calls for
robust statistics on a sliding window of block means, which is also what keeps 4,096 nodes cheap:

- samples are averaged into blocks of ``block_s`` seconds (a checkpoint's 90-second dip becomes
  one low block among many, not a change);
- the baseline is the median and MAD of the node's last ``window`` blocks *of its current
  allocation*, recomputed only when a block closes (one median over ``window`` x nodes every
  ``block_s``; every other poll costs a few vector operations);
- a block in which the node was changed (in either series) stays out of the baselines: they are
  the node's normal, so the return to normal after a 40-minute cooling fault is not a second "change"
  (a baseline that had learnt the faulty level would flag the recovery);
- a series is judged once it has ``min_blocks`` normal blocks with the same jobs; a sample is a change
  when its robust z reaches ``z_alarm`` *and* it moved materially (``power_rel`` of the baseline,
  ``temp_abs`` degrees): a steady idle node's MAD is tiny, so z alone would flag a few watts.

Findings repeat every poll while the change lasts (the tracker confirms them over ``confirm_s``,
longer than a checkpoint) and stop when the value returns; a change that outlasts the whole window
empties the baseline, and the node then learns its new level as normal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from console.analytics.detectors.base import Finding
from console.analytics.detectors.context import FrameContext
from console.model import Severity

_MAD_TO_SIGMA = 1.4826
SERIES = ("power", "temp")
_BAD_SIGN = np.array([-1.0, 1.0])  # the direction of trouble: power falling, temperature rising


@dataclass(frozen=True)
class NodeSeriesSettings:
    enabled: bool = True
    block_s: float = 120.0  # samples averaged per block
    window: int = 30  # blocks in the baseline (an hour at 2-minute blocks)
    min_blocks: int = 8  # blocks with the same jobs before a node is judged
    z_alarm: float = 6.0
    power_rel: float = 0.25  # a power change must be at least this share of the baseline ...
    power_floor_w: float = 5.0  # ... and the spread at least this many watts per GPU
    temp_abs: float = 10.0  # a temperature change must be at least this many degrees ...
    temp_floor_c: float = 1.0  # ... and the spread at least this many
    confirm_s: float = 300.0  # longer than a checkpoint write (90 s) and a job's warm-up


class NodeSeriesDetectors:
    """Stateful across frames; keyed by node names, restarting when the node list changes."""

    def __init__(self, settings: NodeSeriesSettings | None = None) -> None:
        self.s = settings or NodeSeriesSettings()
        self._names: tuple[str, ...] = ()
        self._last_t: float | None = None

    def _reset(self, names: tuple[str, ...]) -> None:
        n = len(names)
        s = self.s
        self._names = names
        k = len(SERIES)
        self._blocks = np.full((s.window, k, n), np.nan, dtype=np.float64)
        self._hit = np.zeros((k, n), dtype=bool)  # changed at some poll of the open block
        self._sum = np.zeros((k, n))
        self._n = np.zeros((k, n))
        self._block_start: float | None = None
        self._sig = np.full((3, n), -1, dtype=np.int64)
        self._med = np.full((k, n), np.nan)
        self._scale = np.full((k, n), np.nan)

    def run(self, ctx: FrameContext) -> list[Finding]:
        s = self.s
        if not s.enabled or ctx.n_gpus == 0 or ctx.frame.data_time.get("telemetry") is None:
            return []
        if self._last_t is not None and ctx.now <= self._last_t:
            return []
        self._last_t = ctx.now
        names = ctx.topo.node_names
        if names != self._names:
            self._reset(names)
        n, gpn = ctx.n_nodes, ctx.gpn
        g = ctx.frame.gpu
        power = np.asarray(g.power, np.float64).reshape(n, gpn)
        temp = np.asarray(g.temp, np.float64).reshape(n, gpn)
        exists = ctx.exists.reshape(n, gpn)
        complete = (np.isfinite(power) | ~exists).all(axis=1) & exists.any(axis=1)
        with np.errstate(invalid="ignore"):
            # A node missing a GPU's reading has no comparable total: NaN, never a drop.
            x = np.stack([np.where(complete, np.nansum(np.where(exists, power, 0.0), axis=1), np.nan),
                          _row_mean(np.where(exists, temp, np.nan))])
        self._restart_changed(ctx)
        out, hit = self._judge(ctx, x)
        # A node changed in one series is not normal in the other either: a power cap cools the
        # GPUs, and a baseline that learnt the capped temperature would flag the return to work.
        self._hit |= hit.any(axis=0)[None, :]
        self._accumulate(ctx.now, x)
        return out

    def _restart_changed(self, ctx: FrameContext) -> None:
        """A node whose jobs changed starts a new baseline (its old one described other work)."""
        n, gpn = ctx.n_nodes, ctx.gpn
        jid = ctx.job_id.reshape(n, gpn) if ctx.job_id.size == n * gpn else np.zeros((n, gpn), np.int64)
        busy = jid > 0
        big = np.iinfo(np.int64).max
        sig = np.stack([np.where(busy, jid, big).min(axis=1), jid.max(axis=1), busy.sum(axis=1)])
        changed = (sig != self._sig).any(axis=0)
        if changed.any():
            self._blocks[:, :, changed] = np.nan
            self._hit[:, changed] = False
            self._sum[:, changed] = 0.0
            self._n[:, changed] = 0.0
            self._med[:, changed] = np.nan
            self._scale[:, changed] = np.nan
        self._sig = sig

    def _accumulate(self, now: float, x: np.ndarray) -> None:
        s = self.s
        ok = np.isfinite(x)
        self._sum += np.where(ok, x, 0.0)
        self._n += ok
        if self._block_start is None:
            self._block_start = now
            return
        if now - self._block_start < s.block_s:
            return
        self._block_start = now
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self._n > 0, self._sum / np.maximum(self._n, 1), np.nan)
        self._blocks[:-1] = self._blocks[1:]
        self._blocks[-1] = np.where(self._hit, np.nan, mean)
        self._hit[:] = False
        self._sum[:] = 0.0
        self._n[:] = 0.0
        self._baseline()

    def _baseline(self) -> None:
        """Median and robust spread of each series' normal blocks; NaN until ``min_blocks``."""
        s = self.s
        b = self._blocks
        med = _nanmedian0(b)
        mad = _nanmedian0(np.abs(b - med[None]))
        judged = np.isfinite(b).sum(axis=0) >= s.min_blocks
        self._med = np.where(judged, med, np.nan)
        self._scale = np.where(judged, _MAD_TO_SIGMA * mad, np.nan)

    def _judge(self, ctx: FrameContext, x: np.ndarray) -> tuple[list[Finding], np.ndarray]:
        """Findings for this poll, and which series (rows) of which nodes (columns) changed."""
        s = self.s
        med, scale = self._med, self._scale
        if not np.isfinite(med).any():
            return [], np.zeros(med.shape, bool)
        gpn = ctx.gpn
        floor = np.array([s.power_floor_w * gpn, s.temp_floor_c])[:, None]
        need = np.stack([s.power_rel * np.abs(med[0]), np.full(med.shape[1], s.temp_abs)])
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (x - med) / np.maximum(np.nan_to_num(scale, nan=np.inf), floor)
            hit = (np.abs(z) >= s.z_alarm) & (np.abs(x - med) >= need) & (z * _BAD_SIGN[:, None] > 0)
        out: list[Finding] = []
        names = ctx.topo.node_names
        for k, node in zip(*np.nonzero(hit)):
            what = SERIES[k]
            xv, mv = float(x[k, node]), float(med[k, node])
            if what == "power":
                words = f"{names[node]} draws {xv / 1000:.2f} kW, down from {mv / 1000:.2f} kW with the same jobs"
            else:
                words = f"{names[node]} GPUs average {xv:.0f} C, up from {mv:.0f} C with the same jobs"
            f = ctx.node_finding("series_change", int(node), float(min(1.0, abs(z[k, node]) / (2 * s.z_alarm))),
                                 f"{words} (robust z {z[k, node]:+.1f})", severity=Severity.INFO,
                                 confirm=2, confirm_s=s.confirm_s, detail=f"series={what}")
            out.append(replace(f, series=f"node_{what}"))
        return out, hit


def _row_mean(a: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a)
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, np.where(ok, a, 0.0).sum(axis=1) / np.maximum(cnt, 1), np.nan)


def _nanmedian0(a: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN, by one sort (NaN sorts last).

    ``np.nanmedian`` on arrays with gaps takes a per-column path that costs tens of
    milliseconds at 4,096 nodes; restarted baselines leave gaps in many columns all the time.
    """
    srt = np.sort(a, axis=0)
    cnt = np.isfinite(a).sum(axis=0)
    lo = np.maximum((cnt - 1) // 2, 0)
    hi = np.maximum(cnt // 2, 0)
    with np.errstate(invalid="ignore"):
        m = (np.take_along_axis(srt, lo[None], 0)[0] + np.take_along_axis(srt, hi[None], 0)[0]) / 2.0
    return np.where(cnt > 0, m, np.nan)

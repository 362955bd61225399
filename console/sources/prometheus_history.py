"""History backfill from Prometheus: the cluster series from before the console started.

The console's own history begins when it starts, while Prometheus holds weeks of DCGM samples.
`HistoryBackfill` reads the series Prometheus alone can answer (delivered and installed PF;
allocated, busy and available PF and the job counts need Slurm and have no history) with range
queries aggregated on the server, in bounded chunks, inside the telemetry source's own polls.
The result is a `HistorySeed` that the state writes only where it has no sample of its own.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Mapping

import numpy as np

from console.model import HistorySeed
from console.sources.base import ErrorKind, SourceError
from console.sources.prometheus import MetricMap, promql_string

#: Prometheus refuses a range query of more than 11,000 points per series.
MAX_RANGE_POINTS = 11_000


def cluster_history_queries(models: Mapping[str, tuple[float, float]],
                            metrics: MetricMap = MetricMap()) -> dict[str, str]:
    """PromQL for the cluster series Prometheus alone can answer over time, keyed like
    `History.series`: ``delivered_pf`` (tensor activity x clock factor x peak, as the state
    computes it) and ``installed_pf`` (the peak of every GPU reporting at that instant).

    ``models`` maps an exact model name as the exporter labels it ("" = no model label) to
    (dense peak TFLOPS at the console's precision, boost clock MHz or 0). Per-GPU terms are
    joined with ``or`` and summed once, so an instant without any GPU series is a gap (no point),
    never a false zero. A GPU without a clock series counts at full clock, as in the state.
    """
    by = ", ".join((*metrics.host_labels, metrics.gpu_label))
    delivered: list[str] = []
    installed: list[str] = []
    for name, (peak, clock) in models.items():
        if not peak > 0:
            continue
        # The state takes the first non-empty model label: match that label exactly and
        # require the labels before it to be absent ("" matches a missing label).
        labels = metrics.model_labels
        selectors = ([[*(f'{lb}=""' for lb in labels[:i]), f"{lb_i}={promql_string(name)}"]
                      for i, lb_i in enumerate(labels)] if name
                     else [[f'{lb}=""' for lb in labels]])
        for matchers in selectors:
            sel = "{" + ",".join([metrics.selector] * bool(metrics.selector) + matchers) + "}"
            tensor = f"max by ({by}) ({metrics.tensor}{sel})"
            if clock > 0:
                ratio = (f"(clamp_max(max by ({by}) ({metrics.sm_clock}{sel}) / {clock:g}, 1) "
                         f"or count by ({by}) ({metrics.tensor}{sel}) * 0 + 1)")
                delivered.append(f"({tensor} * on({by}) {ratio} * {peak:g})")
            else:
                delivered.append(f"({tensor} * {peak:g})")
            installed.append(f"(count by ({by}) ({metrics.util}{sel}) * 0 + {peak:g})")
    if not delivered:
        raise SourceError(ErrorKind.CONFIG, "no peak figure known for the GPU models "
                          f"{', '.join(repr(m) for m in models) or '(none seen)'}; "
                          "set [clusters].peaks")
    return {"delivered_pf": f"sum({' or '.join(delivered)}) / 1000",
            "installed_pf": f"sum({' or '.join(installed)}) / 1000"}


RangeFetch = Callable[[str, float, float, float], tuple[np.ndarray, np.ndarray]]


class HistoryBackfill:
    """Reads back the cluster series for the hours before the console started, and for a gap a
    long outage of its own left, a chunk at a time inside the source's ordinary polls.

    Why inside polls: the poller runs one fetch per source at a time under a deadline, so the
    backfill takes at most ``budget_s`` of a poll (plus one chunk's queries), after the live
    queries, newest chunk first. Points sit on the state's one-minute buckets (their centres),
    so a seed lands where the coarse history tier would put its own means. A failure is a
    warning; the chunk is retried on a later poll, at most ``max_attempts`` times in a row. A
    server-side timeout (``timeout_s``, sent with each query) halves the chunk instead.
    """

    def __init__(self, hours: float, *, step_s: float = 60.0, chunk_points: int = 360,
                 max_attempts: int = 3, retry_s: float = 30.0, gap_s: float = 300.0,
                 budget_s: float = 5.0, timeout_s: float | None = None,
                 clock: Callable[[], float] = _time.monotonic) -> None:
        self.hours = float(hours)
        self.step_s = float(step_s)
        self.chunk_points = max(1, min(int(chunk_points), MAX_RANGE_POINTS - 1))
        self.max_attempts = int(max_attempts)
        self.retry_s = float(retry_s)
        self.gap_s = float(gap_s)
        self.budget_s = float(budget_s)
        self.timeout_s = timeout_s
        self._clock = clock
        self.pending: list[tuple[float, float]] = []  # (first, last) bucket centres, newest first
        self._last_ok: float | None = None
        self._failures = 0
        self._not_before = 0.0
        self._warning: str | None = None  # shown while a retry is due or after giving up
        self._gave_up = False

    def note_success(self, t: float) -> None:
        """A live poll succeeded at ``t`` (data time): plan start-up or the gap since the last."""
        last, self._last_ok = self._last_ok, t
        if last is None:
            self._plan(t - self.hours * 3600.0, t)
        elif t - last > self.gap_s:
            self._plan(max(last, t - self.hours * 3600.0), t)

    def _plan(self, since: float, t: float) -> None:
        """Chunks covering the buckets after ``since``'s bucket up to the one before ``t``'s."""
        step = self.step_s
        first = math.floor(since / step) * step + 1.5 * step
        last = math.floor(t / step) * step - 0.5 * step
        span = (self.chunk_points - 1) * step
        hi = last
        while hi >= first:
            lo = max(first, hi - span)
            self.pending.append((lo, hi))
            hi = lo - step
        self.pending.sort(key=lambda c: -c[1])
        if self.pending and self._gave_up:  # a new range gets attempts of its own
            self._failures, self._warning, self._gave_up = 0, None, False

    def poll(self, queries: Callable[[], Mapping[str, str]],
             fetch: RangeFetch) -> tuple[HistorySeed | None, tuple[str, ...]]:
        """Fetch due chunks within the budget: (a seed of what arrived, warnings to show)."""
        now = self._clock()
        if not self.pending or now < self._not_before:
            return None, (self._warning,) if self._warning else ()
        try:
            qs = queries()
        except SourceError as e:
            return None, self._fail(e, give_up=True)
        if not qs:  # nothing known about the GPUs yet: try again on the next poll
            return None, ()
        got: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in qs}
        deadline = now + self.budget_s
        warnings: tuple[str, ...] = ()
        while self.pending:
            lo, hi = self.pending[0]
            try:
                parts = {k: fetch(q, lo, hi, self.step_s) for k, q in qs.items()}
            except SourceError as e:
                if e.kind is ErrorKind.TIMEOUT and hi > lo:
                    # Too heavy for the time allowed: ask for half as much on the next poll.
                    # Bounded too (log2 of the chunk), so it is not counted as an attempt.
                    mid = lo + math.floor((hi - lo) / self.step_s / 2) * self.step_s
                    self.pending[0:1] = [(mid + self.step_s, hi), (lo, mid)]
                else:
                    warnings = self._fail(e, give_up=False)
                break
            self.pending.pop(0)
            self._failures, self._warning = 0, None
            for k, tv in parts.items():
                got[k].append(tv)
            if self._clock() >= deadline:
                break
        if not any(got.values()):
            return None, warnings
        series = {}
        for k, chunks in got.items():
            t = np.concatenate([c[0] for c in chunks])
            v = np.concatenate([c[1] for c in chunks]).astype(np.float32)
            order = np.argsort(t, kind="stable")
            series[k] = (t[order], v[order])
        return HistorySeed(series=series, step_s=self.step_s), warnings

    def _fail(self, e: SourceError, give_up: bool) -> tuple[str, ...]:
        self._failures += 1
        if give_up or self._failures >= self.max_attempts:
            when = ""
            if self.pending:
                lo, hi = min(c[0] for c in self.pending), max(c[1] for c in self.pending)
                fmt = "%a %H:%M" if hi - lo > 20 * 3600 else "%H:%M"
                when = (f" (no history from {_time.strftime(fmt, _time.localtime(lo))} to "
                        f"{_time.strftime(fmt, _time.localtime(hi))})")
            self.pending.clear()
            self._gave_up = True
            self._warning = (f"history backfill gave up after {self._failures} "
                             f"attempt{'s' if self._failures > 1 else ''}{when}: {e.message}")
        else:
            delay = self.retry_s * 2 ** (self._failures - 1)
            self._not_before = self._clock() + delay
            self._warning = (f"history backfill failed (attempt {self._failures} of "
                             f"{self.max_attempts}, retrying in {delay:.0f} s): {e.message}")
        return (self._warning,)

"""GPU-hours per job and tenant over a period, and what the console saw of them.

The rules (README, "Accounting arithmetic"):

- a job's GPU-hours in a period are its allocated GPUs x the part of [start, end) inside the
  period: a job that crosses the period's edges is cut at the edges;
- a job still running counts up to "now" (the time of the read), never to its time limit;
- a job that never started counts nothing; a CPU job (0 GPUs) counts 0 GPU-hours but is still
  a job of its tenant;
- delivered PF-hours, allocated-peak PF-hours and idle GPU-hours only exist for the part of a
  job the console (or a telemetry history) saw: they are summed over observed GPU-hours and are
  ``None`` for a tenant none of whose jobs were seen, never 0. Efficiency = delivered / peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from console.accounting.periods import Period
from console.accounting.table import UsageTable

RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "CONFIGURING"})


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: float | np.ndarray,
             b1: float | np.ndarray) -> np.ndarray:
    """Seconds of [a0, a1) inside [b0, b1); 0 where they do not meet or a bound is NaN."""
    with np.errstate(invalid="ignore"):
        d = np.minimum(a1, b1) - np.maximum(a0, b0)
    return np.where(np.isfinite(d) & (d > 0), d, 0.0)


def run_span(table: UsageTable, now: float) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each job's run, a running job ending at ``now``; NaN if never started."""
    start = table.start
    end = np.where(np.isnan(table.end) & np.isfinite(start), now, table.end)
    return start, np.minimum(end, max(now, 0.0)) if len(end) else end


def job_gpu_hours(table: UsageTable, period: Period, now: float) -> np.ndarray:
    """float64[n]: each job's allocated GPU-hours inside ``period`` (cut at its edges and at now)."""
    start, end = run_span(table, now)
    return _overlap(start, end, period.since, min(period.until, now)) * table.gpus / 3600.0


@dataclass(frozen=True, slots=True)
class Observed:
    """Per job, the observed part of its GPU-hours in a period and what it delivered then.

    Arrays float64[n]; rows never observed hold 0 in ``gpu_hours`` and NaN in the others.
    """

    gpu_hours: np.ndarray
    pf_hours: np.ndarray
    peak_pf_hours: np.ndarray
    idle_gpu_hours: np.ndarray


def job_observed(table: UsageTable, period: Period, now: float) -> Observed:
    """The observed part of each job in ``period``: its run, the period and the time the
    console watched it, intersected; the job's observed averages spread evenly over it."""
    start, end = run_span(table, now)
    lo = np.maximum(start, table.seen_from)
    hi = np.minimum(end, table.seen_to)
    gh = _overlap(lo, hi, period.since, min(period.until, now)) * table.gpus / 3600.0
    seen = np.isfinite(table.seen_from) & np.isfinite(table.delivered_tflops)
    gh = np.where(seen, gh, 0.0)
    nan = np.full(len(table), np.nan)
    pf = np.where(seen, gh * table.delivered_tflops.astype(np.float64) / 1000.0, nan)
    peak = np.where(seen, gh * table.peak_tflops.astype(np.float64) / 1000.0, nan)
    idle = np.where(seen & np.isfinite(table.idle_share), gh * table.idle_share, nan)
    return Observed(gh, pf, peak, idle)


@dataclass(frozen=True)
class TenantUsage:
    """One tenant over one period. ``None`` = not observed (never 0 for "unknown")."""

    account: str
    gpu_hours: float
    jobs: int  # jobs that held a GPU (or ran, for CPU jobs) inside the period
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    observed_gpu_hours: float = 0.0
    pf_hours: float | None = None
    peak_pf_hours: float | None = None
    idle_gpu_hours: float | None = None

    @property
    def efficiency(self) -> float | None:
        """Delivered / allocated peak over the observed part; None when nothing was observed."""
        if self.pf_hours is None or not self.peak_pf_hours:
            return None
        return self.pf_hours / self.peak_pf_hours

    @property
    def observed_share(self) -> float | None:
        """Share of the GPU-hours the console saw (how far to trust PF-hours and efficiency)."""
        return None if self.gpu_hours <= 0 else min(1.0, self.observed_gpu_hours / self.gpu_hours)


def ran_in(table: UsageTable, period: Period, now: float) -> np.ndarray:
    """bool[n]: the job ran at some moment inside ``period`` (cut at now)."""
    start, end = run_span(table, now)
    return _overlap(start, end, period.since, min(period.until, now)) > 0


def tenant_usage(table: UsageTable, period: Period, now: float,
                 accounts: tuple[str, ...] | None = None) -> dict[str, TenantUsage]:
    """Usage of every tenant in ``accounts`` (default: every account in the table) over
    ``period``; a tenant without jobs gets 0 GPU-hours and no observations."""
    accounts = table.accounts if accounts is None else accounts
    gh = job_gpu_hours(table, period, now)
    obs = job_observed(table, period, now)
    ran = ran_in(table, period, now)
    out: dict[str, TenantUsage] = {}
    for acct in accounts:
        rows = table.rows_of(acct)
        rows = rows[ran[rows]]
        states: dict[str, int] = {}
        for code, count in zip(*np.unique(table.state[rows], return_counts=True)):
            states[table.states[int(code)]] = int(count)
        seen = rows[obs.gpu_hours[rows] > 0]
        out[acct] = TenantUsage(
            account=acct, gpu_hours=float(gh[rows].sum()), jobs=int(len(rows)),
            jobs_by_state=dict(sorted(states.items())),
            observed_gpu_hours=float(obs.gpu_hours[seen].sum()),
            pf_hours=float(np.nansum(obs.pf_hours[seen])) if len(seen) else None,
            peak_pf_hours=float(np.nansum(obs.peak_pf_hours[seen])) if len(seen) else None,
            idle_gpu_hours=(float(np.nansum(obs.idle_gpu_hours[seen]))
                            if len(seen) and np.isfinite(obs.idle_gpu_hours[seen]).any() else None))
    return out

"""Quotas: how much of each GPU limit is used, and when a GPU-minute budget runs out.

Slurm has two kinds of GPU limit on an account (association) or a QOS: ``GrpTRES=gres/gpu=N``
(GPUs at once: a ceiling, nothing to burn down) and ``GrpTRESMins=gres/gpu=M`` (a budget of
GPU-minutes that usage burns down until it is reset). The forecast assumes the tenant keeps
burning at its rate of the last 24 hours; with no usage in that window there is no forecast
(None), never "in 0 days".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from console.accounting.periods import last_hours
from console.accounting.records import FairShare, GpuLimit
from console.accounting.table import UsageTable
from console.accounting.usage import RUNNING_STATES, job_gpu_hours

RATE_WINDOW_H = 24.0


@dataclass(frozen=True)
class QuotaStatus:
    """One limit with its use now and, for a GPU-minute budget, when it runs out."""

    scope: str  # "account" | "qos"
    name: str
    gpus_limit: int | None
    gpus_in_use: int | None
    minutes_limit: int | None
    minutes_used: float | None
    rate_gpus: float | None  # average GPUs held over the last 24 h (GPU-minutes per minute)
    runs_out_at: float | None  # POSIX time; None = no budget, not burning, or unknown

    @property
    def minutes_left(self) -> float | None:
        if self.minutes_limit is None or self.minutes_used is None:
            return None
        return max(0.0, self.minutes_limit - self.minutes_used)

    @property
    def used_share(self) -> float | None:
        """Budget burnt (GPU-minutes), else the share of the GPU ceiling held now."""
        if self.minutes_limit and self.minutes_used is not None:
            return self.minutes_used / self.minutes_limit
        if self.gpus_limit and self.gpus_in_use is not None:
            return self.gpus_in_use / self.gpus_limit
        return None


def _in_use_and_rate(table: UsageTable, rows: np.ndarray, now: float) -> tuple[int, float]:
    running = np.array([table.states[int(s)] in RUNNING_STATES for s in table.state[rows]], bool)
    in_use = int(table.gpus[rows][running & np.isfinite(table.start[rows])].sum())
    window = last_hours(now, RATE_WINDOW_H)
    rate = float(job_gpu_hours(table, window, now)[rows].sum()) / RATE_WINDOW_H
    return in_use, rate


def quota_status(limits: Sequence[GpuLimit], table: UsageTable, now: float) -> list[QuotaStatus]:
    """Every GPU limit with its use now, its burn rate and its forecast."""
    out: list[QuotaStatus] = []
    for lim in limits:
        if lim.scope == "account":
            rows = table.rows_of(lim.name)
        elif lim.scope == "qos" and lim.name in table.qoses:
            rows = np.flatnonzero(table.qos == table.qoses.index(lim.name))
        else:
            rows = None
        in_use: int | None
        rate: float | None
        if rows is None:
            in_use, rate = None, None
        else:
            in_use, rate = _in_use_and_rate(table, rows, now)
        runs_out: float | None = None
        if lim.gpu_minutes is not None and lim.used_gpu_minutes is not None and rate:
            left = max(0.0, lim.gpu_minutes - lim.used_gpu_minutes)
            runs_out = now + left / rate * 60.0  # rate GPUs = GPU-minutes per minute
        out.append(QuotaStatus(lim.scope, lim.name, lim.gpus, in_use, lim.gpu_minutes,
                               lim.used_gpu_minutes, rate, runs_out))
    return out


def shares_by_account(shares: Sequence[FairShare]) -> Mapping[str, FairShare]:
    """The account-level fair-share row of each account (user rows left out), passed through."""
    return {s.account: s for s in shares if s.user in (None, "")}

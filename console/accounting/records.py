"""The plain records accounting is read into, whoever reads it.

Slurm's accounting database (through slurmrestd's ``/slurmdb/vX/`` endpoints and ``/shares``)
and the simulator's own accounting history both produce these records, so the arithmetic
(GPU-hours, cost, subsidy, quotas) is written once and tested once. Times are POSIX seconds;
``None`` means Slurm did not say (a job that has not started, or has not ended), never zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class JobUsage:
    """One job as accounting knows it: who, where, when and how many GPUs it was given.

    ``gpus`` is the allocated ``gres/gpu`` TRES count of the whole job (0 for a CPU job);
    ``state`` is Slurm's base job state (``COMPLETED``, ``FAILED``, ``CANCELLED``, ``TIMEOUT``,
    ``NODE_FAIL``, ``OUT_OF_MEMORY``, ``PREEMPTED``, ``RUNNING``, ``PENDING``...).
    """

    job_id: str
    account: str
    user: str
    partition: str
    state: str
    submit: float | None
    start: float | None
    end: float | None
    gpus: int
    nodes: tuple[str, ...] = ()
    gpu_model: str | None = None
    qos: str | None = None


@dataclass(frozen=True, slots=True)
class GpuLimit:
    """A GPU limit on an account (association) or a QOS, as ``sacctmgr`` sets it.

    ``gpus`` is ``GrpTRES=gres/gpu=N`` (GPUs at once), ``gpu_minutes`` is
    ``GrpTRESMins=gres/gpu=N``; ``None`` when that limit is not set (unlimited), never 0.
    ``used_gpu_minutes`` is what accounting says has been used against ``gpu_minutes``,
    ``None`` when it does not say.
    """

    scope: str  # "account" | "qos"
    name: str   # account or QOS name
    gpus: int | None = None
    gpu_minutes: int | None = None
    used_gpu_minutes: float | None = None


@dataclass(frozen=True, slots=True)
class FairShare:
    """One row of ``/shares``: an account's (or a user's in it) fair-share standing."""

    account: str
    user: str | None
    shares: int | None
    level_fs: float | None
    effective_usage: float | None
    fairshare: float | None


@dataclass(frozen=True, slots=True)
class AccountingSnapshot:
    """What one read of accounting returned, with the period it covers and its gaps in words."""

    jobs: Sequence[JobUsage]
    limits: Sequence[GpuLimit]
    shares: Sequence[FairShare]
    since: float
    until: float
    taken_at: float
    notes: tuple[str, ...] = ()  # gaps and caveats, e.g. "/shares not offered by v0.0.38"


class AccountingSource(Protocol):
    """Anything that can answer for usage over a period: slurmdbd through slurmrestd, or the
    simulator's own history. Blocking; called from the engine's worker, never the GUI."""

    def read(self, since: float, until: float) -> AccountingSnapshot: ...

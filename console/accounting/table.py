"""`UsageTable`: accounting's jobs, columnar, with what the console itself saw of each one.

Why columnar: a month of a 3,000-GPU centre is tens of thousands of jobs, and the table travels
with the frames from the engine (possibly another process) to the panels, where every period
and tenant the operator picks is computed again. numpy columns pickle as raw buffers and make
each of those computations one vectorised pass.

Observations (``seen_*``) come from the console's own telemetry while it ran (or a source's
history, such as the simulator's): delivered and peak TFLOPS per GPU and the share of GPU-time
the GPUs sat idle, as averages over ``[seen_from, seen_to]``. They are NaN for a job nobody
saw: "not observed" is never 0 % efficiency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from console.accounting.records import JobUsage
from console.categories import category_codes


@dataclass(frozen=True, slots=True)
class JobObservation:
    """What the console saw of one job: averages per allocated GPU over the time it watched.

    ``delivered_tflops`` and ``peak_tflops`` are per GPU (so a period's PF-hours are GPU-hours
    x TFLOPS / 1000); ``idle_share`` is the share of observed GPU-time with the GPU idle
    (utilisation under the busy threshold) while allocated.
    """

    job_id: str
    seen_from: float
    seen_to: float
    delivered_tflops: float
    peak_tflops: float
    idle_share: float


@dataclass(frozen=True, eq=False)
class UsageTable:
    """Jobs of an accounting read, one row each (order: as read). Times NaN where unknown."""

    job_id: np.ndarray  # str_
    account: np.ndarray  # int32 -> accounts
    accounts: tuple[str, ...]
    user: np.ndarray  # int32 -> users
    users: tuple[str, ...]
    partition: np.ndarray  # int32 -> partitions
    partitions: tuple[str, ...]
    state: np.ndarray  # int32 -> states
    states: tuple[str, ...]
    qos: np.ndarray  # int32 -> qoses ("" when accounting did not say)
    qoses: tuple[str, ...]
    submit: np.ndarray  # float64
    start: np.ndarray  # float64, NaN = never started
    end: np.ndarray  # float64, NaN = still running (or never started)
    gpus: np.ndarray  # int32 allocated gres/gpu
    seen_from: np.ndarray  # float64, NaN = not observed
    seen_to: np.ndarray
    delivered_tflops: np.ndarray  # float32 per GPU, NaN = not observed
    peak_tflops: np.ndarray
    idle_share: np.ndarray

    def __len__(self) -> int:
        return int(self.job_id.shape[0])

    @classmethod
    def build(cls, jobs: Sequence[JobUsage],
              observed: Mapping[str, JobObservation] | None = None) -> "UsageTable":
        n = len(jobs)
        obs = observed or {}

        def times(attr: str) -> np.ndarray:
            return np.array([np.nan if getattr(j, attr) is None else float(getattr(j, attr))
                             for j in jobs], np.float64) if n else np.zeros(0, np.float64)

        account, accounts = category_codes([j.account for j in jobs])
        user, users = category_codes([j.user for j in jobs])
        partition, partitions = category_codes([j.partition for j in jobs])
        state, states = category_codes([j.state.upper() for j in jobs])
        qos, qoses = category_codes([j.qos or "" for j in jobs])
        seen = [obs.get(j.job_id) for j in jobs]

        def o(attr: str, dtype: type) -> np.ndarray:
            return np.array([np.nan if s is None else getattr(s, attr) for s in seen], dtype)

        return cls(
            job_id=np.array([j.job_id for j in jobs], np.str_) if n else np.zeros(0, "U1"),
            account=account, accounts=accounts, user=user, users=users,
            partition=partition, partitions=partitions, state=state, states=states,
            qos=qos, qoses=qoses,
            submit=times("submit"), start=times("start"), end=times("end"),
            gpus=np.array([max(0, int(j.gpus)) for j in jobs], np.int32),
            seen_from=o("seen_from", np.float64), seen_to=o("seen_to", np.float64),
            delivered_tflops=o("delivered_tflops", np.float32),
            peak_tflops=o("peak_tflops", np.float32), idle_share=o("idle_share", np.float32))

    def account_names(self) -> np.ndarray:
        return np.array(self.accounts, np.str_)[self.account] if len(self) else np.zeros(0, "U1")

    def rows_of(self, account: str) -> np.ndarray:
        """Row indices of one tenant's jobs (empty when accounting has none)."""
        if account not in self.accounts:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.account == self.accounts.index(account))


def with_observations(table: UsageTable, observed: Mapping[str, JobObservation]) -> UsageTable:
    """``table`` with the rows of the jobs in ``observed`` taking those observations (what the
    console saw itself overrides a source's own telemetry history). One sorted lookup, no
    per-row objects: the table may hold a month of jobs."""
    if not observed or not len(table):
        return table
    keys = np.array(list(observed), np.str_)
    order = np.argsort(table.job_id, kind="stable")
    pos = np.clip(np.searchsorted(table.job_id[order], keys), 0, len(table) - 1)
    hit = table.job_id[order][pos] == keys
    if not hit.any():
        return table
    rows = order[pos[hit]]
    seen = [observed[k] for k in keys[hit].tolist()]
    cols = {}
    for attr in ("seen_from", "seen_to", "delivered_tflops", "peak_tflops", "idle_share"):
        col = getattr(table, attr).copy()
        col[rows] = [getattr(s, attr) for s in seen]
        cols[attr] = col
    return replace(table, **cols)


class TableJobs(Sequence[JobUsage]):
    """A `UsageTable` read as a sequence of `JobUsage` (made one at a time, on demand).

    Why: a source that keeps its history columnar (the simulator's month of jobs) hands its
    table over as it is; `build_view` takes ``.table`` without a row of objects, and code that
    reads ``snapshot.jobs`` one by one still can."""

    def __init__(self, table: UsageTable) -> None:
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> JobUsage:  # type: ignore[override]
        t = self.table
        if isinstance(i, slice):
            raise TypeError("TableJobs takes one row at a time")
        start, end = float(t.start[i]), float(t.end[i])
        qos = t.qoses[int(t.qos[i])]
        return JobUsage(str(t.job_id[i]), t.accounts[int(t.account[i])], t.users[int(t.user[i])],
                        t.partitions[int(t.partition[i])], t.states[int(t.state[i])],
                        float(t.submit[i]), None if np.isnan(start) else start,
                        None if np.isnan(end) else end, int(t.gpus[i]), qos=qos or None)

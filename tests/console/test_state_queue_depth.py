"""Queue depth over time: the GPUs each tenant's pending jobs ask for, frame by frame."""

from __future__ import annotations

import numpy as np

from console.config import ClusterSettings, TenantSettings
from console.model import JobState, JobTable, NodeState, NodeTable, SchedulerUpdate
from console.polling import PollResult
from console.state import ClusterState
from console.timetravel import _cut_history

ACCOUNTS = ("hku", "cuhk", "startup")


def _jobs(t: float, spec: list[tuple[str, int, JobState]]) -> JobTable:
    rows = [dict(job_id=100 + i, account=a, partition="gpu", state=st, gpus=g, nodes=1,
                 submit_time=t - 60, start_time=(t - 30 if st == JobState.RUNNING else None),
                 reason="None" if st == JobState.RUNNING else "Resources")
            for i, (a, g, st) in enumerate(spec)]
    running = [i for i, (_, _, st) in enumerate(spec) if st == JobState.RUNNING]
    return JobTable.build(rows, alloc=[(i, "n01", 0) for i in running[:1]])


def _poll(t: float, spec: list[tuple[str, int, JobState]]) -> PollResult:
    nodes = NodeTable(names=("n01",), state=np.array([NodeState.MIXED], np.int8),
                      responding=np.array([True]), reason=("",),
                      gpus=np.array([8], np.int16), gpus_alloc=np.array([1], np.int16),
                      partitions=(("gpu",),))
    up = SchedulerUpdate(time=t, nodes=nodes, jobs=_jobs(t, spec), api_version="v0.0.40")
    return PollResult(source="slurm", kind="scheduler", request_id=int(t), started_at=t,
                      fetched_at=t, latency_s=0.1, updates=(up,))


def _expected(spec: list[tuple[str, int, JobState]], accounts: tuple[str, ...]) -> list[float]:
    """The test's own sum: GPUs of each tenant's pending jobs."""
    return [float(sum(g for a, g, st in spec if a == acct and st == JobState.PENDING))
            for acct in accounts]


P, R = JobState.PENDING, JobState.RUNNING
FRAMES = [
    (1000.0, [("hku", 1, R), ("hku", 16, P), ("cuhk", 4, P), ("cuhk", 2, P)]),
    (1010.0, [("hku", 1, R), ("cuhk", 4, P), ("startup", 8, P), ("startup", 1, P)]),
    (1020.0, [("hku", 1, R), ("hku", 32, P), ("hku", 2, P)]),
]


def test_pending_gpus_per_tenant_over_time_are_the_sums_of_its_pending_jobs() -> None:
    cluster = ClusterSettings(name="lab", tenants=tuple(
        TenantSettings(a, a.upper(), "university", 0.5, 10.0) for a in ACCOUNTS))
    s = ClusterState(cluster, [("slurm", "scheduler", 10.0)], wall=lambda: 2000.0)
    for t, spec in FRAMES:
        s.apply(_poll(t, spec))
        f = s.build_frame(now=t + 1)
    h = f.history
    assert f.tenants.account == ACCOUNTS
    assert h.tenant_gpus_pending.shape == (len(h.t), len(ACCOUNTS))
    rows = [int(np.flatnonzero(h.t == t)[0]) for t, _ in FRAMES]
    for row, (_, spec) in zip(rows, FRAMES):
        assert h.tenant_gpus_pending[row].tolist() == _expected(spec, ACCOUNTS)
    # The cluster series is the same queue, summed.
    assert h.series["gpus_pending"][rows].tolist() == [sum(_expected(sp, ACCOUNTS))
                                                       for _, sp in FRAMES]
    # The live tenant table agrees with the newest row.
    assert f.tenants.gpus_pending.tolist() == h.tenant_gpus_pending[rows[-1]].tolist()
    # Time travel cuts the new column with the others.
    cut = _cut_history(h, FRAMES[1][0])
    assert cut.tenant_gpus_pending.shape == (len(cut.t), len(ACCOUNTS))
    assert cut.tenant_gpus_pending[-1].tolist() == _expected(FRAMES[1][1], ACCOUNTS)


def test_pending_gpus_are_unknown_not_zero_without_the_scheduler() -> None:
    cluster = ClusterSettings(name="lab", tenants=(TenantSettings("hku", "HKU", "university",
                                                                  0.5, 10.0),))
    s = ClusterState(cluster, [("slurm", "scheduler", 10.0)], wall=lambda: 2000.0)
    f = s.build_frame(now=990.0)  # nothing read yet
    assert np.isnan(f.history.tenant_gpus_pending[-1]).all()
    assert np.isnan(f.history.series["gpus_pending"][-1])

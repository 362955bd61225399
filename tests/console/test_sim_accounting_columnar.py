"""The simulator's accounting history is columnar: same answers as one object per job, less
memory, and only what a read can ask for is kept."""

from __future__ import annotations

from datetime import timezone

import numpy as np
import pytest

from console.accounting.money import charges
from console.accounting.periods import month_period, previous_month
from console.accounting.service import price_book
from console.accounting.table import JobObservation, TableJobs, UsageTable, with_observations
from console.config import TenantSettings, demo_settings
from console.sim import accounting as sim_accounting
from console.sim.accounting import SimAccounting
from console.sim.cluster import SimCluster
from console.sim.config import SimConfig

T0 = 1_796_342_400.0 + 6 * 3600  # 2026-12-04 06:00 UTC


@pytest.fixture(scope="module")
def sim() -> tuple[SimCluster, SimAccounting]:
    cluster = SimCluster(SimConfig(nodes=24, t0=T0, faults="none"))
    acc = SimAccounting(cluster, tz=timezone.utc)
    cluster.step(2 * 3600)
    return cluster, acc


def _book(cluster: SimCluster):
    extra = [TenantSettings(t.account, t.display, str(t.kind), float(t.subsidy),
                            float(t.price_per_gpu_hour)) for t in cluster.tenants]
    return price_book(demo_settings(nodes=24).clusters[0], extra)


def test_the_table_a_read_hands_over_equals_one_built_from_its_records(sim) -> None:
    cluster, acc = sim
    nov = month_period(previous_month("2026-12"), timezone.utc)
    snap = acc.read(nov.since, cluster.time)
    assert isinstance(snap.jobs, TableJobs)
    direct = snap.jobs.table
    rebuilt = UsageTable.build(list(snap.jobs), acc.observations())
    assert len(direct) == len(rebuilt) > 1000
    book = _book(cluster)
    now = cluster.time
    for period in (nov, month_period("2026-12", timezone.utc)):
        a, b = charges(direct, period, now, book), charges(rebuilt, period, now, book)
        assert a.keys() == b.keys()
        for acct in a:
            ua, ub = a[acct].usage, b[acct].usage
            assert ua.jobs == ub.jobs and ua.jobs_by_state == ub.jobs_by_state
            assert ua.gpu_hours == pytest.approx(ub.gpu_hours, rel=1e-12)
            assert ua.pf_hours == pytest.approx(ub.pf_hours, rel=1e-6)
            assert a[acct].cost == pytest.approx(b[acct].cost, rel=1e-12)
    running = [j for j in snap.jobs if j.state == "RUNNING"]
    assert sum(j.gpus for j in running) == int((cluster.workload.gpu_job >= 0).sum())


def test_the_history_is_a_few_dozen_bytes_a_job(sim) -> None:
    cluster, acc = sim
    acc.read(T0, cluster.time)
    rows = len(acc._backfill) + len(acc._ended)
    assert rows > 1000
    assert acc.memory_bytes() / rows <= 64  # 11 numpy columns; no object per job


def test_what_no_read_can_ask_for_is_dropped_and_the_gap_said(sim, monkeypatch) -> None:
    cluster, acc = sim
    cut = T0 - 10 * 24 * 3600.0
    monkeypatch.setattr(sim_accounting, "read_window_since", lambda now, tz: cut)
    snap = acc.read(cut - 40 * 24 * 3600.0, cluster.time)
    kept = [h for h in (acc._backfill, acc._ended) if h is not None]
    assert all(not (h.cols["end"] < cut).any() for h in kept)
    assert snap.since == cut  # the statement names the gap rather than showing zeros
    t = snap.jobs.table
    assert not (t.end < cut).any()


def test_observations_the_console_made_override_the_sources_own() -> None:
    t = UsageTable.build([], None)
    assert with_observations(t, {"1": JobObservation("1", 0, 1, 1, 1, 0)}) is t
    from console.accounting.records import JobUsage

    jobs = [JobUsage(str(i), "a", "u", "p", "COMPLETED", 0.0, 10.0, 20.0, 2) for i in (7, 3, 5)]
    table = UsageTable.build(jobs, {"3": JobObservation("3", 10, 20, 100.0, 200.0, 0.5)})
    out = with_observations(table, {"5": JobObservation("5", 12, 18, 50.0, 100.0, 0.25),
                                    "99": JobObservation("99", 0, 1, 1.0, 1.0, 0.0)})
    assert out.delivered_tflops.tolist()[1:] == [100.0, 50.0]
    assert np.isnan(out.delivered_tflops[0])
    assert out.seen_from.tolist()[1:] == [10.0, 12.0] and out.idle_share[2] == 0.25
    assert np.isnan(table.delivered_tflops[2])  # the table it came from is unchanged

"""The simulator's accounting history: backfilled month, live jobs recorded as they end."""

from __future__ import annotations

from datetime import timezone

import numpy as np
import pytest

from console.accounting.money import charges
from console.accounting.periods import month_period, previous_month
from console.accounting.service import price_book
from console.accounting.table import UsageTable
from console.accounting.usage import job_gpu_hours
from console.config import TenantSettings, demo_settings
from console.engine import Engine, run_sync
from console.sim.accounting import SimAccounting
from console.sim.cluster import SimCluster
from console.sim.config import SimConfig

T0 = 1_796_342_400.0 + 6 * 3600  # 2026-12-04 06:00 UTC


@pytest.fixture(scope="module")
def sim() -> tuple[SimCluster, SimAccounting]:
    cluster = SimCluster(SimConfig(nodes=24, t0=T0, faults="none"))
    acc = SimAccounting(cluster, tz=timezone.utc)
    cluster.step(3 * 3600)
    return cluster, acc


def test_last_month_is_backfilled_at_a_busy_centre_load(sim: tuple[SimCluster, SimAccounting]) -> None:
    cluster, acc = sim
    nov = month_period(previous_month("2026-12"), timezone.utc)
    snap = acc.read(nov.since, cluster.time)
    table = UsageTable.build(snap.jobs, acc.observations())
    gh = job_gpu_hours(table, nov, cluster.time)
    capacity = 24 * 8 * nov.hours
    assert 0.75 * capacity < gh.sum() <= capacity  # busy, and never more GPUs than exist
    assert len(set(table.accounts)) == len(cluster.tenants)
    assert {"COMPLETED", "FAILED", "TIMEOUT"} <= set(table.states)
    assert np.isfinite(table.delivered_tflops).all()  # the simulator is its own telemetry history


def test_jobs_that_end_in_the_simulation_are_recorded_as_they_end(
        sim: tuple[SimCluster, SimAccounting]) -> None:
    cluster, acc = sim
    snap = acc.read(T0, cluster.time)
    live = [j for j in snap.jobs if j.start is not None and j.end is not None and j.end > T0]
    assert live, "three simulated hours end some jobs"
    c = cluster.store.c
    for j in live[:20]:
        slot = cluster.store.slot_of(int(j.job_id))
        if slot is None:  # its row was recycled: the history still has it
            continue
        assert c["end"][slot] == j.end and c["start"][slot] == j.start and c["gpus"][slot] == j.gpus
    running = [j for j in snap.jobs if j.state == "RUNNING"]
    assert running and all(j.end is None and j.start is not None for j in running)
    assert sum(j.gpus for j in running) == int((cluster.workload.gpu_job >= 0).sum())


def test_limits_and_fair_share_for_every_tenant(sim: tuple[SimCluster, SimAccounting]) -> None:
    cluster, acc = sim
    snap = acc.read(T0, cluster.time)
    by = {lim.name: lim for lim in snap.limits}
    for i, t in enumerate(cluster.tenants):
        assert by[t.account].gpus == int(cluster.workload.quota[i])
        if t.subsidy == 0:  # no scheme money, no scheme budget
            assert by[t.account].gpu_minutes is None and by[t.account].used_gpu_minutes is None
    assert any(lim.gpu_minutes for lim in snap.limits)
    assert {s.account for s in snap.shares} == set(cluster.accounts)
    assert sum(s.effective_usage or 0 for s in snap.shares) == pytest.approx(1.0)


def test_the_engine_puts_the_accounting_view_on_its_frames() -> None:
    engine = Engine(demo_settings(nodes=24), detect=False)
    assert engine.accounting is not None
    assert run_sync(engine, 1).accounting is None  # nothing read yet: no figures, not zeros
    view = engine.accounting.refresh()
    frame = run_sync(engine, 1)
    assert frame.accounting is view
    assert view.currency == "HKD" and view.month_period.label == view.today_period.label[:7]
    sim_tenants = [TenantSettings(t.account, t.display, t.kind, t.subsidy, t.price_per_gpu_hour)
                   for t in engine.sources[0].cluster.tenants]  # type: ignore[attr-defined]
    again = charges(view.table, view.month_period, view.taken_at,
                    price_book(engine.cluster, sim_tenants))
    for acct, ch in view.month.items():
        assert ch.cost == pytest.approx(again[acct].cost)
        assert ch.net == pytest.approx(ch.cost * (1 - ch.subsidy_rate))

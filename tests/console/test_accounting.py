"""Accounting arithmetic: GPU-hours cut at period edges, money, subsidy cap, quotas, waiting."""

from __future__ import annotations

from datetime import timedelta, timezone

import numpy as np
import pytest

from console.accounting.money import (
    PriceBook, SubsidyError, TenantTerms, charges, check_subsidy, money_text,
)
from console.accounting.periods import (
    Period, day_period, days_of, month_period, parse_month, previous_month,
)
from console.accounting.quotas import quota_status
from console.accounting.records import GpuLimit, JobUsage
from console.accounting.table import JobObservation, UsageTable
from console.accounting.usage import tenant_usage
from console.accounting.waiting import wait_summary
from console.config import ConfigError, parse_settings
from console.model import JobState, JobTable

H = 3600.0
UTC = timezone.utc
HKT = timezone(timedelta(hours=8))
T0 = 1_796_083_200.0  # 2026-12-01 00:00 UTC
DAY = Period(T0, T0 + 24 * H, "2026-12-01")


def job(jid: str, account: str, start: float | None, end: float | None, gpus: int,
        state: str = "COMPLETED", partition: str = "gpu", qos: str | None = None) -> JobUsage:
    return JobUsage(jid, account, "u", partition, state, None if start is None else start - 60,
                    start, end, gpus, qos=qos)


def book(*terms: TenantTerms, **kw: object) -> PriceBook:
    return PriceBook.of(list(terms), **kw)  # type: ignore[arg-type]


# --- GPU-hours ------------------------------------------------------------------------------

def test_jobs_crossing_the_period_edges_are_cut_at_the_edges() -> None:
    t = UsageTable.build([
        job("1", "a", T0 - 2 * H, T0 + 3 * H, 4),          # starts before: 3 h inside
        job("2", "a", T0 + 22 * H, T0 + 30 * H, 2),        # ends after: 2 h inside
        job("3", "a", T0 - 5 * H, T0 + 29 * H, 1),         # spans the whole day: 24 h
        job("4", "a", T0 - 5 * H, T0 - 1 * H, 8),          # before: nothing
        job("5", "a", T0 + 24 * H, T0 + 25 * H, 8),        # starts at the end: nothing
    ])
    u = tenant_usage(t, DAY, now=T0 + 100 * H)["a"]
    assert u.gpu_hours == pytest.approx(4 * 3 + 2 * 2 + 1 * 24)
    assert u.jobs == 3


def test_a_running_job_counts_up_to_now_and_one_never_started_counts_nothing() -> None:
    t = UsageTable.build([
        job("1", "a", T0 + 1 * H, None, 8, state="RUNNING"),
        job("2", "a", None, None, 8, state="PENDING"),
        job("3", "a", T0 + 1 * H, T0 + 2 * H, 0),  # a CPU job: a job, no GPU-hours
    ])
    u = tenant_usage(t, DAY, now=T0 + 4.5 * H)["a"]
    assert u.gpu_hours == pytest.approx(8 * 3.5)
    assert u.jobs_by_state == {"COMPLETED": 1, "RUNNING": 1}


def test_observed_pf_hours_efficiency_and_idle_only_where_seen() -> None:
    t = UsageTable.build(
        [job("1", "a", T0, T0 + 10 * H, 8), job("2", "a", T0, T0 + 10 * H, 8),
         job("3", "b", T0, T0 + 10 * H, 8)],
        {"1": JobObservation("1", T0 + 5 * H, T0 + 10 * H, 400.0, 1000.0, 0.25)})
    use = tenant_usage(t, DAY, now=T0 + 24 * H)
    a = use["a"]
    assert a.gpu_hours == pytest.approx(160)
    assert a.observed_gpu_hours == pytest.approx(40)  # 8 GPUs x the 5 h it was watched
    assert a.pf_hours == pytest.approx(40 * 400 / 1000)
    assert a.efficiency == pytest.approx(0.4)
    assert a.idle_gpu_hours == pytest.approx(10)
    assert a.observed_share == pytest.approx(0.25)
    b = use["b"]  # never seen: unknown, not 0
    assert b.pf_hours is None and b.efficiency is None and b.idle_gpu_hours is None


# --- money ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rate, subsidy, net", [(0.0, 0.0, 240.0), (0.35, 84.0, 156.0),
                                               (0.70, 168.0, 72.0)])
def test_subsidy_at_the_tenant_rate(rate: float, subsidy: float, net: float) -> None:
    t = UsageTable.build([job("1", "a", T0, T0 + 10 * H, 4)])  # 40 GPU-hours
    ch = charges(t, DAY, T0 + 24 * H, book(TenantTerms("a", "A", rate, 6.0)))["a"]
    assert ch.cost == pytest.approx(240.0)
    assert ch.subsidy == pytest.approx(subsidy)
    assert ch.net == pytest.approx(net)
    assert ch.subsidy_rate == rate


def test_a_rate_above_70_percent_is_refused_naming_the_tenant() -> None:
    with pytest.raises(SubsidyError, match="'greedy-corp'.*71 %.*70 %"):
        book(TenantTerms("greedy-corp", "Greedy", 0.71, 3.0))
    assert check_subsidy("ok", 0.7) == 0.7
    with pytest.raises(SubsidyError, match="'neg'"):
        check_subsidy("neg", -0.1)


def test_the_config_refuses_a_rate_above_70_percent_naming_the_tenant() -> None:
    raw = {"clusters": [{"name": "c", "sim": {},
                         "tenants": [{"account": "hku", "subsidy": 0.7},
                                     {"account": "bigco", "subsidy": 0.75}]}]}
    with pytest.raises(ConfigError, match=r"tenants\[1\]\.subsidy: tenant 'bigco'.*0\.75"):
        parse_settings(raw)


def test_prices_tenant_first_then_partition_then_default_and_unpriced_is_unknown() -> None:
    t = UsageTable.build([
        job("1", "own", T0, T0 + H, 1, partition="inference"),
        job("2", "plain", T0, T0 + H, 1, partition="inference"),
        job("3", "plain", T0, T0 + H, 1, partition="training"),
    ])
    b = book(TenantTerms("own", price_per_gpu_hour=5.0), TenantTerms("plain"),
             partition_prices={"inference": 2.0}, default_price=3.0)
    ch = charges(t, DAY, T0 + 24 * H, b)
    assert ch["own"].cost == pytest.approx(5.0)
    assert ch["plain"].cost == pytest.approx(2.0 + 3.0)
    unpriced = charges(t, DAY, T0 + 24 * H, book(TenantTerms("plain")))["plain"]
    assert unpriced.cost is None and unpriced.net is None
    assert unpriced.unpriced_gpu_hours == pytest.approx(2.0)


def test_idle_cost_is_idle_gpu_hours_at_list_price() -> None:
    t = UsageTable.build([job("1", "a", T0, T0 + 10 * H, 8)],
                         {"1": JobObservation("1", T0, T0 + 10 * H, 100.0, 1000.0, 0.5)})
    ch = charges(t, DAY, T0 + 24 * H, book(TenantTerms("a", subsidy=0.7, price_per_gpu_hour=2.5)))["a"]
    assert ch.usage.idle_gpu_hours == pytest.approx(40)
    assert ch.idle_cost == pytest.approx(100.0)
    assert ch.cost == pytest.approx(200.0)  # idle cost is part of the cost, not added to it


def test_a_tenant_without_jobs_costs_zero_and_a_tenant_only_in_accounting_is_listed() -> None:
    t = UsageTable.build([job("1", "stranger", T0, T0 + H, 1)])
    ch = charges(t, DAY, T0 + 24 * H, book(TenantTerms("idle", price_per_gpu_hour=1.0),
                                            default_price=4.0))
    assert ch["idle"].cost == 0.0 and ch["idle"].usage.jobs == 0
    assert ch["stranger"].cost == pytest.approx(4.0)


def test_currency_is_named_in_amounts_and_configurable() -> None:
    assert money_text(12345.678, "HKD") == "HKD 12,346"
    assert money_text(12345.678, "USD", cents=True) == "USD 12,345.68"
    assert money_text(None, "HKD") == "not priced"
    assert PriceBook().currency == "HKD"
    s = parse_settings({"clusters": [{"name": "c", "sim": {}, "currency": "EUR",
                                      "partition_prices": {"gpu": 2}}]})
    assert s.clusters[0].currency == "EUR" and s.clusters[0].partition_prices == {"gpu": 2.0}
    with pytest.raises(ConfigError, match="partition_prices.gpu"):
        parse_settings({"clusters": [{"name": "c", "sim": {}, "partition_prices": {"gpu": -1}}]})


# --- periods --------------------------------------------------------------------------------

def test_months_and_days_are_calendar_periods_of_the_site_zone() -> None:
    m = month_period("2026-12", HKT)
    assert m.since == T0 - 8 * H and m.hours == 31 * 24
    assert month_period("2026-02", UTC).hours == 28 * 24
    assert previous_month("2026-01") == "2025-12"
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("2026-13")
    d = day_period(T0 + 3 * H, UTC)
    assert (d.since, d.until, d.label) == (T0, T0 + 24 * H, "2026-12-01")
    days = days_of(Period(T0 + 12 * H, T0 + 60 * H, "x"), UTC)
    assert [x.label for x in days] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert days[0].hours == 12 and days[-1].hours == 12


# --- quotas ---------------------------------------------------------------------------------

def test_quota_burn_down_and_forecast_at_the_last_day_rate() -> None:
    now = T0 + 48 * H
    t = UsageTable.build([job("1", "a", now - 24 * H, None, 10, state="RUNNING", qos="normal")])
    lim = [GpuLimit("account", "a", gpus=16, gpu_minutes=100_000, used_gpu_minutes=40_000),
           GpuLimit("account", "b", gpus=8),
           GpuLimit("qos", "normal", gpus=64)]
    a, b, q = quota_status(lim, t, now)
    assert a.gpus_in_use == 10 and a.rate_gpus == pytest.approx(10)
    assert a.minutes_left == 60_000
    assert a.runs_out_at == pytest.approx(now + 60_000 / 10 * 60)  # 100 h from now
    assert a.used_share == pytest.approx(0.4)
    assert b.gpus_in_use == 0 and b.runs_out_at is None and b.used_share == 0
    assert q.gpus_in_use == 10


# --- why GPUs wait --------------------------------------------------------------------------

def test_pending_gpus_by_reason_share_in_words() -> None:
    now = T0
    rows = [dict(job_id=i, account="a", partition="gpu", state=JobState.PENDING, reason=r,
                 gpus=g, submit_time=now - w) for i, (r, g, w) in enumerate([
                     ("Resources", 620, 300), ("AssocGrpGRES", 200, 4000),
                     ("JobHeldUser", 180, 90000), ("Priority", 0, 10)])]
    rows.append(dict(job_id=99, account="b", partition="gpu", state=JobState.RUNNING, gpus=8))
    jobs = JobTable.build(rows, alloc=[])
    s = wait_summary(jobs, now)
    assert s.words() == "1,000 GPUs pending: 62% Resources, 20% tenant quota, 18% held"
    assert s.jobs_pending == 4
    assert dict(s.wait_histogram) == {"< 10 min": 2, "10 min - 1 h": 0, "1 - 6 h": 1,
                                      "6 - 24 h": 0, "> 24 h": 1}
    assert wait_summary(jobs, now, account="b").words() == "no GPUs pending"
    assert np.isclose(s.median_wait_s or 0, (300 + 4000) / 2)


def test_a_failed_read_keeps_the_last_figures_and_says_why() -> None:
    from console.accounting.records import AccountingSnapshot
    from console.accounting.service import AccountingService
    from console.sources.base import ErrorKind, SourceError

    class Flaky:
        calls = 0

        def read(self, since: float, until: float) -> AccountingSnapshot:
            self.calls += 1
            if self.calls == 2:
                raise SourceError(ErrorKind.HTTP, "slurmrestd answered 404: /slurmdb/ not served")
            return AccountingSnapshot([job("1", "a", T0, T0 + H, 2)], [], [], since, until, until)

    published: list[object] = []
    svc = AccountingService(Flaky(), book(TenantTerms("a", price_per_gpu_hour=1.0)),
                            published.append, clock=lambda: T0 + 2 * H, tz=UTC)
    first = svc.refresh()
    assert first.today["a"].cost == pytest.approx(2.0) and first.error is None
    with pytest.raises(SourceError):
        svc.refresh()
    kept = published[-1]
    assert kept is svc.latest and kept.error == "slurmrestd answered 404: /slurmdb/ not served"
    assert kept.today["a"].cost == pytest.approx(2.0) and kept.key != first.key
    assert svc.refresh().error is None

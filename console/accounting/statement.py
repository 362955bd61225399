"""Statements: one tenant's month (or any period) as a document, and the scheme's summary.

A statement is what the people who run the subsidy scheme hand out, so it says what it covers
and what it does not: the period, the span the accounting data actually covers, the share of
GPU-hours the console observed (PF-hours and efficiency rest on that share only), and the
source's own caveats. Amounts are computed at full precision and rounded to cents only when
written, so the jobs add up to the total within a cent per job.

CSV layout (`write_statement_csv`): a "field,value" block, a blank line, then the jobs table
with a header row and a final "Total" row. `write_statements_csv`: one row per tenant.
Unknown figures are empty cells, never 0.
"""

from __future__ import annotations

import csv
import io
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import numpy as np

from console.accounting.money import TenantCharges, charges, job_costs
from console.accounting.periods import Period
from console.accounting.usage import job_gpu_hours, job_observed, ran_in
from console.accounting.view import AccountingView


@dataclass(frozen=True)
class StatementJob:
    job_id: str
    user: str
    partition: str
    state: str
    start: float | None
    end: float | None  # None: still running at the time of the read
    gpus: int
    gpu_hours: float
    pf_hours: float | None
    efficiency: float | None
    price: float | None
    cost: float | None


@dataclass(frozen=True)
class Statement:
    account: str
    display: str
    period: Period
    currency: str
    source: str
    generated_at: float
    covered: tuple[float, float]  # the part of the period the accounting data covers
    gaps: tuple[str, ...]
    charges: TenantCharges
    jobs: tuple[StatementJob, ...]
    tz: tzinfo

    def when(self, t: float | None) -> str:
        return "" if t is None else datetime.fromtimestamp(t, self.tz).strftime("%Y-%m-%d %H:%M")


def _f(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def coverage_gaps(view: AccountingView, period: Period) -> tuple[tuple[float, float], list[str]]:
    """The span of ``period`` the read covers, and its gaps and caveats in words."""
    lo, hi = max(period.since, view.since), min(period.until, view.taken_at)
    gaps: list[str] = []
    fmt = "%Y-%m-%d %H:%M %Z"

    def when(t: float) -> str:
        return datetime.fromtimestamp(t, view.tz).strftime(fmt).strip()

    if hi <= lo:
        gaps.append(f"no accounting data for this period (data covers {when(view.since)} to "
                    f"{when(view.taken_at)})")
        return (period.since, period.since), gaps
    if view.since > period.since:
        gaps.append(f"no accounting data before {when(view.since)}")
    if view.taken_at < period.until:
        gaps.append(f"period not over: usage counted up to {when(view.taken_at)}; running jobs "
                    "are counted up to then")
    if view.error:
        gaps.append(f"the newest accounting read failed ({view.error}); figures are from the "
                    "read before it")
    gaps.extend(view.notes)
    return (lo, hi), gaps


def build_statement(view: AccountingView, account: str, period: Period) -> Statement:
    """One tenant's statement for ``period`` from an accounting view."""
    t = view.table
    now = view.taken_at
    ch = charges(t, period, now, view.book, (account,))[account]
    covered, gaps = coverage_gaps(view, period)
    share = ch.usage.observed_share
    if ch.usage.gpu_hours > 0:
        if share is None or share <= 0:
            gaps.append("PF-hours and efficiency: the console observed none of these jobs")
        elif share < 0.995:
            gaps.append(f"PF-hours and efficiency cover the {share * 100:.0f} % of GPU-hours the "
                        "console observed")
    if ch.cost is None:
        gaps.append(f"{ch.unpriced_gpu_hours:,.1f} GPU-hours have no list price configured; "
                    "cost, subsidy and net are not stated")
    rows = t.rows_of(account)
    rows = rows[ran_in(t, period, now)[rows]]
    gh = job_gpu_hours(t, period, now)
    obs = job_observed(t, period, now)
    prices = view.book.job_prices(t)
    cost = job_costs(t, period, now, view.book)
    order = rows[np.argsort(np.nan_to_num(t.start[rows], nan=np.inf), kind="stable")]
    jobs = []
    for r in order.tolist():
        pf, peak = obs.pf_hours[r], obs.peak_pf_hours[r]
        jobs.append(StatementJob(
            str(t.job_id[r]), t.users[int(t.user[r])], t.partitions[int(t.partition[r])],
            t.states[int(t.state[r])], _f(t.start[r]), _f(t.end[r]), int(t.gpus[r]),
            float(gh[r]), _f(pf), float(pf / peak) if np.isfinite(pf) and peak > 0 else None,
            _f(prices[r]), _f(cost[r])))
    return Statement(account, view.book.display(account), period, view.currency, view.source,
                     _time.time(), covered, tuple(gaps), ch, tuple(jobs), view.tz)


# --- CSV -------------------------------------------------------------------------------------

def _num(x: float | None, digits: int = 2) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def statement_summary(s: Statement) -> list[tuple[str, str]]:
    """The statement's header and totals as (field, value) rows (CSV and PDF share them)."""
    ch, u = s.charges, s.charges.usage
    return [
        ("Tenant", f"{s.display} ({s.account})"),
        ("Period", f"{s.when(s.period.since)} to {s.when(s.period.until)} ({s.period.label})"),
        ("Data covers", f"{s.when(s.covered[0])} to {s.when(s.covered[1])}"),
        ("Time zone", s.tz.tzname(datetime.fromtimestamp(s.period.since, s.tz)) or str(s.tz)),
        ("Source", s.source),
        ("Currency", s.currency),
        ("Jobs", str(u.jobs)),
        ("GPU-hours", _num(u.gpu_hours)),
        ("PF-hours delivered", _num(u.pf_hours)),
        ("Efficiency", "" if u.efficiency is None else f"{u.efficiency * 100:.1f} %"),
        ("Idle allocated GPU-hours", _num(u.idle_gpu_hours)),
        ("Cost of idle allocated GPUs", _num(ch.idle_cost)),
        ("List cost", _num(ch.cost)),
        ("Subsidy rate", f"{ch.subsidy_rate * 100:g} %"),
        ("Subsidy", _num(ch.subsidy)),
        ("Net payable", _num(ch.net)),
        ("Jobs by end state", ", ".join(f"{k} {v}" for k, v in u.jobs_by_state.items())),
        ("Gaps and caveats", "; ".join(s.gaps) or "none"),
    ]


JOB_COLUMNS = ("Job", "User", "Partition", "State", "Start", "End", "GPUs", "GPU-hours",
               "PF-hours", "Efficiency %", "Price / GPU-hour", "List cost")


def job_row(s: Statement, j: StatementJob) -> list[str]:
    return [j.job_id, j.user, j.partition, j.state, s.when(j.start),
            s.when(j.end) if j.end is not None else "running", str(j.gpus), _num(j.gpu_hours),
            _num(j.pf_hours), _num(None if j.efficiency is None else j.efficiency * 100, 1),
            _num(j.price), _num(j.cost)]


def statement_csv(s: Statement) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("Field", "Value"))
    w.writerows(statement_summary(s))
    w.writerow(())
    w.writerow(JOB_COLUMNS)
    for j in s.jobs:
        w.writerow(job_row(s, j))
    u = s.charges.usage
    w.writerow(["Total", "", "", "", "", "", "", _num(u.gpu_hours), _num(u.pf_hours),
                _num(None if u.efficiency is None else u.efficiency * 100, 1), "",
                _num(s.charges.cost)])
    return out.getvalue()


def write_statement_csv(s: Statement, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(statement_csv(s), encoding="utf-8")
    return p


SUMMARY_COLUMNS = ("Account", "Tenant", "Period", "Currency", "Jobs", "GPU-hours", "PF-hours",
                   "Efficiency %", "Idle GPU-hours", "Idle cost", "List cost", "Subsidy rate %",
                   "Subsidy", "Net payable", "Gaps")


def statements_csv(view: AccountingView, period: Period,
                   accounts: Sequence[str] | None = None) -> str:
    """One row per tenant for ``period`` (the scheme's summary)."""
    accounts = tuple(accounts) if accounts is not None else view.accounts
    ch = charges(view.table, period, view.taken_at, view.book, tuple(accounts))
    _, gaps = coverage_gaps(view, period)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for acct in accounts:
        c, u = ch[acct], ch[acct].usage
        w.writerow([acct, view.book.display(acct), period.label, view.currency, u.jobs,
                    _num(u.gpu_hours), _num(u.pf_hours),
                    _num(None if u.efficiency is None else u.efficiency * 100, 1),
                    _num(u.idle_gpu_hours), _num(c.idle_cost), _num(c.cost),
                    f"{c.subsidy_rate * 100:g}", _num(c.subsidy), _num(c.net), "; ".join(gaps)])
    return out.getvalue()

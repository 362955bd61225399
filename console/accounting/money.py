"""Money: list price per GPU-hour, cost, subsidy (at most 70 %), net payable, idle cost.

The rules (README, "Accounting arithmetic"):

- a job's list price per GPU-hour is its tenant's own price when the tenant has one (> 0),
  else its partition's, else the cluster's default; a GPU-hour with no price at all is not
  free but unpriced: its cost is unknown and the statement says so;
- cost at list = GPU-hours x list price; subsidy = cost x the tenant's rate, a rate above
  70 % is refused (the scheme pays at most 70 %), naming the tenant; net payable = cost -
  subsidy;
- idle cost = allocated-but-idle GPU-hours (observed) x list price: what the tenant paid for
  GPUs that computed nothing. It is part of the cost, shown as its own line, never added.

Amounts are rounded only for display (to the currency's cents); sums use full precision, so
a statement's rows add up to its total within a cent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from console.accounting.periods import Period
from console.accounting.table import UsageTable
from console.accounting.usage import TenantUsage, job_gpu_hours, job_observed, tenant_usage

#: The subsidy scheme pays at most this share of the list price.
MAX_SUBSIDY = 0.70
DEFAULT_CURRENCY = "HKD"


class SubsidyError(ValueError):
    """A tenant's subsidy rate the scheme cannot pay; the message names the tenant."""


@dataclass(frozen=True)
class TenantTerms:
    """What one tenant pays: its subsidy rate (0..0.7) and its own list price (0 = none)."""

    account: str
    display: str = ""
    subsidy: float = 0.0
    price_per_gpu_hour: float = 0.0


def check_subsidy(account: str, rate: float) -> float:
    """``rate`` if the scheme can pay it; otherwise `SubsidyError` naming the tenant."""
    if not np.isfinite(rate) or rate < 0:
        raise SubsidyError(f"tenant {account!r}: subsidy rate must be between 0 and 70 %, "
                           f"not {rate!r}")
    if rate > MAX_SUBSIDY + 1e-12:
        raise SubsidyError(f"tenant {account!r}: subsidy rate {rate * 100:g} % is above the "
                           f"scheme's cap of {MAX_SUBSIDY * 100:g} %")
    return float(rate)


@dataclass(frozen=True)
class PriceBook:
    """Prices and terms of one cluster. Built once per read; validated on construction."""

    tenants: Mapping[str, TenantTerms] = field(default_factory=dict)
    partition_prices: Mapping[str, float] = field(default_factory=dict)
    default_price: float = 0.0
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        for acct, terms in self.tenants.items():
            check_subsidy(acct, terms.subsidy)
        if not self.currency.strip():
            raise ValueError("currency must be named (e.g. HKD)")

    @classmethod
    def of(cls, tenants: Sequence[TenantTerms], partition_prices: Mapping[str, float] | None = None,
           default_price: float = 0.0, currency: str = DEFAULT_CURRENCY) -> "PriceBook":
        return cls({t.account: t for t in tenants}, dict(partition_prices or {}),
                   float(default_price), currency)

    def subsidy_rate(self, account: str) -> float:
        t = self.tenants.get(account)
        return 0.0 if t is None else t.subsidy

    def display(self, account: str) -> str:
        t = self.tenants.get(account)
        return (t.display or account) if t is not None else account

    def job_prices(self, table: UsageTable) -> np.ndarray:
        """float64[n]: each job's list price per GPU-hour; NaN where nothing sets one."""
        by_tenant = np.array([self._tenant_price(a) for a in table.accounts] or [np.nan])
        by_part = np.array([self.partition_prices.get(p, np.nan) for p in table.partitions]
                           or [np.nan])
        if not len(table):
            return np.zeros(0)
        price = by_tenant[table.account]
        price = np.where(np.isnan(price), by_part[table.partition], price)
        fallback = self.default_price if self.default_price > 0 else np.nan
        return np.where(np.isnan(price), fallback, price)

    def _tenant_price(self, account: str) -> float:
        t = self.tenants.get(account)
        return t.price_per_gpu_hour if t is not None and t.price_per_gpu_hour > 0 else np.nan


@dataclass(frozen=True)
class TenantCharges:
    """One tenant's money over one period. ``None`` = unknown (unpriced or not observed)."""

    usage: TenantUsage
    subsidy_rate: float
    cost: float | None
    subsidy: float | None
    net: float | None
    idle_cost: float | None
    unpriced_gpu_hours: float = 0.0

    @property
    def account(self) -> str:
        return self.usage.account


def job_costs(table: UsageTable, period: Period, now: float, book: PriceBook) -> np.ndarray:
    """float64[n]: each job's list cost inside ``period``; NaN where the job is unpriced
    and used GPUs (0 where it used none)."""
    gh = job_gpu_hours(table, period, now)
    cost = gh * book.job_prices(table)
    return np.where(gh > 0, cost, 0.0)


def charges(table: UsageTable, period: Period, now: float, book: PriceBook,
            accounts: tuple[str, ...] | None = None) -> dict[str, TenantCharges]:
    """Cost, subsidy, net and idle cost of every tenant over ``period``."""
    if accounts is None:
        accounts = tuple(dict.fromkeys((*book.tenants, *table.accounts)))
    usage = tenant_usage(table, period, now, accounts)
    cost = job_costs(table, period, now, book)
    prices = book.job_prices(table)
    gh = job_gpu_hours(table, period, now)
    idle = job_observed(table, period, now).idle_gpu_hours * prices
    out: dict[str, TenantCharges] = {}
    for acct in accounts:
        rows = table.rows_of(acct)
        rate = book.subsidy_rate(acct)
        c = cost[rows]
        unpriced = float(gh[rows][np.isnan(c)].sum())
        total = None if unpriced > 0 else float(c.sum())
        sub = None if total is None else total * rate
        idle_rows = idle[rows]
        idle_cost = (float(np.nansum(idle_rows)) if np.isfinite(idle_rows).any() else None)
        out[acct] = TenantCharges(usage[acct], rate, total, sub,
                                  None if total is None else total - (sub or 0.0), idle_cost,
                                  unpriced)
    return out


def daily(table: UsageTable, days: Sequence[Period], now: float, book: PriceBook,
          account: str) -> list[tuple[str, float, float | None, float | None, float | None]]:
    """Per calendar day: (day, GPU-hours, cost, subsidy, net) of one tenant."""
    out = []
    for d in days:
        ch = charges(table, d, now, book, (account,))[account]
        out.append((d.label, ch.usage.gpu_hours, ch.cost, ch.subsidy, ch.net))
    return out


def money_text(amount: float | None, currency: str, cents: bool = False) -> str:
    """``HKD 12,345`` (or with cents); unknown is spelled out, never 0."""
    if amount is None or not np.isfinite(amount):
        return "not priced"
    return f"{currency} {amount:,.2f}" if cents else f"{currency} {amount:,.0f}"

"""`AccountingView`: one accounting read and its arithmetic, as it travels with the frames.

Built in the engine's accounting thread (never the GUI's), attached to every frame until the
next read, and read by the panels: the Tenants panel takes the precomputed ``today`` and
``month`` charges, the drill-down and the statements compute any other period from ``table``
(vectorised, milliseconds). Everything in it pickles cheaply (numpy columns, small dataclasses),
because with the engine in a worker process it crosses a pipe once per read.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import tzinfo

from console.accounting.money import PriceBook, TenantCharges, charges
from console.accounting.periods import Period, day_period, month_to_date
from console.accounting.records import AccountingSnapshot, FairShare, GpuLimit
from console.accounting.table import JobObservation, TableJobs, UsageTable, with_observations


@dataclass(frozen=True, eq=False)
class AccountingView:
    """The newest accounting read of a cluster and what the panels show of it."""

    source: str
    taken_at: float  # "now" of the read, on the data's clock (the simulator's under --speed)
    since: float  # the read covers [since, taken_at]
    tz: tzinfo
    book: PriceBook
    table: UsageTable
    limits: tuple[GpuLimit, ...]
    shares: tuple[FairShare, ...]
    notes: tuple[str, ...]
    today: Mapping[str, TenantCharges]
    month: Mapping[str, TenantCharges]
    today_period: Period
    month_period: Period
    #: The last read failed (in words); the figures are from the read before it.
    error: str | None = None
    accounts: tuple[str, ...] = field(default=())
    #: Names this view (process and read): panels recompute only when it changes.
    key: str = ""

    @property
    def currency(self) -> str:
        return self.book.currency

    def with_error(self, words: str | None) -> "AccountingView":
        return replace(self, error=words, key=_new_key())

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled with its key, so a receiver that already holds the view with that key gets
        that one object back (one view, not one per frame). The pickled bytes are not kept:
        with the engine in a worker process the view crosses once per read
        (console/frame_wire.py), and keeping them held a second copy of the whole table
        (~38 MB at 4,096 nodes) in the worker for as long as the view lived."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        return _restore, (self.key, state)


_counter = itertools.count(1)
_last: tuple[str, AccountingView] | None = None


def _new_key() -> str:
    return f"{os.getpid()}-{next(_counter)}"


def _restore(key: str, state: dict[str, object]) -> AccountingView:
    global _last
    if _last is not None and _last[0] == key and key:
        return _last[1]
    view = AccountingView(**state)  # type: ignore[arg-type]
    _last = (key, view)
    return view


def build_view(snapshot: AccountingSnapshot, book: PriceBook, tz: tzinfo, source: str,
               observations: Mapping[str, JobObservation] | None = None) -> AccountingView:
    """Arithmetic of one read: the table, and today's and this month's charges per tenant.

    A source whose jobs are already a table (`TableJobs`: the simulator's) is taken as it is,
    with ``observations`` laid over its own; any other is built from its records."""
    if isinstance(snapshot.jobs, TableJobs):
        table = with_observations(snapshot.jobs.table, observations or {})
    else:
        table = UsageTable.build(snapshot.jobs, observations)
    now = snapshot.taken_at
    accounts = tuple(dict.fromkeys((*book.tenants, *table.accounts)))
    today = day_period(now, tz)
    today = Period(today.since, max(now, today.since + 1.0), today.label)
    month = month_to_date(now, tz)
    return AccountingView(
        source=source, taken_at=now, since=snapshot.since, tz=tz, book=book, table=table,
        limits=tuple(snapshot.limits), shares=tuple(snapshot.shares), notes=tuple(snapshot.notes),
        today=charges(table, today, now, book, accounts),
        month=charges(table, month, now, book, accounts),
        today_period=today, month_period=month, accounts=accounts, key=_new_key())

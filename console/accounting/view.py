"""`AccountingView`: one accounting read and its arithmetic, as it travels with the frames.

Built in the engine's accounting thread (never the GUI's), attached to every frame until the
next read, and read by the panels: the Tenants panel takes the precomputed ``today`` and
``month`` charges, the drill-down and the statements compute any other period from ``table``
(vectorised, milliseconds). Everything in it pickles cheaply (numpy columns, small dataclasses),
because with the engine in a worker process it crosses a pipe with each frame.
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import tzinfo

from console.accounting.money import PriceBook, TenantCharges, charges
from console.accounting.periods import Period, day_period, month_to_date
from console.accounting.records import AccountingSnapshot, FairShare, GpuLimit
from console.accounting.table import JobObservation, UsageTable


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
        """Pickled once per view, not once per frame: with the engine in a worker process the
        view rides on every frame (a month of jobs is a few MB), so the bytes are kept and the
        receiving side unpickles a view it has already seen only once."""
        blob = self.__dict__.get("_blob")
        if blob is None:
            state = {f.name: getattr(self, f.name) for f in fields(self)}
            blob = pickle.dumps(state, protocol=5)
            object.__setattr__(self, "_blob", blob)
        return _restore, (self.key, blob)


_counter = itertools.count(1)
_last: tuple[str, AccountingView] | None = None


def _new_key() -> str:
    return f"{os.getpid()}-{next(_counter)}"


def _restore(key: str, blob: bytes) -> AccountingView:
    global _last
    if _last is not None and _last[0] == key and key:
        return _last[1]
    view = AccountingView(**pickle.loads(blob))
    _last = (key, view)
    return view


def build_view(snapshot: AccountingSnapshot, book: PriceBook, tz: tzinfo, source: str,
               observations: Mapping[str, JobObservation] | None = None) -> AccountingView:
    """Arithmetic of one read: the table, and today's and this month's charges per tenant."""
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

"""Billing periods: a day, a month, the last N hours, as [since, until) in POSIX seconds.

A statement's month is the site's calendar month, not UTC's: a Hong Kong centre bills from
00:00 HKT on the 1st. So every calendar boundary here is computed in a time zone the caller
passes (the console passes the machine's local zone; tests pass UTC or a fixed offset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """Half-open [since, until): a job running at ``until`` counts up to ``until`` only."""

    since: float
    until: float
    label: str

    def __post_init__(self) -> None:
        if not self.until > self.since:
            raise ValueError(f"period {self.label!r} ends before it starts")

    @property
    def hours(self) -> float:
        return (self.until - self.since) / 3600.0


def local_zone() -> tzinfo:
    """The machine's own time zone (where the console runs is where the centre bills)."""
    tz = datetime.now().astimezone().tzinfo
    return tz if tz is not None else timezone.utc


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` -> (2026, 11); anything else raises ValueError in words."""
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"a month is written YYYY-MM (e.g. 2026-11), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def month_period(month: str, tz: tzinfo) -> Period:
    """The calendar month ``YYYY-MM`` in ``tz``."""
    year, mon = parse_month(month)
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return Period(start.timestamp(), end.timestamp(), f"{year:04d}-{mon:02d}")


def month_of(t: float, tz: tzinfo) -> str:
    """``YYYY-MM`` of the instant ``t`` in ``tz``."""
    return datetime.fromtimestamp(t, tz).strftime("%Y-%m")


def previous_month(month: str) -> str:
    year, mon = parse_month(month)
    return f"{year - (mon == 1):04d}-{(mon - 2) % 12 + 1:02d}"


def day_period(t: float, tz: tzinfo) -> Period:
    """The calendar day containing ``t`` in ``tz`` (23 or 25 hours across a DST change)."""
    d = datetime.fromtimestamp(t, tz)
    start = datetime(d.year, d.month, d.day, tzinfo=tz)
    end = start + timedelta(days=1)
    # Wall-clock day arithmetic: rebuild the next midnight in the zone, not +24 h.
    end = datetime(end.year, end.month, end.day, tzinfo=tz)
    return Period(start.timestamp(), end.timestamp(), start.strftime("%Y-%m-%d"))


def days_of(period: Period, tz: tzinfo) -> list[Period]:
    """The calendar days covering ``period``, each cut to it (a partial first/last day)."""
    out: list[Period] = []
    t = period.since
    while t < period.until:
        d = day_period(t, tz)
        out.append(Period(max(d.since, period.since), min(d.until, period.until), d.label))
        t = d.until
    return out


def last_hours(now: float, hours: float, label: str | None = None) -> Period:
    """The ``hours`` before ``now`` (the drill-down's 24 h / 7 d / 30 d)."""
    return Period(now - hours * 3600.0, now, label or f"last {hours:g} h")


def month_to_date(now: float, tz: tzinfo) -> Period:
    """This month so far: from the 1st to ``now`` (what "this month" means on a live screen)."""
    m = month_period(month_of(now, tz), tz)
    return Period(m.since, max(now, m.since + 1.0), m.label)

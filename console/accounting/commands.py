"""``aisc-console statement`` and ``statements``: statements without the GUI.

One accounting read covering the month asked for (the simulator's own history when nothing is
configured, slurmdbd through slurmrestd on a live site), the same arithmetic as the panels,
then CSV (or PDF, by the file's extension, drawn with Qt's own PDF writer off-screen).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from console.accounting.observed import ObservationLedger, observations_path
from console.accounting.periods import Period, local_zone, month_period
from console.accounting.service import accounting_source_for, price_book, read_window_start
from console.accounting.statement import (
    Statement, build_statement, coverage_gaps, statements_csv, write_statement_csv,
)
from console.accounting.table import TableJobs
from console.accounting.view import AccountingView, build_view
from console.config import ClusterSettings, ConfigError, Settings, TenantSettings


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The two subcommands, added to the console's parser."""
    st = sub.add_parser("statement", parents=[common],
                        help="write one tenant's monthly statement (CSV or PDF by extension)")
    st.add_argument("--tenant", required=True, metavar="ACCOUNT", help="Slurm account")
    st.add_argument("--month", required=True, metavar="YYYY-MM")
    st.add_argument("--out", required=True, metavar="FILE.csv|FILE.pdf")
    ss = sub.add_parser("statements", parents=[common],
                        help="write one row per tenant for a month (CSV), for the scheme")
    ss.add_argument("--month", required=True, metavar="YYYY-MM")
    ss.add_argument("--out", required=True, metavar="FILE.csv")


def _sim_tenants(sources: Sequence[object]) -> list[TenantSettings]:
    out = []
    for s in sources:
        for t in getattr(getattr(s, "cluster", None), "tenants", ()) or ():
            out.append(TenantSettings(t.account, t.display, str(t.kind), float(t.subsidy),
                                      float(t.price_per_gpu_hour)))
    return out


def load_view(cluster: ClusterSettings, month: str) -> AccountingView:
    """One read of the cluster's accounting covering ``month`` (and the usual window)."""
    from console.secrets import default_resolver
    from console.sources.factory import build_sources

    tz = local_zone()
    try:
        period = month_period(month, tz)
    except ValueError as e:
        raise ConfigError(f"--month: {e}") from None
    secrets = default_resolver()
    sources = build_sources(cluster, secrets=secrets) if cluster.simulated else []
    try:
        source, clock, name = accounting_source_for(cluster, sources, secrets=secrets)
        if source is None:
            raise ConfigError(f"cluster {cluster.name!r} has no accounting to read: configure "
                              "its Slurm endpoint with slurmdbd behind it (or run the simulator)")
        now = clock()
        snap = source.read(min(period.since, read_window_start(now, tz)), now)
        own = None if isinstance(snap.jobs, TableJobs) else getattr(source, "observations", None)
        observed = dict(own()) if callable(own) else {}  # a table carries its source's own
        if name == "slurmdbd":  # what a running console saw of these jobs, if one ran here
            ledger = ObservationLedger(cluster.busy_threshold_pct)
            ledger.load(observations_path(cluster.name))
            observed.update(ledger.observations())
        return build_view(snap, price_book(cluster, _sim_tenants(sources)), tz, name, observed)
    finally:
        for s in sources:
            close = getattr(s, "close", None)
            if callable(close):
                close()


def _refuse_uncovered(view: AccountingView, period: Period) -> None:
    """A month the accounting data does not reach is refused: a statement of zeros would read
    as "used nothing", which nobody knows."""
    (lo, hi), gaps = coverage_gaps(view, period)
    if hi <= lo:
        raise ConfigError(f"{period.label}: {gaps[0]}")


def _ensure_parent(out: str) -> Path:
    p = Path(out)
    if p.parent and not p.parent.exists():
        raise ConfigError(f"--out: folder {p.parent} does not exist")
    return p


def cmd_statement(args: argparse.Namespace, settings: Settings,
                  write_pdf: Callable[[Statement, Path], int] | None = None) -> int:
    """``write_pdf`` draws the PDF (the command line passes Qt's writer; the core has no Qt)."""
    out = _ensure_parent(args.out)
    kind = out.suffix.lower()
    if kind not in (".csv", ".pdf"):
        raise ConfigError("--out: the file name must end in .csv or .pdf")
    cluster = settings.cluster(getattr(args, "cluster", None))
    view = load_view(cluster, args.month)
    if args.tenant not in view.accounts:
        raise ConfigError(f"no tenant {args.tenant!r} in {cluster.name}'s accounting; known: "
                          + ", ".join(sorted(view.accounts)))
    period = month_period(args.month, view.tz)
    _refuse_uncovered(view, period)
    stmt = build_statement(view, args.tenant, period)
    if kind == ".csv":
        write_statement_csv(stmt, out)
    else:
        if write_pdf is None:
            raise ConfigError("--out: PDF statements need the GUI package; write a .csv instead")
        pages = write_pdf(stmt, out)
        print(f"{pages} page{'s' if pages != 1 else ''}", end=", ")
    u, ch = stmt.charges.usage, stmt.charges
    net = "not priced" if ch.net is None else f"{stmt.currency} {ch.net:,.2f}"
    print(f"wrote {out}: {stmt.display}, {stmt.period.label}, {u.jobs:,} jobs, "
          f"{u.gpu_hours:,.1f} GPU-hours, net payable {net}")
    for gap in stmt.gaps:
        print(f"  note: {gap}")
    return 0


def cmd_statements(args: argparse.Namespace, settings: Settings) -> int:
    out = _ensure_parent(args.out)
    if out.suffix.lower() != ".csv":
        raise ConfigError("--out: the file name must end in .csv")
    cluster = settings.cluster(getattr(args, "cluster", None))
    t0 = time.monotonic()
    view = load_view(cluster, args.month)
    period = month_period(args.month, view.tz)
    _refuse_uncovered(view, period)
    text = statements_csv(view, period)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: {len(view.accounts)} tenants, {args.month} "
          f"({time.monotonic() - t0:.1f} s)")
    return 0

"""The accounting service: reads accounting every few minutes in a thread of the engine.

Why its own thread: a month of slurmdbd jobs through slurmrestd can take seconds, and neither
the GUI nor the engine's frame loop may wait for it. Why every few minutes and not every poll:
accounting changes as jobs end, and slurmdbd is a shared database a console must not hammer.
The newest `AccountingView` is handed to ``publish`` (the engine puts it on the next frames);
a failed read keeps the last view, marked with the failure in words.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any

from console.accounting.money import PriceBook, TenantTerms
from console.accounting.observed import ObservationLedger, observations_path
from console.accounting.periods import local_zone, month_of, month_period, previous_month
from console.accounting.records import AccountingSource
from console.accounting.table import JobObservation, TableJobs
from console.accounting.view import AccountingView, build_view
from console.config import ClusterSettings, TenantSettings
from console.model import Frame

log = logging.getLogger(__name__)
#: Wait before retrying a failed read (shorter than the interval: a blip should not cost 5 min).
RETRY_S = 60.0
#: The first read waits this long after start: the dashboard's own first polls come first (and
#: a short-lived engine, a `status` command, never pays for a month of accounting).
FIRST_READ_AFTER_S = 5.0


def price_book(cluster: ClusterSettings, extra: Sequence[TenantSettings] = ()) -> PriceBook:
    """The cluster's prices: configured tenants first, then those the simulator describes."""
    terms: dict[str, TenantTerms] = {}
    for t in (*cluster.tenants, *extra):
        terms.setdefault(t.account, TenantTerms(t.account, t.display, t.subsidy,
                                                t.price_per_gpu_hour))
    return PriceBook(terms, dict(cluster.partition_prices), cluster.default_price_per_gpu_hour,
                     cluster.currency)


def read_window_start(now: float, tz: tzinfo) -> float:
    """Reads cover last month and this one (statements), and at least the last 31 days."""
    return min(month_period(previous_month(month_of(now, tz)), tz).since, now - 31 * 86400.0)


def accounting_source_for(cluster: ClusterSettings, sources: Sequence[object], *,
                          secrets: object | None = None, live: bool = True
                          ) -> tuple[AccountingSource | None, Callable[[], float], str]:
    """The cluster's accounting reader, its clock and its name; (None, ...) when it has none.

    The simulator keeps its own history; a live site reads slurmdbd through the cluster's
    slurmrestd (console/sources/slurmdb.py); a slurmrestd without ``openapi/slurmdbd`` answers
    404, which the view shows as the read's failure in words, never as zero usage.
    """
    for s in sources:
        sim = getattr(s, "cluster", None)
        if sim is not None and hasattr(sim, "workload"):
            from console.sim.accounting import SimAccounting

            acc = SimAccounting.of(sim)
            return acc, acc.now, "simulator"
    if cluster.slurm is not None and live:
        from console.sources.live import _http
        from console.sources.slurm import SlurmClient
        from console.sources.slurmdb import SlurmdbAccountingSource

        s = cluster.slurm
        # Its own HTTP client: it reads from the accounting thread, and a client is not
        # thread-safe. Same URL, TLS, auth and keyring entry as the scheduler source.
        client = SlurmClient(_http(cluster, "slurm", s, s.url, secrets), version=s.api_version)
        return SlurmdbAccountingSource(client, name="slurmdbd"), time.time, "slurmdbd"
    return None, time.time, ""


class AccountingService:
    """Periodic reads of one `AccountingSource`, plus the console's own observations."""

    def __init__(self, source: AccountingSource, book: PriceBook, publish: Callable[[AccountingView], None],
                 *, clock: Callable[[], float] = time.time, interval_s: float = 300.0,
                 tz: tzinfo | None = None, name: str = "accounting",
                 busy_threshold_pct: float = 5.0, first_read_after_s: float = FIRST_READ_AFTER_S,
                 persist: Path | None = None) -> None:
        self.source = source
        self.book = book
        self.publish = publish
        self.clock = clock
        self.interval_s = float(interval_s)
        self.tz = tz or local_zone()
        self.name = name
        self.first_read_after_s = float(first_read_after_s)
        self.ledger = ObservationLedger(busy_threshold_pct)
        #: Where the ledger is kept across restarts (live sites only: simulated job ids repeat).
        self.persist = persist
        if persist is not None:
            self.ledger.load(persist)
        self.latest: AccountingView | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- frames (engine thread) ------------------------------------------------------------------
    def observe(self, frame: Frame) -> None:
        """Engine subscriber: what the console sees of each job goes into the ledger."""
        try:
            self.ledger.observe(frame)
        except Exception:  # noqa: BLE001 - observations are extras; frames must keep flowing
            log.exception("accounting observation failed")

    # -- reads (accounting thread) ---------------------------------------------------------------
    def observations(self, *, own_in_table: bool = False) -> Mapping[str, JobObservation]:
        """The source's telemetry history (the simulator has one), overridden by what the
        console saw itself. ``own_in_table``: the read's table carries the source's history
        already (a month of rows: not made into objects again)."""
        own = None if own_in_table else getattr(self.source, "observations", None)
        out = dict(own()) if callable(own) else {}
        out.update(self.ledger.observations())
        return out

    def refresh(self) -> AccountingView:
        """One read and its arithmetic (blocking); publishes the view, or the failure."""
        now = self.clock()
        try:
            snap = self.source.read(read_window_start(now, self.tz), now)
            view = build_view(snap, self.book, self.tz, self.name,
                              self.observations(own_in_table=isinstance(snap.jobs, TableJobs)))
        except Exception as exc:
            words = _words(exc)
            # Said once per distinct failure (a site without slurmdbd would say it every minute).
            (log.debug if words == self.last_error else log.warning)("accounting read failed: %s", words)
            self.last_error = words
            if self.latest is not None:
                self.latest = self.latest.with_error(words)
                self.publish(self.latest)
            raise
        self.last_error = None
        self.latest = view
        self.publish(view)
        if self.persist is not None:
            try:
                self.ledger.save(self.persist)
            except OSError as exc:
                log.warning("observations not saved to %s: %s", self.persist, exc)
        return view

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="accounting", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def refresh_soon(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        if self._stop.wait(self.first_read_after_s):
            return
        while not self._stop.is_set():
            wait = self.interval_s
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - said in words on the view; try again sooner
                wait = min(self.interval_s, RETRY_S)
            self._wake.wait(wait)
            self._wake.clear()


def _words(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    return f"accounting read failed: {type(exc).__name__}: {exc}"


def make_service(cluster: ClusterSettings, sources: Sequence[object],
                 publish: Callable[[AccountingView], None], *, extra: Sequence[TenantSettings] = (),
                 secrets: object | None = None, live: bool = True,
                 **kw: Any) -> AccountingService | None:
    """The cluster's accounting service, or None when it has no accounting to read (``live``
    False: only a simulator's own history, no reader of a live site's slurmdbd)."""
    try:
        source, clock, name = accounting_source_for(cluster, sources, secrets=secrets, live=live)
    except Exception:  # noqa: BLE001 - accounting is an extra: the dashboard comes up regardless
        log.exception("accounting unavailable")
        return None
    if source is None:
        return None
    persist = observations_path(cluster.name) if name == "slurmdbd" else None
    return AccountingService(source, price_book(cluster, extra), publish, clock=clock,
                             interval_s=cluster.accounting_interval_s, name=name,
                             busy_threshold_pct=cluster.busy_threshold_pct, persist=persist, **kw)

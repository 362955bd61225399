"""The engine's journal writer: frames in, events and one-minute aggregates out, on its own thread.

Why a thread of its own: a commit waits for the disk (tens of milliseconds on a busy one, much
longer on a network folder), and neither the engine thread nor, above all, the GUI thread may
wait for it. The engine only hands each frame over (`offer`, microseconds); this thread diffs,
aggregates and writes in batches, one transaction per batch.

When the disk is full or the folder read-only the journal *pauses*: it keeps what it could not
write in memory (bounded; the oldest events go first and are counted), says "journal paused:
<why>" through `status_words` (the engine shows it as a source line in every frame and in
``status``), retries on its own every ``retry_s``, and on success writes what it kept and an
event saying how long it was paused. The console keeps running throughout.

The old JSON-lines audit journal is copied in once, the first time a cluster's database is
opened. Retention: events older than ``events_days`` and aggregates older than
``aggregates_days`` are deleted a small batch at a time between writes. No Qt here.
"""

from __future__ import annotations

import collections
import getpass
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.journal import Journal, redact, redact_text
from console.journal_aggregates import MinuteAggregator
from console.journal_events import FrameDiffer
from console.journal_lock import WriterLock
from console.journal_store import (Event, JournalStore, JournalUnavailable, NodeMinute,
                                   iter_jsonl, why_words)
from console.model import Frame, SourceState, SourceStatus

log = logging.getLogger(__name__)

#: Events kept in memory while paused; past this the oldest are dropped (and counted).
MAX_PENDING_EVENTS = 50_000
#: Minutes of aggregates kept in memory while paused (a day).
MAX_PENDING_MINUTES = 1440
#: Frames waiting for the journal thread; past this the oldest are skipped (the differ then
#: reports the change between the frames it did see, nothing is invented).
MAX_QUEUED_FRAMES = 120
JSONL_MIGRATED = "jsonl_migrated"


@dataclass(frozen=True)
class Retention:
    events_days: float = 90.0
    aggregates_days: float = 30.0


def action_event(record: Mapping[str, Any], *, os_user: str,
                 endpoint_users: Mapping[str, str] | None = None,
                 migrated: bool = False) -> Event:
    """The journal event of one audit record of `console.actions.Actions` (attempt or outcome).

    Who: the operator named in the record (the silence author), the OS account the console runs
    under, and the user the endpoint sees (Slurm's user name for JWT auth; Alertmanager records
    the author as ``createdBy``).
    """
    rec: dict[str, Any] = redact(dict(record))
    action = str(rec.get("action") or "action")
    target = str(rec.get("target") or "")
    stage = str(rec.get("event") or "record")
    operator = str(rec.get("operator") or "")
    users = endpoint_users or {}
    if action in ("drain_node", "resume_node", "cancel_job"):
        endpoint_user = users.get("slurm") or None
    elif action in ("acknowledge", "create_silence", "expire_silence"):
        endpoint_user = operator or None
    else:
        endpoint_user = None
    rec.setdefault("os_user", os_user)
    rec.setdefault("endpoint_user", endpoint_user)
    if migrated:
        rec["migrated_from"] = "journal.jsonl"
    words = action.replace("_", " ")
    if stage == "attempt":
        summary = f"{operator or 'someone'} asked to {words} {target}"
        if rec.get("comment"):
            summary += f": {rec['comment']}"
    elif stage == "outcome":
        summary = (f"{words} {target} " + ("done" if rec.get("ok") else "failed")
                   + (f": {rec['message']}" if rec.get("message") else ""))
    else:
        summary = f"{words} {target}"
    t = rec.get("time")
    when = float(t) if isinstance(t, (int, float)) else time.time()
    return Event(when, f"action.{stage}", f"target:{target}", redact_text(summary), rec)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "unknown"


class JournalRecorder:
    """Writes one cluster's journal from frames and audit records, on its own thread."""

    def __init__(self, path: str | Path, *, retention: Retention = Retention(),
                 jsonl: Path | None = None, retry_s: float = 30.0, prune_every_s: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 store_factory: Callable[[Path], JournalStore] = JournalStore,
                 endpoint_users: Mapping[str, str] | None = None,
                 exclusive: bool = True) -> None:
        self.path = Path(path)
        self.retention = retention
        self.jsonl = jsonl
        self.retry_s = retry_s
        self.prune_every_s = prune_every_s
        self.endpoint_users = dict(endpoint_users or {})
        self.os_user = os_user()
        self._clock = clock
        #: The JSON-lines records older than this are the ones to migrate; newer ones are this
        #: console's own, teed to both (`AuditTee`) and already queued for the database.
        self._born = time.time()
        self._factory = store_factory
        self._store: JournalStore | None = None
        #: Derived events and figures only from the engine holding the cluster's writer lock
        #: (`console.journal_lock`); ``exclusive`` False (the GUI's note writer) needs none.
        self._lock = WriterLock(self.path) if exclusive else None
        self.standby_for = ""  # the writer's process id while another engine writes
        self._differ = FrameDiffer()
        self._agg = MinuteAggregator()
        self._frames: collections.deque[Frame] = collections.deque(maxlen=MAX_QUEUED_FRAMES)
        self._extra: list[Event] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        # Written on the journal thread only. Derived events (from frames) and own events
        # (this console's operator actions and notes) apart: only the first are another
        # engine's to write while this one stands by.
        self._events: collections.deque[Event] = collections.deque()
        self._own: collections.deque[Event] = collections.deque()
        self._cluster: list[dict[str, Any]] = []
        self._groups: list[dict[str, Any]] = []
        self._nodes: list[NodeMinute] = []
        self._dropped = 0
        self._paused_since: float | None = None
        self._paused_why: str | None = None
        self._retry_at = 0.0
        self._prune_at = 0.0
        self.written_events = 0
        self.last_process_s = 0.0

    def __repr__(self) -> str:
        return f"JournalRecorder({str(self.path)!r})"

    # ------------------------------------------------------------------ any thread

    def offer(self, frame: Frame) -> None:
        """Hand a frame over (engine thread): returns at once."""
        with self._cond:
            self._frames.append(frame)
            self._cond.notify()

    def record(self, events: Sequence[Event]) -> None:
        """Queue events that are not in frames (audit records, notes) for the journal thread."""
        with self._cond:
            self._extra.extend(events)
            self._cond.notify()

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The `console.journal.Journal` interface, so `Actions` audits into the database."""
        clean: dict[str, Any] = redact(dict(record))
        clean.setdefault("time", time.time())
        self.record([action_event(clean, os_user=self.os_user,
                                  endpoint_users=self.endpoint_users)])
        return clean

    def status_words(self) -> str | None:
        """"journal paused: <why>" while writes fail, else None."""
        why = self._paused_why
        return None if why is None else f"journal paused: {why}"

    def source_status(self, now: float) -> SourceStatus | None:
        """A source-like line for frames and ``status`` while paused (None while writing)."""
        words = self.status_words()
        if words is None:
            return None
        since = self._paused_since
        return SourceStatus(name="journal", kind="journal", state=SourceState.FAILING,
                            interval_s=self.retry_s, last_success=None, last_attempt=since,
                            latency_s=None, error=words, error_kind="internal",
                            detail=f"retrying every {self.retry_s:.0f} s; the console keeps running")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="journal", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is left (the current minute too) and close."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self.drain(final=True)
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock is not None:
            self._lock.release()  # another console's engine may take over

    # ------------------------------------------------------------------ the journal thread

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stop and not self._frames and not self._extra:
                    self._cond.wait(1.0)
                stop = self._stop
            try:
                self.drain(final=stop)
            except Exception:  # noqa: BLE001 - a bug here must not end journalling for good
                log.exception("journal thread failed")
            if stop:
                return

    def drain(self, *, final: bool = False) -> None:
        """Process every queued frame and event, then write (all on the calling thread)."""
        with self._cond:
            frames = list(self._frames)
            self._frames.clear()
            extra, self._extra = self._extra, []
        t0 = time.perf_counter()
        for f in frames:
            self.process(f)
        self._own.extend(extra)
        if final:
            c, g, n = self._agg.flush()
            self._keep(c, g, n)
        self.write_pending()
        self.last_process_s = time.perf_counter() - t0

    def process(self, frame: Frame) -> None:
        """Diff and aggregate one frame (no I/O)."""
        self._events.extend(self._differ.diff(frame))
        c, g, n = self._agg.feed(frame)
        if c or g or n:
            self._keep(c, g, n)

    def _keep(self, c: list[dict[str, Any]], g: list[dict[str, Any]], n: list[NodeMinute]) -> None:
        self._cluster.extend(c)
        self._groups.extend(g)
        self._nodes.extend(n)
        # Bounded while paused: a day of minutes; node snapshots are the biggest, an hour.
        del self._cluster[:-MAX_PENDING_MINUTES]
        del self._groups[:-MAX_PENDING_MINUTES * 64]
        del self._nodes[:-60]

    def write_pending(self) -> None:
        now = self._clock()
        if self._paused_why is not None and now < self._retry_at:
            self._bound()
            return
        if not (self._events or self._own or self._cluster or self._groups or self._nodes) and \
                self._store is not None:
            self._maybe_prune(now)
            return
        try:
            if self._lock is not None and not self._lock.acquire():
                self._stand_by()
            elif self.standby_for:
                log.info("journal %s: this engine writes it now", self.path)
                self.standby_for = ""
            store = self._open()
            events = list(self._own) + list(self._events)
            if self._paused_why is not None:
                paused = now - (self._paused_since or now)
                words = f"journal resumed after {paused:.0f} s paused ({self._paused_why})"
                if self._dropped:
                    words += f"; {self._dropped:,} events could not be kept"
                events.append(Event(now, "journal.resumed", "journal", words,
                                    {"paused_s": round(paused, 1), "why": self._paused_why,
                                     "dropped_events": self._dropped}))
            store.write(events, self._cluster, self._groups, self._nodes)
        except (JournalUnavailable, OSError, Exception) as exc:  # noqa: BLE001 - sqlite3.Error and bugs alike pause, never crash
            self._pause(exc, now)
            return
        self.written_events += len(events)
        self._events.clear()
        self._own.clear()
        self._cluster.clear()
        self._groups.clear()
        self._nodes.clear()
        if self._paused_why is not None:
            log.warning("journal %s resumed", self.path)
        self._paused_why = self._paused_since = None
        self._dropped = 0
        self._maybe_prune(now)

    def _stand_by(self) -> None:
        """Another engine writes this journal: leave it the derived events and figures."""
        holder = self._lock.holder() if self._lock is not None else ""
        if not self.standby_for:
            log.info("journal %s is written by another console (process %s); standing by",
                     self.path, holder or "unknown")
        self.standby_for = holder or "unknown"
        self._events.clear()
        self._cluster.clear()
        self._groups.clear()
        self._nodes.clear()

    def _open(self) -> JournalStore:
        if self._store is None:
            store = self._factory(self.path)
            self._migrate_jsonl(store)
            self._store = store
        return self._store

    def _migrate_jsonl(self, store: JournalStore) -> None:
        """Copy the JSON-lines audit journal in, once per database (one transaction).

        A recorder without ``jsonl`` (the GUI's note writer) leaves that to the engine's."""
        if self.jsonl is None or store.meta(JSONL_MIGRATED) is not None:
            return
        events: list[Event] = []
        if self.jsonl.exists():
            events = [action_event(r, os_user=str(r.get("os_user") or self.os_user),
                                   endpoint_users=self.endpoint_users, migrated=True)
                      for r in iter_jsonl(self.jsonl)
                      if not isinstance(r.get("time"), (int, float)) or r["time"] < self._born]
        store.write(events, meta={JSONL_MIGRATED: f"{len(events)} records from {self.jsonl.name}"})

    def _pause(self, exc: BaseException, now: float) -> None:
        why = exc.words if isinstance(exc, JournalUnavailable) else why_words(exc)
        if self._paused_why is None:
            log.warning("journal %s paused: %s", self.path, why)
            self._paused_since = now
        self._paused_why = why
        self._retry_at = now + self.retry_s
        if self._store is not None:  # opened afresh on the retry (a remounted disk, a fixed folder)
            self._store.close()
            self._store = None
        self._bound()

    def _bound(self) -> None:
        for queue in (self._events, self._own):
            over = len(queue) - MAX_PENDING_EVENTS
            for _ in range(max(0, over)):
                queue.popleft()
            self._dropped += max(0, over)

    def _maybe_prune(self, now: float) -> None:
        if now < self._prune_at or self._store is None:
            return
        self._prune_at = now + self.prune_every_s
        try:
            gone = self._store.prune(events_before=now - self.retention.events_days * 86400,
                                     aggregates_before=now - self.retention.aggregates_days * 86400)
        except Exception as exc:  # noqa: BLE001 - pruning failures pause like writes
            self._pause(exc, now)
            return
        if gone:
            self._prune_at = now  # more to do: another batch after the next write


class AuditTee:
    """What `Actions` writes its audit records to when the journal database is on: the
    database (through the recorder's thread), and the JSON-lines file as before, so ``tail``
    and ``jq`` still work during an incident and scripts reading it keep working."""

    def __init__(self, recorder: JournalRecorder, jsonl: Journal | None) -> None:
        self.recorder = recorder
        self.jsonl = jsonl

    def __repr__(self) -> str:
        return f"AuditTee({self.recorder!r}, {self.jsonl!r})"

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        clean = self.recorder.append(record)
        if self.jsonl is not None:
            try:
                self.jsonl.append(clean)
            except OSError:
                pass  # the database has it; a full disk is reported by the journal's status
        return clean


__all__ = ["AuditTee", "JSONL_MIGRATED", "JournalRecorder", "MAX_PENDING_EVENTS", "Retention",
           "action_event", "os_user"]

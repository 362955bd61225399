"""The engine's side of the journal: which database, the audit sink, the status line, the seed.

Kept out of `console.engine` so the engine only calls a few functions: it builds a recorder
when the settings ask for a journal (`make_recorder`), hands it each frame, adds the recorder's
"journal paused" line to the frames it publishes (`with_journal_status`), and at start seeds
the plots with the last day of minute figures the journal holds (`seed_history`), before any
Prometheus backfill, which then only fills what the journal lacks. No Qt here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from console.config import ClusterSettings, Settings
from console.journal import Journal, default_path as default_jsonl_path
from console.journal_recorder import AuditTee, JournalRecorder, Retention
from console.journal_store import JournalStore, JournalUnavailable, data_folder, database_path
from console.model import Frame, HistorySeed

log = logging.getLogger(__name__)

#: Series of the state's history that the journal's cluster minutes can seed.
SEEDED_SERIES = ("delivered_pf", "installed_pf", "available_pf", "allocated_pf", "busy_pf",
                 "jobs_running", "jobs_pending", "gpus_pending")
SEED_HOURS = 24.0


class Seedable(Protocol):
    def seed_history(self, seed: HistorySeed, now: float) -> None: ...


def journal_path(settings: Settings, cluster: ClusterSettings) -> Path | None:
    """The cluster's database, or None when the settings ask for no journal."""
    js = getattr(settings, "journal", None)
    if js is None or not js.enabled:
        return None
    return database_path(cluster.name, js.folder or None)


def make_recorder(settings: Settings, cluster: ClusterSettings) -> JournalRecorder | None:
    path = journal_path(settings, cluster)
    if path is None:
        return None
    js = settings.journal
    assert js is not None
    jsonl = data_folder(js.folder or None) / default_jsonl_path().name
    users = {"slurm": cluster.slurm.user} if cluster.slurm is not None and cluster.slurm.user else {}
    return JournalRecorder(path, retention=Retention(js.events_days, js.aggregates_days),
                           jsonl=jsonl, endpoint_users=users)


def audit_sink(recorder: JournalRecorder | None) -> Any:
    """What `Actions` journals into: the database and the JSON-lines file beside it (the one
    migrated at first start), or, without a journal, only the usual JSON-lines file."""
    if recorder is None:
        return Journal(default_jsonl_path())
    return AuditTee(recorder, Journal(recorder.jsonl) if recorder.jsonl is not None else None)


def with_journal_status(frame: Frame, recorder: JournalRecorder | None) -> Frame:
    """``frame`` with a "journal" source line while the journal is paused (else unchanged)."""
    if recorder is None:
        return frame
    line = recorder.source_status(frame.time)
    if line is None:
        return frame
    return dataclasses.replace(frame, sources=(*frame.sources, line))


def history_seed(path: Path, now: float, hours: float = SEED_HOURS) -> HistorySeed | None:
    """The last ``hours`` of the journal's cluster minutes as a history seed (None if none)."""
    try:
        with JournalStore(path, readonly=True) as store:
            t, series = store.cluster_series(now - hours * 3600.0, now, SEEDED_SERIES)
    except (JournalUnavailable, Exception) as exc:  # noqa: BLE001 - a seed is a nicety
        log.info("no history from the journal: %s", getattr(exc, "words", exc))
        return None
    if not len(t):
        return None
    return HistorySeed(series={k: (t, v.astype(np.float32)) for k, v in series.items()},
                       step_s=60.0)


def seed_history(state: Seedable, recorder: JournalRecorder | None,
                 now: float | None = None) -> int:
    """Seed the state's plots from the journal (engine thread, before the first frame);
    returns the minutes seeded."""
    if recorder is None:
        return 0
    now = time.time() if now is None else now
    seed = history_seed(recorder.path, now)
    if seed is None:
        return 0
    try:
        state.seed_history(seed, now)
    except Exception:  # noqa: BLE001 - the live picture matters more than the past one
        log.exception("seeding the history from the journal failed")
        return 0
    return len(next(iter(seed.series.values()))[0])


__all__ = ["SEEDED_SERIES", "audit_sink", "history_seed", "journal_path", "make_recorder",
           "seed_history", "with_journal_status"]

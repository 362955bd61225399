"""What the console itself saw of each job, frame by frame: the observed half of accounting.

Slurm's accounting knows who held which GPUs and for how long, not whether they computed.
The console does, while it runs: each frame joins the jobs' GPUs with telemetry. This ledger
keeps, per job, the observed GPU-seconds, delivered and peak TFLOP-seconds and idle GPU-seconds,
so a period's PF-hours, efficiency and idle GPU-hours can be computed for the part of a job the
console watched. Fed from the engine's thread (one vectorised pass per frame); read by the
accounting thread, hence the lock. Bounded: jobs unseen for `KEEP_S` are dropped.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from console.accounting.table import JobObservation
from console.model import Frame

log = logging.getLogger(__name__)

#: A gap between frames longer than this is not attributed (the console was not watching).
MAX_STEP_S = 120.0
#: Jobs not seen for this long are forgotten (two months: a statement's month and the last).
KEEP_S = 62 * 24 * 3600.0
MAX_JOBS = 200_000


@dataclass
class _Acc:
    first: float
    last: float
    gpu_s: float = 0.0
    delivered: float = 0.0  # TFLOP-seconds
    peak: float = 0.0
    idle_s: float = 0.0


class ObservationLedger:
    """Per-job observed totals over the console's own frames."""

    def __init__(self, busy_threshold_pct: float = 5.0) -> None:
        self.busy_threshold_pct = busy_threshold_pct
        self._jobs: dict[str, _Acc] = {}
        self._last_t: float | None = None
        self._lock = threading.Lock()

    def observe(self, frame: Frame) -> None:
        """Add one frame: each allocated GPU with fresh telemetry counts for the time since the
        previous frame (on the data's clock), split between its job's totals."""
        t = frame.data_now or frame.time
        last, self._last_t = self._last_t, t
        if last is None or frame.is_stale("telemetry") or frame.is_stale("scheduler"):
            return
        dt = t - last
        if not 0 < dt <= MAX_STEP_S:
            return
        g = frame.gpu
        rows = g.job_row
        seen = (rows >= 0) & np.isfinite(g.delivered_tflops)
        if not seen.any():
            return
        r = rows[seen]
        n = len(frame.jobs)
        gpus = np.bincount(r, minlength=n)
        delivered = np.bincount(r, weights=g.delivered_tflops[seen].astype(np.float64), minlength=n)
        peak = np.bincount(r, weights=frame.topology.gpu_peak_tflops[seen].astype(np.float64),
                           minlength=n)
        idle_gpu = (g.util[seen] < self.busy_threshold_pct)
        idle = np.bincount(r, weights=idle_gpu.astype(np.float64), minlength=n)
        hit = np.flatnonzero(gpus)
        ids = frame.jobs.job_id[hit].tolist()
        with self._lock:
            for k, jid in zip(hit.tolist(), ids):
                key = str(jid)
                acc = self._jobs.get(key)
                if acc is None:
                    acc = self._jobs[key] = _Acc(last, t)
                acc.last = t
                acc.gpu_s += float(gpus[k]) * dt
                acc.delivered += float(delivered[k]) * dt
                acc.peak += float(peak[k]) * dt
                acc.idle_s += float(idle[k]) * dt
            self._prune(t)

    def _prune(self, now: float) -> None:
        if len(self._jobs) <= MAX_JOBS and len(self._jobs) % 1000:
            return
        old = [k for k, a in self._jobs.items() if now - a.last > KEEP_S]
        for k in old:
            del self._jobs[k]
        while len(self._jobs) > MAX_JOBS:
            del self._jobs[min(self._jobs, key=lambda k: self._jobs[k].last)]

    def observations(self) -> dict[str, JobObservation]:
        """Each seen job's averages per observed GPU-second (a copy; safe from any thread)."""
        with self._lock:
            return {k: JobObservation(k, a.first, a.last, a.delivered / a.gpu_s, a.peak / a.gpu_s,
                                      a.idle_s / a.gpu_s)
                    for k, a in self._jobs.items() if a.gpu_s > 0}

    def __len__(self) -> int:
        return len(self._jobs)

    # -- kept across restarts (a live site's statements are written later, by the command line)
    def save(self, path: Path) -> None:
        """Write the ledger atomically (a half-written file never replaces a good one)."""
        with self._lock:
            items = list(self._jobs.items())
        arr = np.array([(a.first, a.last, a.gpu_s, a.delivered, a.peak, a.idle_s) for _, a in items],
                       np.float64).reshape(-1, 6)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.array([k for k, _ in items], np.str_), acc=arr)
        os.replace(tmp, path)

    def load(self, path: Path) -> int:
        """Merge a saved ledger in (jobs already seen here keep their own totals); returns the
        jobs added. A missing or unreadable file adds nothing: observations are an extra."""
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, acc = z["ids"], z["acc"]
        except (OSError, ValueError, KeyError) as exc:
            if path.exists():
                log.warning("observations in %s not read: %s", path, exc)
            return 0
        added = 0
        with self._lock:
            for k, row in zip(ids.tolist(), acc.tolist()):
                if k not in self._jobs and len(row) == 6:
                    self._jobs[k] = _Acc(*row)
                    added += 1
        return added


def observations_path(cluster: str) -> Path:
    """Where a cluster's observations are kept: beside the console's journal."""
    from console.journal import default_path

    slug = "".join(ch if ch.isalnum() else "-" for ch in cluster.lower()).strip("-") or "cluster"
    return default_path().parent / f"observations-{slug}.npz"

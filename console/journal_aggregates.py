"""One-minute aggregates of the main figures, for plots after a restart and ``status --at``.

Cluster figures are the mean of the minute's known values (NULL when none was known: unknown
is never 0), filed at the minute's centre like the history's coarse tier, so a restart can seed
the plots with exactly what they showed. Partition, tenant and node figures are the minute's
last frame (a snapshot "as it was"), computed once per minute to keep the per-poll cost low.
No Qt, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from console.journal_events import event_time
from console.journal_store import CLUSTER_FIGURES, NodeMinute
from console.model import ACTIVE_JOB_STATES, Frame, JobState

STEP_S = 60.0
_ACTIVE = np.array(sorted(ACTIVE_JOB_STATES), np.int8)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


class MinuteAggregator:
    """Feed frames in order; `feed` returns the finished minutes' rows when a minute ends."""

    def __init__(self, step_s: float = STEP_S) -> None:
        self.step_s = step_s
        self._bucket: float | None = None
        self._sum = np.zeros(len(CLUSTER_FIGURES), np.float64)
        self._count = np.zeros(len(CLUSTER_FIGURES), np.int64)
        self._last: Frame | None = None

    def feed(self, frame: Frame) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[NodeMinute]]:
        t = event_time(frame)
        bucket = math.floor(t / self.step_s) * self.step_s
        done: tuple[list[dict[str, Any]], list[dict[str, Any]], list[NodeMinute]] = ([], [], [])
        if self._bucket is not None and bucket != self._bucket:
            if bucket < self._bucket:
                return done  # time went backwards (a clock step): ignore until it catches up
            done = self.flush()
        self._bucket = bucket
        k = frame.kpis
        for i, name in enumerate(CLUSTER_FIGURES):
            v = _num(getattr(k, name))
            if v is not None:
                self._sum[i] += v
                self._count[i] += 1
        self._last = frame
        return done

    def flush(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[NodeMinute]]:
        """The current minute's rows (cluster, groups, nodes), and start afresh."""
        frame, bucket = self._last, self._bucket
        if frame is None or bucket is None:
            return [], [], []
        t = bucket + self.step_s / 2
        row: dict[str, Any] = {"t": t}
        for i, name in enumerate(CLUSTER_FIGURES):
            row[name] = self._sum[i] / self._count[i] if self._count[i] else None
        k = frame.kpis
        row["detail"] = {"nodes_by_state": None if k.nodes_by_state is None else dict(k.nodes_by_state),
                         "gpus_by_health": None if k.gpus_by_health is None else dict(k.gpus_by_health),
                         "alerts_by_severity": (None if k.alerts_by_severity is None
                                                else dict(k.alerts_by_severity)),
                         "precision": k.precision, "samples": int(self._count.max(initial=0))}
        self._sum[:] = 0
        self._count[:] = 0
        self._last = None
        return [row], group_rows(frame, t), [node_minute(frame, t)]


def group_rows(frame: Frame, t: float) -> list[dict[str, Any]]:
    """Per tenant and per partition: GPUs in use, delivered PF, jobs running and pending,
    GPUs pending. None where the data behind a figure is unknown."""
    k = frame.kpis
    sched = k.jobs_running is not None
    tel = k.delivered_pf is not None
    rows: list[dict[str, Any]] = []
    tt = frame.tenants
    for i, account in enumerate(tt.account):
        rows.append({"level": "tenant", "key": account, "t": t,
                     "gpus_in_use": float(tt.gpus_in_use[i]) if sched else None,
                     "delivered_pf": _num(tt.delivered_pf[i]) if sched and tel else None,
                     "jobs_running": float(tt.jobs_running[i]) if sched else None,
                     "jobs_pending": float(tt.jobs_pending[i]) if sched else None,
                     "gpus_pending": float(tt.gpus_pending[i]) if sched else None})
    jobs = frame.jobs
    if not sched or not len(jobs.partitions):
        return rows
    n = len(jobs.partitions)
    part = np.asarray(jobs.partition, np.int64)
    running = np.isin(jobs.state, _ACTIVE)
    pending = np.asarray(jobs.state) == JobState.PENDING
    job_row = np.asarray(frame.gpu.job_row)
    has = job_row >= 0
    gpu_part = part[job_row[has]] if len(part) else np.zeros(0, np.int64)
    in_use = np.bincount(gpu_part, minlength=n)[:n]
    delivered = np.bincount(gpu_part, weights=np.asarray(frame.gpu.delivered_tflops, np.float64)[has],
                            minlength=n)[:n] / 1000.0
    jr = np.bincount(part[running], minlength=n)[:n]
    jp = np.bincount(part[pending], minlength=n)[:n]
    gp = np.bincount(part[pending], weights=np.asarray(jobs.gpus, np.float64)[pending], minlength=n)[:n]
    for i, name in enumerate(jobs.partitions):
        rows.append({"level": "partition", "key": name, "t": t, "gpus_in_use": float(in_use[i]),
                     "delivered_pf": _num(delivered[i]) if tel else None,
                     "jobs_running": float(jr[i]), "jobs_pending": float(jp[i]),
                     "gpus_pending": float(gp[i])})
    return rows


def node_minute(frame: Frame, t: float) -> NodeMinute:
    """Per node: Slurm state (-1 unknown), health, mean utilisation, hottest GPU, power and
    delivered TFLOPS of its real GPUs (NaN when it reported none)."""
    topo = frame.topology
    n, gpn = topo.n_nodes, max(topo.gpus_per_node, 1)
    exists = topo.gpu_exists().reshape(n, gpn) if n else np.zeros((0, gpn), bool)

    def per_node(values: np.ndarray, how: str) -> np.ndarray:
        v = np.asarray(values, np.float32).reshape(n, gpn).copy() if n else np.zeros((0, gpn), np.float32)
        v[~exists] = np.nan
        has = np.isfinite(v).any(axis=1)
        out = np.full(n, np.nan, np.float32)
        if has.any():
            with np.errstate(invalid="ignore"):
                if how == "mean":
                    out[has] = np.nanmean(v[has], axis=1)
                elif how == "max":
                    out[has] = np.nanmax(v[has], axis=1)
                else:
                    out[has] = np.nansum(v[has], axis=1)
        return out

    sched_known = frame.kpis.nodes_by_state is not None
    state = (np.asarray(frame.nodes.state, np.int8).copy() if sched_known
             else np.full(n, -1, np.int8))
    arrays: Mapping[str, np.ndarray] = {
        "state": state, "health": np.asarray(frame.node_health, np.int8),
        "util": per_node(frame.gpu.util, "mean"), "temp": per_node(frame.gpu.temp, "max"),
        "power": per_node(frame.gpu.power, "sum"),
        "delivered_tflops": per_node(frame.gpu.delivered_tflops, "sum")}
    return NodeMinute(t, topo.node_names, arrays)


__all__ = ["MinuteAggregator", "STEP_S", "group_rows", "node_minute"]

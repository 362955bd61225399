"""Columnar job store for the simulator: one numpy column per attribute, rows are slots.

Jobs are added and ended one event at a time (a Python loop per event is fine), but the
snapshot the console polls (`JobTable`) must be built with whole-column numpy gathers so
that 50,000 jobs cost milliseconds, not a Python loop per row.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from console.model import JobState, JobTable

#: Pending and end reasons the simulator uses; JobTable.reason indexes into this tuple.
REASONS: tuple[str, ...] = (
    "None", "Priority", "Resources", "AssocGrpGRES", "QOSMaxGRESPerUser", "Dependency",
    "JobHeldUser", "NonZeroExitCode", "TimeLimit", "NodeDown", "DependencyNeverSatisfied",
)
R = {name: i for i, name in enumerate(REASONS)}

KIND_TRAIN, KIND_INFER, KIND_DEBUG = 0, 1, 2

_COLUMNS: dict[str, tuple[type | str, object]] = {
    "live": (bool, False),
    "job_id": (np.int64, 0),
    "array_job_id": (np.int64, 0),
    "array_task_id": (np.int32, -1),
    "name": ("U40", ""),
    "user": ("U24", ""),
    "account": (np.int32, 0),
    "partition": (np.int32, 0),
    "state": (np.int8, int(JobState.PENDING)),
    "reason": (np.int32, 0),
    "gpus": (np.int32, 0),
    "nodes": (np.int32, 0),
    "submit": (np.float64, np.nan),
    "start": (np.float64, np.nan),
    "end": (np.float64, np.nan),
    "limit": (np.float64, np.inf),
    "exit": (np.int32, -1),
    "runtime": (np.float64, 0.0),  # planned run duration (hidden truth)
    "outcome": (np.int8, int(JobState.COMPLETED)),  # planned end state
    "eff": (np.float32, 0.0),  # tensor activity while computing
    "util": (np.float32, 0.0),  # GPU_UTIL while computing
    "mem": (np.float32, 0.0),  # share of framebuffer used
    "kind": (np.int8, KIND_TRAIN),
    "dep": (np.int64, 0),  # job id this one waits for (afterok), 0 none
    "hold_until": (np.float64, np.nan),
    "hung": (bool, False),
    "ckpt": (np.float32, 3600.0),  # checkpoint period in seconds
    "prio": (np.float64, 0.0),
    "surge": (np.int32, -1),  # fault id of the queue surge that made it, -1 none
}


class JobStore:
    """Slots of job rows. Not thread-safe: the owning SimCluster holds the lock."""

    def __init__(self, capacity: int = 1024, keep_finished: int = 500) -> None:
        self.cap = capacity
        self.c: dict[str, np.ndarray] = {}
        for key, (dtype, default) in _COLUMNS.items():
            self.c[key] = np.full(capacity, default, dtype=dtype)
        self.node_list: list[str] = [""] * capacity
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self.finished: deque[int] = deque()
        self.keep_finished = keep_finished
        self.by_id: dict[int, int] = {}

    # -- rows ---------------------------------------------------------------------------------
    def _grow(self) -> None:
        old = self.cap
        self.cap = old * 2
        for key, (dtype, default) in _COLUMNS.items():
            col = np.full(self.cap, default, dtype=dtype)
            col[:old] = self.c[key]
            self.c[key] = col
        self.node_list.extend([""] * old)
        self._free.extend(range(self.cap - 1, old - 1, -1))

    def add(self, **values: object) -> int:
        if not self._free:
            self._grow()
        slot = self._free.pop()
        for key, (_dtype, default) in _COLUMNS.items():
            self.c[key][slot] = values.get(key, default)  # type: ignore[index]
        self.c["live"][slot] = True
        self.node_list[slot] = ""
        self.by_id[int(self.c["job_id"][slot])] = slot
        return slot

    def finish(self, slot: int) -> None:
        """Move a job to the bounded tail of finished jobs, dropping the oldest beyond it."""
        self.finished.append(slot)
        while len(self.finished) > self.keep_finished:
            old = self.finished.popleft()
            self.c["live"][old] = False
            self.by_id.pop(int(self.c["job_id"][old]), None)
            self.node_list[old] = ""
            self._free.append(old)

    def slot_of(self, job_id: int) -> int | None:
        return self.by_id.get(int(job_id))

    def slots_in_state(self, state: JobState) -> np.ndarray:
        c = self.c
        return np.flatnonzero(c["live"] & (c["state"] == int(state)))

    # -- snapshot -----------------------------------------------------------------------------
    def table(self, accounts: tuple[str, ...], partitions: tuple[str, ...],
              gpu_job: np.ndarray, node_names: tuple[str, ...]) -> JobTable:
        """Build the columnar JobTable by gathering live slots, ordered by job id.

        ``gpu_job`` (int32[nodes, gpus], slot or -1) is the single source of truth for who
        holds which GPU, so the allocation coordinate list is derived from it directly.
        """
        c = self.c
        slots = np.flatnonzero(c["live"])
        slots = slots[np.argsort(c["job_id"][slots], kind="stable")]
        n = len(slots)
        row_of = np.full(self.cap, -1, np.int32)
        row_of[slots] = np.arange(n, dtype=np.int32)
        nodes_idx, gpu_idx = np.nonzero(gpu_job >= 0)
        alloc_job = row_of[gpu_job[nodes_idx, gpu_idx]]
        state = c["state"][slots]
        running = np.isin(state, (int(JobState.RUNNING), int(JobState.COMPLETING)))
        end = np.where(running, c["start"][slots] + c["limit"][slots], c["end"][slots])
        # object, not fixed-width: the longest hostlist (a job on scattered nodes) would set
        # every row's width, and fragmentation makes it grow all day (bench_soak.py)
        node_list = np.empty(n, dtype=object)
        node_list[:] = [self.node_list[s] for s in slots]
        return JobTable(
            job_id=c["job_id"][slots].copy(),
            array_job_id=c["array_job_id"][slots].copy(),
            array_task_id=c["array_task_id"][slots].copy(),
            name=c["name"][slots].copy(),
            user=c["user"][slots].copy(),
            account=c["account"][slots].copy(), accounts=accounts,
            partition=c["partition"][slots].copy(), partitions=partitions,
            state=state.copy(),
            reason=c["reason"][slots].copy(), reasons=REASONS,
            gpus=c["gpus"][slots].copy(),
            nodes=c["nodes"][slots].copy(),
            submit_time=c["submit"][slots].copy(),
            start_time=c["start"][slots].copy(),
            end_time=end,
            time_limit_s=c["limit"][slots].copy(),
            exit_code=c["exit"][slots].copy(),
            node_list=node_list,
            alloc_job=alloc_job.astype(np.int32),
            alloc_node=nodes_idx.astype(np.int32),
            alloc_gpu=gpu_idx.astype(np.int16),
            alloc_node_names=node_names,
        )

"""The simulator's job table stays as large as its jobs, however long the day (bench_soak.py)."""

from __future__ import annotations

import numpy as np

from console.sim import SimCluster, SimConfig


def test_node_lists_are_objects_so_the_longest_does_not_size_every_row() -> None:
    c = SimCluster(SimConfig(seed=3, nodes=64, t0=1_800_000_000.0, faults="none", tick_s=10.0))
    c.step(600.0)
    jobs = c.job_table()
    assert jobs.node_list.dtype == object and len(jobs.node_list) == len(jobs.job_id)
    assert all(type(x) is str for x in jobs.node_list)
    running = np.flatnonzero(jobs.start_time == jobs.start_time)  # started: a hostlist
    assert running.size and all(jobs.node_list[r] for r in running)

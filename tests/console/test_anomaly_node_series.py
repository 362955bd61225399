"""Each node judged against itself: a node whose power or temperature moves while its jobs stay
the same is found and ends by itself; a job changing, a checkpoint dip and noise are not."""

from __future__ import annotations

import numpy as np

from console.analytics.anomaly import AnomalyDetector
from console.analytics.anomaly_frames import FrameBuilder

T0 = 1_700_000_000.0
DT = 15.0


def node_changes(anomalies) -> set[tuple[str, str]]:
    return {(a.subject.key, a.evidence.split()[1]) for a in anomalies
            if a.kind == "series_change" and a.subject.level == "node" and a.ended_at is None}


def run(b: FrameBuilder, ticks: int, edit, seed: int = 31) -> list[set[tuple[str, str]]]:
    """Step the whole detector; ``edit(i, b)`` changes the builder before tick ``i``."""
    det = AnomalyDetector()
    rng = np.random.default_rng(seed)
    base_p, base_t = b.power.copy(), b.temp.copy()
    out = []
    for i in range(ticks):
        b.power = (base_p + rng.normal(0, 5, base_p.size)).astype(np.float32)
        b.temp = (base_t + rng.normal(0, 0.7, base_t.size)).astype(np.float32)
        edit(i, b)
        anomalies, _ = det.step(b.build(T0 + i * DT))
        out.append(node_changes(anomalies))
    return out


def test_power_halving_under_the_same_job_is_found_and_ends_when_it_recovers() -> None:
    b = FrameBuilder(nodes=8)
    b.one_job_per_node(start=T0 - 7200)
    gpus = [b.gpu(3, i) for i in range(8)]

    def edit(i: int, b: FrameBuilder) -> None:
        if 400 <= i < 480:  # 20 minutes at half power, same job
            b.power[gpus] *= 0.5

    seen = run(b, 560, edit)
    hits = [i for i, s in enumerate(seen) if s]
    assert hits, "the halved node was not found"
    assert all(s <= {("n0004", "draws")} for s in seen)
    # Opened after the 5-minute confirmation (20 polls of 15 s) and not before the change.
    assert 400 + 20 <= hits[0] <= 400 + 22
    assert max(hits) <= 481  # ends within the tracker's two quiet polls


def test_hotter_gpus_at_the_same_work_are_found() -> None:
    b = FrameBuilder(nodes=8)
    b.one_job_per_node(start=T0 - 7200)
    gpus = [b.gpu(5, i) for i in range(8)]

    def edit(i: int, b: FrameBuilder) -> None:
        if i >= 400:
            b.temp[gpus] += 15.0

    seen = run(b, 460, edit)
    hits = [i for i, s in enumerate(seen) if s]
    assert hits and hits[0] >= 400 and all(s <= {("n0006", "GPUs")} for s in seen)


def test_a_new_job_a_checkpoint_dip_and_noise_raise_nothing() -> None:
    b = FrameBuilder(nodes=8)
    b.one_job_per_node(start=T0 - 7200)
    g2 = [b.gpu(2, i) for i in range(8)]
    g6 = [b.gpu(6, i) for i in range(8)]

    def edit(i: int, b: FrameBuilder) -> None:
        if i == 300:  # node 3's job ends and a lighter one starts: a new baseline, not a change
            del b.jobs[1002]
            b.jobs[5000] = ("beta", g2, T0 + i * DT)
        if i >= 300:
            b.power[g2] *= 0.4
        if 200 <= i < 206:  # a 90-second checkpoint write on node 7
            b.power[g6] *= 0.3

    seen = run(b, 700, edit)
    assert not any(seen)


def test_without_the_job_reset_the_new_job_would_be_flagged() -> None:
    # The same power drop as above with the job left unchanged: proves the quiet above comes
    # from restarting the baseline on a job change, not from a detector that cannot fire.
    b = FrameBuilder(nodes=8)
    b.one_job_per_node(start=T0 - 7200)
    g2 = [b.gpu(2, i) for i in range(8)]

    def edit(i: int, b: FrameBuilder) -> None:
        if i >= 300:
            b.power[g2] *= 0.4

    seen = run(b, 400, edit)
    assert any(("n0003", "draws") in s for s in seen)

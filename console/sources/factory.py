"""Build the sources of one configured cluster: the simulator, or the live endpoints.

The only place that turns settings + secrets into source objects, so the engine, the headless
commands and the tests all get identical sources for identical settings.
"""

from __future__ import annotations

from console.config import ClusterSettings
from console.sources.base import Source


def build_sources(cluster: ClusterSettings, *, secrets: object | None = None) -> list[Source]:
    sources: list[Source] = []
    if cluster.sim is not None:
        from console.sim.config import SimConfig
        from console.sim.source import SimulatedSource

        sim = cluster.sim
        # One poll advances the simulation by interval x speed, so speed 1 is real time.
        config = SimConfig(seed=sim.seed, nodes=sim.nodes, speed=sim.speed, faults=sim.faults,
                           tick_s=sim.interval_s, gpu_model=cluster.gpu_model,
                           cluster_name=cluster.name)
        sources.append(SimulatedSource(config, interval_s=sim.interval_s))
    if cluster.prometheus or cluster.alertmanager or cluster.slurm:
        from console.sources.live import build_live_sources

        sources.extend(build_live_sources(cluster, secrets=secrets))
    return sources

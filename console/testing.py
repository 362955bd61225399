"""Real frames for tests and benchmarks, built from the simulator through the real pipeline.

Synchronous (no poller threads, no waiting), seeded and therefore reproducible; no Qt.
"""

from __future__ import annotations

from console.config import demo_settings
from console.model import Frame


def engine_from_sim(nodes: int = 16, seed: int = 1, faults: str = "none", speed: float = 1.0,
                    detect: bool = False):
    from console.engine import Engine

    return Engine(demo_settings(seed=seed, nodes=nodes, speed=speed, faults=faults), detect=detect)


def frame_from_sim(nodes: int = 16, seed: int = 1, polls: int = 3, faults: str = "none",
                   speed: float = 1.0, detect: bool = False) -> Frame:
    """A frame after ``polls`` simulator polls of a ``nodes``-node cluster."""
    from console.engine import run_sync

    return run_sync(engine_from_sim(nodes, seed, faults, speed, detect), polls)

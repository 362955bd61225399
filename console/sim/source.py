"""`SimulatedSource`: the simulated cluster behind the same `Source` interface as the real
Prometheus, Alertmanager and Slurm clients, so the whole pipeline runs unchanged on it."""

from __future__ import annotations

import time as _time

from console.model import Update
from console.sim.cluster import SimCluster
from console.sim.config import SimConfig
from console.sources.base import ErrorKind, SourceError


class SimulatedSource:
    """Each `fetch()` advances the simulation by ``tick_s * speed`` simulated seconds.

    Lives in one poller worker thread; operator actions go to ``source.cluster``, which is
    locked, so they may come from any thread.
    """

    name = "simulator"
    kind = "simulator"

    def __init__(self, config: SimConfig | None = None, *, interval_s: float = 2.0,
                 cluster: SimCluster | None = None) -> None:
        cfg = config or SimConfig()
        self.cluster = cluster if cluster is not None else SimCluster(cfg, t0=_time.time())
        self.config = self.cluster.config
        self.interval_s = float(interval_s)
        self._first = True

    def fetch(self) -> list[Update]:
        """The first fetch reports the starting state; each later one advances time first."""
        try:
            if not self._first:
                self.cluster.step(self.config.tick_s * self.config.speed)
            self._first = False
            return self.cluster.updates()
        except Exception as exc:  # a bug of ours: shown as a source error, never a crash
            raise SourceError(ErrorKind.INTERNAL, f"simulator failed: {type(exc).__name__}: {exc}") from exc

    def topology_hints(self) -> dict[str, str]:
        """Rack of each node, for sources that cannot tell (the state uses it for layout)."""
        c = self.cluster
        return {name: c.rack_names[r] for name, r in zip(c.node_names, c.node_rack)}

    def close(self) -> None:
        """Nothing to release: the simulation lives in memory."""

"""Node-level detectors: node down, exporter silent while Slurm sees the node, flapping.

A node the scheduler marks DOWN/FAIL or NOT_RESPONDING is down (a fact, opens at once).
An exporter that went silent while Slurm still shows the node up and responding is a
monitoring fault, not a node fault: the jobs may be fine, the console is blind there. When most
exporters vanish at once that is the telemetry source failing, which the source status already
shows, so no per-node anomaly is raised then.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from console.analytics.detectors.base import Finding
from console.analytics.detectors.context import FrameContext
from console.model import AVAILABLE_NODE_STATES, NodeState, Severity

_DOWN_STATES = np.array([int(NodeState.DOWN), int(NodeState.FAIL)])
_UP_STATES = np.array(sorted(int(s) for s in AVAILABLE_NODE_STATES))


@dataclass(frozen=True)
class NodeSettings:
    silent_max_share: float = 0.5  # more silent nodes than this = the source failed, not nodes
    flap_window_s: float = 1800.0
    flap_changes: int = 4  # up/down transitions in the window that make a node "flapping"


class NodeDetectors:
    def __init__(self, settings: NodeSettings | None = None) -> None:
        self.s = settings or NodeSettings()
        self._names: tuple[str, ...] | None = None
        self._prev = np.zeros(0, bool)
        self._changes: dict[str, deque[float]] = {}

    def run(self, ctx: FrameContext) -> list[Finding]:
        if not ctx.scheduler_ok:
            return []
        nodes = ctx.frame.nodes
        names = ctx.topo.node_names
        state = np.asarray(nodes.state, np.int64)
        responding = np.asarray(nodes.responding, bool)
        out: list[Finding] = []
        down = np.isin(state, _DOWN_STATES) | ~responding
        for n in np.flatnonzero(down):
            st = NodeState(int(state[n])).name if int(state[n]) in NodeState._value2member_map_ else str(state[n])
            why = nodes.reason[n] if n < len(nodes.reason) and nodes.reason[n] else ""
            words = f"Slurm shows {names[n]} {st}" + ("" if responding[n] else ", NOT_RESPONDING")
            out.append(ctx.node_finding("node_down", int(n), 1.0, words + (f" ({why})" if why else ""),
                                        severity=Severity.CRITICAL, confirm=1))
        up = np.isin(state, _UP_STATES) & responding
        out += self._silent(ctx, up)
        out += self._flapping(ctx, up)
        return out

    def _silent(self, ctx: FrameContext, up: np.ndarray) -> list[Finding]:
        if ctx.frame.data_time.get("telemetry") is None or ctx.n_gpus == 0:
            return []
        util = np.asarray(ctx.frame.gpu.util, np.float64).reshape(ctx.n_nodes, ctx.gpn)
        temp = np.asarray(ctx.frame.gpu.temp, np.float64).reshape(ctx.n_nodes, ctx.gpn)
        exists = ctx.exists.reshape(ctx.n_nodes, ctx.gpn)
        has_gpus = exists.any(axis=1)
        seen = (np.isfinite(util) | np.isfinite(temp)) & exists
        silent = has_gpus & ~seen.any(axis=1)
        if silent.sum() > self.s.silent_max_share * max(int(has_gpus.sum()), 1):
            return []
        out = []
        for n in np.flatnonzero(silent & up):
            out.append(ctx.node_finding(
                "exporter_silent", int(n), 0.8,
                f"no GPU telemetry from {ctx.topo.node_names[n]} while Slurm shows it up and responding",
                severity=Severity.WARNING, confirm=1))
        return out

    def _flapping(self, ctx: FrameContext, up: np.ndarray) -> list[Finding]:
        names = ctx.topo.node_names
        if names != self._names:
            old = dict(zip(self._names or (), self._prev.tolist()))
            prev = np.array([old.get(n, bool(u)) for n, u in zip(names, up)], bool)
            self._names = names
        else:
            prev = self._prev
        self._prev = up.copy()
        now = ctx.now
        for n in np.flatnonzero(prev != up):
            self._changes.setdefault(names[n], deque()).append(now)
        out = []
        horizon = now - self.s.flap_window_s
        idx = None
        for name in list(self._changes):
            q = self._changes[name]
            while q and q[0] < horizon:
                q.popleft()
            if not q:
                del self._changes[name]
                continue
            if len(q) >= self.s.flap_changes:
                idx = idx or ctx.topo.node_index()
                if name in idx:
                    out.append(ctx.node_finding(
                        "node_flap", idx[name], min(1.0, len(q) / (2 * self.s.flap_changes)),
                        f"{name} changed between up and down {len(q)} times in the last "
                        f"{self.s.flap_window_s / 60:.0f} min", confirm=1))
        return out

"""GPU and node health: the worst of scheduler state, reachability, XID, ECC, thermal, throttle
and power capping.

Vectorised over all GPUs (a 32,768-GPU frame costs well under a millisecond here), plus
`explain`, which gives the evidence behind one GPU's health in words for tooltips and
drill-downs, computed on demand rather than stored per GPU per frame.
"""

from __future__ import annotations

import numpy as np

from console.model import Frame, Health, NodeState, Topology
from console.peaks import board_power_w

#: XIDs that take a GPU out of service (NVSentinel FATAL / DCGM "devastating", FACTS.md 4.1).
FATAL_XIDS = np.array([48, 61, 62, 64, 74, 79, 95, 109, 119, 120, 136, 140, 143, 158], np.float32)
TEMP_WARN_C = 85.0
#: Throttle reasons that are alarms rather than normal behaviour under load (FACTS.md 4.4).
THROTTLE_ALARM_BITS = 0x8 | 0x40 | 0x80
#: An enforced power limit below this share of the board power is a cap someone set (a PDU
#: budget, a power brake, nvidia-smi -pl); drivers and firmware jitter the limit by a few watts.
POWER_CAP_FRACTION = 0.95

_FAILED_NODE = np.array([NodeState.DOWN, NodeState.FAIL], np.int8)
_OUT_OF_SERVICE_NODE = np.array([NodeState.DRAINED, NodeState.MAINT, NodeState.INVAL,
                                 NodeState.FUTURE, NodeState.POWERED_DOWN], np.int8)
#: Display rank for "worst of": failed > degraded > no data > out of service > OK.
_RANK = np.array([0, 3, 4, 1, 2], np.int8)  # indexed by Health code
_BY_RANK = np.array([Health.OK, Health.UNAVAILABLE, Health.NO_DATA, Health.DEGRADED,
                     Health.FAILED], np.int8)


_board_cache: tuple[Topology, np.ndarray] | None = None


def gpu_board_power_w(topology: Topology) -> np.ndarray:
    """float32[n_gpus] board power of each GPU's model (NaN for unknown models or empty slots).

    Cached for the last topology seen: it only changes when the topology does, and both the
    state and the detectors ask for it on every frame.
    """
    global _board_cache
    cache = _board_cache
    if cache is not None and cache[0] is topology:
        return cache[1]
    per_model = {m: board_power_w(m) for m in set(topology.node_model)}
    out = np.repeat(np.array([per_model[m] for m in topology.node_model], np.float32),
                    topology.gpus_per_node)
    if out.size:
        out[~topology.gpu_exists()] = np.nan
    _board_cache = (topology, out)
    return out


def power_capped(power_limit: np.ndarray | None, board_power: np.ndarray | None) -> np.ndarray | None:
    """bool mask of GPUs whose enforced limit is below `POWER_CAP_FRACTION` of their board
    power; None when either is unknown for the whole fleet. NaN on either side is "not capped",
    and so is a limit of 0 W or less: no GPU runs on that, it is an exporter's "not supported"."""
    if power_limit is None or board_power is None:
        return None
    limit = np.asarray(power_limit)
    with np.errstate(invalid="ignore"):
        return (limit > 0) & (limit < POWER_CAP_FRACTION * np.asarray(board_power))


def power_limit_known(power_limit: np.ndarray | None, board_power: np.ndarray) -> np.ndarray:
    """bool mask of GPUs whose enforced limit and board power are both real figures, so that
    "not capped" is a fact rather than a lack of data."""
    if power_limit is None:
        return np.zeros(np.shape(board_power), bool)
    limit = np.asarray(power_limit)
    with np.errstate(invalid="ignore"):
        return np.isfinite(limit) & (limit > 0) & np.isfinite(np.asarray(board_power))


def gpu_health(*, util: np.ndarray, temp: np.ndarray, power: np.ndarray, xid: np.ndarray,
               ecc_dbe: np.ndarray, nvlink_crc: np.ndarray, throttle: np.ndarray,
               node_state: np.ndarray, node_responding: np.ndarray, node_known: np.ndarray,
               telemetry_fresh: bool, exists: np.ndarray, gpus_per_node: int,
               power_limit: np.ndarray | None = None,
               board_power: np.ndarray | None = None) -> np.ndarray:
    """int8[n_gpus] Health. Node arrays are per node and broadcast to their GPUs.

    ``power_limit`` (enforced limit, W) and ``board_power`` (per-GPU default, W): a GPU
    capped well below its board power delivers less than it is sold for, so it is degraded
    even when its job draws less than the cap today.
    """
    ns = np.repeat(node_state, gpus_per_node)
    responding = np.repeat(node_responding, gpus_per_node)
    known = np.repeat(node_known, gpus_per_node)
    have = np.isfinite(util) | np.isfinite(temp) | np.isfinite(power)
    if not telemetry_fresh:
        have = np.zeros_like(have)
    with np.errstate(invalid="ignore"):
        thr = np.nan_to_num(throttle, nan=0).astype(np.int64)
        degraded = ((temp >= TEMP_WARN_C) | ((thr & THROTTLE_ALARM_BITS) != 0)
                    | ((xid > 0) & ~np.isin(xid, FATAL_XIDS)) | (nvlink_crc > 0)
                    | (ns == NodeState.DRAINING))
        capped = power_capped(power_limit, board_power)
        if capped is not None:
            degraded |= capped
        failed = (np.isin(xid, FATAL_XIDS) | (ecc_dbe > 0)
                  | (known & (np.isin(ns, _FAILED_NODE) | ~responding)))
    out_of_service = known & np.isin(ns, _OUT_OF_SERVICE_NODE)
    h = np.full(util.shape, Health.OK, np.int8)
    h[degraded & have] = Health.DEGRADED
    h[~have] = Health.NO_DATA
    h[out_of_service] = Health.UNAVAILABLE
    h[failed] = Health.FAILED
    h[~exists] = Health.NO_DATA
    return h


def worst_per_node(health: np.ndarray, gpus_per_node: int, exists: np.ndarray) -> np.ndarray:
    ranks = _RANK[health.astype(np.intp)].reshape(-1, gpus_per_node).copy()
    ranks[~exists.reshape(-1, gpus_per_node)] = 0
    return _BY_RANK[ranks.max(axis=1)] if ranks.size else np.zeros(0, np.int8)


def explain(frame: Frame, g: int) -> list[str]:
    """The evidence behind GPU ``g``'s health, in words, worst first."""
    topo = frame.topology
    node = g // topo.gpus_per_node
    gpu = frame.gpu
    words: list[str] = []
    if node < len(frame.nodes):
        state = NodeState(int(frame.nodes.state[node])).name
        if not bool(frame.nodes.responding[node]):
            words.append("node not responding to Slurm")
        if state in {"DOWN", "FAIL", "DRAINED", "DRAINING", "MAINT"}:
            reason = frame.nodes.reason[node]
            words.append(f"node {state}" + (f": {reason}" if reason else ""))
    xid = float(gpu.xid[g])
    if np.isfinite(xid) and xid > 0:
        words.append(f"XID {int(xid)}" + (" (fatal)" if xid in FATAL_XIDS else ""))
    if np.isfinite(gpu.ecc_dbe[g]) and gpu.ecc_dbe[g] > 0:
        words.append(f"{int(gpu.ecc_dbe[g])} double-bit ECC errors")
    if np.isfinite(gpu.temp[g]) and gpu.temp[g] >= TEMP_WARN_C:
        words.append(f"hot: {gpu.temp[g]:.0f} °C")
    thr = int(np.nan_to_num(gpu.throttle[g]))
    if thr & THROTTLE_ALARM_BITS:
        words.append("clocks throttled (thermal or power brake)")
    limit = np.nan if gpu.power_limit is None else float(gpu.power_limit[g])
    board = float(gpu_board_power_w(topo)[g]) if topo.n_gpus else np.nan
    if np.isfinite(limit) and np.isfinite(board) and 0 < limit < POWER_CAP_FRACTION * board:
        words.append(f"power capped at {limit:.0f} W (board limit {board:.0f} W)")
    if np.isfinite(gpu.nvlink_crc[g]) and gpu.nvlink_crc[g] > 0:
        words.append(f"NVLink CRC errors {gpu.nvlink_crc[g]:.0f}/s")
    if frame.gpu.health[g] == Health.NO_DATA and not words:
        words.append("no telemetry (exporter unreachable or data stale)")
    for a in frame.anomalies:
        if a.gpu is not None and a.node == topo.node_names[node] and a.gpu == g % topo.gpus_per_node:
            words.append(f"anomaly: {a.evidence}")
    return words

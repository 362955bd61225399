"""Settings of the simulated cluster, kept in one plain dataclass so the command line
(``--seed``, ``--nodes``, ``--speed``) and tests can build one in a line."""

from __future__ import annotations

from dataclasses import dataclass

FAULT_MODES = ("default", "none", "all")

#: Every fault kind the injector knows, in the order ``faults="all"`` staggers them.
FAULT_KINDS: tuple[str, ...] = (
    "straggler",
    "exporter_down",
    "xid79",
    "rack_cooling",
    "job_hang",
    "power_cap",
    "nvlink",
    "node_down",
    "queue_surge",
    "ecc_dbe",
    "pdu_trip",
    "switch_down",
)


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Two configs that compare equal give identical simulations.

    ``tick_s`` is the simulated time one poll represents at ``speed`` 1; ``speed`` is the
    time warp (each poll advances ``tick_s * speed`` simulated seconds). ``t0`` None means
    "start at the wall clock now", which the source resolves once; tests pass a fixed epoch.
    ``fault_rate`` scales the random fault arrivals of ``faults="default"`` (0 disables them
    but keeps the scripted first-hour faults).
    """

    seed: int = 7
    nodes: int = 384
    gpus_per_node: int = 8
    gpu_model: str = "NVIDIA H800 80GB HBM3"
    nodes_per_rack: int = 8
    tick_s: float = 5.0
    speed: float = 1.0
    t0: float | None = None
    faults: str = "default"
    fault_rate: float = 1.0
    cluster_name: str = "aisc-sim"
    peak_tflops: float = 989.5  # BF16 dense per H800 SXM (FACTS 2)
    boost_clock_mhz: float = 1980.0
    power_cap_w: float = 700.0
    fb_total_mib: float = 81559.0

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("nodes must be at least 1")
        if not 1 <= self.gpus_per_node <= 16:
            raise ValueError("gpus_per_node must be 1..16")
        if self.nodes_per_rack < 1:
            raise ValueError("nodes_per_rack must be at least 1")
        if self.tick_s <= 0 or self.speed <= 0:
            raise ValueError("tick_s and speed must be positive")
        if self.faults not in FAULT_MODES:
            raise ValueError(f"faults must be one of {', '.join(FAULT_MODES)}")
        if self.fault_rate < 0:
            raise ValueError("fault_rate must not be negative")

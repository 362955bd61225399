"""GPU physics of the simulator: what DCGM would report for every GPU, as numpy arrays.

Everything is computed over whole [nodes, gpus] arrays (32,768 GPUs in a few milliseconds);
nothing loops per GPU. The model is simple on purpose but keeps the relations an operator
reads: tensor activity follows the job, power follows activity and is clamped by the cap,
clocks drop under power or thermal limits (with the matching throttle bits), temperature
follows power and the rack's inlet air with a lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from console.model import JobState
from console.sim.jobs import JobStore

BIT_IDLE, BIT_POWER, BIT_HW_SLOW, BIT_SW_THERMAL, BIT_HW_THERMAL = 0x1, 0x4, 0x8, 0x20, 0x40
IDLE_CLOCK_MHZ = 345.0
METRIC_KEYS = ("util", "tensor", "sm_clock", "temp", "power", "fb_used", "xid", "ecc_dbe",
               "nvlink_crc", "throttle", "power_limit")


@dataclass
class FaultEffects:
    """Per-step modifiers the fault injector sets; reset to neutral before each step."""

    shape: tuple[int, int]
    n_racks: int
    dead: np.ndarray = field(init=False)  # bool[N, G]: GPU fell off the bus
    noexport: np.ndarray = field(init=False)  # bool[N]: no telemetry from this node
    tensor_factor: np.ndarray = field(init=False)  # float32[N, G]
    util_factor: np.ndarray = field(init=False)
    clock_factor: np.ndarray = field(init=False)
    power_cap: np.ndarray = field(init=False)  # float32[N]
    nvlink_rate: np.ndarray = field(init=False)  # float32[N, G] CRC flit errors/s
    rack_heat: np.ndarray = field(init=False)  # float32[racks]: target extra inlet °C

    def __post_init__(self) -> None:
        self.reset(700.0)

    def reset(self, cap: float) -> None:
        n, g = self.shape
        self.dead = np.zeros((n, g), bool)
        self.noexport = np.zeros(n, bool)
        self.tensor_factor = np.ones((n, g), np.float32)
        self.util_factor = np.ones((n, g), np.float32)
        self.clock_factor = np.ones((n, g), np.float32)
        self.power_cap = np.full(n, cap, np.float32)
        self.nvlink_rate = np.zeros((n, g), np.float32)
        self.rack_heat = np.zeros(self.n_racks, np.float32)


class GpuPhysics:
    """Holds the evolving per-GPU state; `step` advances it, `metrics` reports it."""

    def __init__(self, rng: np.random.Generator, node_rack: np.ndarray, n_racks: int,
                 gpus_per_node: int, boost_mhz: float, cap_w: float, fb_total_mib: float) -> None:
        n = len(node_rack)
        self.rng = rng
        self.node_rack = node_rack
        self.shape = (n, gpus_per_node)
        self.boost = boost_mhz
        self.cap = cap_w
        self.fb_total = fb_total_mib
        self.idle_w = (72.0 + rng.uniform(0, 14, self.shape)).astype(np.float32)
        self.temp_offset = rng.normal(0, 1.5, self.shape).astype(np.float32)
        self.rack_inlet_base = (23.0 + rng.uniform(0, 3.5, n_racks)).astype(np.float32)
        self.rack_delta = np.zeros(n_racks, np.float32)
        self.temp = (self.rack_inlet_base[node_rack][:, None] + 11.0 + self.temp_offset).astype(np.float32)
        self.xid = np.zeros(self.shape, np.float32)
        self.ecc_dbe = np.zeros(self.shape, np.float32)
        self.nvlink_total = np.zeros(self.shape, np.float64)  # counter behind the rate
        z = np.zeros(self.shape, np.float32)
        self.util, self.tensor, self.clock, self.power, self.fb = z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
        self.nvlink = z.copy()
        self.throttle = np.zeros(self.shape, np.int32)

    def step(self, t: float, dt: float, gpu_job: np.ndarray, store: JobStore, fx: FaultEffects) -> None:
        rng = self.rng
        c = store.c
        # Per-job factors first (a few thousand jobs), then one gather onto the GPUs. The extra
        # last element is the "no job" row that index -1 picks, so idle GPUs gather zeros.
        run = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)))
        el = np.maximum(t - c["start"][run], 0.0)
        ckpt = c["ckpt"][run]
        in_ckpt = (el > ckpt) & ((el % ckpt) < 90.0)  # checkpoint writes starve the GPUs
        job_tensor = np.zeros(store.cap + 1, np.float32)
        job_util = np.zeros(store.cap + 1, np.float32)
        job_hung = np.zeros(store.cap + 1, bool)
        job_tensor[run] = c["eff"][run] * np.clip(el / 180.0, 0.0, 1.0) * np.where(in_ckpt, 0.08, 1.0)
        job_util[run] = c["util"][run] * np.clip(el / 60.0, 0.0, 1.0) * np.where(in_ckpt, 0.35, 1.0)
        job_hung[run] = c["hung"][run]
        busy = gpu_job >= 0
        hung = job_hung[gpu_job]
        active = busy & ~hung
        f32 = np.float32
        noise = rng.standard_normal(self.shape, dtype=f32)
        tensor = job_tensor[gpu_job] * (f32(1.0) + f32(0.04) * noise) * fx.tensor_factor
        util = job_util[gpu_job] * fx.util_factor + f32(1.2) * rng.standard_normal(self.shape, dtype=f32)
        tensor = np.where(active, np.clip(tensor, 0.0, 1.0), f32(0.0))
        util = np.where(active, np.clip(util, 0.0, 100.0), f32(0.0))

        demand = self.idle_w + f32(1.8) * util + f32(560.0) * tensor + np.where(hung, f32(35.0), f32(0.0))
        cap = fx.power_cap[:, None]
        clock = np.where(active, f32(self.boost), f32(IDLE_CLOCK_MHZ))
        over = active & (demand > cap * f32(0.98))
        clock = np.where(over, clock * np.power(cap * f32(0.98) / demand, f32(0.8)), clock)
        throttle = np.where(active, 0, BIT_IDLE).astype(np.int32)
        throttle[over] |= BIT_POWER
        # Thermal slowdown from the temperature reached so far (the lag makes it a feedback).
        sw = self.temp > 87.0
        hw = self.temp > 92.0
        thermal = np.clip(f32(1.0) - (self.temp - f32(87.0)) * f32(0.06), f32(0.5), f32(1.0))
        clock = np.where(sw & active, clock * thermal, clock)
        clock = np.where(hw & active, clock * f32(0.8), clock)
        throttle[sw] |= BIT_SW_THERMAL
        throttle[hw] |= BIT_HW_THERMAL | BIT_HW_SLOW
        clock = clock * fx.clock_factor
        power = demand * np.where(active, clock / f32(self.boost), f32(1.0)) ** f32(0.6)
        power = np.minimum(power * (f32(1.0) + f32(0.01) * rng.standard_normal(self.shape, dtype=f32)), cap).astype(f32)

        tau_rack = 240.0
        self.rack_delta += (fx.rack_heat - self.rack_delta) * np.float32(1.0 - np.exp(-dt / tau_rack))
        inlet = (self.rack_inlet_base + self.rack_delta)[self.node_rack][:, None]
        target = inlet + 6.0 + 0.065 * power + self.temp_offset
        self.temp = (self.temp + (target - self.temp) * np.float32(1.0 - np.exp(-dt / 90.0))).astype(np.float32)

        self.util, self.tensor, self.power, self.throttle = util, tensor, power, throttle
        self.clock = clock.astype(np.float32)
        job_mem = np.zeros(store.cap + 1, np.float32)
        job_mem[run] = c["mem"][run] * self.fb_total
        self.fb = job_mem[gpu_job]
        if fx.nvlink_rate.any():
            self.nvlink = (fx.nvlink_rate * rng.uniform(0.7, 1.3, self.shape)).astype(np.float32)
            self.nvlink_total += self.nvlink * dt
        else:
            self.nvlink = np.zeros(self.shape, np.float32)

    def metrics(self, fx: FaultEffects) -> dict[str, np.ndarray]:
        """float32 copies for one TelemetryUpdate: NaN where a GPU or its exporter is gone."""
        out = {
            "util": self.util, "tensor": self.tensor, "sm_clock": self.clock,
            "temp": np.round(self.temp), "power": self.power, "fb_used": np.round(self.fb),
            "xid": self.xid, "ecc_dbe": self.ecc_dbe, "nvlink_crc": self.nvlink,
            "throttle": self.throttle.astype(np.float32),
            # The enforced limit is what DCGM reports whatever the GPU draws: the board default,
            # or the cap a power_cap fault set on the node.
            "power_limit": np.broadcast_to(fx.power_cap[:, None], self.shape),
        }
        gone = fx.dead | fx.noexport[:, None]
        res = {}
        for key, arr in out.items():
            a = np.array(arr, dtype=np.float32, copy=True)
            if key == "xid":
                a[fx.noexport] = np.nan  # a dead GPU still reports its last XID (79)
            else:
                a[gone] = np.nan
            res[key] = a
        return res

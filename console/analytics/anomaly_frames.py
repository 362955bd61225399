"""Hand-built frames for testing detectors: a `Frame` from a few arrays, everything else neutral.

Detector tests need exact control (this GPU at 95 °C, that job stalled since 03:12), which a
simulated cluster cannot give; `FrameBuilder` gives a healthy, busy little cluster that a test
then bends in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from console.model import (
    Frame, GpuFrame, Health, History, JobState, JobTable, Kpis, NodeState, NodeTable, TenantTable,
    Topology,
)


@dataclass
class FrameBuilder:
    """A cluster of ``nodes`` x ``gpn`` GPUs in racks of ``per_rack`` nodes, every GPU busy.

    Jobs are given as ``jobs[job_id] = (account, [flat GPU indices], start_time)``. Metric
    arrays are float32 over flat GPU indices and may be edited freely before `build`.
    """

    nodes: int = 16
    gpn: int = 8
    per_rack: int = 4
    max_clock: float = 1980.0
    jobs: dict[int, tuple[str, list[int], float]] = field(default_factory=dict)
    node_state: np.ndarray | None = None
    responding: np.ndarray | None = None
    version: int = 1
    tenants: tuple[str, ...] = ("alpha", "beta", "gamma")
    pending: dict[str, int] = field(default_factory=dict)  # account -> pending jobs

    def __post_init__(self) -> None:
        n = self.nodes * self.gpn
        rng = np.random.default_rng(0)
        self.util = np.full(n, 95.0, np.float32) + rng.normal(0, 1, n).astype(np.float32)
        self.tensor = np.full(n, 0.5, np.float32) * (1 + rng.normal(0, 0.03, n)).astype(np.float32)
        self.sm_clock = np.full(n, self.max_clock, np.float32)
        self.temp = np.full(n, 65.0, np.float32) + rng.normal(0, 1, n).astype(np.float32)
        self.power = np.full(n, 550.0, np.float32) + rng.normal(0, 5, n).astype(np.float32)
        self.fb_used = np.full(n, 40000.0, np.float32)
        self.xid = np.zeros(n, np.float32)
        self.ecc_dbe = np.zeros(n, np.float32)
        self.nvlink_crc = np.zeros(n, np.float32)
        self.throttle = np.zeros(n, np.float32)
        if self.node_state is None:
            self.node_state = np.full(self.nodes, int(NodeState.ALLOCATED), np.int8)
        if self.responding is None:
            self.responding = np.ones(self.nodes, bool)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(f"n{i + 1:04d}" for i in range(self.nodes))

    def gpu(self, node: int, local: int) -> int:
        return node * self.gpn + local

    def topology(self) -> Topology:
        n = self.nodes
        n_racks = (n + self.per_rack - 1) // self.per_rack
        return Topology(
            node_names=self.node_names,
            node_rack=(np.arange(n) // self.per_rack).astype(np.int32),
            rack_names=tuple(f"R{r + 1:02d}" for r in range(n_racks)),
            gpus_per_node=self.gpn, node_gpu_count=np.full(n, self.gpn, np.int16),
            node_model=("H800",) * n, gpu_peak_tflops=np.full(n * self.gpn, 989.5, np.float32),
            gpu_max_clock_mhz=np.full(n * self.gpn, self.max_clock, np.float32), version=self.version)

    def build(self, t: float, topo: Topology | None = None) -> Frame:
        topo = topo or self.topology()
        n_gpus = topo.n_gpus
        rows: list[dict] = []
        alloc: list[tuple[int, str, int]] = []
        names = self.node_names
        for jid, (acct, gpus, start) in self.jobs.items():
            r = len(rows)
            rows.append(dict(job_id=jid, account=acct, partition="training", state=JobState.RUNNING,
                             gpus=len(gpus), nodes=len({g // self.gpn for g in gpus}), start_time=start,
                             submit_time=start - 60, name=f"job{jid}", user="u"))
            alloc += [(r, names[g // self.gpn], g % self.gpn) for g in gpus]
        for acct, k in self.pending.items():
            for i in range(k):
                rows.append(dict(job_id=900000 + len(rows), account=acct, partition="training",
                                 state=JobState.PENDING, gpus=8, submit_time=t))
        jobs = JobTable.build(rows, alloc)
        job_row = np.full(n_gpus, -1, np.int32)
        job_id = np.zeros(n_gpus, np.int64)
        tenant = np.full(n_gpus, -1, np.int16)
        for r, nn, g in alloc:
            flat = names.index(nn) * self.gpn + g
            job_row[flat] = r
            job_id[flat] = rows[r]["job_id"]
            tenant[flat] = self.tenants.index(rows[r]["account"]) if rows[r]["account"] in self.tenants else -1
        gpu = GpuFrame(
            util=self.util.copy(), tensor=self.tensor.copy(), sm_clock=self.sm_clock.copy(),
            temp=self.temp.copy(), power=self.power.copy(), fb_used=self.fb_used.copy(), xid=self.xid.copy(),
            ecc_dbe=self.ecc_dbe.copy(), nvlink_crc=self.nvlink_crc.copy(), throttle=self.throttle.copy(),
            delivered_tflops=(np.nan_to_num(self.tensor) * 989.5).astype(np.float32),
            health=np.zeros(n_gpus, np.int8), job_row=job_row, job_id=job_id, tenant=tenant)
        nodes = NodeTable(names=names, state=self.node_state.copy(), responding=self.responding.copy(),
                          reason=("",) * self.nodes, gpus=np.full(self.nodes, self.gpn, np.int16),
                          gpus_alloc=np.full(self.nodes, self.gpn, np.int16),
                          partitions=(("training",),) * self.nodes)
        k = len(self.tenants)
        pend = np.array([self.pending.get(a, 0) for a in self.tenants], np.int32)
        tenants = TenantTable(
            account=self.tenants, display=self.tenants, kind=("university",) * k,
            subsidy=np.zeros(k, np.float32), price_per_gpu_hour=np.zeros(k, np.float32),
            gpus_in_use=np.zeros(k, np.int32), share=np.zeros(k, np.float32),
            delivered_pf=np.zeros(k, np.float32), efficiency=np.zeros(k, np.float32),
            jobs_running=np.zeros(k, np.int32), jobs_pending=pend, gpus_pending=pend * 8,
            cost_per_hour=np.zeros(k, np.float32), subsidy_per_hour=np.zeros(k, np.float32))
        delivered = float(np.nansum(gpu.delivered_tflops)) / 1000.0
        kpis = Kpis(
            installed_pf=n_gpus * 0.9895, available_pf=n_gpus * 0.9895, allocated_pf=n_gpus * 0.9895,
            busy_pf=n_gpus * 0.9895, delivered_pf=delivered, precision="BF16 dense", gpus_total=n_gpus,
            gpus_available=n_gpus, gpus_healthy=n_gpus, gpus_allocated=n_gpus, gpus_busy=n_gpus,
            gpus_by_health={h.name.lower(): 0 for h in Health}, nodes_total=self.nodes, nodes_by_state={},
            jobs_running=len(self.jobs), jobs_pending=int(pend.sum()), gpus_pending=int(pend.sum()) * 8,
            alerts_firing=0, alerts_by_severity={})
        history = History(t=np.zeros(0), series={}, tenant_delivered_pf=np.zeros((0, k), np.float32),
                          tenant_gpus=np.zeros((0, k), np.float32))
        return Frame(seq=int(t), time=t, cluster="test", topology=topo, gpu=gpu, nodes=nodes,
                     node_health=np.zeros(self.nodes, np.int8), jobs=jobs, kpis=kpis, tenants=tenants,
                     history=history, alerts=(), silences=(), anomalies=(), causes=(), sources=(),
                     data_time={"telemetry": t, "scheduler": t, "alerts": t},
                     stale_after_s={"telemetry": 90.0, "scheduler": 90.0, "alerts": 90.0})

    def one_job_per_node(self, start: float, accounts: tuple[str, ...] | None = None) -> None:
        """Every node runs its own 8-GPU job (ids 1000 + node), tenants in turn."""
        accts = accounts or self.tenants
        for n in range(self.nodes):
            self.jobs[1000 + n] = (accts[n % len(accts)], [self.gpu(n, i) for i in range(self.gpn)], start)

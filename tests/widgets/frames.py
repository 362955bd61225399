"""Hand-built frames for the jobs, tenants, alerts and incidents panel tests.

Small and fully known (4 nodes x 8 GPUs, 10 jobs, 3 tenants), so tests can assert exact rows;
plus `big_job_table` for the 50,000-row behaviour checks. No engine involved: the panels are
tested against the contract (console/model.py), not against the simulator's choices.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from console.model import (
    Alert, Anomaly, Cause, Frame, GpuFrame, History, JobState, JobTable, Kpis, Matcher, Severity,
    Silence, SourceState, SourceStatus, Subject, TenantTable, Topology,
)

NOW = 1_800_000_000.0
GPN = 8
NODES = ("n0001", "n0002", "n0003", "n0004")
ACCOUNTS = ("hku", "cuhk", "acme")
DISPLAY = ("HKU AI Lab", "CUHK Vision", "Acme Robotics")

R, P = JobState.RUNNING, JobState.PENDING

# job_id, array_job_id, task, name, user, account, partition, state, reason, gpus, nodes,
# submit (s before NOW), start (s before NOW or None), node_list, allocation [(node, gpus)]
JOBS = [
    (101, 0, -1, "llama-pretrain", "alice", "hku", "training", R, "None", 16, 2, 7200, 3600,
     "n[0001-0002]", [("n0001", range(8)), ("n0002", range(8))]),
    (102, 0, -1, "bert-eval", "bob", "cuhk", "inference", R, "None", 4, 1, 1800, 1500,
     "n0003", [("n0003", range(4))]),
    (103, 0, -1, "vision-sweep", "carol", "cuhk", "debug", R, "None", 2, 1, 900, 120,
     "n0003", [("n0003", range(4, 6))]),
    (104, 0, -1, "robot-sim", "dave", "acme", "training", R, "None", 1, 1, 300, 60,
     "n0004", [("n0004", [0])]),
    (105, 0, -1, "llama-finetune", "alice", "hku", "training", P, "Priority", 32, 4, 5000,
     None, "", []),
    (106, 0, -1, "grasp-policy", "erin", "acme", "training", P, "AssocGrpGRES", 64, 8, 4000,
     None, "", []),
    (111, 110, 0, "param-scan", "bob", "cuhk", "debug", P, "Resources", 1, 1, 200, None, "", []),
    (112, 110, 1, "param-scan", "bob", "cuhk", "debug", P, "Resources", 1, 1, 200, None, "", []),
    (107, 0, -1, "diffusion", "frank", "hku", "inference", P, "Dependency", 8, 1, 100, None,
     "", []),
    (108, 0, -1, "tokenizer", "alice", "hku", "debug", P, "JobHeldUser", 2, 1, 7000, None, "",
     []),
]


def job_table() -> JobTable:
    rows, alloc = [], []
    for i, (jid, aj, task, name, user, acct, part, state, reason, gpus, nodes, sub, start,
            nl, al) in enumerate(JOBS):
        rows.append(dict(job_id=jid, array_job_id=aj, array_task_id=task, name=name, user=user,
                         account=acct, partition=part, state=state, reason=reason, gpus=gpus,
                         nodes=nodes, submit_time=NOW - sub,
                         start_time=None if start is None else NOW - start,
                         end_time=None if start is None else NOW - start + 86400,
                         time_limit_s=86400.0, node_list=nl))
        for node, gs in al:
            alloc += [(i, node, g) for g in gs]
    return JobTable.build(rows, alloc)


def big_job_table(n: int = 50_000, seed: int = 7) -> JobTable:
    """A queue of `n` jobs built column-wise (as the engine does), half running, half pending."""
    rng = np.random.default_rng(seed)
    state = np.where(rng.random(n) < 0.5, int(R), int(P)).astype(np.int8)
    reasons = ("None", "Priority", "Resources", "AssocGrpGRES", "Dependency")
    reason = np.where(state == int(R), 0, rng.integers(1, len(reasons), n)).astype(np.int32)
    submit = NOW - rng.uniform(0, 86400, n)
    start = np.where(state == int(R), submit + rng.uniform(0, 600, n), np.nan)
    return JobTable(
        job_id=np.arange(1, n + 1, dtype=np.int64) + 100_000,
        array_job_id=np.zeros(n, np.int64), array_task_id=np.full(n, -1, np.int32),
        name=np.array([f"job-{i % 997}" for i in range(n)], dtype=np.str_),
        user=np.array([f"user{i % 211}" for i in range(n)], dtype=np.str_),
        account=rng.integers(0, 3, n).astype(np.int32), accounts=ACCOUNTS,
        partition=rng.integers(0, 3, n).astype(np.int32),
        partitions=("training", "inference", "debug"),
        state=state, reason=reason, reasons=reasons,
        gpus=rng.integers(1, 65, n).astype(np.int32), nodes=np.ones(n, np.int32),
        submit_time=submit, start_time=start, end_time=start + 3600,
        time_limit_s=np.full(n, 86400.0), exit_code=np.full(n, -1, np.int32),
        node_list=np.array([""] * n, dtype=np.str_),
        alloc_job=np.zeros(0, np.int32), alloc_node=np.zeros(0, np.int32),
        alloc_gpu=np.zeros(0, np.int16), alloc_node_names=(),
    )


def topology() -> Topology:
    n = len(NODES)
    return Topology(
        node_names=NODES, node_rack=np.array([0, 0, 1, 1], np.int32), rack_names=("R01", "R02"),
        gpus_per_node=GPN, node_gpu_count=np.full(n, GPN, np.int16),
        node_model=("H800",) * n, gpu_peak_tflops=np.full(n * GPN, 989.0, np.float32),
        gpu_max_clock_mhz=np.full(n * GPN, 1980.0, np.float32), version=1)


def tenant_table(jobs: JobTable, gpu_tenant: np.ndarray) -> TenantTable:
    acct = jobs.account_names()
    k = len(ACCOUNTS)
    running = np.array([np.sum((acct == a) & (jobs.state == int(R))) for a in ACCOUNTS], np.int32)
    pending = np.array([np.sum((acct == a) & (jobs.state == int(P))) for a in ACCOUNTS], np.int32)
    gpus_pending = np.array([jobs.gpus[(acct == a) & (jobs.state == int(P))].sum()
                             for a in ACCOUNTS], np.int32)
    in_use = np.array([np.sum(gpu_tenant == i) for i in range(k)], np.int32)
    price = np.array([2.0, 2.0, 2.5], np.float32)
    subsidy = np.array([0.7, 0.5, 0.0], np.float32)
    return TenantTable(
        account=ACCOUNTS, display=DISPLAY,
        kind=("university", "university", "company"), subsidy=subsidy,
        price_per_gpu_hour=price, gpus_in_use=in_use,
        share=(in_use / (len(NODES) * GPN)).astype(np.float32),
        delivered_pf=np.array([9.5, 2.25, 0.4], np.float32),
        efficiency=np.array([0.6, 0.45, np.nan], np.float32),
        jobs_running=running, jobs_pending=pending, gpus_pending=gpus_pending,
        cost_per_hour=(price * in_use).astype(np.float32),
        subsidy_per_hour=(price * in_use * subsidy).astype(np.float32))


def alerts() -> tuple[Alert, ...]:
    return (
        Alert("f-exp", "ExporterDown", Severity.WARNING, "firing", NOW - 300,
              labels={"alertname": "ExporterDown", "instance": "n0004:9400", "job": "dcgm",
                      "rack": "R02", "severity": "warning"},
              annotations={"summary": "dcgm exporter n0004:9400 down"},
              source="alertmanager", node="n0004", rack="R02"),
        Alert("f-xid", "GpuXidError", Severity.CRITICAL, "firing", NOW - 120,
              labels={"alertname": "GpuXidError", "Hostname": "n0001", "gpu": "2",
                      "job": "dcgm", "rack": "R01", "severity": "critical", "hpc_job": "101"},
              annotations={"summary": "XID 79 on n0001 GPU 2",
                           "description": "GPU fell off the bus"},
              source="alertmanager", node="n0001", gpu=2, job_id=101, rack="R01", tenant="hku"),
        Alert("f-temp", "GpuTemperatureHigh", Severity.WARNING, "silenced", NOW - 3600,
              labels={"alertname": "GpuTemperatureHigh", "Hostname": "n0003", "gpu": "5",
                      "job": "dcgm", "rack": "R02", "severity": "warning"},
              annotations={"summary": "GPU 5 on n0003 is at 88 C"},
              silenced_by=("sil-1",), source="alertmanager", node="n0003", gpu=5, rack="R02"),
        Alert("f-temp2", "GpuTemperatureHigh", Severity.WARNING, "firing", NOW - 60,
              labels={"alertname": "GpuTemperatureHigh", "Hostname": "n0003", "gpu": "6",
                      "job": "dcgm", "rack": "R02", "severity": "warning"},
              annotations={"summary": "GPU 6 on n0003 is at 87 C"},
              source="alertmanager", node="n0003", gpu=6, rack="R02"),
        Alert("f-info", "QueueLong", Severity.INFO, "firing", NOW - 900,
              labels={"alertname": "QueueLong", "partition": "training", "severity": "info"},
              annotations={"summary": "training queue longer than 1 h"}, source="alertmanager"),
    )


def anomalies() -> tuple[Anomaly, ...]:
    return (
        Anomaly("an-stall", "job_stall", Subject("job", "102"), 8.5, NOW - 400, NOW,
                "all 4 GPUs of job 102 idle for 6 min while allocated",
                severity=Severity.CRITICAL, node="n0003", job_id=102, tenant="cuhk"),
        Anomaly("an-hot", "gpu_outlier", Subject("gpu", "n0003/5"), 4.1, NOW - 800, NOW,
                "temperature 88 °C vs peers 61 °C (z = 4.1)", node="n0003", gpu=5, rack="R02"),
    )


def causes() -> tuple[Cause, ...]:
    return (
        Cause("c-xid", "node n0001 GPU 2 fell off the bus (XID 79): drain and reboot", "xid",
              0.92, Subject("gpu", "n0001/2"),
              ("XID 79 reported by DCGM on n0001 GPU 2 at 12:58", "job 101 lost 1 of 16 GPUs"),
              "Drain n0001, reboot, and run dcgmi diag -r 3 before returning it",
              NOW - 120, gpus=8, nodes=("n0001",), jobs=(101,), tenants=("hku",),
              gpu_hours_at_risk=16.0, severity=Severity.CRITICAL),
        Cause("c-stall", "job 102 hung (all 4 GPUs stalled since 12:53, NCCL or checkpoint)",
              "job_stall", 0.71, Subject("job", "102"),
              ("GPU utilisation 0 % on all 4 GPUs for 6 min", "job still RUNNING in Slurm"),
              "Ask the owner (bob) to check NCCL logs; cancel if it does not recover",
              NOW - 400, gpus=4, nodes=("n0003",), jobs=(102,), tenants=("cuhk",),
              gpu_hours_at_risk=4.0, severity=Severity.WARNING),
    )


def silences() -> tuple[Silence, ...]:
    return (Silence("sil-1", (Matcher("alertname", "GpuTemperatureHigh"), Matcher("gpu", "5")),
                    NOW - 3000, NOW + 600, "alice", "ACK! fan swap scheduled", "active"),)


def make_test_frame(*, seq: int = 1, now: float = NOW, jobs: JobTable | None = None,
                    alert_list: tuple[Alert, ...] | None = None,
                    cause_list: tuple[Cause, ...] | None = None,
                    anomaly_list: tuple[Anomaly, ...] | None = None) -> Frame:
    """A consistent frame: GPU tenancy follows the job allocations of the 10-job table."""
    topo = topology()
    base_jobs = job_table()
    jt = jobs if jobs is not None else base_jobs
    n = topo.n_gpus
    job_row = np.full(n, -1, np.int32)
    job_id = np.zeros(n, np.int64)
    tenant = np.full(n, -1, np.int16)
    topo_ix = topo.node_index()
    for k in range(len(jt.alloc_job)):
        name = jt.alloc_node_names[jt.alloc_node[k]]
        g = topo_ix[name] * GPN + int(jt.alloc_gpu[k])
        row = int(jt.alloc_job[k])
        job_row[g] = row
        job_id[g] = jt.job_id[row]
        tenant[g] = ACCOUNTS.index(jt.accounts[jt.account[row]])
    health = np.zeros(n, np.int8)
    health[2] = 2  # n0001 GPU 2 failed
    health[3 * GPN:4 * GPN] = 4  # n0004 exporter down: no data
    f32 = lambda v: np.full(n, v, np.float32)  # noqa: E731
    gpu = GpuFrame(util=f32(50), tensor=f32(0.3), sm_clock=f32(1900), temp=f32(60),
                   power=f32(400), fb_used=f32(40000), xid=f32(0), ecc_dbe=f32(0),
                   nvlink_crc=f32(0), throttle=f32(0), delivered_tflops=f32(300),
                   health=health, job_row=job_row, job_id=job_id, tenant=tenant)
    tenants = tenant_table(base_jobs, tenant) if jobs is None else tenant_table(jt, tenant)
    t = now - 60.0 * np.arange(10, -1, -1)
    k = len(ACCOUNTS)
    tdpf = np.tile(np.array([9.0, 2.0, 0.5], np.float32), (len(t), 1)) + \
        np.linspace(0, 0.5, len(t), dtype=np.float32)[:, None]
    tgpus = np.tile(tenants.gpus_in_use.astype(np.float32), (len(t), 1))
    history = History(t=t, series={"delivered_pf": np.full(len(t), 12.0, np.float32)},
                      tenant_delivered_pf=tdpf.reshape(len(t), k), tenant_gpus=tgpus)
    kpis = Kpis(installed_pf=topo.installed_pf, available_pf=24.0, allocated_pf=23.0,
                busy_pf=20.0, delivered_pf=12.0, precision="BF16 dense", gpus_total=n,
                gpus_available=24, gpus_healthy=23, gpus_allocated=int((job_row >= 0).sum()),
                gpus_busy=20, gpus_by_health={"OK": 23, "failed": 1, "no data": 8},
                nodes_total=4, nodes_by_state={"mixed": 4}, jobs_running=4, jobs_pending=6,
                gpus_pending=108, alerts_firing=4, alerts_by_severity={"critical": 1})
    from console.model import NodeTable
    nodes = NodeTable(NODES, np.array([2, 2, 1, 1], np.int8), np.ones(4, bool), ("",) * 4,
                      np.full(4, GPN, np.int16), np.array([8, 8, 6, 1], np.int16),
                      (("training",),) * 4)
    status = SourceStatus("simulator", "simulator", SourceState.OK, 5.0, now, now, 0.01, None,
                          None)
    return Frame(
        seq=seq, time=now, cluster="test", topology=topo, gpu=gpu, nodes=nodes,
        node_health=np.array([2, 0, 0, 4], np.int8), jobs=jt, kpis=kpis, tenants=tenants,
        history=history, alerts=alerts() if alert_list is None else alert_list,
        silences=silences(), anomalies=anomalies() if anomaly_list is None else anomaly_list,
        causes=causes() if cause_list is None else cause_list, sources=(status,),
        data_time={"telemetry": now, "scheduler": now, "alerts": now},
        stale_after_s={"telemetry": 15.0, "scheduler": 30.0, "alerts": 45.0}, simulated=True)


#: The always-firing alert of a healthy alert pipeline (the dead-man's switch looks for it).
WATCHDOG = Alert("wd", "Watchdog", Severity.INFO, "firing", 0.0)


class Clock:
    """A clock the test sets by hand (``clock.t = ...``): timers are driven, never waited for."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def seeing(frame: Frame) -> Frame:
    """``frame`` with the always-firing alert, as a healthy alert pipeline has it."""
    return dataclasses.replace(frame, alerts=frame.alerts + (WATCHDOG,))

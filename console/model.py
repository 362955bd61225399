"""The domain model shared by every layer: frozen dataclasses and columnar numpy tables.

Everything here is immutable once built and made of numpy arrays, tuples and small scalars,
so that a `Frame` can be handed from the engine thread to the GUI thread without locks and
pickled to another process cheaply (see DESIGN.md, "Where the engine runs"). Per-GPU data is
indexed by a flat GPU index ``g = node_index * topology.gpus_per_node + local_gpu``; slots past
a node's real GPU count stay NaN ("no data" is never zero).

No Qt here, and no I/O: sources build these objects, the state merges them, panels read them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------------
# Enumerations (stored as small integer codes inside numpy arrays)
# ---------------------------------------------------------------------------------------------


class Health(enum.IntEnum):
    """Health of one GPU or node; ordered so that a larger code is worse for display sorting.

    UNAVAILABLE means taken out of service on purpose (drained, maintenance, reserved down) and
    is distinct from FAILED (broken) and NO_DATA (we cannot see it: never drawn as healthy).
    """

    OK = 0
    DEGRADED = 1
    FAILED = 2
    UNAVAILABLE = 3
    NO_DATA = 4


class NodeState(enum.IntEnum):
    """Slurm node base state, with DRAINING/DRAINED derived from the DRAIN flag (FACTS 5.1)."""

    IDLE = 0
    MIXED = 1
    ALLOCATED = 2
    COMPLETING = 3
    DRAINING = 4
    DRAINED = 5
    DOWN = 6
    FAIL = 7
    MAINT = 8
    RESERVED = 9
    UNKNOWN = 10
    FUTURE = 11
    INVAL = 12
    POWERED_DOWN = 13


#: Node states in which the node's GPUs count as "available" capacity.
AVAILABLE_NODE_STATES = frozenset(
    {NodeState.IDLE, NodeState.MIXED, NodeState.ALLOCATED, NodeState.COMPLETING, NodeState.RESERVED}
)


class JobState(enum.IntEnum):
    """Slurm job state (the base state; flags such as REQUEUED are folded in)."""

    PENDING = 0
    RUNNING = 1
    COMPLETING = 2
    SUSPENDED = 3
    CONFIGURING = 4
    COMPLETED = 5
    CANCELLED = 6
    FAILED = 7
    TIMEOUT = 8
    NODE_FAIL = 9
    OUT_OF_MEMORY = 10
    PREEMPTED = 11
    BOOT_FAIL = 12
    DEADLINE = 13
    REQUEUED = 14
    OTHER = 15


#: Job states that hold GPUs.
ACTIVE_JOB_STATES = frozenset(
    {JobState.RUNNING, JobState.COMPLETING, JobState.SUSPENDED, JobState.CONFIGURING}
)


class Severity(enum.IntEnum):
    """Alert severity; the integer order is the display order everywhere (critical first)."""

    CRITICAL = 0
    WARNING = 1
    INFO = 2

    @classmethod
    def parse(cls, text: str | None) -> "Severity":
        """Map the many spellings sites use (``page``, ``crit``, ``warn``...) to three levels."""
        t = (text or "").strip().lower()
        if t in {"critical", "crit", "page", "error", "high", "fatal", "emergency", "disaster"}:
            return cls.CRITICAL
        if t in {"warning", "warn", "medium", "major", "minor"}:
            return cls.WARNING
        return cls.INFO


class TenantKind(enum.Enum):
    UNIVERSITY = "university"
    INSTITUTE = "research institute"
    COMPANY = "company"
    OTHER = "other"


# ---------------------------------------------------------------------------------------------
# Topology
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Topology:
    """Racks, nodes and GPU slots: the fixed frame every per-GPU array is laid out on.

    ``version`` changes whenever nodes are added or removed so that panels know to rebuild
    their layout (and only then).
    """

    node_names: tuple[str, ...]
    node_rack: np.ndarray  # int32[n_nodes] index into rack_names
    rack_names: tuple[str, ...]
    gpus_per_node: int  # slots per node (the maximum over nodes)
    node_gpu_count: np.ndarray  # int16[n_nodes] real GPUs on each node
    node_model: tuple[str, ...]  # GPU model name per node ("" when unknown)
    gpu_peak_tflops: np.ndarray  # float32[n_gpus] dense peak at `precision`; 0 for empty slots
    gpu_max_clock_mhz: np.ndarray  # float32[n_gpus] boost clock used for the clock correction
    precision: str = "BF16 dense"
    version: int = 0
    # Where each rack's name came from, per rack: "config", "label" (the exporter's rack
    # label), or "" for the fallback rack of nodes nobody placed; () when not recorded.
    # The health map says so in its legend and groups unplaced nodes by host name instead.
    rack_source: tuple[str, ...] = ()
    # Site topology beyond racks, only where the site config names it (all empty otherwise).
    # Rows group racks; PDUs and switches group nodes, a node may sit in several (A/B feeds).
    # Node groups are stored CSR-style, three flat arrays rather than one array per group,
    # because the topology crosses a process boundary with every frame.
    row_names: tuple[str, ...] = ()
    rack_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # int32[n_racks], -1 = no row
    group_kinds: tuple[str, ...] = ()  # "pdu" | "switch", per group
    group_names: tuple[str, ...] = ()
    group_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))  # int32[n_groups + 1]
    group_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # node indices, by group

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    def group_members(self, i: int) -> np.ndarray:
        """Node indices of node group ``i`` (a PDU or a switch)."""
        return self.group_nodes[int(self.group_offsets[i]):int(self.group_offsets[i + 1])]

    @property
    def n_gpus(self) -> int:
        return self.n_nodes * self.gpus_per_node

    def gpu_exists(self) -> np.ndarray:
        """bool[n_gpus]: True where the slot holds a real GPU."""
        local = np.arange(self.gpus_per_node)[None, :]
        return (local < self.node_gpu_count[:, None]).reshape(-1)

    def gpu_node(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_nodes, dtype=np.int32), self.gpus_per_node)

    def gpu_local(self) -> np.ndarray:
        return np.tile(np.arange(self.gpus_per_node, dtype=np.int16), self.n_nodes)

    def node_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.node_names)}

    @property
    def installed_pf(self) -> float:
        return float(self.gpu_peak_tflops.sum(dtype=np.float64)) / 1000.0


# ---------------------------------------------------------------------------------------------
# Updates: what sources yield (the simulator yields the same types)
# ---------------------------------------------------------------------------------------------

#: Telemetry metric keys and their units. Arrays are float32[len(nodes), gpus_per_node].
TELEMETRY_METRICS: Mapping[str, str] = {
    "util": "%",  # DCGM_FI_DEV_GPU_UTIL
    "tensor": "ratio",  # DCGM_FI_PROF_PIPE_TENSOR_ACTIVE (0..1)
    "sm_clock": "MHz",  # DCGM_FI_DEV_SM_CLOCK
    "temp": "°C",  # DCGM_FI_DEV_GPU_TEMP
    "power": "W",  # DCGM_FI_DEV_POWER_USAGE
    "fb_used": "MiB",  # DCGM_FI_DEV_FB_USED
    "xid": "code",  # DCGM_FI_DEV_XID_ERRORS (last XID seen, 0 = none)
    "ecc_dbe": "count",  # DCGM_FI_DEV_ECC_DBE_VOL_TOTAL
    "nvlink_crc": "errors/s",  # rate of DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL
    "throttle": "bitmask",  # DCGM_FI_DEV_CLOCKS_EVENT_REASONS
    "power_limit": "W",  # DCGM_FI_DEV_ENFORCED_POWER_LIMIT (below the board default = capped)
}


@dataclass(frozen=True, eq=False)
class TelemetryUpdate:
    """One scrape of GPU telemetry, keyed by node name (the state maps names to topology rows).

    A node missing from ``nodes`` was not reported at all; a node listed with ``node_up`` False
    had its exporter down (shown as unreachable, never as idle).
    """

    time: float
    nodes: tuple[str, ...]
    gpus_per_node: int
    metrics: Mapping[str, np.ndarray]  # key in TELEMETRY_METRICS -> float32[len(nodes), gpus_per_node]
    node_up: np.ndarray  # bool[len(nodes)]
    node_model: tuple[str, ...] = ()  # GPU model name per node, "" unknown
    node_rack: tuple[str, ...] = ()  # rack name per node when the source knows it, else ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class NodeTable:
    """Scheduler view of nodes, columnar."""

    names: tuple[str, ...]
    state: np.ndarray  # int8 NodeState
    responding: np.ndarray  # bool (False = NOT_RESPONDING flag)
    reason: tuple[str, ...]
    gpus: np.ndarray  # int16 GPUs configured (gres)
    gpus_alloc: np.ndarray  # int16 GPUs allocated (gres_used)
    partitions: tuple[tuple[str, ...], ...]
    #: GPU type named in each node's gres ("h100" from "gpu:h100:8"), "" when the gres names
    #: none; () when the source does not say (older callers, the simulator).
    gpu_types: tuple[str, ...] = ()

    @classmethod
    def empty(cls) -> "NodeTable":
        return cls((), np.zeros(0, np.int8), np.zeros(0, bool), (), np.zeros(0, np.int16),
                   np.zeros(0, np.int16), ())

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, eq=False)
class JobTable:
    """Jobs, columnar, with category codes, so 50,000 jobs cross a process boundary cheaply.

    GPU allocations are a coordinate list: allocation i gives job row ``alloc_job[i]`` the GPU
    ``alloc_gpu[i]`` on node ``alloc_node[i]`` (an index into ``alloc_node_names``).
    Times are epoch seconds as float64, NaN when unknown.
    """

    job_id: np.ndarray  # int64
    array_job_id: np.ndarray  # int64, 0 when not part of an array
    array_task_id: np.ndarray  # int32, -1 when not part of an array
    name: np.ndarray  # str_ (fixed width)
    user: np.ndarray  # str_
    account: np.ndarray  # int32 index into accounts
    accounts: tuple[str, ...]
    partition: np.ndarray  # int32 index into partitions
    partitions: tuple[str, ...]
    state: np.ndarray  # int8 JobState
    reason: np.ndarray  # int32 index into reasons ("None" for running jobs)
    reasons: tuple[str, ...]
    gpus: np.ndarray  # int32 GPUs requested/allocated in total
    nodes: np.ndarray  # int32 node count
    submit_time: np.ndarray  # float64
    start_time: np.ndarray  # float64
    end_time: np.ndarray  # float64 (for running jobs: expected end from the time limit)
    time_limit_s: np.ndarray  # float64, inf = unlimited
    exit_code: np.ndarray  # int32, -1 unknown
    #: str hostlist expression, "" when none (an object array in the sources' tables: one long
    #: hostlist must not widen every row, as a fixed-width column would)
    node_list: np.ndarray
    alloc_job: np.ndarray  # int32 row into this table
    alloc_node: np.ndarray  # int32 index into alloc_node_names
    alloc_gpu: np.ndarray  # int16 local GPU index on that node
    alloc_node_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.job_id.shape[0])

    @classmethod
    def empty(cls) -> "JobTable":
        return cls.build([], alloc=[])

    @classmethod
    def build(cls, rows: list[dict], alloc: list[tuple[int, str, int]]) -> "JobTable":
        """Build from row dicts (sources with small answers) and (row, node, gpu) triples.

        Keys: job_id, array_job_id, array_task_id, name, user, account, partition, state
        (JobState), reason, gpus, nodes, submit_time, start_time, end_time, time_limit_s,
        exit_code, node_list. Missing keys take neutral defaults.
        """
        n = len(rows)

        def col(key: str, dtype, default):
            return np.array([r.get(key, default) if r.get(key) is not None else default
                             for r in rows], dtype=dtype) if n else np.zeros(0, dtype)

        def codes(key: str) -> tuple[np.ndarray, tuple[str, ...]]:
            table: dict[str, int] = {}
            out = np.zeros(n, np.int32)
            for i, r in enumerate(rows):
                v = str(r.get(key) or "")
                out[i] = table.setdefault(v, len(table))
            return out, tuple(table)

        account, accounts = codes("account")
        partition, partitions = codes("partition")
        reason, reasons = codes("reason")
        node_table: dict[str, int] = {}
        aj = np.zeros(len(alloc), np.int32)
        an = np.zeros(len(alloc), np.int32)
        ag = np.zeros(len(alloc), np.int16)
        for i, (row, node, gpu) in enumerate(alloc):
            aj[i] = row
            an[i] = node_table.setdefault(node, len(node_table))
            ag[i] = gpu
        return cls(
            job_id=col("job_id", np.int64, 0),
            array_job_id=col("array_job_id", np.int64, 0),
            array_task_id=col("array_task_id", np.int32, -1),
            name=np.array([str(r.get("name") or "") for r in rows], dtype=np.str_) if n else np.zeros(0, "U1"),
            user=np.array([str(r.get("user") or "") for r in rows], dtype=np.str_) if n else np.zeros(0, "U1"),
            account=account, accounts=accounts,
            partition=partition, partitions=partitions,
            state=col("state", np.int8, int(JobState.OTHER)),
            reason=reason, reasons=reasons,
            gpus=col("gpus", np.int32, 0),
            nodes=col("nodes", np.int32, 0),
            submit_time=col("submit_time", np.float64, np.nan),
            start_time=col("start_time", np.float64, np.nan),
            end_time=col("end_time", np.float64, np.nan),
            time_limit_s=col("time_limit_s", np.float64, np.inf),
            exit_code=col("exit_code", np.int32, -1),
            node_list=np.array([str(r.get("node_list") or "") for r in rows], dtype=np.str_) if n else np.zeros(0, "U1"),
            alloc_job=aj, alloc_node=an, alloc_gpu=ag, alloc_node_names=tuple(node_table),
        )

    def account_names(self) -> np.ndarray:
        """str_[n] account of each row (vectorised decode)."""
        return np.array(self.accounts, dtype=np.str_)[self.account] if len(self) else np.zeros(0, "U1")


@dataclass(frozen=True, eq=False)
class SchedulerUpdate:
    """One poll of the scheduler. ``jobs`` None means "unchanged since last time" (HTTP 304)."""

    time: float
    nodes: NodeTable | None
    jobs: JobTable | None
    partitions: tuple[str, ...] = ()
    api_version: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matcher:
    """An Alertmanager matcher (also used for previewing silences locally)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True


@dataclass(frozen=True, eq=False)
class Alert:
    """An alert from Alertmanager, or an anomaly the console raised itself (source "console").

    ``node``/``gpu``/``job_id``/``rack``/``tenant`` are what the drill-down links to; sources
    fill them from labels (Hostname/hostname/instance, gpu, hpc_job/job_id, rack, account).
    """

    fingerprint: str
    name: str
    severity: Severity
    state: str  # "firing" | "pending" | "silenced" | "inhibited" | "resolved"
    starts_at: float
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    source: str = "alertmanager"
    generator_url: str = ""
    node: str | None = None
    gpu: int | None = None
    job_id: int | None = None
    rack: str | None = None
    tenant: str | None = None

    @property
    def summary(self) -> str:
        a = self.annotations
        return a.get("summary") or a.get("description") or a.get("message") or self.name


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    state: str  # "active" | "pending" | "expired"

    @property
    def is_ack(self) -> bool:
        """An acknowledgement is a silence whose comment starts with ``ACK!`` (karma's convention)."""
        return self.comment.startswith("ACK!")


@dataclass(frozen=True, eq=False)
class AlertsUpdate:
    time: float
    alerts: tuple[Alert, ...]
    silences: tuple[Silence, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class HistorySeed:
    """Cluster series from before the console's own history began (or from a gap in it), read
    back from a source that keeps history (Prometheus), so plots do not start empty.

    ``series`` maps a `History.series` key ("delivered_pf", "installed_pf") to ``(t, values)``:
    float64 epoch seconds (ascending) and float32 values, NaN where the source had no point.
    The state writes a seed only where it has no sample of its own, never over one.
    """

    series: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    step_s: float = 60.0  # the grid the points were asked on (one-minute bucket centres)


Update = TelemetryUpdate | SchedulerUpdate | AlertsUpdate | HistorySeed


# ---------------------------------------------------------------------------------------------
# Anomalies and causes (analytics output)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What an anomaly or cause is about: a level of the topology or of the workload, and a key."""

    # "gpu" | "node" | "rack" | "row" | "pdu" | "switch" | "job" | "tenant" | "partition" | "cluster"
    # | "exporter"
    level: str
    key: str  # e.g. "n0123/3", "n0123", "R07", "4812", "hku", "training", "cluster"


@dataclass(frozen=True)
class Anomaly:
    id: str
    kind: str  # detector name, e.g. "gpu_outlier", "job_stall", "xid", "thermal_trend"
    subject: Subject
    score: float
    started_at: float
    last_seen: float
    evidence: str
    severity: Severity = Severity.WARNING
    node: str | None = None
    gpu: int | None = None
    job_id: int | None = None
    rack: str | None = None
    tenant: str | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class Cause:
    """A ranked hypothesis: what probably went wrong, the evidence, the blast radius, what to do."""

    id: str
    title: str
    kind: str
    confidence: float  # 0..1
    subject: Subject
    evidence: tuple[str, ...]
    action: str
    started_at: float
    gpus: int = 0
    nodes: tuple[str, ...] = ()
    jobs: tuple[int, ...] = ()
    tenants: tuple[str, ...] = ()
    gpu_hours_at_risk: float = 0.0
    anomaly_ids: tuple[str, ...] = ()
    severity: Severity = Severity.WARNING


# ---------------------------------------------------------------------------------------------
# Source status and the frame
# ---------------------------------------------------------------------------------------------


class SourceState(enum.Enum):
    WAITING = "waiting"  # no answer yet
    OK = "ok"
    SLOW = "slow"  # answered, but took longer than its interval
    FAILING = "failing"  # last attempt failed; data (if any) is getting old
    STALE = "stale"  # no good data for more than 3 intervals


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str  # "telemetry" | "scheduler" | "alerts" | "simulator"
    state: SourceState
    interval_s: float
    last_success: float | None  # fetch time of the newest good data
    last_attempt: float | None
    latency_s: float | None
    error: str | None  # plain words, never a secret
    error_kind: str | None
    consecutive_failures: int = 0
    detail: str = ""  # e.g. API version, server version

    def age_s(self, now: float) -> float | None:
        return None if self.last_success is None else max(0.0, now - self.last_success)


@dataclass(frozen=True, eq=False)
class GpuFrame:
    """Per-GPU arrays on the topology's flat GPU index (float32, NaN = no data)."""

    util: np.ndarray
    tensor: np.ndarray
    sm_clock: np.ndarray
    temp: np.ndarray
    power: np.ndarray
    fb_used: np.ndarray
    xid: np.ndarray
    ecc_dbe: np.ndarray
    nvlink_crc: np.ndarray
    throttle: np.ndarray
    delivered_tflops: np.ndarray  # float32, the per-GPU delivered figure
    health: np.ndarray  # int8 Health
    job_row: np.ndarray  # int32 row in Frame.jobs, -1 none
    job_id: np.ndarray  # int64, 0 none
    tenant: np.ndarray  # int16 row in Frame.tenants, -1 none
    #: float32 enforced power limit (W); None when the source does not report it at all.
    power_limit: np.ndarray | None = None


@dataclass(frozen=True)
class Kpis:
    """The headline figures; ``status --json`` prints exactly these (plus sources).

    A figure is ``None`` when it is unknown: every source it derives from has never answered,
    or its data is past the stale limit. Unknown is never written as 0 (README, contract).
    """

    installed_pf: float | None
    available_pf: float | None
    allocated_pf: float | None
    busy_pf: float | None
    delivered_pf: float | None
    precision: str
    gpus_total: int | None
    gpus_available: int | None
    gpus_healthy: int | None
    gpus_allocated: int | None
    gpus_busy: int | None
    gpus_by_health: Mapping[str, int] | None
    nodes_total: int | None
    nodes_by_state: Mapping[str, int] | None
    jobs_running: int | None
    jobs_pending: int | None
    gpus_pending: int | None
    alerts_firing: int | None
    alerts_by_severity: Mapping[str, int] | None
    anomalies_open: int | None = 0


@dataclass(frozen=True, eq=False)
class TenantTable:
    """One row per tenant (Slurm account), columnar."""

    account: tuple[str, ...]
    display: tuple[str, ...]
    kind: tuple[str, ...]
    subsidy: np.ndarray  # float32 0..0.7
    price_per_gpu_hour: np.ndarray  # float32 list price
    gpus_in_use: np.ndarray  # int32
    share: np.ndarray  # float32 share of installed GPUs
    delivered_pf: np.ndarray  # float32
    efficiency: np.ndarray  # float32 delivered / allocated peak, NaN without data
    jobs_running: np.ndarray  # int32
    jobs_pending: np.ndarray  # int32
    gpus_pending: np.ndarray  # int32
    cost_per_hour: np.ndarray  # float32 list price x GPUs in use
    subsidy_per_hour: np.ndarray  # float32 the part a subsidy scheme pays

    def __len__(self) -> int:
        return len(self.account)

    def index(self, account: str) -> int:
        return self.account.index(account)


@dataclass(frozen=True, eq=False)
class History:
    """Recent cluster series for plots: float64 epoch seconds and float32 values (NaN gaps)."""

    t: np.ndarray
    series: Mapping[str, np.ndarray]  # "delivered_pf", "installed_pf", "available_pf", "allocated_pf", "busy_pf", "jobs_pending"
    tenant_delivered_pf: np.ndarray  # float32[len(t), n_tenants] in TenantTable order
    tenant_gpus: np.ndarray  # float32[len(t), n_tenants]
    #: float32[len(t), n_tenants]: GPUs the tenant's pending jobs ask for (queue depth over
    #: time, "Why GPUs wait"); NaN while the scheduler was not read. Empty where not kept.
    tenant_gpus_pending: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything the screen needs at one instant, consistent with itself.

    ``data_time`` gives, per kind of data ("telemetry", "scheduler", "alerts"), the fetch time
    of the data it shows, so each panel can show its age and grey itself out when stale.
    """

    seq: int
    time: float
    cluster: str
    topology: Topology
    gpu: GpuFrame
    nodes: NodeTable  # aligned with topology.node_names
    node_health: np.ndarray  # int8 Health per node
    jobs: JobTable
    kpis: Kpis
    tenants: TenantTable
    history: History
    alerts: tuple[Alert, ...]
    silences: tuple[Silence, ...]
    anomalies: tuple[Anomaly, ...]
    causes: tuple[Cause, ...]
    sources: tuple[SourceStatus, ...]
    data_time: Mapping[str, float | None]
    stale_after_s: Mapping[str, float]
    simulated: bool = False
    #: "Now" on the data's own clock (the simulator's clock runs faster under --speed):
    #: use it, not ``time``, for wait and run times of jobs.
    data_now: float = 0.0
    #: The newest accounting read and its arithmetic (a `console.accounting.view.AccountingView`,
    #: typed loosely because the model imports nothing of the console); None without accounting.
    accounting: object | None = None
    #: False when the job list is not known at all (a past moment rebuilt from the journal,
    #: which keeps job events and minute totals, not the list): panels say so instead of
    #: showing an empty queue as "0 jobs".
    jobs_known: bool = True

    def age_s(self, kind: str) -> float | None:
        t = self.data_time.get(kind)
        return None if t is None else max(0.0, self.time - t)

    def is_stale(self, kind: str) -> bool:
        age = self.age_s(kind)
        limit = self.stale_after_s.get(kind)
        return age is None or (limit is not None and age > limit)


def freeze_arrays(obj: object) -> None:
    """Make every numpy array reachable from ``obj`` through dataclass fields and mapping values
    read-only, in place.

    Why: a published `Frame` is shared by every panel (and, with the engine in a thread, with
    the engine itself); a panel that wrote into one of its arrays would change what the other
    panels and the state see. With the flag off such a write raises at once instead. Tuples are
    not walked: they hold frozen dataclasses without arrays (alerts, anomalies, causes).
    """
    stack: list[object] = [obj]
    seen: set[int] = set()
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            o.flags.writeable = False
        elif isinstance(o, Mapping):
            stack.extend(o.values())
        elif hasattr(o, "__dataclass_fields__"):
            stack.extend(getattr(o, name) for name in o.__dataclass_fields__)

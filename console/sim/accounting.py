"""The simulated centre's accounting history: what slurmdbd would hold for it.

Every job the simulator ends is recorded as it ends (before its row is recycled), running jobs
are read from the live store, and the months before the simulation started are backfilled once,
on the first read, by running the same job samplers at the same load over the calendar: so a
statement of last month has content the moment the console starts.

Why columnar: a month and more of a 4,096-node centre is ~400,000 jobs. Kept as one object per
job (and one per observation) that was ~160 MiB of the engine's memory; kept as numpy columns
(`_History`) it is ~20 MiB, and a read hands its rows over as a `UsageTable` directly
(`TableJobs`), with no object per row. Only what a read can be asked for is kept: jobs that
ended before the read window (last month and this one, at least 31 days) are dropped.

It answers like any `AccountingSource`; limits are the simulated tenants' GPU quotas
(``GrpTRES``) and a monthly GPU-minute budget (``GrpTRESMins``), fair share comes from the last
week's usage the way Slurm's classic formula computes it. The simulator is also its own
telemetry history: `observations` gives each job's delivered and peak TFLOPS per GPU and its
idle share, as a Prometheus with long retention would.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

import numpy as np

from console.accounting.periods import Period, local_zone, month_of, month_period, previous_month
from console.accounting.records import AccountingSnapshot, FairShare, GpuLimit
from console.accounting.table import JobObservation, TableJobs, UsageTable
from console.model import JobState
from console.sim.cluster import SimCluster
from console.sim.jobs import KIND_DEBUG, KIND_INFER

_HOUR = 3600.0
#: Share of GPU-time a job's GPUs sit idle while allocated, by job kind (low, high): training
#: pauses for checkpoints and data, serving endpoints idle between requests, notebooks mostly.
_IDLE = {0: (0.01, 0.08), KIND_INFER: (0.10, 0.40), KIND_DEBUG: (0.30, 0.65)}
#: Each tenant's monthly GPU-minute budget as a multiple of its usage in the backfilled month.
_BUDGET_FACTORS = (0.9, 1.1, 1.3, 1.6, 2.0)
#: Jobs ended in the simulation are buffered as tuples and joined to the columns this often.
_FLUSH = 8192
#: Sampled jobs per tenant and partition the backfill draws from.
_POOL = 160


def _idle_share(job_id: int, kind: int) -> float:
    lo, hi = _IDLE.get(kind, _IDLE[0])
    return lo + (hi - lo) * ((job_id * 2654435761) % 1000) / 1000.0


def _idle_shares(job_id: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """`_idle_share` of many jobs at once (the same arithmetic, exact in int64)."""
    lo = np.array([_IDLE.get(k, _IDLE[0])[0] for k in range(max(_IDLE) + 1)])
    hi = np.array([_IDLE.get(k, _IDLE[0])[1] for k in range(max(_IDLE) + 1)])
    k = np.clip(kind.astype(np.int64), 0, len(lo) - 1)
    k = np.where(np.isin(kind, list(_IDLE)), k, 0)
    frac = ((job_id.astype(np.int64) * 2654435761) % 1000) / 1000.0
    return lo[k] + (hi[k] - lo[k]) * frac


def read_window_since(now: float, tz: tzinfo) -> float:
    """Where reads begin (console.accounting.service.read_window_start: last month's start, or
    31 days back if earlier); nothing that ended before it is ever asked for."""
    return min(month_period(previous_month(month_of(now, tz)), tz).since, now - 31 * 86400.0)


#: One job per row: (job_id int64, tenant int16, user code int32, partition code int16,
#: state int8 (JobState), submit, start, end float64 (NaN = never started / still running),
#: gpus int32, delivered TFLOPS per GPU float32 (NaN = not observed), idle share float32).
_COLUMNS: tuple[tuple[str, type], ...] = (
    ("job_id", np.int64), ("tenant", np.int16), ("user", np.int32), ("partition", np.int16),
    ("state", np.int8), ("submit", np.float64), ("start", np.float64), ("end", np.float64),
    ("gpus", np.int32), ("delivered", np.float32), ("idle", np.float32))


@dataclass
class _History:
    """Jobs as numpy columns (see `_COLUMNS`); rows in no particular order."""

    cols: dict[str, np.ndarray]

    @classmethod
    def empty(cls) -> "_History":
        return cls({name: np.zeros(0, dtype) for name, dtype in _COLUMNS})

    @classmethod
    def of_rows(cls, rows: list[tuple]) -> "_History":
        if not rows:
            return cls.empty()
        data = list(zip(*rows))
        return cls({name: np.array(data[i], dtype) for i, (name, dtype) in enumerate(_COLUMNS)})

    def __len__(self) -> int:
        return int(self.cols["job_id"].shape[0])

    def take(self, mask: np.ndarray) -> "_History":
        return _History({k: v[mask] for k, v in self.cols.items()})

    def __add__(self, other: "_History") -> "_History":
        return _History({k: np.concatenate([v, other.cols[k]]) for k, v in self.cols.items()})

    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.cols.values())


class SimAccounting:
    """`AccountingSource` over one `SimCluster`. Thread-safe: ``read`` runs in the engine's
    accounting thread while the poller steps the simulation."""

    name = "simulator accounting"

    def __init__(self, cluster: SimCluster, *, tz: tzinfo | None = None) -> None:
        self.cluster = cluster
        self.tz = tz or local_zone()
        self._lock = threading.Lock()
        self._ended = _History.empty()
        self._pending: list[tuple] = []  # ended since the last flush (tuples of `_COLUMNS`)
        self._backfill: _History | None = None
        self._backfill_lock = threading.Lock()
        self._budgets: dict[str, int] = {}
        self._users: dict[str, int] = {}
        self._parts: dict[str, int] = {}
        self._codes_lock = threading.Lock()
        self._kept_since = -math.inf  # jobs that ended before this were dropped
        self.t0 = cluster.time
        cluster.workload.on_end = self._ended_slot

    @classmethod
    def of(cls, cluster: SimCluster) -> "SimAccounting":
        """The one history of ``cluster`` (made and hooked in on first use)."""
        acc = getattr(cluster, "_accounting", None)
        if acc is None:
            acc = cls(cluster)
            cluster._accounting = acc  # type: ignore[attr-defined]
        return acc

    def now(self) -> float:
        """The simulation's clock (it runs faster than the wall's under --speed)."""
        return float(self.cluster.time)

    def _code(self, table: dict[str, int], name: str) -> int:
        """The code of a user or partition name (the backfill and the poller both add names,
        from two threads: one code per name needs the lock)."""
        code = table.get(name)
        if code is None:
            with self._codes_lock:
                code = table.setdefault(name, len(table))
        return code

    # -- recording ------------------------------------------------------------------------------
    def _live_rows(self, slots: np.ndarray, *, running: bool) -> _History:
        """Rows of the store's ``slots`` (called under the cluster's lock)."""
        cl = self.cluster
        c = cl.workload.store.c
        start = c["start"][slots].astype(np.float64)
        started = np.isfinite(start)
        names = [p.name for p in cl.partitions]
        peak = cl.config.peak_tflops
        job_id = c["job_id"][slots].astype(np.int64)
        return _History({
            "job_id": job_id, "tenant": c["account"][slots].astype(np.int16),
            "user": np.array([self._code(self._users, str(u)) for u in c["user"][slots].tolist()],
                             np.int32),
            "partition": np.array([self._code(self._parts, names[int(p)])
                                   for p in c["partition"][slots].tolist()], np.int16),
            "state": c["state"][slots].astype(np.int8),
            "submit": c["submit"][slots].astype(np.float64),
            "start": np.where(started, start, np.nan),
            "end": (np.full(len(slots), np.nan) if running
                    else c["end"][slots].astype(np.float64)),
            "gpus": np.where(started, c["gpus"][slots], 0).astype(np.int32),
            "delivered": np.where(started, c["eff"][slots] * peak, np.nan).astype(np.float32),
            "idle": np.where(started, _idle_shares(job_id, c["kind"][slots]),
                             np.nan).astype(np.float32)})

    def _ended_slot(self, slot: int) -> None:
        """Workload hook (called under the cluster's lock as a job ends): one tuple, cheap."""
        row = self._live_rows(np.array([slot]), running=False)
        with self._lock:
            self._pending.append(tuple(v[0] for v in row.cols.values()))
            if len(self._pending) >= _FLUSH:
                self._flush()

    def _flush(self) -> None:
        """The buffered ended jobs join the columns; what no read can ask for goes (under
        ``self._lock``)."""
        if self._pending:
            self._ended = self._ended + _History.of_rows(self._pending)
            self._pending = []
        keep = read_window_since(self.now(), self.tz)
        if keep > self._kept_since:
            for name in ("_ended", "_backfill"):
                h = getattr(self, name)
                if h is not None and len(h):
                    old = h.cols["end"] < keep
                    if old.any():
                        setattr(self, name, h.take(~old))
            self._kept_since = keep

    def memory_bytes(self) -> int:
        """Bytes held by the history's columns (benchmarks and tests)."""
        with self._lock:
            return sum(h.nbytes() for h in (self._ended, self._backfill) if h is not None)

    # -- the backfilled months ----------------------------------------------------------------
    def _ensure_backfill(self) -> _History:
        with self._backfill_lock:
            if self._backfill is None:
                made = self._make_backfill()
                with self._lock:
                    self._backfill = made
            return self._backfill

    def _make_backfill(self) -> _History:
        """Jobs from the start of last month to the simulation's start, at the live load."""
        cl = self.cluster
        wl = cl.workload
        t0 = self.t0
        since = month_period(previous_month(month_of(t0, self.tz)), self.tz).since
        rng = np.random.default_rng([cl.config.seed, 2026])
        with cl._lock:  # the warm start's running jobs: their GPUs are taken before t0
            c = wl.store.c
            live = np.flatnonzero(c["live"] & np.isfinite(c["start"]) & (c["start"] <= t0))
            live_part, live_start = c["partition"][live].copy(), c["start"][live].copy()
            live_gpus = c["gpus"][live].astype(np.int64)
        raw: list[tuple[float, float, float, int, int, dict]] = []
        tenants = np.arange(len(wl.profiles))
        for pi, p in enumerate(wl.parts):
            if p.gpus == 0:
                continue
            # The samplers are slow per call (~70 us); a month is ~50,000 jobs. Draw from a
            # pool of each tenant's jobs in this partition instead: the same distribution.
            pool = [[wl._sample(rng, p, 0.0, int(k)) for _ in range(_POOL)] for k in tenants]
            m = live_part == pi
            order = np.argsort(live_start[m])
            starts, cum = live_start[m][order].tolist(), np.cumsum(live_gpus[m][order]).tolist()
            k_live, live_used = 0, 0
            ends: list[tuple[float, int]] = []
            used: int = 0
            t = since - 2 * 24 * _HOUR  # start earlier so the month begins on a full machine
            draws: Iterator[tuple[int, int, float, float]] = iter(())
            while t < t0:
                while k_live < len(starts) and starts[k_live] <= t:
                    live_used = int(cum[k_live])
                    k_live += 1
                hour = ((t / _HOUR) + 8.0) % 24.0
                target = p.gpus * (0.86 + 0.06 * math.sin(2 * math.pi * (hour - 9.0) / 24.0))
                misses = 0
                while used + live_used < target and misses < 8:
                    try:
                        tenant, j, jitter, wait = next(draws)
                    except StopIteration:
                        n = 4096
                        draws = zip(rng.choice(tenants, n, p=wl.tenant_p).tolist(),
                                    rng.integers(0, _POOL, n).tolist(),
                                    rng.uniform(0, 120, n).tolist(),
                                    rng.exponential(1200, n).tolist())
                        continue
                    v = pool[tenant][j]
                    if used + live_used + v["gpus"] > p.gpus:
                        misses += 1
                        continue
                    start = t + jitter
                    end = start + min(v["runtime"], v["limit"])
                    if end > t0:  # the jobs running at t0 are the live simulation's own
                        misses += 1
                        continue
                    heapq.heappush(ends, (end, v["gpus"]))
                    used += v["gpus"]
                    raw.append((start - wait, start, end, pi, tenant, v))
                if not ends:  # nothing fits before t0 any more: the live jobs take over
                    t = min(t0, t + 600.0) if t < t0 - 600.0 else t0
                    continue
                t_next, g = heapq.heappop(ends)
                used -= g
                t = t_next
        raw.sort(key=lambda r: r[0])
        first = 100001 - len(raw)
        peak = cl.config.peak_tflops
        parts = [self._code(self._parts, p.name) for p in wl.parts]
        rows = [(first + k, tenant, self._code(self._users, v["user"]), parts[pi],
                 int(JobState(v["outcome"])), submit, start, end, int(v["gpus"]),
                 float(v["eff"]) * peak, _idle_share(first + k, int(v["kind"])))
                for k, (submit, start, end, pi, tenant, v) in enumerate(raw)]
        del raw
        out = _History.of_rows(rows)
        self._budgets = self._make_budgets(out, since)
        return out

    def _gpu_minutes(self, h: _History, since: float, until: float, now: float) -> np.ndarray:
        """float64[tenants]: GPU-minutes of ``h`` inside [since, until), running jobs to now."""
        c = h.cols
        end = np.where(np.isnan(c["end"]), now, c["end"])
        with np.errstate(invalid="ignore"):
            d = np.minimum(end, until) - np.maximum(c["start"], since)
        d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
        return np.bincount(c["tenant"].astype(np.int64), weights=d * c["gpus"] / 60.0,
                           minlength=len(self.cluster.tenants))

    def _make_budgets(self, jobs: _History, since: float) -> dict[str, int]:
        """A monthly GPU-minute budget per subsidised tenant (companies without subsidy have
        none): its backfilled month's use times a factor, so some budgets run out this month."""
        month = month_period(month_of(since, self.tz), self.tz)
        used = self._gpu_minutes(jobs, month.since, month.until, self.t0)
        out = {}
        for i, t in enumerate(self.cluster.tenants):
            if t.subsidy > 0 and used[i] > 0:
                out[t.account] = int(float(used[i]) * _BUDGET_FACTORS[i % len(_BUDGET_FACTORS)])
        return out

    # -- AccountingSource -----------------------------------------------------------------------
    def read(self, since: float, until: float) -> AccountingSnapshot:
        backfill = self._ensure_backfill()
        cl = self.cluster
        with cl._lock:
            now = cl.time
            c = cl.workload.store.c
            running = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)))
            current = self._live_rows(running, running=True)
            with self._lock:
                self._flush()
                backfill = self._backfill if self._backfill is not None else backfill
                ended = self._ended
        everything = backfill + ended + current
        hi = min(until, now)
        c = everything.cols
        started = np.isfinite(c["start"])
        with np.errstate(invalid="ignore"):  # sacct -S -E: eligible or ran inside the window
            ran = started & (c["start"] < hi) & (np.isnan(c["end"]) | (c["end"] > since))
            ended_unstarted = ~started & np.isfinite(c["end"]) & (c["end"] >= since) & (c["end"] < hi)
        table = self._table(everything.take(ran | ended_unstarted), now)
        month = month_period(month_of(now, self.tz), self.tz)
        limits = self._limits(everything, month, now)
        shares = self._shares(everything, now)
        # Nothing exists before the backfill: say so (a statement names the gap), never zeros.
        covered = month_period(previous_month(month_of(self.t0, self.tz)), self.tz).since
        covered = max(covered, self._kept_since) if math.isfinite(self._kept_since) else covered
        return AccountingSnapshot(jobs=TableJobs(table), limits=limits, shares=shares,
                                  since=max(since, covered), until=hi, taken_at=now,
                                  notes=(self._note(),))

    def _table(self, h: _History, now: float) -> UsageTable:
        """The rows as accounting's table, the simulator's telemetry history in it (observed
        from start to end, or to forever while running: the same as the console's ledger)."""
        c = h.cols
        cl = self.cluster
        n = len(h)
        with self._codes_lock:  # (names may be added meanwhile: a copy, taken under the lock)
            users = np.array(list(self._users) or [""], np.str_)
            parts = list(self._parts)

        def recode(codes: np.ndarray, names: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
            present, inverse = np.unique(codes, return_inverse=True)
            return inverse.astype(np.int32), tuple(names[int(k)] for k in present)

        account, accounts = recode(c["tenant"], list(cl.accounts))
        user, user_names = recode(c["user"], users.tolist())
        partition, partitions = recode(c["partition"], parts)
        state, states = recode(c["state"], [JobState(k).name if k in JobState._value2member_map_
                                            else str(k) for k in range(int(c["state"].max(initial=0)) + 1)])
        started = np.isfinite(c["start"])
        peak = np.float32(cl.config.peak_tflops)
        return UsageTable(
            # As wide as the longest id (int64 -> str_ alone would be 21 characters a row).
            job_id=(c["job_id"].astype(f"U{len(str(int(np.abs(c['job_id']).max())))+1}")
                    if n else np.zeros(0, "U1")),
            account=account, accounts=accounts, user=user, users=user_names,
            partition=partition, partitions=partitions, state=state, states=states,
            qos=np.zeros(n, np.int32), qoses=("",) if n else (),
            submit=c["submit"].copy(), start=c["start"].copy(), end=c["end"].copy(),
            gpus=c["gpus"].astype(np.int32),
            seen_from=np.where(started, c["start"], np.nan),
            seen_to=np.where(started, np.where(np.isnan(c["end"]), np.inf, c["end"]), np.nan),
            delivered_tflops=c["delivered"].astype(np.float32),
            peak_tflops=np.where(started, peak, np.float32(np.nan)).astype(np.float32),
            idle_share=c["idle"].astype(np.float32))

    def _note(self) -> str:
        when = datetime.fromtimestamp(self.t0, self.tz).strftime("%Y-%m-%d %H:%M")
        start = month_period(previous_month(month_of(self.t0, self.tz)), self.tz).since
        first = datetime.fromtimestamp(start, self.tz).strftime("%Y-%m-%d")
        return (f"simulated accounting: the jobs before the simulation started ({when}) are "
                f"backfilled from {first} at its usual load")

    def observations(self) -> Mapping[str, JobObservation]:
        """The simulator's telemetry history of every job it knows (objects, one per job: for
        callers that want them; reads carry the same in their table)."""
        with self._lock:
            self._flush()
            hs = [h for h in (self._backfill, self._ended) if h is not None]
        with self.cluster._lock:
            c = self.cluster.workload.store.c
            running = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)))
            hs.append(self._live_rows(running, running=True))
        out: dict[str, JobObservation] = {}
        peak = float(self.cluster.config.peak_tflops)
        for h in hs:
            c = h.cols
            for jid, s, e, d, i in zip(c["job_id"].tolist(), c["start"].tolist(),
                                       c["end"].tolist(), c["delivered"].tolist(),
                                       c["idle"].tolist()):
                if math.isfinite(s):
                    out[str(jid)] = JobObservation(str(jid), s, math.inf if math.isnan(e) else e,
                                                   d, peak, i)
        return out

    def _limits(self, jobs: _History, month: Period, now: float) -> list[GpuLimit]:
        """GrpTRES = the tenant's simulated GPU quota; GrpTRESMins = its monthly budget, with
        this month's GPU-minutes as its use (Slurm resets such budgets monthly at such sites)."""
        used = self._gpu_minutes(jobs, month.since, month.until, now)
        wl = self.cluster.workload
        return [GpuLimit("account", t.account, gpus=int(wl.quota[i]),
                         gpu_minutes=self._budgets.get(t.account),
                         used_gpu_minutes=(float(used[i]) if t.account in self._budgets else None))
                for i, t in enumerate(self.cluster.tenants)]

    def _shares(self, jobs: _History, now: float) -> list[FairShare]:
        week = now - 7 * 24 * _HOUR
        gpu_s = self._gpu_minutes(jobs, week, now, now) * 60.0
        used = {t.account: float(gpu_s[i]) for i, t in enumerate(self.cluster.tenants)
                if gpu_s[i] > 0}
        total = sum(used.values()) or 1.0
        weights = {p.info.account: p.weight for p in self.cluster.profiles}
        wsum = sum(weights.values())
        out = []
        for acct, w in weights.items():
            norm = w / wsum
            eff = used.get(acct, 0.0) / total
            out.append(FairShare(acct, None, int(round(w * 100)),
                                 norm / eff if eff > 0 else None, eff, 2.0 ** (-eff / norm)))
        return out

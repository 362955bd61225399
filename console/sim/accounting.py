"""The simulated centre's accounting history: what slurmdbd would hold for it.

Every job the simulator ends becomes a `JobUsage` (recorded as it ends, before its row is
recycled), running jobs are read from the live store, and the months before the simulation
started are backfilled once, on the first read, by running the same job samplers at the same
load over the calendar: so a statement of last month has content the moment the console starts.

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
from datetime import datetime, tzinfo

import numpy as np

from console.accounting.periods import Period, local_zone, month_of, month_period, previous_month
from console.accounting.records import AccountingSnapshot, FairShare, GpuLimit, JobUsage
from console.accounting.table import JobObservation
from console.model import JobState
from console.sim.cluster import SimCluster
from console.sim.jobs import KIND_DEBUG, KIND_INFER

_HOUR = 3600.0
#: Share of GPU-time a job's GPUs sit idle while allocated, by job kind (low, high): training
#: pauses for checkpoints and data, serving endpoints idle between requests, notebooks mostly.
_IDLE = {0: (0.01, 0.08), KIND_INFER: (0.10, 0.40), KIND_DEBUG: (0.30, 0.65)}
#: Each tenant's monthly GPU-minute budget as a multiple of its usage in the backfilled month.
_BUDGET_FACTORS = (0.9, 1.1, 1.3, 1.6, 2.0)
#: Ended jobs kept (a few months of a busy 3,000-GPU centre) before the oldest are dropped.
_KEEP_ENDED = 400_000
#: Sampled jobs per tenant and partition the backfill draws from.
_POOL = 160


def _idle_share(job_id: int, kind: int) -> float:
    lo, hi = _IDLE.get(kind, _IDLE[0])
    return lo + (hi - lo) * ((job_id * 2654435761) % 1000) / 1000.0


class SimAccounting:
    """`AccountingSource` over one `SimCluster`. Thread-safe: ``read`` runs in the engine's
    accounting thread while the poller steps the simulation."""

    name = "simulator accounting"

    def __init__(self, cluster: SimCluster, *, tz: tzinfo | None = None) -> None:
        self.cluster = cluster
        self.tz = tz or local_zone()
        self._lock = threading.Lock()
        self._ended: list[JobUsage] = []
        self._obs: dict[str, JobObservation] = {}
        self._backfill: list[JobUsage] | None = None
        self._backfill_lock = threading.Lock()
        self._budgets: dict[str, int] = {}
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

    # -- recording ------------------------------------------------------------------------------
    def _usage(self, slot: int, *, running: bool) -> JobUsage:
        wl = self.cluster.workload
        c = wl.store.c
        start = float(c["start"][slot])
        started = math.isfinite(start)
        state = JobState(int(c["state"][slot])).name
        return JobUsage(
            job_id=str(int(c["job_id"][slot])), account=self.cluster.accounts[int(c["account"][slot])],
            user=str(c["user"][slot]), partition=self.cluster.partitions[int(c["partition"][slot])].name,
            state=state, submit=float(c["submit"][slot]), start=start if started else None,
            end=None if running else float(c["end"][slot]),
            gpus=int(c["gpus"][slot]) if started else 0,
            nodes=tuple(wl.store.node_list[slot].split(",")) if wl.store.node_list[slot] else (),
            gpu_model=self.cluster.config.gpu_model)

    def _observe(self, slot: int, u: JobUsage) -> None:
        if u.start is None:
            return
        c = self.cluster.workload.store.c
        peak = self.cluster.config.peak_tflops
        self._obs[u.job_id] = JobObservation(
            u.job_id, u.start, math.inf if u.end is None else u.end,
            float(c["eff"][slot]) * peak, peak, _idle_share(int(c["job_id"][slot]), int(c["kind"][slot])))

    def _ended_slot(self, slot: int) -> None:
        """Workload hook (called under the cluster's lock as a job ends)."""
        u = self._usage(slot, running=False)
        with self._lock:
            self._ended.append(u)
            self._observe(slot, u)
            if len(self._ended) > _KEEP_ENDED:  # bounded: the oldest half goes (months old)
                for old in self._ended[:_KEEP_ENDED // 2]:
                    self._obs.pop(old.job_id, None)
                del self._ended[:_KEEP_ENDED // 2]

    # -- the backfilled months ----------------------------------------------------------------
    def _ensure_backfill(self) -> list[JobUsage]:
        with self._backfill_lock:
            if self._backfill is None:
                self._backfill = self._make_backfill()
            return self._backfill

    def _make_backfill(self) -> list[JobUsage]:
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
        out: list[JobUsage] = []
        peak = cl.config.peak_tflops
        for k, (submit, start, end, pi, tenant, v) in enumerate(raw):
            jid = str(first + k)
            u = JobUsage(jid, cl.accounts[tenant], v["user"], wl.parts[pi].name,
                         JobState(v["outcome"]).name, submit, start, end, int(v["gpus"]),
                         gpu_model=cl.config.gpu_model)
            out.append(u)
            self._obs[jid] = JobObservation(jid, start, end, float(v["eff"]) * peak, peak,
                                            _idle_share(first + k, int(v["kind"])))
        self._budgets = self._make_budgets(out, since)
        return out

    def _make_budgets(self, jobs: list[JobUsage], since: float) -> dict[str, int]:
        """A monthly GPU-minute budget per subsidised tenant (companies without subsidy have
        none): its backfilled month's use times a factor, so some budgets run out this month."""
        month = month_period(month_of(since, self.tz), self.tz)
        used: dict[str, float] = {}
        for j in jobs:
            if j.start is None or j.end is None:
                continue
            d = min(j.end, month.until) - max(j.start, month.since)
            if d > 0:
                used[j.account] = used.get(j.account, 0.0) + d * j.gpus / 60.0
        out = {}
        for i, t in enumerate(self.cluster.tenants):
            if t.subsidy > 0 and used.get(t.account):
                out[t.account] = int(used[t.account] * _BUDGET_FACTORS[i % len(_BUDGET_FACTORS)])
        return out

    # -- AccountingSource -----------------------------------------------------------------------
    def read(self, since: float, until: float) -> AccountingSnapshot:
        backfill = self._ensure_backfill()
        cl = self.cluster
        with cl._lock:
            now = cl.time
            c = cl.workload.store.c
            running = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)))
            current = [self._usage(int(s), running=True) for s in running]
            with self._lock:
                for s, u in zip(running.tolist(), current):
                    if u.job_id not in self._obs:
                        self._observe(int(s), u)
                ended = list(self._ended)
        jobs = [j for j in (*backfill, *ended, *current) if _overlaps(j, since, min(until, now))]
        month = month_period(month_of(now, self.tz), self.tz)
        limits = self._limits(backfill, ended, current, month, now)
        shares = self._shares(backfill, ended, current, now)
        # Nothing exists before the backfill: say so (a statement names the gap), never zeros.
        covered = month_period(previous_month(month_of(self.t0, self.tz)), self.tz).since
        return AccountingSnapshot(jobs=jobs, limits=limits, shares=shares, since=max(since, covered),
                                  until=min(until, now), taken_at=now,
                                  notes=(self._note(),))

    def _note(self) -> str:
        when = datetime.fromtimestamp(self.t0, self.tz).strftime("%Y-%m-%d %H:%M")
        start = month_period(previous_month(month_of(self.t0, self.tz)), self.tz).since
        first = datetime.fromtimestamp(start, self.tz).strftime("%Y-%m-%d")
        return (f"simulated accounting: the jobs before the simulation started ({when}) are "
                f"backfilled from {first} at its usual load")

    def observations(self) -> Mapping[str, JobObservation]:
        """The simulator's telemetry history of every job it knows (a copy)."""
        with self._lock:
            return dict(self._obs)

    def _limits(self, backfill: list[JobUsage], ended: list[JobUsage], current: list[JobUsage],
                month: Period, now: float) -> list[GpuLimit]:
        """GrpTRES = the tenant's simulated GPU quota; GrpTRESMins = its monthly budget, with
        this month's GPU-minutes as its use (Slurm resets such budgets monthly at such sites)."""
        used: dict[str, float] = {}
        for jobs in (backfill, ended, current):
            for j in jobs:
                if j.start is None:
                    continue
                d = min(now if j.end is None else j.end, month.until) - max(j.start, month.since)
                if d > 0:
                    used[j.account] = used.get(j.account, 0.0) + d * j.gpus / 60.0
        wl = self.cluster.workload
        return [GpuLimit("account", t.account, gpus=int(wl.quota[i]),
                         gpu_minutes=self._budgets.get(t.account),
                         used_gpu_minutes=(used.get(t.account, 0.0)
                                           if t.account in self._budgets else None))
                for i, t in enumerate(self.cluster.tenants)]

    def _shares(self, backfill: list[JobUsage], ended: list[JobUsage], current: list[JobUsage],
                now: float) -> list[FairShare]:
        week = now - 7 * 24 * _HOUR
        used: dict[str, float] = {}
        for j in (*backfill, *ended, *current):
            if j.start is None:
                continue
            d = min(now if j.end is None else j.end, now) - max(j.start, week)
            if d > 0:
                used[j.account] = used.get(j.account, 0.0) + d * j.gpus
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


def _overlaps(j: JobUsage, since: float, until: float) -> bool:
    """Accounting returns jobs that were eligible or ran inside the window (sacct -S -E)."""
    if j.start is None:
        return j.end is not None and since <= j.end < until
    return j.start < until and (j.end is None or j.end > since)

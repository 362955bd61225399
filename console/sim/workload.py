"""The simulated workload: job arrivals, sizes, durations, outcomes, and a small scheduler.

Arrivals are Poisson with a diurnal swing and a queue feedback (users submit less when the
queue is long), tuned (offered load ~0.95x) so that the machine runs ~85-95% allocated with a pending queue of
tens to hundreds of jobs, like a busy public centre. The scheduler is first-fit over whole
nodes for multi-node jobs and best-fit over free GPUs for single-node jobs, in priority
order, with backfill until the top job has waited long enough to earn a reservation.

Invariant (tests check it): ``gpu_job`` is the only record of who holds a GPU, so a GPU
belongs to at most one job and allocated GPUs never exceed installed GPUs by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from console.model import JobState
from console.hostlist import compress
from console.sim.jobs import KIND_DEBUG, KIND_INFER, KIND_TRAIN, R, JobStore
from console.sim.tenants import TenantProfile

HOUR = 3600.0
_TRAIN_SIZES = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
_TRAIN_P = np.array([.12, .05, .10, .28, .14, .11, .09, .06, .03, .02])
_SMALL_SIZES = np.array([1, 2, 4, 8])
_INFER_P = np.array([.30, .20, .25, .25])
_DEBUG_P = np.array([.40, .20, .20, .20])
_TRAIN_LIMITS = np.array([2, 6, 12, 24, 48, 72]) * HOUR
_NAMES = {
    KIND_TRAIN: ("llama3-70b-sft", "qwen2-pretrain", "moe-8x7b", "vit-h-clip", "diffusion-xl-ft",
                 "rlhf-ppo", "cantonese-asr", "protein-fold", "mamba-ablation", "code-llm-pt"),
    KIND_INFER: ("vllm-serve", "triton-infer", "batch-embed", "eval-harness", "tgi-chat"),
    KIND_DEBUG: ("nccl-test", "jupyter", "debug-run", "profile-nsys", "dataloader-test"),
}
#: Partition kinds by the order partitions are created in SimCluster.
PARTITION_KIND = (KIND_TRAIN, KIND_INFER, KIND_DEBUG)


@dataclass
class Partition:
    name: str
    kind: int
    mask: np.ndarray  # bool[nodes]
    gpus: int
    max_size: int
    rate: float = 0.0  # arrivals per second at diurnal mean, before feedback


class Workload:
    """Owns the job store and the GPU allocation; not thread-safe (SimCluster locks)."""

    def __init__(self, rng: np.random.Generator, profiles: tuple[TenantProfile, ...],
                 partitions: list[Partition], node_names: tuple[str, ...], gpus_per_node: int,
                 first_job_id: int = 100001) -> None:
        self.rng = rng
        self.profiles = profiles
        self.parts = partitions
        self.node_names = node_names
        self.gpn = gpus_per_node
        n = len(node_names)
        self.gpu_job = np.full((n, gpus_per_node), -1, np.int32)
        self.store = JobStore(capacity=max(1024, n * 4))
        self.alloc: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.next_id = first_job_id
        w = np.array([p.weight for p in profiles], float)
        self.tenant_p = w / w.sum()
        total = n * gpus_per_node
        self.quota = np.array([max(gpus_per_node, int(p.quota_share * total)) for p in profiles])
        self.user_cap = max(gpus_per_node, total // 6)
        self.last_job_of_user: dict[str, int] = {}
        #: Called with the slot of every job that ends, before its row may be recycled (the
        #: simulator's accounting history, console/sim/accounting.py, records it there).
        self.on_end: Callable[[int], None] | None = None
        self._tune_rates()

    # -- sampling -----------------------------------------------------------------------------
    def _tune_rates(self) -> None:
        """Set each partition's arrival rate for an offered load of ~0.95x its GPUs.

        The mean GPU-seconds per job comes from the samplers themselves (on a private
        generator, so tuning does not disturb the simulation's random stream).
        """
        probe = np.random.default_rng(12345)
        for p in self.parts:
            if p.gpus == 0:
                continue
            loads = []
            for _ in range(600):
                v = self._sample(probe, p, 0.0, int(probe.choice(len(self.profiles), p=self.tenant_p)))
                loads.append(v["gpus"] * min(v["runtime"], v["limit"]))
            p.rate = 0.95 * p.gpus / float(np.mean(loads))

    def _size(self, rng: np.random.Generator, p: Partition, cap: int) -> int:
        """A job size in GPUs, at most ``cap`` (the partition, tenant and user limits): Slurm
        would reject a job that can never fit its limits, so the sampler never makes one."""
        if p.kind == KIND_TRAIN:
            size = int(rng.choice(_TRAIN_SIZES, p=_TRAIN_P))
        else:
            size = int(rng.choice(_SMALL_SIZES, p=_INFER_P if p.kind == KIND_INFER else _DEBUG_P))
        size = max(1, min(size, cap))
        if size > self.gpn:  # multi-node jobs take whole nodes
            size = (size // self.gpn) * self.gpn
        return size

    def _sample(self, rng: np.random.Generator, p: Partition, t: float, tenant: int) -> dict:
        prof = self.profiles[tenant]
        gpus = self._size(rng, p, min(p.max_size, int(self.quota[tenant]) // 2, self.user_cap))
        if p.kind == KIND_TRAIN:
            runtime = float(np.clip(rng.lognormal(math.log(3 * HOUR), 1.1), 300, 96 * HOUR))
            fits = _TRAIN_LIMITS[_TRAIN_LIMITS >= runtime * 1.3]
            limit = float(fits[0]) if len(fits) else float(_TRAIN_LIMITS[-1])
            if rng.random() < 0.05:
                limit = float(_TRAIN_LIMITS[max(0, int(np.searchsorted(_TRAIN_LIMITS, runtime)) - 1)])
            eff = float(np.clip(rng.normal(prof.efficiency, 0.08), 0.05, 0.85))
            util = float(rng.uniform(88, 100))
            mem = float(rng.uniform(0.6, 0.97))
        elif p.kind == KIND_INFER:
            runtime = float(np.clip(rng.lognormal(math.log(10 * HOUR), 0.8), 1800, 7 * 24 * HOUR))
            limit = 7 * 24 * HOUR
            eff = float(rng.uniform(0.05, 0.25))
            util = float(rng.uniform(35, 80))
            mem = float(rng.uniform(0.3, 0.9))
        else:
            runtime = float(np.clip(rng.lognormal(math.log(900), 0.8), 60, 2 * HOUR))
            limit = HOUR
            eff = float(rng.uniform(0.0, 0.3))
            util = float(rng.uniform(20, 90))
            mem = float(rng.uniform(0.05, 0.6))
        outcome, exit_code = int(JobState.COMPLETED), 0
        if runtime >= limit:
            outcome, exit_code = int(JobState.TIMEOUT), 0
        else:
            r = rng.random()
            if r < 0.06:
                outcome, exit_code = int(JobState.FAILED), int(rng.choice([1, 2, 137, 139]))
                runtime *= float(rng.uniform(0.02, 0.6))
            elif r < 0.10:
                outcome, exit_code = int(JobState.CANCELLED), 0
                runtime *= float(rng.uniform(0.05, 0.9))
        user = prof.users[int(rng.integers(len(prof.users)))]
        base = _NAMES[p.kind][int(rng.integers(len(_NAMES[p.kind])))]
        return dict(
            name=base, user=user, account=tenant, partition=self.parts.index(p),
            gpus=gpus, nodes=max(1, gpus // self.gpn) if gpus > self.gpn else 1,
            submit=t, runtime=max(30.0, runtime), limit=limit, outcome=outcome, exit=exit_code,
            eff=eff, util=util, mem=mem, kind=p.kind,
            ckpt=float(rng.uniform(1800, 7200)),
            prio=float(10000 * (1.0 - prof.quota_share) + rng.uniform(0, 500)),
        )

    # -- submission ---------------------------------------------------------------------------
    def submit(self, t: float, p: Partition, tenant: int | None = None, *,
               surge: int = -1, allow_extras: bool = True) -> list[int]:
        """Submit one job (or one job array) and return its slots."""
        rng = self.rng
        if tenant is None:
            tenant = int(rng.choice(len(self.profiles), p=self.tenant_p))
        v = self._sample(rng, p, t, tenant)
        v["surge"] = surge
        tasks = 1
        if allow_extras and p.kind != KIND_INFER and v["gpus"] <= self.gpn and rng.random() < 0.06:
            tasks = int(rng.integers(4, 17))
        if allow_extras and rng.random() < 0.02:
            v["hold_until"] = t + float(rng.uniform(600, 2 * HOUR))
        if allow_extras and tasks == 1 and rng.random() < 0.08:
            prev = self.last_job_of_user.get(v["user"])
            if prev is not None and self.store.slot_of(prev) is not None:
                v["dep"] = prev
        slots = []
        first = self.next_id
        for k in range(tasks):
            vals = dict(v)
            vals["job_id"] = self.next_id
            self.next_id += 1
            if tasks > 1:
                vals["array_job_id"] = first
                vals["array_task_id"] = k
                vals["name"] = f"{v['name']}-sweep"
            vals["state"] = int(JobState.PENDING)
            vals["reason"] = R["Priority"]
            slots.append(self.store.add(**vals))
        self.last_job_of_user[v["user"]] = first
        return slots

    def arrivals(self, t: float, dt: float) -> None:
        c = self.store.c
        # Only jobs waiting for the machine count as "a long queue" for the users.
        pend = (c["live"] & (c["state"] == int(JobState.PENDING)) & (c["surge"] < 0)
                & ((c["reason"] == R["Priority"]) | (c["reason"] == R["Resources"])))
        pend_gpus = np.bincount(c["partition"][pend], weights=c["gpus"][pend], minlength=len(self.parts))
        hour = ((t / HOUR) + 8.0) % 24.0  # Hong Kong local time
        diurnal = 1.0 + 0.35 * math.sin(2 * math.pi * (hour - 9.0) / 24.0)
        for i, p in enumerate(self.parts):
            if p.rate <= 0:
                continue
            feedback = 1.0 / (1.0 + (pend_gpus[i] / (0.35 * p.gpus)) ** 2)
            for _ in range(int(self.rng.poisson(p.rate * diurnal * feedback * dt))):
                self.submit(t, p)

    # -- running and ending -------------------------------------------------------------------
    def start(self, slot: int, t: float, nodes: np.ndarray, gpus: np.ndarray) -> None:
        c = self.store.c
        self.gpu_job[nodes, gpus] = slot
        self.alloc[slot] = (nodes, gpus)
        c["state"][slot] = int(JobState.RUNNING)
        c["reason"][slot] = R["None"]
        c["start"][slot] = t
        c["nodes"][slot] = len(np.unique(nodes))
        self.store.node_list[slot] = compress(self.node_names[i] for i in np.unique(nodes))

    def end(self, slot: int, t: float, state: JobState, exit_code: int | None = None,
            reason: str = "None") -> None:
        """End a pending or running job and free its GPUs (idempotent for finished jobs)."""
        c = self.store.c
        if c["state"][slot] not in (int(JobState.PENDING), int(JobState.RUNNING)):
            return
        held = self.alloc.pop(slot, None)
        if held is not None:
            self.gpu_job[held[0], held[1]] = -1
        c["state"][slot] = int(state)
        c["end"][slot] = t
        c["reason"][slot] = R[reason]
        c["hung"][slot] = False
        if exit_code is not None:
            c["exit"][slot] = exit_code
        if self.on_end is not None:
            self.on_end(slot)
        self.store.finish(slot)

    def complete_due(self, t: float) -> None:
        c = self.store.c
        run = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)))
        due_at = c["start"][run] + np.minimum(c["runtime"][run], c["limit"][run])
        for slot in run[due_at <= t]:
            out = JobState(int(c["outcome"][slot]))
            when = float(c["start"][slot] + min(c["runtime"][slot], c["limit"][slot]))
            reason = {JobState.TIMEOUT: "TimeLimit", JobState.FAILED: "NonZeroExitCode"}.get(out, "None")
            self.end(int(slot), when, out, None, reason)

    def housekeeping(self, t: float) -> None:
        """Users give up on jobs whose dependency can never be met."""
        c = self.store.c
        stuck = np.flatnonzero(c["live"] & (c["state"] == int(JobState.PENDING))
                               & (c["reason"] == R["DependencyNeverSatisfied"])
                               & (t - c["submit"] > 2 * HOUR))
        for slot in stuck:
            self.end(int(slot), t, JobState.CANCELLED, 0, "DependencyNeverSatisfied")

    # -- scheduling ---------------------------------------------------------------------------
    def schedule(self, t: float, usable: np.ndarray) -> None:
        """One scheduler pass over the pending queue in priority order.

        ``usable`` is bool[nodes]: nodes that may take new work (not drained, down or failed).
        """
        st = self.store
        c = st.c
        pending = np.flatnonzero(c["live"] & (c["state"] == int(JobState.PENDING)))
        if len(pending) == 0:
            return
        key = c["prio"][pending] + (t - c["submit"][pending]) / 60.0
        pending = pending[np.argsort(-key, kind="stable")]
        free = (self.gpu_job < 0).sum(axis=1).astype(np.int32)
        free[~usable] = 0
        part_free = np.array([int(free[p.mask].sum()) for p in self.parts])
        running = np.flatnonzero(c["live"] & (c["state"] == int(JobState.RUNNING)))
        tenant_alloc = np.bincount(c["account"][running], weights=c["gpus"][running],
                                   minlength=len(self.profiles)).astype(np.int64)
        user_alloc: dict[str, int] = {}
        for u, g in zip(c["user"][running].tolist(), c["gpus"][running].tolist()):
            user_alloc[u] = user_alloc.get(u, 0) + g
        blocked = [False] * len(self.parts)
        first_blocked = [False] * len(self.parts)
        gpn = self.gpn
        for slot in pending.tolist():
            pi = int(c["partition"][slot])
            g = int(c["gpus"][slot])
            acct = int(c["account"][slot])
            user = str(c["user"][slot])
            hold = c["hold_until"][slot]
            if hold == hold and hold > t:  # not NaN and still held
                c["reason"][slot] = R["JobHeldUser"]
                continue
            dep = int(c["dep"][slot])
            if dep:
                ds = st.slot_of(dep)
                if ds is not None:
                    dstate = int(c["state"][ds])
                    if dstate in (int(JobState.PENDING), int(JobState.RUNNING)):
                        c["reason"][slot] = R["Dependency"]
                        continue
                    if dstate != int(JobState.COMPLETED):
                        c["reason"][slot] = R["DependencyNeverSatisfied"]
                        continue
            if tenant_alloc[acct] + g > self.quota[acct]:
                c["reason"][slot] = R["AssocGrpGRES"]
                continue
            if user_alloc.get(user, 0) + g > self.user_cap:
                c["reason"][slot] = R["QOSMaxGRESPerUser"]
                continue
            if part_free[pi] < g or (blocked[pi] and g > gpn):
                c["reason"][slot] = R["Priority"] if first_blocked[pi] else R["Resources"]
                first_blocked[pi] = True
                continue
            # Behind a reservation, small jobs may only fill nodes that are already in use.
            placed = self._place(self.parts[pi].mask & ~(blocked[pi] & (free == gpn)), free, g)
            if placed is None:
                if not first_blocked[pi]:
                    c["reason"][slot] = R["Resources"]
                    first_blocked[pi] = True
                    # A job that has waited long gets a reservation: stop backfilling past it.
                    if t - c["submit"][slot] > 2 * HOUR and g > gpn:
                        blocked[pi] = True
                else:
                    c["reason"][slot] = R["Priority"]
                continue
            nodes, gpus = placed
            self.start(slot, t, nodes, gpus)
            np.subtract.at(free, nodes, 1)
            for p_i, p in enumerate(self.parts):
                part_free[p_i] -= int(p.mask[nodes].sum())
            tenant_alloc[acct] += g
            user_alloc[user] = user_alloc.get(user, 0) + g

    def _place(self, mask: np.ndarray, free: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray] | None:
        gpn = self.gpn
        if g <= gpn:
            cand = np.flatnonzero(mask & (free >= g))
            if len(cand) == 0:
                return None
            node = int(cand[np.argmin(free[cand])])  # best fit keeps whole nodes free
            local = np.flatnonzero(self.gpu_job[node] < 0)[:g]
            return np.full(g, node, np.int64), local
        need = g // gpn
        cand = np.flatnonzero(mask & (free == gpn))
        if len(cand) < need:
            return None
        nodes = cand[:need]
        return np.repeat(nodes, gpn), np.tile(np.arange(gpn), need)

    # -- warm start ---------------------------------------------------------------------------
    def warm_start(self, t: float, usable: np.ndarray) -> None:
        """Begin with a busy machine: running jobs part-way through and a pending queue, so a
        new user sees a realistic centre at once instead of watching it fill for hours."""
        rng = self.rng
        free = (self.gpu_job < 0).sum(axis=1).astype(np.int32)
        for pi, p in enumerate(self.parts):
            if p.gpus == 0:
                continue
            target = 0.9 * p.gpus
            bias_s = {KIND_TRAIN: 24 * HOUR, KIND_INFER: 48 * HOUR}.get(p.kind, HOUR)
            used, misses = 0, 0
            while used < target and misses < 40:
                tenant = int(rng.choice(len(self.profiles), p=self.tenant_p))
                v = self._sample(rng, p, t, tenant)
                span = min(v["runtime"], v["limit"])
                # Jobs running at a random instant are length-biased: long ones are likelier.
                if rng.random() > min(1.0, span / bias_s):
                    continue
                placed = self._place(p.mask & usable, free, v["gpus"])
                if placed is None:
                    misses += 1
                    continue
                elapsed = float(rng.uniform(0.0, 0.95)) * span
                v.update(job_id=self.next_id, state=int(JobState.PENDING), reason=R["Priority"],
                         submit=t - elapsed - float(rng.uniform(60, 3 * HOUR)))
                tasks = int(rng.integers(4, 13)) if v["gpus"] <= self.gpn and rng.random() < 0.08 else 1
                first = self.next_id
                for k in range(tasks):
                    vals = dict(v, job_id=self.next_id)
                    if tasks > 1:
                        vals.update(array_job_id=first, array_task_id=k, name=f"{v['name']}-sweep")
                    self.next_id += 1
                    slot = self.store.add(**vals)
                    if k > 0:
                        placed = self._place(p.mask & usable, free, v["gpus"])
                        if placed is None:
                            continue  # the rest of the array waits in the queue
                    self.start(slot, t - elapsed, *placed)
                    np.subtract.at(free, placed[0], 1)
                    used += v["gpus"]
            pend_target = 0.3 * p.gpus
            pend = 0
            while pend < pend_target:
                for slot in self.submit(t - float(rng.uniform(0, 4 * HOUR)), p):
                    pend += int(self.store.c["gpus"][slot])

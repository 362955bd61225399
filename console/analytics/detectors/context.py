"""Per-frame lookups every detector needs (names, racks, jobs, tenants), computed once.

Detectors run vectorised over flat GPU arrays and only turn the few flagged indices into
words; this object does that translation so each detector stays short.
"""

from __future__ import annotations

import numpy as np

from console.analytics.detectors.base import Finding
from console.model import Frame, Severity, Subject


def group_median(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of ``values`` within each element's group and the group size, per element.

    Vectorised: one float sort on ``key + scaled value`` (cheaper than a two-key lexsort), so
    a per-job median over 32,768 GPUs costs a couple of milliseconds. Elements with NaN values
    are left out of the medians and get NaN themselves.
    """
    n = keys.shape[0]
    med = np.full(n, np.nan)
    size = np.zeros(n, dtype=np.int64)
    ok = np.flatnonzero(np.isfinite(values))
    if ok.size == 0:
        return med, size
    v = values[ok].astype(np.float64)
    k = keys[ok].astype(np.int64)
    lo, hi = float(v.min()), float(v.max())
    k0 = k - k.min()  # small non-negative keys keep the fraction's precision
    comp = k0.astype(np.float64) + (v - lo) / ((hi - lo) * 1.0001 + 1e-300)
    order = np.argsort(comp, kind="quicksort")
    ks = k[order]
    vs = v[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    counts = np.diff(np.r_[starts, ks.size])
    gmed = (vs[starts + (counts - 1) // 2] + vs[starts + counts // 2]) / 2.0
    group_of = np.repeat(np.arange(starts.size), counts)
    med[ok[order]] = gmed[group_of]
    size[ok[order]] = counts[group_of]
    return med, size


def group_mean(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` within each element's group (NaN left out), per element; keys >= 0."""
    ok = np.isfinite(values) & (keys >= 0)
    kk = np.where(ok, keys, 0)
    m = int(kk.max()) + 1 if kk.size else 1
    s = np.bincount(kk[ok], weights=values[ok], minlength=m)
    c = np.bincount(kk[ok], minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / c
    out = mean[kk]
    return np.where(keys >= 0, out, np.nan)


class FrameContext:
    """Names and joins for one frame; `gpu_finding` builds a GPU-level finding from an index."""

    def __init__(self, frame: Frame, now: float) -> None:
        topo = frame.topology
        self.frame = frame
        self.now = now
        self.topo = topo
        self.gpn = topo.gpus_per_node
        self.n_nodes = topo.n_nodes
        self.n_gpus = topo.n_gpus
        self.exists = topo.gpu_exists()
        self.gpu_node = topo.gpu_node()
        self.rack_of_node = np.asarray(topo.node_rack, dtype=np.int64)
        self.gpu_rack = self.rack_of_node[self.gpu_node] if self.n_gpus else np.zeros(0, np.int64)
        self.job_row = np.asarray(frame.gpu.job_row)
        self.job_id = np.asarray(frame.gpu.job_id)
        self.tenant_idx = np.asarray(frame.gpu.tenant)
        self.accounts = tuple(frame.tenants.account)
        self.scheduler_ok = len(frame.nodes) == self.n_nodes and self.n_nodes > 0

    def rack_name(self, node: int) -> str | None:
        if 0 <= node < self.n_nodes and len(self.topo.rack_names):
            r = int(self.rack_of_node[node])
            if 0 <= r < len(self.topo.rack_names):
                return self.topo.rack_names[r]
        return None

    def tenant_of(self, g: int) -> str | None:
        t = int(self.tenant_idx[g]) if g < self.tenant_idx.shape[0] else -1
        return self.accounts[t] if 0 <= t < len(self.accounts) else None

    def job_tenant(self, row: int) -> str | None:
        jobs = self.frame.jobs
        if 0 <= row < len(jobs):
            return jobs.accounts[int(jobs.account[row])] or None
        return None

    def gpu_finding(self, kind: str, g: int, score: float, evidence: str, *,
                    severity: Severity = Severity.WARNING, confirm: int = 2, detail: str = "",
                    confirm_s: float = 0.0) -> Finding:
        n = int(self.gpu_node[g])
        local = int(g - n * self.gpn)
        name = self.topo.node_names[n]
        jid = int(self.job_id[g]) if g < self.job_id.shape[0] else 0
        return Finding(kind=kind, subject=Subject("gpu", f"{name}/{local}"), score=float(score),
                       evidence=evidence, severity=severity, node=name, gpu=local,
                       job_id=jid or None, rack=self.rack_name(n), tenant=self.tenant_of(g),
                       confirm=confirm, detail=detail, confirm_s=confirm_s)

    def node_finding(self, kind: str, n: int, score: float, evidence: str, *,
                     severity: Severity = Severity.WARNING, confirm: int = 2, detail: str = "",
                     confirm_s: float = 0.0) -> Finding:
        name = self.topo.node_names[n]
        return Finding(kind=kind, subject=Subject("node", name), score=float(score), evidence=evidence,
                       severity=severity, node=name, rack=self.rack_name(n), confirm=confirm,
                       detail=detail, confirm_s=confirm_s)

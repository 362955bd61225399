"""GPU-level detectors, vectorised over the flat GPU index (no Python loop over GPUs).

- XID, ECC DBE, NVLink CRC: hard facts from DCGM fields; they open at the first sighting.
- power capping: an enforced power limit (DCGM field 164) more than 5 % below the model's board
  power is a hard fact, whatever the GPU draws (a job at 220 W under a 400 W cap shows nothing
  else). Where the limit is not reported the cap is inferred: a power-cap throttle bit (0x4 SW
  power cap, 0x80 HW power brake) *and* the SM clock well below the boost clock; the bit alone
  is normal under heavy load (FACTS 4.4).
- straggler: a GPU far below its job's peers (tensor activity, or utilisation with a lower
  clock); the peers of a data-parallel job run in lock-step, so the job median is the norm.
- job stall: every reporting GPU of a running job idle, long after its start.
- GPU outlier: robust z-score (median/MAD) of temperature or power against the job's peers,
  and of the load-corrected temperature against the node's siblings.
- thermal trend: a least-squares slope of the last samples that will cross the limit soon.
- rack thermal: the rack's median load-corrected temperature far above the other racks'.
  The load correction regresses temperature on a lagged power (GPUs heat up with a delay),
  so a rack where a big job just ended is not mistaken for a rack that lost its cooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from console.analytics import xid as xid_catalogue
from console.analytics.detectors.base import Finding
from console.analytics.detectors.context import FrameContext, group_mean, group_median
from console.health import gpu_board_power_w, power_capped, power_limit_known
from console.model import JobState, Severity, Subject

BIT_SW_POWER_CAP = 0x4
BIT_HW_POWER_BRAKE = 0x80
BITS_THERMAL = 0x8 | 0x20 | 0x40  # HW slowdown, SW thermal, HW thermal


@dataclass(frozen=True)
class GpuSettings:
    nvlink_crc_per_s: float = 100.0  # DCGM_LIMIT_MAX_NVLINK_CRC_ERROR (FACTS 4.2)
    power_cap_clock_frac: float = 0.85  # capped: clock below this share of boost with a cap bit
    power_cap_power_frac: float = 0.85  # ... and power held below this share of the fleet's top power
    straggler_tensor_ratio: float = 0.6  # tensor below this share of the job median
    straggler_util_ratio: float = 0.75  # or utilisation below this share with a slow clock
    straggler_clock_ratio: float = 0.85
    straggler_min_tensor: float = 0.05  # job median tensor activity needed to judge
    stall_util_pct: float = 5.0
    stall_tensor: float = 0.02
    stall_warmup_s: float = 240.0  # jobs load data and compile first
    outlier_z: float = 6.0
    outlier_min_temp_c: float = 12.0
    outlier_min_power_w: float = 200.0
    temp_limit_c: float = 87.0  # slowdown starts here on H100/H800-class GPUs
    trend_samples: int = 10
    trend_horizon_s: float = 300.0  # warn when the linear projection crosses the limit this soon
    trend_margin_c: float = 10.0  # only GPUs within this of the limit are projected
    trend_min_slope_c_per_min: float = 0.3
    trend_keep_ratio: float = 0.7  # the recent half's slope must keep this share of the earlier half's
    thermal_lag_s: float = 90.0
    rack_min_excess_c: float = 6.0
    rack_z: float = 4.0
    xid_burst_gpus: int = 3
    # DCGM's XID field keeps the last XID until the driver reloads, so an XID is an event: it
    # stays an anomaly this long after it appeared (or while its GPU reports nothing else).
    xid_hold_s: float = 3600.0


def _slopes(t: np.ndarray, T: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column of ``T`` over times ``t`` (0 where not ``valid``)."""
    tt = t - t.mean()
    den = float((tt * tt).sum())
    if den <= 0:
        return np.zeros(T.shape[1])
    Tm = np.where(valid, T, 0.0)
    Tm = Tm - Tm.mean(axis=0)
    return np.where(valid, (tt[:, None] * Tm).sum(axis=0) / den, 0.0)


class GpuDetectors:
    """Keeps the little per-GPU state the trend and lag need; reset when the topology changes."""

    def __init__(self, settings: GpuSettings | None = None) -> None:
        self.s = settings or GpuSettings()
        self._shape_key: tuple[int, int] | None = None
        self._temps = np.zeros((0, 0))
        self._times = np.zeros(0)
        self._filled = 0
        self._lag_power = np.zeros(0)
        self._last_t: float | None = None
        self._xid_prev = np.zeros(0)
        self._xid_since = np.zeros(0)

    def _reset(self, n_gpus: int) -> None:
        self._temps = np.full((self.s.trend_samples, n_gpus), np.nan)
        self._times = np.full(self.s.trend_samples, np.nan)
        self._filled = 0
        self._lag_power = np.full(n_gpus, np.nan)
        self._last_t = None
        self._xid_prev = np.zeros(n_gpus)
        self._xid_since = np.full(n_gpus, -np.inf)

    def run(self, ctx: FrameContext) -> list[Finding]:
        key = (ctx.topo.version, ctx.n_gpus)
        if key != self._shape_key:
            self._shape_key = key
            self._reset(ctx.n_gpus)
        out: list[Finding] = []
        if ctx.n_gpus == 0:
            return out
        g = ctx.frame.gpu
        out += self._xid(ctx, np.asarray(g.xid, np.float64))
        out += self._ecc(ctx, np.asarray(g.ecc_dbe, np.float64))
        out += self._nvlink(ctx, np.asarray(g.nvlink_crc, np.float64))
        out += self._power_cap(ctx)
        out += self._jobs(ctx)
        out += self._thermal(ctx)
        return out

    # -- hard facts ------------------------------------------------------------------------------
    def _xid(self, ctx: FrameContext, xid: np.ndarray) -> list[Finding]:
        out: list[Finding] = []
        code = np.nan_to_num(xid, nan=0.0)
        changed = (code != self._xid_prev) & (code > 0)
        self._xid_since = np.where(changed, ctx.now, self._xid_since)
        self._xid_prev = code
        silent = ~np.isfinite(np.asarray(ctx.frame.gpu.util, np.float64))
        recent = (ctx.now - self._xid_since) <= self.s.xid_hold_s
        flagged = np.flatnonzero((code > 0) & (recent | silent))
        for g in flagged:
            code = int(xid[g])
            info = xid_catalogue.info(code)
            sev = xid_catalogue.severity(code)
            out.append(ctx.gpu_finding(
                "xid", int(g), 1.0 if info.fatal else 0.6,
                f"{xid_catalogue.describe(code)} on GPU {int(g % ctx.gpn)} of "
                f"{ctx.topo.node_names[int(ctx.gpu_node[g])]}" + ("; fatal" if info.fatal else ""),
                severity=sev, confirm=1, detail=f"xid={code}"))
        if flagged.size >= self.s.xid_burst_gpus:
            per_node = np.bincount(ctx.gpu_node[flagged], minlength=ctx.n_nodes)
            for n in np.flatnonzero(per_node >= self.s.xid_burst_gpus):
                codes = sorted({int(xid[x]) for x in flagged if ctx.gpu_node[x] == n})
                out.append(ctx.node_finding(
                    "xid_burst", int(n), float(per_node[n]) / ctx.gpn,
                    f"{int(per_node[n])} GPUs of {ctx.topo.node_names[n]} report XIDs "
                    f"({', '.join(map(str, codes))}) at once", severity=Severity.CRITICAL, confirm=1,
                    detail="xid=" + ",".join(map(str, codes))))
        return out

    def _ecc(self, ctx: FrameContext, dbe: np.ndarray) -> list[Finding]:
        return [ctx.gpu_finding("ecc_dbe", int(g), 1.0,
                                f"{int(dbe[g])} volatile double-bit ECC error(s) on GPU {int(g % ctx.gpn)}",
                                severity=Severity.CRITICAL, confirm=1, detail=f"dbe={int(dbe[g])}")
                for g in np.flatnonzero(np.nan_to_num(dbe, nan=0.0) > 0)]

    def _nvlink(self, ctx: FrameContext, crc: np.ndarray) -> list[Finding]:
        bad = np.nan_to_num(crc, nan=0.0) > self.s.nvlink_crc_per_s
        if not bad.any():
            return []
        out = []
        for n in np.unique(ctx.gpu_node[bad]):
            sl = slice(int(n) * ctx.gpn, (int(n) + 1) * ctx.gpn)
            locals_ = np.flatnonzero(bad[sl])
            peak = float(np.nanmax(crc[sl]))
            out.append(ctx.node_finding(
                "nvlink", int(n), min(1.0, peak / (10 * self.s.nvlink_crc_per_s)),
                f"NVLink CRC errors on {ctx.topo.node_names[n]} GPU(s) {', '.join(map(str, locals_))}: "
                f"up to {peak:.0f}/s (limit {self.s.nvlink_crc_per_s:.0f}/s)",
                severity=Severity.CRITICAL, confirm=1, detail="gpus=" + ",".join(map(str, locals_))))
        return out

    def _power_cap(self, ctx: FrameContext) -> list[Finding]:
        g = ctx.frame.gpu
        power = np.asarray(g.power, np.float64)
        board = np.asarray(gpu_board_power_w(ctx.topo), np.float64)
        limit = None if g.power_limit is None else np.asarray(g.power_limit, np.float64)
        known = power_limit_known(limit, board)
        hard = np.zeros(ctx.n_gpus, bool) if limit is None else power_capped(limit, board) & ctx.exists
        thr = np.nan_to_num(np.asarray(g.throttle, np.float64), nan=0.0).astype(np.int64)
        cap_bit = (thr & (BIT_SW_POWER_CAP | BIT_HW_POWER_BRAKE)) != 0
        # Without a reported limit the cap has to be inferred. A known limit at the board default
        # rules a cap out, except for an external power brake, which never shows in the limit.
        infer = cap_bit & (~known | ((thr & BIT_HW_POWER_BRAKE) != 0)) & ~hard
        out = self._power_cap_hard(ctx, hard, limit, board, power) if hard.any() else []
        if not infer.any():
            return out
        maxc = np.asarray(ctx.topo.gpu_max_clock_mhz, np.float64)
        clock = np.asarray(g.sm_clock, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            slow = np.nan_to_num(clock / np.where(maxc > 0, maxc, np.nan), nan=1.0) < self.s.power_cap_clock_frac
        # A GPU that hits its normal board limit also sets 0x4 and slows a little; a capped one
        # is held well below what the fleet's busiest GPUs draw (the board limit in practice).
        fin = power[np.isfinite(power)]
        top = float(np.percentile(fin, 99)) if fin.size >= 8 else np.inf
        held = np.nan_to_num(power, nan=np.inf) < self.s.power_cap_power_frac * top
        # A hot GPU slows down for heat and draws less: that is the cooling's story, not a cap.
        thermal = (thr & BITS_THERMAL) != 0
        capped = infer & slow & held & ~thermal & (ctx.job_row >= 0)
        if hard.any():  # one finding per node: a node with a reported cap already has its own
            capped &= ~np.repeat(hard.reshape(-1, ctx.gpn).any(axis=1), ctx.gpn)
        if not capped.any():
            return out
        for n in np.unique(ctx.gpu_node[capped]):
            sl = slice(int(n) * ctx.gpn, (int(n) + 1) * ctx.gpn)
            k = int(capped[sl].sum())
            pw = float(np.nanmax(np.where(capped[sl], power[sl], np.nan)))
            ck = float(np.nanmean(np.where(capped[sl], clock[sl], np.nan)))
            out.append(ctx.node_finding(
                "power_cap", int(n), min(1.0, k / max(ctx.gpn, 1) + 0.3),
                f"{k} busy GPU(s) of {ctx.topo.node_names[n]} power-capped: clocks {ck:.0f} MHz, "
                f"power held at {pw:.0f} W", confirm=2, confirm_s=30.0, detail=f"gpus={k}"))
        return out

    def _power_cap_hard(self, ctx: FrameContext, hard: np.ndarray, limit: np.ndarray | None,
                        board: np.ndarray, power: np.ndarray) -> list[Finding]:
        """One finding per node with GPUs capped below their board power: a fact the GPU reports,
        so it opens at once and holds for idle and lightly loaded GPUs alike."""
        assert limit is not None
        out = []
        for n in np.unique(ctx.gpu_node[hard]):
            sl = slice(int(n) * ctx.gpn, (int(n) + 1) * ctx.gpn)
            m = hard[sl]
            k = int(m.sum())
            lim = float(np.min(limit[sl][m]))
            bp = float(np.max(board[sl][m]))
            drawn = power[sl][m]
            drawn = drawn[np.isfinite(drawn)]
            draw = f", drawing up to {float(drawn.max()):.0f} W" if drawn.size else ""
            out.append(ctx.node_finding(
                "power_cap", int(n), min(1.0, k / max(ctx.gpn, 1) + 0.3),
                f"{k} GPU(s) of {ctx.topo.node_names[n]} power-capped: power limit {lim:.0f} W "
                f"of {bp:.0f} W{draw}", confirm=1, detail=f"gpus={k};limit={lim:.0f}"))
        return out

    # -- job peers ------------------------------------------------------------------------------
    def _jobs(self, ctx: FrameContext) -> list[Finding]:
        s = self.s
        g = ctx.frame.gpu
        rows = ctx.job_row
        alloc = (rows >= 0) & ctx.exists
        if not alloc.any():
            return []
        out: list[Finding] = []
        tensor = np.asarray(g.tensor, np.float64)
        util = np.asarray(g.util, np.float64)
        clock = np.asarray(g.sm_clock, np.float64)
        key = np.where(alloc, rows, -1).astype(np.int64)
        t_med, size = group_median(key, np.where(alloc, tensor, np.nan))
        u_med, _ = group_median(key, np.where(alloc, util, np.nan))
        c_med, _ = group_median(key, np.where(alloc, clock, np.nan))
        # In a 2-GPU job the median is the mean of the two, half made of the straggler itself:
        # judge each GPU against the other one instead (2 x mean - self).
        pair = size == 2
        t_med = np.where(pair, 2.0 * t_med - tensor, t_med)
        u_med = np.where(pair, 2.0 * u_med - util, u_med)
        c_med = np.where(pair, 2.0 * c_med - clock, c_med)
        with np.errstate(invalid="ignore", divide="ignore"):
            t_ratio = tensor / t_med
            u_ratio = util / u_med
            c_ratio = clock / c_med
        jobs = ctx.frame.jobs
        start = np.asarray(jobs.start_time, np.float64)
        started = np.zeros(rows.shape[0], bool)
        if len(jobs):
            st = start[np.maximum(rows, 0)]
            started = alloc & np.isfinite(st) & (ctx.now - st >= s.stall_warmup_s)
        slow_t = (t_med >= s.straggler_min_tensor) & (t_ratio < s.straggler_tensor_ratio)
        slow_u = (u_med >= 20.0) & (u_ratio < s.straggler_util_ratio) & (c_ratio < s.straggler_clock_ratio)
        strag = alloc & started & (size >= 2) & np.nan_to_num(slow_t | slow_u, nan=False)
        for x in np.flatnonzero(strag):
            jid = int(ctx.job_id[x])
            ref = (f"the tensor activity of the other GPU of job {jid}" if pair[x]
                   else f"job {jid}'s median tensor activity")
            out.append(ctx.gpu_finding(
                "straggler", int(x), float(1.0 - min(t_ratio[x], 1.0)) if np.isfinite(t_ratio[x]) else 0.5,
                f"GPU {int(x % ctx.gpn)} of {ctx.topo.node_names[int(ctx.gpu_node[x])]} runs at "
                f"{100 * np.nan_to_num(t_ratio[x]):.0f}% of {ref} "
                f"({100 * np.nan_to_num(u_ratio[x]):.0f}% util, {100 * np.nan_to_num(c_ratio[x]):.0f}% clock) "
                f"among {int(size[x])} GPUs", confirm=3, confirm_s=60.0, detail=f"job={jid}"))
        # Stall: every reporting GPU of the job idle.
        if len(jobs):
            nrow = len(jobs)
            has = alloc & np.isfinite(util)
            low = has & (util < s.stall_util_pct) & (np.nan_to_num(tensor, nan=0.0) < s.stall_tensor)
            n_alloc = np.bincount(rows[alloc], minlength=nrow)
            n_has = np.bincount(rows[has], minlength=nrow)
            n_low = np.bincount(rows[low], minlength=nrow)
            st_ok = np.isfinite(start) & (ctx.now - start >= s.stall_warmup_s)
            state_ok = np.asarray(jobs.state) == int(JobState.RUNNING)
            stalled = (n_has > 0) & (n_low == n_has) & (2 * n_has >= n_alloc) & st_ok & state_ok
            for r in np.flatnonzero(stalled):
                jid = int(jobs.job_id[r])
                out.append(Finding(
                    kind="job_stall", subject=Subject("job", str(jid)), score=1.0,
                    evidence=f"all {int(n_has[r])} reporting GPUs of job {jid} idle "
                             f"(util < {s.stall_util_pct:.0f}%, no tensor activity) while allocated",
                    job_id=jid, tenant=ctx.job_tenant(int(r)), confirm=2, confirm_s=30.0, detail=f"gpus={int(n_alloc[r])}"))
        # Peer outliers on temperature and power, within the job.
        for metric, floor, unit in (("temp", s.outlier_min_temp_c, "°C"), ("power", s.outlier_min_power_w, "W")):
            v = np.asarray(getattr(g, metric), np.float64)
            med, sz = group_median(key, np.where(alloc, v, np.nan))
            dev = np.abs(v - med)
            # Mean absolute deviation (x 0.8 ~ MAD for normal data): a bincount, not a second sort.
            mad = 0.8 * group_mean(key, np.where(alloc, dev, np.nan))
            with np.errstate(invalid="ignore", divide="ignore"):
                z = 0.6745 * (v - med) / np.maximum(mad, floor / 10.0)
            # Only the hot / power-hungry side: a cool GPU is not a problem (and a slow one is a straggler).
            flag = alloc & (sz >= 4) & np.nan_to_num((z > s.outlier_z) & (dev >= floor), nan=False)
            for x in np.flatnonzero(flag):
                out.append(ctx.gpu_finding(
                    "gpu_outlier", int(x), min(1.0, abs(float(z[x])) / (2 * s.outlier_z)),
                    f"{metric} {v[x]:.0f} {unit} vs median {med[x]:.0f} {unit} of the {int(sz[x])} GPUs "
                    f"in job {int(ctx.job_id[x])} (robust z {z[x]:+.1f})", confirm=3, confirm_s=120.0,
                    detail=f"metric={metric}"))
        return out

    # -- temperature ----------------------------------------------------------------------------
    def _thermal(self, ctx: FrameContext) -> list[Finding]:
        s = self.s
        g = ctx.frame.gpu
        temp = np.asarray(g.temp, np.float64)
        power = np.asarray(g.power, np.float64)
        t = ctx.now
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        if dt <= 0 and self._last_t is not None:
            return []
        self._last_t = t
        alpha = 1.0 - np.exp(-dt / s.thermal_lag_s) if dt > 0 else 1.0
        lp = self._lag_power
        lp = np.where(np.isfinite(lp), lp + (power - lp) * alpha, power)
        lp = np.where(np.isfinite(power), lp, np.nan)
        self._lag_power = lp
        # Ring of recent temperatures for the slope.
        self._temps[:-1] = self._temps[1:]
        self._temps[-1] = temp
        self._times[:-1] = self._times[1:]
        self._times[-1] = t
        self._filled = min(self._filled + 1, s.trend_samples)
        out: list[Finding] = []
        if self._filled >= max(4, s.trend_samples // 2):
            k = self._filled
            T = self._temps[-k:]
            tk = self._times[-k:]
            valid = np.isfinite(T).all(axis=0)
            slope = _slopes(tk, T, valid)  # °C/s over the whole ring
            # A GPU settling after a load step (first-order lag) rises fast and then slows; a
            # real trend does not slow down. Compare the slopes of the two halves of the ring.
            h = k // 2
            early = _slopes(tk[:h + 1], T[:h + 1], valid)
            late = _slopes(tk[h:], T[h:], valid)
            steady = late >= s.trend_keep_ratio * early
            slope = np.where(steady, slope, 0.0)
            cur = np.nan_to_num(temp, nan=-np.inf)
            with np.errstate(invalid="ignore", divide="ignore"):
                eta = (s.temp_limit_c - cur) / slope
            near = cur >= s.temp_limit_c - s.trend_margin_c
            rising = slope * 60.0 >= s.trend_min_slope_c_per_min
            soon = near & rising & (eta <= s.trend_horizon_s)
            hot = cur >= s.temp_limit_c
            for x in np.flatnonzero((soon | hot) & ctx.exists):
                if hot[x]:
                    ev = f"{temp[x]:.0f} °C, at or above the {s.temp_limit_c:.0f} °C slowdown limit"
                else:
                    ev = (f"{temp[x]:.0f} °C rising {slope[x] * 60:.1f} °C/min: crosses "
                          f"{s.temp_limit_c:.0f} °C in about {max(eta[x], 0) / 60:.0f} min")
                out.append(ctx.gpu_finding("thermal_trend", int(x), 1.0 if hot[x] else 0.7, ev,
                                           confirm=2, confirm_s=60.0, detail="hot" if hot[x] else "trend"))
        out += self._rack_thermal(ctx, temp, lp)
        return out

    def _rack_thermal(self, ctx: FrameContext, temp: np.ndarray, lag_power: np.ndarray) -> list[Finding]:
        s = self.s
        ok = np.isfinite(temp) & np.isfinite(lag_power) & ctx.exists
        n_racks = len(ctx.topo.rack_names)
        if ok.sum() < 16 or n_racks < 2:
            return []
        x, y = lag_power[ok], temp[ok]
        xm, ym = x.mean(), y.mean()
        var = float(((x - xm) ** 2).sum())
        b = float(((x - xm) * (y - ym)).sum() / var) if var > 0 else 0.0
        resid = y - (ym + b * (x - xm))
        racks = ctx.gpu_rack[ok]
        med, size = group_median(racks, resid)
        rack_med = np.full(n_racks, np.nan)
        rack_n = np.zeros(n_racks, np.int64)
        rack_med[racks] = med
        rack_n[racks] = size
        have = np.isfinite(rack_med) & (rack_n >= 4)
        if have.sum() < 2:
            return []
        centre = float(np.median(rack_med[have]))
        spread = 1.4826 * float(np.median(np.abs(rack_med[have] - centre)))
        spread = max(spread, 1.0)
        excess = rack_med - centre
        z = excess / spread
        out = []
        for r in np.flatnonzero(have & (excess >= s.rack_min_excess_c) & (z >= s.rack_z)):
            name = ctx.topo.rack_names[r]
            hot_gpus = int(((resid > centre + s.rack_min_excess_c) & (racks == r)).sum())
            out.append(Finding(
                kind="rack_thermal", subject=Subject("rack", name), score=min(1.0, float(z[r]) / 10.0),
                evidence=f"rack {name} runs {excess[r]:.1f} °C hotter than other racks at the same load "
                         f"({hot_gpus} of {int(rack_n[r])} GPUs hot)",
                severity=Severity.CRITICAL if excess[r] >= 2 * s.rack_min_excess_c else Severity.WARNING,
                rack=name, confirm=3, confirm_s=90.0, detail=f"hot_gpus={hot_gpus}"))
        return out

"""The console's own anomaly detection: one long-lived object stepped once per frame.

``AnomalyDetector.step(frame) -> (anomalies, causes)`` runs in the state worker after each
frame is built. Detectors (``console/analytics/detectors``) report findings for this tick;
this module turns them into anomalies that an operator can trust:

- **confirmation**: a statistical finding must persist ``confirm`` ticks before it opens
  (hard facts such as a fatal XID or a node marked DOWN open at once), so noise does not flicker;
- **stable identity**: the same subject and kind keep the same id while the finding persists,
  and ``started_at`` is when it was first seen, not when it was confirmed;
- **ending by itself**: an anomaly whose finding has been absent for ``clear_ticks`` ticks
  gets ``ended_at`` and stays listed for ``linger_s`` so the operator sees it resolved.

It copes with a changing topology (per-GPU state restarts; anomalies are keyed by names, so
they survive) and with NaN everywhere (a detector never reads a NaN as zero).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from console.analytics.causes import CauseSettings, analyse
from console.analytics.detectors.base import Finding
from console.analytics.detectors.context import FrameContext
from console.analytics.detectors.gpu import GpuDetectors, GpuSettings
from console.analytics.detectors.node_series import NodeSeriesDetectors, NodeSeriesSettings
from console.analytics.detectors.nodes import NodeDetectors, NodeSettings
from console.analytics.detectors.series import SeriesSettings
from console.analytics.detectors.workload import WorkloadDetectors, WorkloadSettings
from console.model import Anomaly, Cause, Frame


@dataclass(frozen=True)
class DetectorConfig:
    """Every threshold in one place. ``series`` is also what the NAB benchmark runs."""

    series: SeriesSettings = field(default_factory=SeriesSettings)
    gpu: GpuSettings = field(default_factory=GpuSettings)
    nodes: NodeSettings = field(default_factory=NodeSettings)
    node_series: NodeSeriesSettings = field(default_factory=NodeSeriesSettings)
    workload: WorkloadSettings | None = None  # None = built from ``series``
    causes: CauseSettings = field(default_factory=CauseSettings)
    clear_ticks: int = 2  # ticks without the finding before an anomaly ends
    linger_s: float = 600.0  # ended anomalies stay listed this long
    max_anomalies: int = 5000  # beyond this the least severe are left out of the frame


@dataclass
class _Track:
    id: str
    finding: Finding
    first_seen: float
    last_seen: float
    seen: int = 1
    missed: int = 0
    opened: bool = False
    ended_at: float | None = None
    peak: float = 0.0


class AnomalyDetector:
    """Stateful across frames; call `step` from one thread only (the state worker)."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        c = self.config
        self._gpu = GpuDetectors(c.gpu)
        self._nodes = NodeDetectors(c.nodes)
        self._node_series = NodeSeriesDetectors(c.node_series)
        self._workload = WorkloadDetectors(c.workload or WorkloadSettings(series=c.series))
        self._tracks: dict[str, _Track] = {}
        self._ended: list[_Track] = []
        self._ids = itertools.count(1)
        self._last_t: float | None = None
        self._last: tuple[tuple[Anomaly, ...], tuple[Cause, ...]] = ((), ())

    def step(self, frame: Frame) -> tuple[tuple[Anomaly, ...], tuple[Cause, ...]]:
        now = float(getattr(frame, "data_now", 0.0) or frame.time)
        if self._last_t is not None and now <= self._last_t:
            return self._last  # no new data: same answer, no state advanced
        self._last_t = now
        ctx = FrameContext(frame, now)
        findings = (self._gpu.run(ctx) + self._nodes.run(ctx) + self._node_series.run(ctx)
                    + self._workload.run(ctx))
        anomalies = self._track(findings, now)
        details = {t.id: t.finding.detail for t in self._tracks.values() if t.opened}
        causes = analyse(anomalies, frame, now, self.config.causes, details)
        self._last = (anomalies, causes)
        return self._last

    def _track(self, findings: list[Finding], now: float) -> tuple[Anomaly, ...]:
        c = self.config
        seen: set[str] = set()
        for f in findings:
            k = f.key
            if k in seen:
                continue
            seen.add(k)
            tr = self._tracks.get(k)
            if tr is None:
                tr = _Track(id="", finding=f, first_seen=now, last_seen=now)
                self._tracks[k] = tr
            else:
                tr.seen += 1
                tr.missed = 0
                tr.finding = f
                tr.last_seen = now
            tr.peak = max(tr.peak, f.score)
            if not tr.opened and tr.seen >= f.confirm and now - tr.first_seen >= f.confirm_s:
                tr.opened = True
                tr.id = f"A{next(self._ids):06d}"
        for k in [k for k in self._tracks if k not in seen]:
            tr = self._tracks[k]
            if not tr.opened:
                del self._tracks[k]
                continue
            tr.missed += 1
            if tr.missed >= c.clear_ticks:
                tr.ended_at = now
                self._ended.append(tr)
                del self._tracks[k]
        self._ended = [t for t in self._ended if t.ended_at is not None and now - t.ended_at <= c.linger_s]
        out = [self._anomaly(t) for t in self._tracks.values() if t.opened]
        out.sort(key=lambda a: (int(a.severity), -a.score, a.started_at))
        out = out[: c.max_anomalies]
        out += [self._anomaly(t) for t in self._ended][: max(0, c.max_anomalies - len(out))]
        return tuple(out)

    @staticmethod
    def _anomaly(t: _Track) -> Anomaly:
        f = t.finding
        return Anomaly(id=t.id, kind=f.kind, subject=f.subject, score=float(f.score),
                       started_at=t.first_seen, last_seen=t.last_seen, evidence=f.evidence,
                       severity=f.severity, node=f.node, gpu=f.gpu, job_id=f.job_id, rack=f.rack,
                       tenant=f.tenant, ended_at=t.ended_at)

"""The simulator's stand-in for Prometheus rules + Alertmanager: alerts and silences.

The alert rules are the ones a site would ship for DCGM and Slurm (GpuFellOffBus, GpuXidError,
GpuHot, NodeDown, ExporterDown, GpuEccDbe, ...), with the labels dcgm-exporter carries, so the
console's alert panels, drill-downs and silences behave on the demo as on a real site.
Silences follow Alertmanager: matchers AND-ed, regexes anchored, state from the time window.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from console.matchers import matches
from console.model import Alert, Matcher, NodeState, Severity, Silence

if TYPE_CHECKING:
    from console.sim.cluster import SimCluster

#: The always-firing alert's name (Alertmanager's convention).
WATCHDOG = "Watchdog"
_SEV = {"critical": Severity.CRITICAL, "warning": Severity.WARNING, "info": Severity.INFO}


def fingerprint(labels: dict[str, str]) -> str:
    """Stable per label set, like Alertmanager's (a hash of the sorted labels)."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class AlertBook:
    """Fired-since times per fingerprint, and the silences; SimCluster holds the lock."""

    def __init__(self, seed: int, cluster: str) -> None:
        self.cluster = cluster
        self.since: dict[str, float] = {}
        self.current: list[Alert] = []
        self._silences: dict[str, Silence] = {}
        self._silence_ns = uuid.UUID(int=(seed * 0x9E3779B97F4A7C15) % (1 << 128))
        self._count = 0

    # -- silences -----------------------------------------------------------------------------
    def create_silence(self, now: float, matchers: tuple[Matcher, ...], starts_at: float,
                       ends_at: float, created_by: str, comment: str) -> str:
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        self._count += 1
        sid = str(uuid.uuid5(self._silence_ns, str(self._count)))
        self._silences[sid] = Silence(sid, tuple(matchers), starts_at, ends_at, created_by,
                                      comment, _state(now, starts_at, ends_at))
        return sid

    def expire_silence(self, now: float, sid: str) -> None:
        s = self._silences.get(sid)
        if s is None:
            raise KeyError(f"silence {sid} not found")
        if s.state != "expired" and s.ends_at > now:
            self._silences[sid] = replace(s, ends_at=now, starts_at=min(s.starts_at, now))

    def silences(self, now: float) -> list[Silence]:
        out = []
        for sid, s in list(self._silences.items()):
            st = _state(now, s.starts_at, s.ends_at)
            if st == "expired" and now - s.ends_at > 5 * 86400:
                del self._silences[sid]  # Alertmanager's default retention
                continue
            out.append(s if s.state == st else replace(s, state=st))
        return out

    # -- rules --------------------------------------------------------------------------------
    def evaluate(self, s: "SimCluster", now: float) -> list[Alert]:
        """Evaluate the rules on the simulator's current state and apply silences."""
        m = s._metrics
        names = s.node_names
        racks = s.rack_names
        node_rack = s.node_rack
        gpu_job = s.workload.gpu_job
        c = s.workload.store.c
        accounts = s.accounts
        raw: list[tuple[dict[str, str], dict[str, str], int, int | None]] = []

        def gpu_alert(mask: np.ndarray, name: str, sev: str, summary: str, desc: str) -> None:
            for n, g in zip(*np.nonzero(mask)):
                n, g = int(n), int(g)
                vals = {k: m[k][n, g] for k in ("temp", "xid", "ecc_dbe", "nvlink_crc", "throttle")}
                labels = {"alertname": name, "severity": sev, "Hostname": names[n], "gpu": str(g),
                          "rack": racks[node_rack[n]], "cluster": self.cluster, "job": "dcgm",
                          "instance": f"{names[n]}:9400"}
                fmt = dict(node=names[n], gpu=g, temp=vals["temp"], xid=vals["xid"],
                           ecc=vals["ecc_dbe"], crc=vals["nvlink_crc"])
                raw.append((labels, {"summary": summary.format(**fmt), "description": desc.format(**fmt)}, n, g))

        with np.errstate(invalid="ignore"):
            xid = m["xid"]
            gpu_alert(xid == 79, "GpuFellOffBus", "critical", "GPU {gpu} on {node} fell off the bus (XID 79)",
                      "The GPU stopped answering on PCIe. Drain the node and reboot it; RMA if it recurs.")
            gpu_alert(m["ecc_dbe"] > 0, "GpuEccDbe", "critical",
                      "Double-bit ECC errors on {node} GPU {gpu} ({ecc:.0f})",
                      "Uncorrectable memory error (XID 48). Drain, reset the GPU and run DCGM diagnostics.")
            gpu_alert((xid > 0) & (xid != 79) & (xid != 48), "GpuXidError", "warning",
                      "XID {xid:.0f} on {node} GPU {gpu}", "The driver reported XID {xid:.0f}.")
            gpu_alert(m["temp"] > 85, "GpuHot", "warning", "GPU {gpu} on {node} is at {temp:.0f} C",
                      "GPU temperature above 85 C; check the rack's cooling.")
            gpu_alert(_bits(m["throttle"], 0x40), "GpuHwThermalSlowdown", "critical",
                      "GPU {gpu} on {node} is in hardware thermal slowdown",
                      "Clocks are cut by hardware to protect the GPU ({temp:.0f} C).")
            gpu_alert(m["nvlink_crc"] > 100, "NvlinkCrcErrors", "warning",
                      "NVLink CRC errors on {node} GPU {gpu} ({crc:.0f}/s)",
                      "CRC flit errors above 100/s (DCGM's limit); suspect a link or NVSwitch.")
        up = s._node_up
        state = s._node_state
        for n in np.flatnonzero(~up).tolist():
            labels = {"alertname": "ExporterDown", "severity": "warning", "Hostname": names[n],
                      "rack": racks[node_rack[n]], "cluster": self.cluster, "job": "dcgm",
                      "instance": f"{names[n]}:9400"}
            raw.append((labels, {"summary": f"dcgm exporter on {names[n]} down",
                                 "description": "Prometheus cannot scrape the node's GPU exporter."}, n, None))
        for n in np.flatnonzero(state == int(NodeState.DOWN)).tolist():
            labels = {"alertname": "NodeDown", "severity": "critical", "Hostname": names[n],
                      "rack": racks[node_rack[n]], "cluster": self.cluster, "job": "slurm"}
            raw.append((labels, {"summary": f"{names[n]} is DOWN in Slurm",
                                 "description": "slurmctld lost contact with the node; its jobs failed."}, n, None))

        now_alerts: list[Alert] = []
        seen: set[str] = set()
        sil = [x for x in self.silences(now) if x.state == "active"]
        for labels, ann, n, g in raw:
            fp = fingerprint(labels)
            seen.add(fp)
            start = self.since.setdefault(fp, now)
            slot = int(gpu_job[n, g]) if g is not None else _first_job(gpu_job[n])
            job_id = int(c["job_id"][slot]) if slot >= 0 else None
            tenant = accounts[int(c["account"][slot])] if slot >= 0 else None
            by = tuple(x.id for x in sil if matches(x.matchers, labels))
            now_alerts.append(Alert(
                fingerprint=fp, name=labels["alertname"], severity=_SEV[labels["severity"]],
                state="silenced" if by else "firing", starts_at=start, labels=labels,
                annotations=ann, silenced_by=by, source="simulator",
                node=labels.get("Hostname"), gpu=g, job_id=job_id, rack=labels.get("rack"),
                tenant=tenant))
        now_alerts.append(self._watchdog(now, sil, seen))
        for fp in list(self.since):
            if fp not in seen:
                del self.since[fp]
        now_alerts.sort(key=lambda a: (int(a.severity), a.starts_at, a.name, a.node or "", a.gpu or 0))
        self.current = now_alerts
        return now_alerts


    def _watchdog(self, now: float, silences: list[Silence], seen: set[str]) -> Alert:
        """The always-firing alert a site's Alertmanager carries (``vector(1)``): the console's
        dead-man's switch watches for it, so the simulated cluster fires it like a real one
        (resources/prometheus/console-rules.yml ships the same rule), or the console would call
        its own demo blind."""
        labels = {"alertname": WATCHDOG, "severity": "info", "cluster": self.cluster,
                  "job": "prometheus"}
        fp = fingerprint(labels)
        seen.add(fp)
        by = tuple(x.id for x in silences if matches(x.matchers, labels))
        return Alert(
            fingerprint=fp, name=WATCHDOG, severity=Severity.INFO,
            state="silenced" if by else "firing", starts_at=self.since.setdefault(fp, now),
            labels=labels, silenced_by=by, source="simulator",
            annotations={"summary": "Always firing, so that a silent alert path is noticed",
                         "description": "This alert fires at all times. If it stops, alert "
                                        "delivery is broken somewhere between the rules and "
                                        "the console."})


def _bits(throttle: np.ndarray, bit: int) -> np.ndarray:
    t = np.nan_to_num(throttle, nan=0.0).astype(np.int64)
    return (t & bit) > 0


def _first_job(row: np.ndarray) -> int:
    held = row[row >= 0]
    return int(held[0]) if len(held) else -1


def _state(now: float, starts_at: float, ends_at: float) -> str:
    if now >= ends_at:
        return "expired"
    return "active" if now >= starts_at else "pending"

"""The finding: what a detector reports for one tick, before confirmation and tracking."""

from __future__ import annotations

from dataclasses import dataclass

from console.model import Severity, Subject


@dataclass(frozen=True)
class Finding:
    """One candidate anomaly seen in one frame.

    ``key`` identifies the thing across ticks (kind + subject), so the tracker can keep the
    same anomaly id while the signal persists and end it when the finding stops appearing.
    ``confirm`` is how many consecutive ticks must show it before it opens: hard facts
    (a fatal XID, a node marked down) open at once, statistical ones wait to avoid flicker.
    ``confirm_s`` adds a minimum duration, so that a fast poll rate does not shorten the wait
    below what the physics needs (a job's GPUs take minutes to warm up).
    """

    kind: str
    subject: Subject
    score: float
    evidence: str
    severity: Severity = Severity.WARNING
    node: str | None = None
    gpu: int | None = None
    job_id: int | None = None
    rack: str | None = None
    tenant: str | None = None
    confirm: int = 2
    confirm_s: float = 0.0  # ... and at least this long since first seen (poll-rate independent)
    detail: str = ""  # machine-readable hint for cause analysis, e.g. "xid=79" or "metric=temp"
    series: str = ""  # which series of the subject, when a subject has several

    @property
    def key(self) -> str:
        k = f"{self.kind}:{self.subject.level}:{self.subject.key}"
        return f"{k}:{self.series}" if self.series else k

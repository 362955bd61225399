"""The `Source` interface and the error taxonomy every source failure is mapped to.

A source is polled from a worker thread (console/polling.py): `fetch()` blocks, does its own
network I/O and parsing, and returns typed updates or raises `SourceError`. Errors carry plain
words for the operator and never a secret (tokens are kept out of messages by construction:
messages are built from the status code, the host and the server's error text only).
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from console.model import Update

#: The largest answer, in MB of 10^6 bytes, an endpoint accepts unless its settings say
#: otherwise (``max_answer_mb``); here so that the settings and the HTTP client share it.
#: Measured with benchmarks/bench_ingest.py's generators and the recorded answers: one
#: Prometheus metric for 4,096 nodes x 8 GPUs with dcgm-exporter's labels weighs 11.3 MB (all
#: eleven metrics the console asks for in one answer, 125 MB); 50,000 slurmrestd jobs weigh
#: 118 MB written compactly (v0.0.38) and 457 MB as Slurm 26.05 pretty-prints v0.0.45. Each
#: default is at least twice the largest of these for its API.
DEFAULT_MAX_ANSWER_MB: dict[str, float] = {"prometheus": 256.0, "alertmanager": 256.0,
                                           "slurm": 1024.0}

#: Seconds an endpoint has for each network operation and for one whole request, unless its
#: settings say otherwise (``timeout_s``). slurmrestd builds its whole answer before the first
#: byte, in a time that grows with the queue: for 9,500 jobs 3.9-5.9 s on Slurm 26.05 and
#: 5.8-7.6 s on 24.11 (benchmarks/bench_slurm_scale.py), so 5 s, ample for Prometheus and
#: Alertmanager, failed such polls.
DEFAULT_TIMEOUT_S: dict[str, float] = {"prometheus": 5.0, "alertmanager": 5.0, "slurm": 60.0}


class ErrorKind(enum.Enum):
    UNREACHABLE = "unreachable"  # connection refused, DNS, TLS handshake
    TIMEOUT = "timeout"
    HTTP = "http error"  # 5xx, 404, ...
    AUTH = "auth"  # 401/403, slurmrestd's 500 for a bad/expired token
    BAD_PAYLOAD = "bad payload"  # HTML from a proxy, truncated JSON, wrong shape
    QUERY = "query error"  # Prometheus status:error with errorType
    CONFIG = "config"  # missing secret, bad URL
    INTERNAL = "internal"  # a bug of ours: still shown, never a crash


class SourceError(Exception):
    """A classified failure of one fetch. ``message`` is what the operator reads."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"SourceError({self.kind.value}: {self.message})"


@runtime_checkable
class Source(Protocol):
    """A pollable data source. Lives in one poller worker thread; not thread-safe itself."""

    name: str
    kind: str  # "telemetry" | "scheduler" | "alerts" | "simulator"
    interval_s: float

    def fetch(self) -> list[Update]:
        """Fetch and parse once. Blocks; raises SourceError on any failure."""
        ...

    def close(self) -> None:
        """Release sessions and sockets."""
        ...

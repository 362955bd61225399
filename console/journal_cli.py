"""The journal on the command line: ``timeline`` and ``status --at``, headless and read-only.

Both read the cluster's journal database without starting an engine (so they work while a
console is running, and after it stopped); neither ever writes to it. Times are ISO 8601
(``2026-12-04T06:00``, local time unless an offset or ``Z`` is given) or relative to now
(``-2h``, ``-30m``, ``-90s``, ``-1d``, ``now``). No Qt here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from console.config import ClusterSettings, ConfigError, Settings
from console.journal_engine import journal_path
from console.journal_settings import JournalSettings
from console.journal_store import CLUSTER_FIGURES, Event, JournalStore, JournalUnavailable

EXIT_OK, EXIT_NO_DATA, EXIT_USAGE = 0, 1, 2
_RELATIVE = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.I)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
#: The CSV columns of a timeline (JSON carries the same plus ``data``).
CSV_COLUMNS = ("time", "time_iso", "kind", "subject", "summary", "data")


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds for an ISO 8601 time or a relative one (``-2h``); `ConfigError` if neither."""
    now = time.time() if now is None else now
    t = text.strip()
    if t.lower() == "now":
        return now
    m = _RELATIVE.match(t)
    if m:
        return now - float(m.group(1)) * _UNIT_S[(m.group(2) or "s").lower()]
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is not a time: use ISO 8601 (2026-12-04T06:00, "
                          f"2026-12-04T06:00Z) or a relative time (-2h, -30m, -1d)") from None
    return dt.timestamp()  # a naive time is local time, as an operator reads a wall clock


TIME_OPTIONS = ("--since", "--until", "--at")


def join_relative_times(argv: Sequence[str]) -> list[str]:
    """``--since -2h`` as ``--since=-2h``: argparse takes a value starting with "-" for an
    option, and a relative time is the natural way to ask for the last two hours."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in TIME_OPTIONS and i + 1 < len(argv) and _RELATIVE.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def with_journal(settings: Settings) -> Settings:
    """The command line's default: a journal for every cluster unless the config says no."""
    from dataclasses import replace

    return settings if settings.journal is not None else replace(settings, journal=JournalSettings())


def _store(settings: Settings, cluster: ClusterSettings) -> JournalStore:
    path = journal_path(with_journal(settings), cluster)
    if path is None:
        raise JournalUnavailable("the journal is turned off in the config ([journal] enabled = false)")
    return JournalStore(path, readonly=True)


def events_json(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [{"time": round(e.time, 3), "time_iso": iso(e.time), "kind": e.kind,
             "subject": e.subject, "summary": e.summary, "data": dict(e.data)} for e in events]


def events_csv(events: Sequence[Event]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in events:
        w.writerow([f"{e.time:.3f}", iso(e.time), e.kind, e.subject, e.summary,
                    json.dumps(dict(e.data), ensure_ascii=False, sort_keys=True, default=str)])
    return out.getvalue()


def events_text(events: Sequence[Event]) -> str:
    if not events:
        return "no events in that window"
    return "\n".join(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(e.time))}  "
                     f"{e.kind:<18} {e.summary}" for e in events)


def cmd_timeline(args: Any, settings: Settings) -> int:
    """``timeline --since T [--until T] [--format json|csv|text]``: the events, oldest first."""
    now = time.time()
    since = parse_time(args.since, now)
    until = parse_time(args.until, now) if getattr(args, "until", None) else now
    if until < since:
        raise ConfigError("--until is before --since")
    clusters = ([settings.cluster(args.cluster)] if getattr(args, "cluster", None)
                else list(settings.clusters))
    events: list[Event] = []
    for c in clusters:
        try:
            with _store(settings, c) as store:
                events += store.events(since, until)
        except JournalUnavailable as exc:
            if len(clusters) == 1:
                print(f"aisc-console: no journal for {c.name}: {exc.words}", file=_stderr())
                return EXIT_NO_DATA
    events.sort(key=lambda e: (e.time, e.id or 0))
    fmt = getattr(args, "format", "text")
    if fmt == "json":
        print(json.dumps(events_json(events), indent=1, ensure_ascii=False, default=str))
    elif fmt == "csv":
        print(events_csv(events), end="")
    else:
        print(events_text(events))
    return EXIT_OK


def status_at_dict(cluster: ClusterSettings, at: float, row: dict[str, Any] | None) -> dict[str, Any]:
    """The figures of the journal's minute at ``at``, keyed as in ``status --json``; counts
    are that minute's mean, rounded; null where the figure was unknown (or no minute)."""
    d: dict[str, Any] = {"schema": 1, "cluster": cluster.name, "simulated": cluster.simulated,
                         "at": round(at, 3), "at_iso": iso(at), "from_journal": True,
                         "minute": None if row is None else round(float(row["t"]), 3)}
    detail = (row or {}).get("detail") or {}
    for f in CLUSTER_FIGURES:
        v = None if row is None else row.get(f)
        if v is not None and math.isfinite(v):
            v = round(v, 3) if f.endswith("_pf") else int(round(v))
        else:
            v = None
        d[f] = v
    d["precision"] = detail.get("precision")
    for key in ("gpus_by_health", "nodes_by_state", "alerts_by_severity"):
        d[key] = detail.get(key)
    return d


def format_status_at(d: dict[str, Any]) -> str:
    def n(x: Any, unit: str = "") -> str:
        return "no data" if x is None else f"{x:,.0f}{unit}"

    if d["minute"] is None:
        return f"{d['cluster']}\n  No journal figures at {d['at_iso']}"
    sev = d.get("alerts_by_severity")
    alerts = ("no data on alerts" if not sev else
              f"{sev.get('critical', 0)} critical, {sev.get('warning', 0)} warning, "
              f"{sev.get('info', 0)} info firing")
    return "\n".join([
        f"{d['cluster']}" + ("  [SIMULATED CLUSTER]" if d["simulated"] else "")
        + f"  AS IT WAS AT {d['at_iso']} (from the journal)",
        f"  Delivered   {n(d['delivered_pf'], ' PF')} of {n(d['installed_pf'], ' PF')} installed"
        f" ({d.get('precision') or 'precision unknown'})",
        f"  Capacity    available {n(d['available_pf'], ' PF')}, allocated "
        f"{n(d['allocated_pf'], ' PF')}, busy {n(d['busy_pf'], ' PF')}",
        f"  GPUs        {n(d['gpus_healthy'])} healthy, {n(d['gpus_allocated'])} in use, "
        f"{n(d['gpus_total'])} total",
        f"  Jobs        {n(d['jobs_running'])} running, {n(d['jobs_pending'])} pending "
        f"({n(d['gpus_pending'])} GPUs waiting)",
        f"  Alerts      {alerts}; {n(d['anomalies_open'])} anomalies open",
    ])


def cmd_status_at(args: Any, settings: Settings) -> int:
    """``status --at T``: the figures as they were (exit 1 when the journal has none then)."""
    at = parse_time(args.at)
    clusters = ([settings.cluster(args.cluster)] if getattr(args, "cluster", None)
                else list(settings.clusters))
    objects, blocks, missing = [], [], False
    for c in clusters:
        try:
            with _store(settings, c) as store:
                row = store.cluster_at(at)
        except JournalUnavailable as exc:
            row = None
            print(f"aisc-console: no journal for {c.name}: {exc.words}", file=_stderr())
        missing = missing or row is None
        d = status_at_dict(c, at, row)
        objects.append(d)
        blocks.append(format_status_at(d))
    if getattr(args, "json", False):
        print(json.dumps(objects[0] if len(objects) == 1 else {"schema": 1, "clusters": objects},
                         indent=2))
    else:
        print("\n\n".join(blocks))
    return EXIT_NO_DATA if missing else EXIT_OK


def _stderr() -> Any:
    import sys

    return sys.stderr


__all__ = ["CSV_COLUMNS", "cmd_status_at", "cmd_timeline", "events_csv", "events_json",
           "events_text", "iso", "join_relative_times", "parse_time", "status_at_dict", "with_journal"]

"""``[journal]`` settings: whether each cluster keeps a local journal, where, and for how long.

A separate module so `console.config` only adds one field and one call. ``Settings.journal`` is
None when nothing asked for a journal (settings built in code, as tests and embedders do): only
the command line turns it on by default, so a test never writes into the user's data folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JournalSettings:
    enabled: bool = True
    #: "" = ``$AISC_CONSOLE_DATA_DIR``, else the user's data folder (`console.journal_store`).
    folder: str = ""
    events_days: float = 90.0
    aggregates_days: float = 30.0


def parse_journal(raw: Any, path: str = "journal") -> JournalSettings | None:
    """``[journal]`` from TOML (None when the table is absent); ``ConfigError`` on bad keys."""
    from console.config import ConfigError

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table")
    extra = set(raw) - {"enabled", "folder", "events_days", "aggregates_days"}
    if extra:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(sorted(extra))}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{path}.enabled: expected bool, got {type(enabled).__name__}")
    folder = raw.get("folder", "")
    if not isinstance(folder, str):
        raise ConfigError(f"{path}.folder: expected str, got {type(folder).__name__}")
    days = {}
    for key, default in (("events_days", 90.0), ("aggregates_days", 30.0)):
        v = raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"{path}.{key}: a number of days above 0, got {v!r}")
        days[key] = float(v)
    return JournalSettings(enabled=enabled, folder=folder.strip(), **days)


__all__ = ["JournalSettings", "parse_journal"]

"""The dead-man's switch: say loudly when the console cannot see the cluster.

A console that loses its sources keeps showing its last, calm-looking data; an alert pipeline
that breaks (Alertmanager down, a routing mistake, Prometheus not evaluating rules) shows "no
alerts", which reads as "all healthy". Both look exactly like a good day. Two pieces of
evidence reveal them, and either one makes the console *blind*:

* the configured always-firing alert (Alertmanager's ``Watchdog``, a rule whose expression is
  ``vector(1)``) is missing from fresh alert data: the alert path is broken somewhere between
  the rule and the console, whatever else the alert list says;
* every kind of data the cluster's sources provide is stale (or was never received while its
  sources fail): the panels show the past.

`assess` is a pure function of a frame (aged to the wall clock by the window when nothing
arrives), so the same verdict is drawn in the main window, in presentation mode and in tests.
No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from console.model import Frame, SourceState

#: The words every blind banner starts with and ends with, so it cannot be read as a calm
#: status line: it says what the console does not know and what not to conclude.
BLIND_PREFIX = "BLIND"
BLIND_SUFFIX = "the console cannot see the cluster; do not read this as healthy"

#: Alert states in which an alert still exists (a silenced or inhibited Watchdog is routed
#: away on purpose, but it fires: the pipeline works).
_PRESENT_STATES = frozenset({"firing", "silenced", "inhibited", "suppressed", "active"})


@dataclass(frozen=True)
class DeadmanSettings:
    """``[deadman]`` in the config.

    ``watchdog``: the name of the alert that always fires; "" turns that check off (a site
    without such a rule would otherwise be told it is blind all the time).
    """

    watchdog: str = "Watchdog"


@dataclass(frozen=True)
class Verdict:
    """Blind or not, and why, in words an operator (or a visitor) can act on."""

    blind: bool
    reasons: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The banner's sentence; "" when the console can see."""
        if not self.blind:
            return ""
        return f"{BLIND_PREFIX}: {'; '.join(self.reasons)} \u2014 {BLIND_SUFFIX}"


SEEING = Verdict(False)
#: The defaults: what a config without ``[deadman]`` gets.
DEFAULT_DEADMAN = DeadmanSettings()


def _provided_kinds(frame: Frame) -> list[str]:
    """Kinds of data some source of this cluster provides (a finite stale limit says so)."""
    return [k for k, limit in frame.stale_after_s.items() if math.isfinite(limit)]


def _kind_blind(frame: Frame, kind: str, sources_down: bool) -> bool:
    """Stale data of ``kind``, or none received while every source is failing."""
    if frame.data_time.get(kind) is None:
        return sources_down
    return frame.is_stale(kind)


def watchdog_missing(frame: Frame, name: str) -> bool:
    """Fresh alert data without the always-firing alert ``name`` in it.

    Only fresh data counts: stale alert data is the staleness check's business, and before the
    first answer there is nothing to conclude from.
    """
    if not name or "alerts" not in _provided_kinds(frame):
        return False
    if frame.data_time.get("alerts") is None or frame.is_stale("alerts"):
        return False
    return not any(a.name == name and a.state in _PRESENT_STATES for a in frame.alerts)


def assess(frame: Frame | None, settings: DeadmanSettings = DEFAULT_DEADMAN) -> Verdict:
    """The verdict for ``frame``; no frame at all is not blindness yet (the console starts)."""
    if frame is None:
        return SEEING
    reasons: list[str] = []
    kinds = _provided_kinds(frame)
    bad = {SourceState.FAILING, SourceState.STALE}
    sources_down = bool(frame.sources) and all(s.state in bad for s in frame.sources)
    if kinds and all(_kind_blind(frame, k, sources_down) for k in kinds):
        ages = [a for a in (frame.age_s(k) for k in kinds) if a is not None]
        if ages:
            reasons.append(f"every data source is stale (newest data {_age_words(min(ages))} old)")
        else:
            reasons.append("no data source has answered")
    if watchdog_missing(frame, settings.watchdog):
        reasons.append(f"the always-firing {settings.watchdog} alert is missing, so alert "
                       "delivery is broken and new alerts may not arrive")
    return Verdict(bool(reasons), tuple(reasons))


def _age_words(seconds: float) -> str:
    s = int(max(0.0, seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s / 3600:.1f} h"


def parse_deadman(raw: Any, path: str = "deadman") -> DeadmanSettings:
    """``[deadman]`` from TOML; raises ``console.config.ConfigError`` on a bad key or type."""
    from console.config import ConfigError

    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table")
    extra = set(raw) - {"watchdog"}
    if extra:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(sorted(extra))}")
    watchdog = raw.get("watchdog", "Watchdog")
    if not isinstance(watchdog, str):
        raise ConfigError(f"{path}.watchdog: expected str, got {type(watchdog).__name__}")
    return DeadmanSettings(watchdog=watchdog.strip())

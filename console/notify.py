"""Which alerts and anomalies deserve a desktop notification, and when to keep quiet.

An operator who looks away must learn that a critical alert arrived; an operator who is told
the same thing every second stops listening. So `Notifier` tells each new problem once:

* an alert is known by its fingerprint, an anomaly by its id; once notified (or deliberately
  not, in quiet hours) it is not notified again while it stays open, and notified again if it
  fires anew after it resolved (it left the frame);
* alerts that fire (not silenced or inhibited) at or above ``min_severity`` (critical by
  default) count, and open anomalies at or above ``anomaly_min_severity`` (warning: the
  detectors' findings are few and are the console's own news) when ``anomalies`` is on;
* several new problems in one frame become one notification ("5 new critical alerts: ..."),
  and what is already open when the console starts is summed up once, not replayed;
* in quiet hours (local time, e.g. 22:00-07:00) nothing pops up and nothing sounds; what
  arrived then is counted as seen, so the morning does not start with a backlog of pop-ups
  (the panels show it all).

Pure logic on frames and a local time; the GUI shows what `Notifier.update` returns. No Qt.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from console.model import Frame, Severity

SOUNDS = ("none", "beep")  # or a path to a WAV file
#: More new problems than this in one frame are summed up in a single notification.
MAX_LISTED = 3


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window, possibly across midnight (22:00-07:00)."""

    start: _dt.time
    end: _dt.time

    def contains(self, t: _dt.time) -> bool:
        if self.start == self.end:
            return False  # an empty window, not a whole day: "never quiet" is the safe reading
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class NotifySettings:
    """``[notifications]`` in the config."""

    enabled: bool = True
    min_severity: Severity = Severity.CRITICAL
    anomalies: bool = True
    anomaly_min_severity: Severity = Severity.WARNING
    quiet_hours: QuietHours | None = None
    #: Per severity: "none", "beep" (the system bell) or a WAV file's path.
    sound: dict[Severity, str] = field(default_factory=lambda: {
        Severity.CRITICAL: "beep", Severity.WARNING: "none", Severity.INFO: "none"})


#: The defaults: what a config without ``[notifications]`` gets (never mutated).
DEFAULT_NOTIFY = NotifySettings()


@dataclass(frozen=True)
class Notification:
    """One message to show: a title, a body, its severity and the sound to play."""

    title: str
    body: str
    severity: Severity
    sound: str
    keys: tuple[str, ...]  # the fingerprints / anomaly ids it is about


@dataclass(frozen=True)
class _Item:
    key: str
    severity: Severity
    words: str
    kind: str  # "alert" | "anomaly"


class Notifier:
    """Remembers what has been told; `update` returns what to tell now (often nothing)."""

    def __init__(self, settings: NotifySettings = DEFAULT_NOTIFY) -> None:
        self.settings = settings
        self._seen: set[str] = set()
        self._started = False
        #: Problems that arrived in quiet hours and were not shown (for the status line).
        self.suppressed = 0

    def update(self, frame: Frame, local_time: _dt.time) -> list[Notification]:
        s = self.settings
        present, due = self._items(frame)
        new = [i for i in due if i.key not in self._seen]
        # Forget what left the frame: if it fires again, that is news again.
        self._seen = (self._seen & present) | {i.key for i in new}
        first = not self._started
        self._started = True
        if not new or not s.enabled:
            return []
        if s.quiet_hours is not None and s.quiet_hours.contains(local_time):
            self.suppressed += len(new)
            return []
        return [self._message(new, already_open=first)]

    def _items(self, frame: Frame) -> tuple[set[str], list[_Item]]:
        """Keys of every open problem, and the ones that qualify for a notification."""
        s = self.settings
        present: set[str] = set()
        due: list[_Item] = []
        for a in frame.alerts:
            if a.state == "resolved":
                continue
            key = f"alert:{a.fingerprint}"
            present.add(key)
            if a.state == "firing" and a.severity <= s.min_severity:
                summary = a.annotations.get("summary") or (
                    f"{a.name} on {a.node}" if a.node else a.name)
                due.append(_Item(key, a.severity, summary, "alert"))
        for an in frame.anomalies:
            if an.ended_at is not None:
                continue
            key = f"anomaly:{an.id}"
            present.add(key)
            if s.anomalies and an.severity <= s.anomaly_min_severity:
                due.append(_Item(key, an.severity, an.evidence or an.kind, "anomaly"))
        return present, due

    def _message(self, items: list[_Item], already_open: bool) -> Notification:
        items = sorted(items, key=lambda i: (int(i.severity), i.words))
        worst = items[0].severity
        sev = worst.name.lower()
        n = len(items)
        kinds = {i.kind for i in items}
        what = (f"{sev} alert" if kinds == {"alert"} else
                "anomaly" if kinds == {"anomaly"} else "problem")
        whats = "anomalies" if what == "anomaly" else what + "s"
        worst_words = "" if kinds == {"alert"} else f" (worst: {sev})"
        if already_open:
            title = f"{n} {what if n == 1 else whats} open{worst_words}"
        elif n == 1:
            title = f"New {what}{worst_words}"
        else:
            title = f"{n} new {whats}{worst_words}"
        lines = [i.words for i in items[:MAX_LISTED]]
        if n > MAX_LISTED:
            lines.append(f"and {n - MAX_LISTED} more")
        return Notification(title=title, body="\n".join(lines), severity=worst,
                            sound=self.settings.sound.get(worst, "none"),
                            keys=tuple(i.key for i in items))


def _parse_time(text: str, where: str) -> _dt.time:
    from console.config import ConfigError

    try:
        return _dt.datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        raise ConfigError(f"{where}: a time like 22:00, got {text!r}") from None


def parse_quiet_hours(text: str, where: str = "notifications.quiet_hours") -> QuietHours | None:
    """"22:00-07:00" (local time) or "" for none."""
    from console.config import ConfigError

    if not text.strip():
        return None
    parts = text.split("-")
    if len(parts) != 2:
        raise ConfigError(f"{where}: a window like \"22:00-07:00\", got {text!r}")
    return QuietHours(_parse_time(parts[0], where), _parse_time(parts[1], where))


def parse_notify(raw: Any, path: str = "notifications") -> NotifySettings:
    """``[notifications]`` from TOML; raises ``console.config.ConfigError`` when wrong."""
    from console.config import ConfigError

    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table")
    extra = set(raw) - {"enabled", "min_severity", "anomalies", "anomaly_min_severity",
                        "quiet_hours", "sound"}
    if extra:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(sorted(extra))}")

    def typed(key: str, typ: type, default: Any) -> Any:
        v = raw.get(key, default)
        if not isinstance(v, typ):
            raise ConfigError(f"{path}.{key}: expected {typ.__name__}, got {type(v).__name__}")
        return v

    levels = {s.name.lower(): s for s in Severity}
    min_sev = typed("min_severity", str, "critical")
    if min_sev not in levels:
        raise ConfigError(f"{path}.min_severity: one of {', '.join(levels)}")
    an_sev = typed("anomaly_min_severity", str, "warning")
    if an_sev not in levels:
        raise ConfigError(f"{path}.anomaly_min_severity: one of {', '.join(levels)}")
    sound = dict(NotifySettings().sound)
    for k, v in typed("sound", dict, {}).items():
        if k not in levels:
            raise ConfigError(f"{path}.sound: keys are {', '.join(levels)}, got {k!r}")
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{path}.sound.{k}: \"none\", \"beep\" or a WAV file path")
        sound[levels[k]] = v
    return NotifySettings(enabled=typed("enabled", bool, True), min_severity=levels[min_sev],
                          anomalies=typed("anomalies", bool, True),
                          anomaly_min_severity=levels[an_sev],
                          quiet_hours=parse_quiet_hours(typed("quiet_hours", str, ""),
                                                        f"{path}.quiet_hours"),
                          sound=sound)

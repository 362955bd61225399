"""Colour tokens and fonts shared by QSS and pyqtgraph (which ignores QSS).

One `Theme` object is the source of truth; panels read colours from it so a theme switch or a
font-scale change for a wall screen restyles plots and widgets alike. Colour is never the only
signal: every state colour has a word (`HEALTH_WORDS`) and a mark drawn with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.model import Health, Severity


@dataclass(frozen=True)
class Theme:
    name: str = "dark"
    background: str = "#121418"
    surface: str = "#1a1d23"
    surface_alt: str = "#22262e"
    border: str = "#2e333d"
    text: str = "#d8dce3"
    text_dim: str = "#8a919e"
    accent: str = "#4fa3ff"
    # Categorical state colours (checked for deuteranopia/protanopia: blue/amber/red/grey/purple
    # stay distinct in lightness as well as hue).
    health: dict[Health, str] = field(default_factory=lambda: {
        Health.OK: "#3b82c4",
        Health.DEGRADED: "#f0a030",
        Health.FAILED: "#e5484d",
        Health.UNAVAILABLE: "#6b5b95",
        Health.NO_DATA: "#4a4f58",
    })
    severity: dict[Severity, str] = field(default_factory=lambda: {
        Severity.CRITICAL: "#e5484d",
        Severity.WARNING: "#f0a030",
        Severity.INFO: "#4fa3ff",
    })
    stale: str = "#7d6b8f"
    ok_text: str = "#7cc4ff"
    font_family: str = "DejaVu Sans"
    base_px: int = 14
    font_scale: float = 1.0

    def px(self, size: int) -> int:
        """A font size scaled for the wall (font-scale setting), never below 10 px."""
        return max(10, round(size * self.font_scale))


HEALTH_WORDS: dict[Health, str] = {
    Health.OK: "OK",
    Health.DEGRADED: "degraded",
    Health.FAILED: "failed",
    Health.UNAVAILABLE: "out of service",
    Health.NO_DATA: "no data",
}

SEVERITY_WORDS: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}

_current = Theme()


def current() -> Theme:
    return _current


def set_current(theme: Theme) -> None:
    global _current
    _current = theme

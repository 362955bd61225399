"""Colour tokens and fonts shared by QSS and pyqtgraph (which ignores QSS).

One `Theme` object is the source of truth; panels read colours from it so a theme switch or a
font-scale change for a wall screen restyles plots and widgets alike. Colour is never the only
signal: every state colour has a word (`HEALTH_WORDS`) and a mark drawn with it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace
from importlib import resources as _resources

import numpy as np

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

    def scaled(self, font_scale: float) -> "Theme":
        """The same colours at another font scale (walls, presentation mode)."""
        return replace(self, font_scale=float(font_scale))

    def tokens(self) -> dict[str, str]:
        """Values substituted into the QSS template (``$name`` placeholders)."""
        return {
            "background": self.background, "surface": self.surface,
            "surface_alt": self.surface_alt, "border": self.border, "text": self.text,
            "text_dim": self.text_dim, "accent": self.accent, "stale": self.stale,
            "critical": self.severity[Severity.CRITICAL],
            "warning": self.severity[Severity.WARNING],
            "info": self.severity[Severity.INFO],
            "font_family": self.font_family,
            "base_px": str(self.px(self.base_px)),
            "small_px": str(self.px(13)),
            "sub_px": str(self.px(15)),
            "title_px": str(self.px(15)),
            "banner_px": str(self.px(18)),
            "kpi_px": str(self.px(40)),
        }


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

SOURCE_STATE_WORDS: dict[str, tuple[str, str]] = {
    # state value -> (mark, word); the mark keeps the state readable without colour.
    "ok": ("\u25cf", "OK"),
    "slow": ("\u25b2", "slow"),
    "failing": ("\u2716", "failing"),
    "stale": ("\u25cc", "stale"),
    "waiting": ("\u2026", "waiting"),
}


def source_state_colour(theme: "Theme", state: str) -> str:
    return {
        "ok": theme.ok_text,
        "slow": theme.severity[Severity.WARNING],
        "failing": theme.severity[Severity.CRITICAL],
        "stale": theme.stale,
    }.get(state, theme.text_dim)


def stylesheet(theme: "Theme") -> str:
    """The application QSS: the shipped template filled with this theme's tokens."""
    template = (_resources.files("resources") / "themes" / f"{theme.name}.qss").read_text("utf-8")
    return string.Template(template).safe_substitute(theme.tokens())


def hex_rgba(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def colormap_lut(name: str, n: int) -> np.ndarray:
    """uint8[n, 4] RGBA samples of a perceptual colour map (viridis, CET-D1...).

    Imported lazily from pyqtgraph so this module stays importable without a display.
    """
    import pyqtgraph as pg

    lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, nPts=n, alpha=True, mode="byte")
    return np.ascontiguousarray(lut, dtype=np.uint8)


def apply(app, theme: "Theme | None" = None) -> "Theme":
    """Style a QApplication: QSS, palette, default font, and pyqtgraph's global options.

    pyqtgraph ignores QSS, so its background/foreground come from the same tokens here;
    antialiasing stays off (PERF.md: 34 vs 59 ms per dashboard tick).
    """
    import pyqtgraph as pg
    from PySide6.QtGui import QColor, QFont, QPalette

    theme = theme or current()
    set_current(theme)
    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, theme.background),
        (QPalette.ColorRole.Base, theme.surface),
        (QPalette.ColorRole.AlternateBase, theme.surface_alt),
        (QPalette.ColorRole.WindowText, theme.text),
        (QPalette.ColorRole.Text, theme.text),
        (QPalette.ColorRole.Button, theme.surface_alt),
        (QPalette.ColorRole.ButtonText, theme.text),
        (QPalette.ColorRole.ToolTipBase, theme.surface_alt),
        (QPalette.ColorRole.ToolTipText, theme.text),
        (QPalette.ColorRole.Highlight, "#2d4a6b"),
        (QPalette.ColorRole.HighlightedText, theme.text),
        (QPalette.ColorRole.PlaceholderText, theme.text_dim),
    ):
        pal.setColor(role, QColor(colour))
    app.setPalette(pal)
    font = QFont(theme.font_family)
    font.setPixelSize(theme.px(theme.base_px))
    app.setFont(font)
    app.setStyleSheet(stylesheet(theme))
    pg.setConfigOptions(antialias=False, background=theme.background, foreground=theme.text_dim)
    return theme


_current = Theme()


def current() -> Theme:
    return _current


def set_current(theme: Theme) -> None:
    global _current
    _current = theme


# ---------------------------------------------------------------------------------------------
# Panel chrome shared by every panel, so titles and data-age labels look and behave alike.
# ---------------------------------------------------------------------------------------------

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget  # noqa: E402

from console.model import Frame  # noqa: E402
from widgets.formatting import fmt_age  # noqa: E402


def set_state_property(widget: QWidget, name: str, value: str) -> bool:
    """Set a QSS dynamic property and re-polish only when it changed (re-polish is not free)."""
    if widget.property(name) == value:
        return False
    widget.setProperty(name, value)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    return True


class PanelHeader(QWidget):
    """Title on the left, optional controls, and the data age on the right (GUI thread).

    The age label turns into a "STALE" badge when the frame says the panel's data is stale, so
    a frozen panel never looks calm (UI.md, "Live without noise").
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PanelHeader")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(6, 2, 6, 2)
        self._layout.setSpacing(10)
        self.title_label = QLabel(title, self)
        self.title_label.setObjectName("PanelTitle")
        self.age_label = QLabel("no data yet", self)
        self.age_label.setObjectName("PanelAge")
        self.age_label.setProperty("stale", "false")
        self._layout.addWidget(self.title_label)
        self._layout.addStretch(1)
        self._layout.addWidget(self.age_label)
        self.stale = False

    def add_widget(self, widget: QWidget) -> None:
        """Insert a control (metric selector, legend) between the title and the age."""
        self._layout.insertWidget(self._layout.count() - 1, widget)

    def set_age(self, frame: Frame, kind: str) -> bool:
        """Show the age of ``kind`` data in ``frame``; returns True when it is stale."""
        stale = frame.is_stale(kind)
        text = fmt_age(frame.age_s(kind))
        if stale:
            text = f"STALE \u00b7 {text}"
        if self.age_label.text() != text:
            self.age_label.setText(text)
        set_state_property(self.age_label, "stale", "true" if stale else "false")
        self.stale = stale
        return stale

"""Colour tokens and fonts shared by QSS and pyqtgraph (which ignores QSS).

One `Theme` object is the source of truth; panels read colours from it so a theme switch or a
font-scale change for a wall screen restyles plots and widgets alike. Colour is never the only
signal: every state colour has a word (`HEALTH_WORDS`) and a mark drawn with it.

Themes (`THEMES`, chosen by `theme_named`): "dark" for the operations room, "light" for a bright
office or a projector, "high-contrast" (white on black, saturated states) for low vision and
glare. Any of them can take `COLOUR_BLIND_HEALTH`, a health palette from the Okabe-Ito set whose
states differ in lightness as well as hue, so they stay apart under protanopia, deuteranopia and
tritanopia (tests/widgets/test_theme.py simulates all three).
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
    selection: str = "#2d4a6b"
    on_critical: str = "#ffffff"  # text drawn on a critical (red) background
    on_warning: str = "#121418"  # text drawn on a warning (amber) background
    template: str = "console"  # resources/themes/<template>.qss, filled with `tokens`
    #: Plot line colours by series key, where a theme needs other than a plot's own defaults
    #: (the capacity plot's light-grey "allocated" line vanishes on a light background).
    series: dict[str, str] = field(default_factory=dict)
    colour_blind: bool = False  # the health colours are COLOUR_BLIND_HEALTH
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
            "selection": self.selection, "on_critical": self.on_critical,
            "on_warning": self.on_warning,
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


#: Health colours safe for colour-blind viewers (Okabe & Ito): blue, yellow, vermillion,
#: reddish purple and grey, far apart in lightness as well as hue.
COLOUR_BLIND_HEALTH: dict[Health, str] = {
    Health.OK: "#0072b2",
    Health.DEGRADED: "#f0e442",
    Health.FAILED: "#d55e00",
    Health.UNAVAILABLE: "#cc79a7",
    Health.NO_DATA: "#4a4f58",
}

LIGHT = Theme(
    name="light", background="#f3f4f6", surface="#ffffff", surface_alt="#e9ecf0",
    border="#c3c9d2", text="#16191d", text_dim="#4e5663", accent="#0b5fbf",
    health={Health.OK: "#2f6fb0", Health.DEGRADED: "#d08a00", Health.FAILED: "#c62828",
            Health.UNAVAILABLE: "#6b5b95", Health.NO_DATA: "#a3a9b2"},
    severity={Severity.CRITICAL: "#c62828", Severity.WARNING: "#b06a00",
              Severity.INFO: "#0b5fbf"},
    stale="#7d6b8f", ok_text="#1c5a99", selection="#c7dbf3", on_warning="#16191d",
    series={"installed_pf": "#6b7380", "available_pf": "#8c96a3", "allocated_pf": "#2b3038",
            "busy_pf": "#5a7a94", "delivered_pf": "#0b5fbf"})

HIGH_CONTRAST = Theme(
    name="high-contrast", background="#000000", surface="#000000", surface_alt="#161616",
    border="#a0a0a0", text="#ffffff", text_dim="#e6e6e6", accent="#33bbff",
    health={Health.OK: "#3d9bff", Health.DEGRADED: "#ffb000", Health.FAILED: "#ff3b3b",
            Health.UNAVAILABLE: "#e0b0e0", Health.NO_DATA: "#7a7a7a"},
    severity={Severity.CRITICAL: "#ff3b3b", Severity.WARNING: "#ffb000",
              Severity.INFO: "#33bbff"},
    stale="#b58cff", ok_text="#7fd0ff", selection="#0b4f8a", on_warning="#000000",
    series={"installed_pf": "#bbbbbb", "available_pf": "#dddddd", "allocated_pf": "#ffffff",
            "busy_pf": "#7fb2d9", "delivered_pf": "#33bbff"})

#: The themes an operator can choose (View > Theme, or ``theme`` under ``[ui]`` in the config).
THEMES: dict[str, Theme] = {"dark": Theme(), "light": LIGHT, "high-contrast": HIGH_CONTRAST}


def theme_named(name: str, *, colour_blind: bool = False, font_scale: float = 1.0) -> Theme:
    """The theme called ``name`` ("dark", "light", "high-contrast"), with the colour-blind
    health palette if asked, at ``font_scale``; ValueError naming the choices otherwise."""
    key = name.strip().lower().replace(" ", "-").replace("_", "-")
    if key not in THEMES:
        raise ValueError(f"unknown theme {name!r}; choose one of {', '.join(THEMES)}")
    theme = replace(THEMES[key], font_scale=float(font_scale))
    if colour_blind:
        theme = replace(theme, health=dict(COLOUR_BLIND_HEALTH), colour_blind=True)
    return theme


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
    template = (_resources.files("resources") / "themes" / f"{theme.template}.qss").read_text("utf-8")
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
        (QPalette.ColorRole.Highlight, theme.selection),
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

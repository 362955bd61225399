"""Themes from colour tokens: dark, light and high contrast, switched from the menu and the
config, and a health palette that stays distinct for colour-blind viewers."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from console.model import Health
from frames import make_test_frame
from widgets import theme
from widgets.heatmap_panel import CODE_HEALTH
from widgets.main_window import MainWindow
from widgets.panel import PanelContext

# Machado, Oliveira and Fernandes (2009) at full severity, on linear RGB.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}


def _linear(colour: str) -> np.ndarray:
    c = np.array(theme.hex_rgba(colour)[:3]) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(rgb_linear: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ rgb_linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair_as_seen(colours: dict[Health, str], deficiency: str) -> float:
    """The smallest CIE76 difference between two health colours as ``deficiency`` sees them."""
    m = np.array(CVD[deficiency])
    lab = {h: _lab(np.clip(m @ _linear(c), 0, 1)) for h, c in colours.items()}
    return min(float(np.linalg.norm(lab[a] - lab[b])) for a, b in itertools.combinations(lab, 2))


@pytest.mark.parametrize("deficiency", list(CVD))
def test_the_colour_blind_palette_keeps_every_health_state_apart(deficiency):
    # 20 units of CIE76 is a difference seen at a glance; the default dark palette reaches
    # only 12 to 17 here, which is why the colour-blind palette exists
    assert closest_pair_as_seen(theme.COLOUR_BLIND_HEALTH, deficiency) >= 20
    assert closest_pair_as_seen(theme.HIGH_CONTRAST.health, deficiency) >= 20


def test_theme_names_and_the_colour_blind_option():
    assert list(theme.THEMES) == ["dark", "light", "high-contrast"]
    blind = theme.theme_named("High contrast", colour_blind=True, font_scale=1.5)
    assert blind.name == "high-contrast" and blind.colour_blind and blind.font_scale == 1.5
    assert blind.health == theme.COLOUR_BLIND_HEALTH
    assert blind.background == "#000000"  # the rest of the theme stays
    assert theme.theme_named("dark") == theme.Theme()
    with pytest.raises(ValueError, match="dark, light, high-contrast"):
        theme.theme_named("solarized")


def test_the_stylesheet_takes_every_colour_from_the_tokens():
    template = (theme._resources.files("resources") / "themes" / "console.qss").read_text("utf-8")
    assert re.findall(r"#[0-9a-fA-F]{3,6}\b", template) == []  # no colour but the tokens
    for t in theme.THEMES.values():
        qss = theme.stylesheet(t)
        assert re.findall(r"\$\{?[a-z_]+", qss.split("*/", 1)[1]) == []  # every token filled
        assert f"background-color: {t.background};" in qss
        assert f"selection-background-color: {t.selection};" in qss


def test_a_theme_from_the_menu_restyles_the_window_and_is_remembered(qtbot, qsettings):
    win = MainWindow(PanelContext(), settings=qsettings, persist=True)
    qtbot.addWidget(win)
    win.show()
    frame = make_test_frame()
    win.show_frame(frame)
    win.render_all()
    old_map = win.panels["heatmap"]
    win.keyboard.actions["theme:light"].trigger()
    app = QApplication.instance()
    assert theme.current().name == "light"
    assert app.palette().color(QPalette.ColorRole.Window).name() == theme.LIGHT.background
    assert f"background-color: {theme.LIGHT.background};" in app.styleSheet()
    heat = win.panels["heatmap"]
    assert heat is not old_map and heat.frame is frame  # built again, with the data
    assert tuple(heat.lut[CODE_HEALTH + int(Health.FAILED)]) == theme.hex_rgba(
        theme.LIGHT.health[Health.FAILED])
    assert win.keyboard.actions["theme:light"].isChecked()
    assert not win.keyboard.actions["theme:dark"].isChecked()
    win.keyboard.actions["colour_blind"].trigger()
    heat = win.panels["heatmap"]
    assert theme.current().colour_blind and theme.current().name == "light"
    assert tuple(heat.lut[CODE_HEALTH + int(Health.DEGRADED)]) == theme.hex_rgba(
        theme.COLOUR_BLIND_HEALTH[Health.DEGRADED])
    assert qsettings.value("display/theme") == "light"
    win.close()

    theme.set_current(theme.Theme())  # the configured theme; the operator's choice wins
    again = MainWindow(PanelContext(), settings=qsettings, persist=True)
    qtbot.addWidget(again)
    assert theme.current().name == "light" and theme.current().colour_blind
    assert again.keyboard.actions["colour_blind"].isChecked()


def test_the_config_chooses_the_theme(tmp_path):
    from console import cli
    from console.config import ConfigError, load_settings

    path = tmp_path / "c.toml"
    path.write_text('[ui]\ntheme = "high-contrast"\ncolour_blind = true\n'
                    '[[clusters]]\nname = "x"\n[clusters.sim]\n', "utf-8")
    settings = load_settings(path)
    args = cli.build_parser().parse_args(["snapshot", "--out", "x.png"])
    cli._use_theme(settings, args)
    assert theme.current().name == "high-contrast" and theme.current().colour_blind
    args = cli.build_parser().parse_args(["snapshot", "--out", "x.png", "--theme", "light"])
    cli._use_theme(settings, args)
    assert theme.current().name == "light" and theme.current().colour_blind
    path.write_text('[ui]\ntheme = "pink"\n[[clusters]]\nname = "x"\n[clusters.sim]\n', "utf-8")
    with pytest.raises(ConfigError, match="ui.theme: one of dark, light, high-contrast"):
        load_settings(path)

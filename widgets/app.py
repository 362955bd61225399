"""Start the GUI: QApplication with the dark theme, the main window, the bridge, the engine.

The engine runs in its own worker thread (or process) and reaches the window only through
`EngineBridge`. After start-up `gc.freeze()` moves everything built so far out of the cyclic
collector's reach: a full collection of the GUI's long-lived objects costs more than a frame
(PERF.md, "Memory").
"""

from __future__ import annotations

import gc
import getpass
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, TypeGuard

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from widgets import theme as _theme

if TYPE_CHECKING:  # typing only: the GUI entry point takes one engine or a fleet of them
    from console.engine import EngineApi
    from console.fleet import Fleet

ORGANISATION = "AISC"
APPLICATION = "AISC Console"


def ensure_platform() -> None:
    """Use the off-screen platform when there is no display (headless commands, CI)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def create_app(font_scale: float = 1.0, argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists), named for QSettings and themed."""
    ensure_platform()
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0] if sys.argv else "aisc-console"])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    _theme.apply(app, _theme.current().scaled(float(font_scale)))  # the configured theme
    return app  # type: ignore[return-value]


#: The screen height the dashboard's sizes are designed at.
DESIGN_HEIGHT = 1080
#: Presentation mode is read from across a room: larger than the desk's text at any size.
PRESENTATION_SCALE = 1.4


def screen_font_scale(height_px: int, base: float = 1.0, presentation: bool = False) -> float:
    """The text size factor for a screen ``height_px`` logical pixels tall.

    Sizes are designed for 1080 lines; a 4K wall without desktop scaling has twice as many, and
    text left at its 1080 size is then half as tall from the same three metres. So the factor
    grows with the height (never below ``base``, the operator's own setting), and presentation
    mode starts from `PRESENTATION_SCALE`.
    """
    floor = max(base, PRESENTATION_SCALE) if presentation else base
    return max(floor, floor * height_px / DESIGN_HEIGHT)


def is_fleet(engine: object) -> TypeGuard[Fleet]:
    """A `console.fleet.Fleet` (several clusters) rather than one engine: duck-typed, so tests
    can pass fakes of either."""
    return hasattr(engine, "names") and hasattr(engine, "latest_frames")


def run_gui(engine: EngineApi | Fleet, *, font_scale: float = 1.0, fullscreen: bool = False,
            presentation: bool = False, settings_file: Any = None) -> int:
    """Run the console window until it closes; returns the exit code.

    ``engine`` is one cluster's engine (`Engine`, `ProcessEngine`) or a `console.fleet.Fleet`:
    then the window gets a cluster switcher and the fleet overview, and shows the first cluster.
    """
    from widgets.main_window import MainWindow
    from widgets.panel import PanelContext

    settings = QSettings(ORGANISATION, APPLICATION)
    saved_scale = settings.value("display/font_scale")
    if font_scale == 1.0 and saved_scale is not None:
        try:
            font_scale = float(saved_scale)
        except (TypeError, ValueError):
            pass
    app = create_app(font_scale)
    from widgets.export import install_exports  # every table to CSV, every plot to PNG

    install_exports(app)
    if presentation:
        screen = app.primaryScreen()
        height = screen.size().height() if screen is not None else DESIGN_HEIGHT
        _theme.apply(app, _theme.Theme(font_scale=screen_font_scale(height, font_scale, presentation=True)))
    actions = None if (presentation or is_fleet(engine)) else getattr(engine, "actions", None)
    context = PanelContext(actions=actions, operator=_operator_name())
    if presentation:  # the playlist of public-safe scenes (widgets/presentation)
        from widgets.presentation.app import run_presentation

        return run_presentation(app, engine, settings_file)
    window = MainWindow(context, settings=settings, presentation=presentation)
    from widgets.presentation.hooks import install as _install_extras

    _install_extras(window, **_extras_settings(settings_file))
    from widgets.timeline_install import install_journal  # scrubber, timeline, audit trail

    journal_views = install_journal(window, engine)  # the views live as long as the window
    if is_fleet(engine):
        window.set_clusters(engine.names, actions=None if presentation else engine.actions(),
                            simulated=engine.simulated())
    try:
        return run_window(app, engine, window, full_screen=fullscreen or presentation)
    finally:
        if journal_views is not None:
            journal_views.close()  # the notes typed last are written


def run_window(app: QApplication, engine: Any, window: Any, *, full_screen: bool) -> int:
    """Bridge ``engine`` (one cluster's engine or a fleet) to ``window``, show its newest frames,
    start it and run the event loop until the window closes; returns the exit code.

    ``window`` is the console window or the presentation window: both take ``show_frame`` and
    ``show_engine_status``, and ``show_cluster_frame`` / ``show_cluster_engine_status`` for a
    fleet's clusters.
    """
    from widgets.bridge import EngineBridge, FleetBridge

    bridge: Any
    if is_fleet(engine):
        bridge = FleetBridge(engine, window)
        bridge.frame_ready.connect(window.show_cluster_frame)
        bridge.status_changed.connect(window.show_cluster_engine_status)
        for name, latest in engine.latest_frames().items():
            if latest is not None:
                window.show_cluster_frame(name, latest)
    else:
        bridge = EngineBridge(engine, window)
        bridge.frame_ready.connect(window.show_frame)
        # A dead engine sends no frames: its health comes separately, so the window says so.
        bridge.status_changed.connect(window.show_engine_status)
        latest = engine.latest_frame() if hasattr(engine, "latest_frame") else None
        if latest is not None:
            window.show_frame(latest)

    # Ctrl+C in the terminal closes the window cleanly: Python only sees signals when the
    # interpreter runs, so a cheap timer gives it the chance.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer(window)
    tick.start(250)
    tick.timeout.connect(lambda: None)

    engine.start()
    try:
        if full_screen:
            window.showFullScreen()
        else:
            window.show()
        QTimer.singleShot(0, gc.freeze)
        return int(app.exec())
    finally:
        bridge.close()
        engine.stop()
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def _extras_settings(settings_file: Any) -> dict[str, Any]:
    """Presentation, notification and dead-man's-switch settings of a `console.config.Settings`
    (the defaults when none was given)."""
    keys = ("presentation", "notifications", "deadman")
    return {k: getattr(settings_file, k) for k in keys if hasattr(settings_file, k)}


def _operator_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"

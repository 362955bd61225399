"""Run presentation mode on its own: `aisc-console --presentation` (GUI thread).

The same engine and bridge as the console window, feeding a `PresentationWindow` full screen
instead. With several clusters the first one that reports is shown. Read-only by
construction: the window has no actions to offer.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QApplication

from console.deadman import DeadmanSettings
from console.presentation_settings import PresentationSettings


def run_presentation(app: QApplication, engine: Any, settings: Any = None) -> int:
    """Show the scenes full screen until the window closes; returns the exit code."""
    from widgets.app import run_window
    from widgets.presentation.window import PresentationWindow

    pres = getattr(settings, "presentation", None)
    dead = getattr(settings, "deadman", None)
    window = PresentationWindow(pres if isinstance(pres, PresentationSettings) else PresentationSettings(),
                                dead if isinstance(dead, DeadmanSettings) else DeadmanSettings())
    return run_window(app, engine, window, full_screen=True)

"""Run presentation mode on its own: `aisc-console --presentation` (GUI thread).

The same engine and bridge as the console window, feeding a `PresentationWindow` full screen
instead. With several clusters the first one that reports is shown. Read-only by
construction: the window has no actions to offer.
"""

from __future__ import annotations

import gc
import signal
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from console.deadman import DeadmanSettings
from console.presentation_settings import PresentationSettings


def run_presentation(app: QApplication, engine: Any, settings: Any = None) -> int:
    """Show the scenes full screen until the window closes; returns the exit code."""
    from widgets.app import is_fleet
    from widgets.bridge import EngineBridge, FleetBridge
    from widgets.presentation.window import PresentationWindow

    pres = getattr(settings, "presentation", None)
    dead = getattr(settings, "deadman", None)
    window = PresentationWindow(pres if isinstance(pres, PresentationSettings) else PresentationSettings(),
                                dead if isinstance(dead, DeadmanSettings) else DeadmanSettings())
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
        bridge.status_changed.connect(window.show_engine_status)
        latest = engine.latest_frame() if hasattr(engine, "latest_frame") else None
        if latest is not None:
            window.show_frame(latest)
    signal.signal(signal.SIGINT, lambda *_: window.close())
    engine.start()
    try:
        window.showFullScreen()
        QTimer.singleShot(0, gc.freeze)
        return int(app.exec())
    finally:
        bridge.close()
        engine.stop()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

"""Render the full dashboard for one frame to a PNG, off-screen.

Used by `aisc-console snapshot`, by tests and by the README screenshot: the same main window
and panels as the live console, at a given size, with every panel rendered synchronously
(no timers, no waiting) and nothing read from or written to the user's saved layout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.model import Frame


def render_snapshot(frame: Frame, out_path: str | Path, size: tuple[int, int] = (1920, 1080),
                    font_scale: float = 1.0, presentation: bool = False,
                    deadman: object | None = None, layout: str | None = None) -> Path:
    """Write a PNG of the dashboard showing `frame`; returns the path written.

    ``deadman``: the `console.deadman.DeadmanSettings` of the BLIND banner (defaults if None).
    """
    from widgets.app import create_app

    app = create_app(font_scale)
    from widgets.main_window import MainWindow
    from widgets.panel import PanelContext

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    window = MainWindow(PanelContext(), persist=False, presentation=presentation)
    if layout is not None and not presentation:
        window.set_named_layout(layout)  # "NOC wall", "triage", "capacity" (ValueError if not)
    from console.deadman import DeadmanSettings
    from widgets.deadman_banner import attach_deadman

    # As live: a blind console says so in the picture too.
    attach_deadman(window, deadman if isinstance(deadman, DeadmanSettings) else DeadmanSettings())
    return _grab(app, window, frame, size, out, window.render_all)


def render_presentation(frame: Frame, out_path: str | Path, scene: str = "headline",
                        size: tuple[int, int] = (1920, 1080), settings: object | None = None,
                        deadman: object | None = None) -> Path:
    """Write a PNG of presentation scene ``scene`` showing ``frame``; returns the path written.

    The same window as the live presentation mode, at ``size``, with the scene drawn at once
    (no cross-fade, no timers). ``settings``: a `PresentationSettings` (defaults if None).
    """
    from widgets.app import create_app

    app = create_app(1.0)
    from console.deadman import DeadmanSettings
    from console.presentation_settings import PresentationSettings
    from widgets.presentation.window import PresentationWindow

    pres = settings if isinstance(settings, PresentationSettings) else PresentationSettings()
    dead = deadman if isinstance(deadman, DeadmanSettings) else DeadmanSettings()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    window = PresentationWindow(pres, dead)
    # In its place in the playlist, so the position dots say which scene of the show it is.
    window.show_scene(scene, animate=False)
    return _grab(app, window, frame, size, out, window.render_now)


def _grab(app: Any, window: Any, frame: Frame, size: tuple[int, int], out: Path,
          render: Callable[[], None]) -> Path:
    """Show ``frame`` in ``window`` at exactly ``size``, render it, save the PNG, close."""
    try:
        # Fixed, not just resized: an explicit size beats the layout's minimum, so the PNG is
        # exactly the size asked for even when it is smaller than the window would like.
        window.setFixedSize(*size)
        window.show()
        app.sendPostedEvents()  # lay out at the final size before panels size their contents
        window.show_frame(frame)
        render()
        app.sendPostedEvents()
        render()  # panels that plan their geometry from their size plan it again
        app.sendPostedEvents()
        pixmap = window.grab()
        if not pixmap.save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
    finally:
        window.close()
        window.deleteLater()
        app.sendPostedEvents()
    return out

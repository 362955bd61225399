"""Render the full dashboard for one frame to a PNG, off-screen.

Used by `aisc-console snapshot`, by tests and by the README screenshot: the same main window
and panels as the live console, at a given size, with every panel rendered synchronously
(no timers, no waiting) and nothing read from or written to the user's saved layout.
"""

from __future__ import annotations

from pathlib import Path

from console.model import Frame


def render_snapshot(frame: Frame, out_path: str | Path, size: tuple[int, int] = (1920, 1080),
                    font_scale: float = 1.0, presentation: bool = False) -> Path:
    """Write a PNG of the dashboard showing `frame`; returns the path written."""
    from widgets.app import create_app

    app = create_app(font_scale)
    from widgets.main_window import MainWindow
    from widgets.panel import PanelContext

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    window = MainWindow(PanelContext(), persist=False, presentation=presentation)
    try:
        # Fixed, not just resized: an explicit size beats the layout's minimum, so the PNG is
        # exactly the size asked for even when it is smaller than the dashboard would like.
        window.setFixedSize(*size)
        window.show()
        app.sendPostedEvents()  # lay out at the final size before panels size their contents
        window.show_frame(frame)
        window.render_all()
        app.sendPostedEvents()
        window.render_all()  # panels that plan their geometry from their size plan it again
        app.sendPostedEvents()
        pixmap = window.grab()
        if not pixmap.save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
    finally:
        window.close()
        window.deleteLater()
        app.sendPostedEvents()
    return out

"""What the main window gains from this package: the BLIND banner, notifications, and a menu
entry that opens presentation mode beside it (GUI thread).

Kept out of the main window's own module so that it stays a thin shell: `install` needs only
the window's public ``frame_shown`` signal, its menu bar and its top widget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from console.deadman import DEFAULT_DEADMAN, DeadmanSettings
from console.notify import DEFAULT_NOTIFY, NotifySettings
from console.presentation_settings import DEFAULT_PRESENTATION, PresentationSettings
from widgets.deadman_banner import DeadmanBanner, attach_deadman
from widgets.notifications import NotificationCenter, attach_notifications

PRESENTATION_SHORTCUT = "F5"


@dataclass
class Extras:
    """What `install` added, for tests and for the window's owner."""

    banner: DeadmanBanner
    notifications: NotificationCenter | None
    action: QAction | None
    presentations: list = field(default_factory=list)  # PresentationWindow instances opened


def _view_menu(window: QMainWindow) -> QMenu | None:
    bar = getattr(window, "menu_bar", None) or window.menuBar()
    for action in bar.actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and menu.title().replace("&", "") == "View":
            return menu
    return None


def install(window: QMainWindow, presentation: PresentationSettings = DEFAULT_PRESENTATION,
            notifications: NotifySettings | None = DEFAULT_NOTIFY,
            deadman: DeadmanSettings = DEFAULT_DEADMAN, **notify_kw) -> Extras:
    """Add the banner, notifications (None: off, e.g. a public screen) and the menu entry."""
    banner = attach_deadman(window, deadman)
    center = (None if notifications is None
              else attach_notifications(window, notifications, **notify_kw))
    extras = Extras(banner=banner, notifications=center, action=None)
    if getattr(window, "presentation", False):
        return extras  # the old public dashboard: no menu, nothing to open from it
    action = QAction("&Presentation mode", window)
    action.setShortcut(QKeySequence(PRESENTATION_SHORTCUT))
    action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    action.setToolTip("Open the public-safe scenes full screen (no names); Esc leaves full screen")
    action.triggered.connect(lambda: open_presentation(window, extras, presentation, deadman))
    window.addAction(action)
    menu = _view_menu(window)
    if menu is not None:
        menu.addSeparator()
        menu.addAction(action)
    extras.action = action
    return extras


def open_presentation(window: QMainWindow, extras: Extras, settings: PresentationSettings,
                      deadman: DeadmanSettings, fullscreen: bool = True):
    """A presentation window fed with the frames the main window shows."""
    from widgets.presentation.window import PresentationWindow

    pres = PresentationWindow(settings, deadman)
    pres.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    window.frame_shown.connect(pres.show_frame)  # type: ignore[attr-defined]
    extras.presentations.append(pres)
    pres.destroyed.connect(lambda _=None, p=pres: extras.presentations.remove(p)
                           if p in extras.presentations else None)
    frame = getattr(window, "_frame", None)
    if frame is not None:
        pres.show_frame(frame)
    if fullscreen:
        pres.showFullScreen()
    else:
        pres.show()
    return pres

"""Desktop notifications and sounds for new critical problems (GUI thread).

`console.notify.Notifier` decides what is news; this module only delivers it: a system-tray
message where the desktop has a tray that shows messages, else a toast in the corner of the
console window (never a dialog: nothing must wait for a click), and the severity's sound
("beep" is the system bell; a WAV file plays when Qt Multimedia is installed, else the bell).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QStyle, QSystemTrayIcon, QWidget

from console.model import Frame, Severity
from console.notify import DEFAULT_NOTIFY, Notification, Notifier, NotifySettings
from widgets import theme as _theme

log = logging.getLogger(__name__)

#: How long a toast stays on screen.
TOAST_MS = 12_000


def play_sound(sound: str) -> None:
    """"none", "beep" or a WAV file's path; a missing player falls back to the bell."""
    if sound == "none":
        return
    if sound != "beep":
        try:
            from PySide6.QtCore import QUrl
            from PySide6.QtMultimedia import QSoundEffect  # not in PySide6-Essentials

            effect = QSoundEffect(QApplication.instance())
            effect.setSource(QUrl.fromLocalFile(sound))
            effect.play()
            return
        except ImportError:
            log.info("Qt Multimedia is not installed: the system bell stands in for %s", sound)
    QApplication.beep()


class Toast(QLabel):
    """A message in the window's top-right corner that goes away by itself."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("NotificationToast")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, n: Notification, msecs: int = TOAST_MS) -> None:
        th = _theme.current()
        colour = th.severity.get(n.severity, th.accent)
        self.setStyleSheet(
            f"QLabel#NotificationToast {{ background: {th.surface_alt}; color: {th.text}; "
            f"border: 3px solid {colour}; padding: 10px; font-size: {th.px(16)}px; }}")
        self.setText(f"{n.title}\n{n.body}")
        parent = self.parentWidget()
        width = min(th.px(520), max(200, (parent.width() if parent else 600) // 3))
        self.setFixedWidth(width)
        self.adjustSize()
        if parent is not None:
            self.move(parent.width() - self.width() - 16, 48)
        self.raise_()
        self.show()
        self._timer.start(msecs)


class NotificationCenter(QObject):
    """Feeds frames to a `Notifier` and shows what it returns; ``delivered`` keeps them.

    ``local_time`` (for quiet hours), ``tray`` and ``sound`` are injectable so tests need
    neither a desktop nor a speaker.
    """

    def __init__(self, window: QWidget, settings: NotifySettings = DEFAULT_NOTIFY, *,
                 local_time: Callable[[], _dt.time] = lambda: _dt.datetime.now().time(),
                 tray: QSystemTrayIcon | None | bool = True,
                 sound: Callable[[str], None] = play_sound) -> None:
        super().__init__(window)
        self.settings = settings
        #: One notifier per cluster (a fleet's frames arrive for every cluster), so what one
        #: cluster has told never hides the same fingerprint on another.
        self.notifiers: dict[str, Notifier] = {}
        self._local_time = local_time
        self._sound = sound
        self.delivered: list[Notification] = []
        self.toast = Toast(window)
        self.tray: QSystemTrayIcon | None = None
        if isinstance(tray, QSystemTrayIcon):
            self.tray = tray
        elif tray is True and QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            icon = window.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("AISC Console")
            self.tray.show()

    @property
    def notifier(self) -> Notifier:
        """The notifier of the first cluster seen (the only one outside a fleet)."""
        if not self.notifiers:
            self.notifiers[""] = Notifier(self.settings)
        return next(iter(self.notifiers.values()))

    def show_frame(self, frame: Frame) -> list[Notification]:
        """Tell what is new in ``frame`` (usually nothing). With several clusters each message
        names its cluster; the same frame seen twice (shown and as a fleet frame) tells once."""
        if "" in self.notifiers and len(self.notifiers) == 1:  # asked for before any frame
            self.notifiers[frame.cluster] = self.notifiers.pop("")
        notifier = self.notifiers.get(frame.cluster)
        if notifier is None:
            notifier = self.notifiers[frame.cluster] = Notifier(self.settings)
        out = notifier.update(frame, self._local_time())
        if len(self.notifiers) > 1:
            out = [dataclasses.replace(n, title=f"{frame.cluster}: {n.title}") for n in out]
        for n in out:
            self.deliver(n)
        return out

    def deliver(self, n: Notification) -> None:
        self.delivered.append(n)
        if self.tray is not None:
            icon = (QSystemTrayIcon.MessageIcon.Critical if n.severity == Severity.CRITICAL
                    else QSystemTrayIcon.MessageIcon.Warning)
            self.tray.showMessage(n.title, n.body, icon, TOAST_MS)
        else:
            self.toast.show_message(n)
        try:
            self._sound(n.sound)
        except Exception:  # noqa: BLE001 - a sound that cannot play must not lose the notification
            log.exception("could not play the notification sound %r", n.sound)


def attach_notifications(window: QMainWindow, settings: NotifySettings = DEFAULT_NOTIFY,
                         **kw) -> NotificationCenter:
    """Notify from every frame ``window`` shows (``frame_shown``) and, in a fleet, from every
    cluster's frames (``cluster_frame``)."""
    center = NotificationCenter(window, settings, **kw)
    for name in ("frame_shown", "cluster_frame"):  # the shown frames, and a fleet's others
        signal = getattr(window, name, None)
        if signal is not None:
            signal.connect(center.show_frame)
    return center

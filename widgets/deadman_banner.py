"""The BLIND banner: the dead-man's switch made visible (GUI thread).

`console.deadman.assess` decides; this widget only shows the verdict, and looks like nothing
else on screen: white on magenta with a heavy dashed border and a "no entry" mark, so a
glance from across the room cannot take it for a routine warning (amber, red) or for calm.
The main window and the presentation window each carry one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QBoxLayout, QLabel, QMainWindow, QWidget

from console.deadman import DEFAULT_DEADMAN, SEEING, DeadmanSettings, Verdict, assess
from console.model import Frame
from widgets import theme as _theme

#: Distinct from every state colour of the theme (blue, amber, red, purple, grey).
BLIND_BACKGROUND = "#b0108f"
BLIND_TEXT = "#ffffff"
MARK = "\u26a0"  # warning sign


def blind_stylesheet(font_px: int) -> str:
    border = max(3, font_px // 5)
    return (f"QLabel#BlindBanner {{ background: {BLIND_BACKGROUND}; color: {BLIND_TEXT}; "
            f"font-size: {font_px}px; font-weight: bold; padding: {font_px // 3}px; "
            f"border: {border}px dashed {BLIND_TEXT}; }}")


class DeadmanBanner(QLabel):
    """Hidden while the console can see; the verdict's words in a loud banner when blind."""

    def __init__(self, settings: DeadmanSettings = DEFAULT_DEADMAN, parent: QWidget | None = None,
                 font_px: int | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.verdict: Verdict = SEEING  # of the cluster on screen
        self._shown: str | None = None
        self._others: dict[str, Verdict] = {}  # blind clusters of a fleet not on screen
        self.setObjectName("BlindBanner")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.set_font_px(font_px if font_px is not None else _theme.current().px(22))
        self.hide()

    def set_font_px(self, px: int) -> None:
        self.setStyleSheet(blind_stylesheet(px))

    def show_frame(self, frame: Frame | None) -> Verdict:
        """Assess ``frame`` (fresh or aged to the clock) and show the verdict."""
        verdict = assess(frame, self.settings)
        if frame is not None:
            self._shown = frame.cluster
            self._others.pop(frame.cluster, None)
        self.show_verdict(verdict)
        return verdict

    def show_cluster_frame(self, frame: Frame) -> None:
        """A frame of a fleet's cluster, on screen or not: a cluster the operator is not looking
        at that goes blind must not leave the screen calm either."""
        if frame.cluster == self._shown:
            return  # the shown cluster's verdict comes with the frames the window shows
        verdict = assess(frame, self.settings)
        if verdict.blind:
            self._others[frame.cluster] = verdict
        else:
            self._others.pop(frame.cluster, None)
        self.show_verdict(self.verdict)

    def show_verdict(self, verdict: Verdict) -> None:
        self.verdict = verdict
        lines = [f"{MARK}  {verdict.text}"] if verdict.blind else []
        for name, other in sorted(self._others.items()):
            lines.append(f"{MARK}  on cluster {name}: {other.text}")
        if not lines:
            self.hide()
            return
        text = "\n".join(lines)
        if self.text() != text:
            self.setText(text)
        self.show()


def attach_deadman(window: QMainWindow, settings: DeadmanSettings = DEFAULT_DEADMAN) -> DeadmanBanner:
    """Put a banner above everything else in ``window`` (under its menu bar) and feed it every
    frame the window shows (``frame_shown``), aged ones included."""
    top = window.menuWidget()
    banner = DeadmanBanner(settings, top if top is not None else window)
    layout = top.layout() if top is not None else None
    if isinstance(layout, QBoxLayout):  # under the menu bar, above the sources' banner
        layout.insertWidget(min(1, layout.count()), banner)
    signal = getattr(window, "frame_shown", None)
    if signal is not None:
        signal.connect(banner.show_frame)
    fleet = getattr(window, "cluster_frame", None)  # every cluster's frames, in a fleet
    if fleet is not None:
        fleet.connect(banner.show_cluster_frame)
    return banner

"""The time scrubber: move every panel back to a past moment, clearly marked, and back to live.

A slider over the last day (a minute a step), keys (Ctrl+Left / Ctrl+Right a minute,
Ctrl+Shift+Left / Ctrl+Shift+Right an hour, End or the Live button back to now), and a banner
that cannot be missed while the panels show the past ("PAST: 06:12:00, 2 h 3 min ago"). The
past is a `Frame` rebuilt from the journal (`console.timetravel`), so panels need nothing new:
the window hands them the past frame instead of each live one while the scrubber is away from
live (``MainWindow.frame_filter``). Alerts and notifications keep following the live frames.

Reads the journal read-only, once per moment chosen (indexed: milliseconds). GUI thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from console.journal_store import JournalStore, JournalUnavailable
from console.model import Frame
from console.timetravel import PastFrame, past_frame

STEP_S = 60.0
BIG_STEP_S = 3600.0
SPAN_S = 86400.0
PAST_STYLE = ("QLabel#PastBanner { background: #b35c00; color: white; font-weight: bold; "
              "padding: 3px 10px; border-radius: 3px; }")
LIVE_STYLE = "QLabel#PastBanner { color: palette(text); padding: 3px 10px; }"


def _ago(s: float) -> str:
    s = max(0.0, s)
    if s < 3600:
        return f"{s / 60:.0f} min ago"
    h, m = divmod(int(s // 60), 60)
    return f"{h} h {m} min ago" if m else f"{h} h ago"


class TimeScrubber(QWidget):
    """Chooses the moment the panels show: None = live, else an epoch time in the last day.

    ``moment_changed(object)`` carries the new moment (None when back to live).
    """

    moment_changed = Signal(object)

    def __init__(self, store_path: str | Path, *, clock: Callable[[], float] = time.time,
                 span_s: float = SPAN_S, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store_path = Path(store_path)
        self._clock = clock
        self.span_s = span_s
        self.at: float | None = None
        self.past: PastFrame | None = None
        self._cache_key: tuple[float, int] | None = None
        self.shortcuts: list[QShortcut] = []  # bound by `install_time_scrubber`
        self.setObjectName("TimeScrubber")
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("TimeScrubberSlider")
        steps = int(span_s // STEP_S)
        self.slider.setRange(0, steps)
        self.slider.setValue(steps)
        self.slider.setPageStep(60)
        self.slider.setToolTip("Drag back to see the console as it was (Ctrl+Left / Ctrl+Right a "
                               "minute, with Shift an hour; End for live)")
        self.slider.sliderReleased.connect(self._on_slider)
        self.slider.valueChanged.connect(self._on_value)
        self.live_button = QPushButton("Live", self)
        self.live_button.setObjectName("TimeScrubberLive")
        self.live_button.setToolTip("Back to live data (End)")
        self.live_button.clicked.connect(self.go_live)
        self.banner = QLabel("LIVE", self)
        self.banner.setObjectName("PastBanner")
        self.banner.setStyleSheet(LIVE_STYLE)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.addWidget(QLabel("Time", self))
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.banner)
        lay.addWidget(self.live_button)
        self._update_banner()

    # ------------------------------------------------------------------ the moment

    @property
    def is_live(self) -> bool:
        return self.at is None

    def set_at(self, t: float | None) -> None:
        """Show the moment ``t`` (clamped to the last day, a whole minute), or live (None)."""
        now = self._clock()
        if t is not None:
            t = max(now - self.span_s, min(float(t), now))
            if now - t < STEP_S / 2:
                t = None  # less than half a step back is now
        self.at = t
        self._cache_key = None
        self.past = None
        steps = self.slider.maximum()
        self.slider.blockSignals(True)
        self.slider.setValue(steps if t is None else steps - int(round((now - t) / STEP_S)))
        self.slider.blockSignals(False)
        self._update_banner()
        self.moment_changed.emit(t)

    @Slot()
    def go_live(self) -> None:
        self.set_at(None)

    def step(self, seconds: float) -> None:
        """Move by ``seconds`` (negative: further back); past now is live."""
        base = self._clock() if self.at is None else self.at
        self.set_at(base + seconds)

    @Slot()
    def _on_slider(self) -> None:
        self._from_slider(self.slider.value())

    @Slot(int)
    def _on_value(self, value: int) -> None:
        if not self.slider.isSliderDown():  # keys and clicks; a drag waits for the release
            self._from_slider(value)

    def _from_slider(self, value: int) -> None:
        steps = self.slider.maximum()
        self.set_at(None if value >= steps else self._clock() - (steps - value) * STEP_S)

    def _update_banner(self) -> None:
        if self.at is None:
            self.banner.setText("LIVE")
            self.banner.setStyleSheet(LIVE_STYLE)
            self.live_button.setEnabled(False)
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        words = f"PAST: {stamp}, {_ago(self._clock() - self.at)} \u00b7 End returns to live"
        if self.past is not None and not self.past.found:
            words += " \u00b7 the journal has no figures for that minute"
        else:
            words += " \u00b7 no job list or per-GPU readings then"
        self.banner.setText(words)
        missing = self.past.missing if self.past is not None else ()
        self.banner.setToolTip("Not kept by the journal, so not shown for the past:\n"
                               + "\n".join(f"\u2022 {m}" for m in missing) if missing else "")
        self.banner.setStyleSheet(PAST_STYLE)
        self.live_button.setEnabled(True)

    # ------------------------------------------------------------------ frames

    def frame_filter(self, frame: Frame) -> Frame:
        """What the panels show for the live ``frame``: itself when live, else the past."""
        if self.at is None:
            return frame
        key = (self.at, frame.topology.version)
        if self.past is None or self._cache_key != key:
            try:
                with JournalStore(self.store_path, readonly=True) as store:
                    self.past = past_frame(frame, store, self.at)
            except JournalUnavailable as exc:
                self.banner.setText(f"PAST: the journal cannot be read ({exc.words}) \u00b7 End "
                                    "returns to live")
                return frame
            self._cache_key = key
            self._update_banner()
        return self.past.frame


def install_time_scrubber(window: Any, store_path: str | Path, *,
                          clock: Callable[[], float] = time.time) -> TimeScrubber:
    """Put a scrubber above the panels of ``window`` (a `MainWindow`), route its frames through
    it and bind the keys. The window needs ``frame_filter`` and ``reshow``."""
    from PySide6.QtWidgets import QToolBar

    scrubber = TimeScrubber(store_path, clock=clock, parent=window)
    bar = QToolBar("Time", window)
    bar.setObjectName("TimeScrubberBar")
    bar.setMovable(False)
    bar.addWidget(scrubber)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)  # above the panels: seen first
    window.frame_filter = scrubber.frame_filter
    scrubber.moment_changed.connect(lambda _t: window.reshow())
    keys = (("Ctrl+Left", lambda: scrubber.step(-STEP_S)),
            ("Ctrl+Right", lambda: scrubber.step(STEP_S)),
            ("Ctrl+Shift+Left", lambda: scrubber.step(-BIG_STEP_S)),
            ("Ctrl+Shift+Right", lambda: scrubber.step(BIG_STEP_S)),
            ("End", scrubber.go_live))
    for seq, slot in keys:
        sc = QShortcut(QKeySequence(seq), window)
        sc.setContext(Qt.ShortcutContext.WindowShortcut)
        sc.activated.connect(slot)
        scrubber.shortcuts.append(sc)
    end = scrubber.shortcuts[-1]
    end.setEnabled(False)  # End belongs to tables and editors while live
    scrubber.moment_changed.connect(lambda t: end.setEnabled(t is not None))
    return scrubber


__all__ = ["BIG_STEP_S", "STEP_S", "TimeScrubber", "install_time_scrubber"]

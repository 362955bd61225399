"""The presentation window: a playlist of scenes with cross-fades, a clock and the data's age.

For a lobby wall or an event's big screen: full screen, no menus, no actions, no names. Every
frame is reduced to a `console.presentation.PublicView` before any scene sees it. When no frame
arrives (an endpoint lost, the engine stalled) the last one is aged to the wall clock, so the
footer's age keeps counting, the data turns STALE where it would and, when every source is
gone, the BLIND banner says so; the engine reconnects by itself and the next frame clears it.
Nothing here opens a dialog: a scene that fails to draw is logged and the show goes on.

The playlist follows ``clock`` (monotonic seconds, injectable): a test moves its fake clock
past a scene's duration and the window's own timer switches the scene.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QEasingCurve, QEvent, QObject, QPropertyAnimation, Qt, QTimer, Slot
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import QGraphicsOpacityEffect, QHBoxLayout, QVBoxLayout, QWidget

from console.deadman import DEFAULT_DEADMAN, DeadmanSettings, assess
from console.engine import EngineStatus
from console.model import Frame
from console.presentation import Playlist, PublicView, public_view
from console.presentation_settings import DEFAULT_PRESENTATION, SCENE_NAMES, PresentationSettings, SceneSpec
from widgets import theme as _theme
from widgets.deadman_banner import DeadmanBanner
from widgets.formatting import fmt_duration
from widgets.main_window import STALL_S, aged_frame
from widgets.presentation.scenes import SCENE_CLASSES, Scene, clock_text, make_label, set_text
from widgets.presentation.sizing import DESIGN_HEIGHT, Sizes, stylesheet
from widgets.theme import set_state_property

log = logging.getLogger(__name__)

#: How often the playlist and the clock are looked at.
TICK_MS = 250
#: The scenes' room at 1080 lines without the BLIND banner (header and footer take the rest).
STAGE_DESIGN_HEIGHT = 900


class PresentationWindow(QWidget):
    """Plays the configured scenes; `show_frame` is connected to the engine's bridge."""

    def __init__(self, settings: PresentationSettings = DEFAULT_PRESENTATION,
                 deadman: DeadmanSettings = DEFAULT_DEADMAN, *, parent: QWidget | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.setObjectName("PresentationWindow")
        self.setWindowTitle("AISC Console \u2014 presentation")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.settings = settings
        self.deadman = deadman
        self._clock = clock
        self._wall_clock = wall_clock
        self._frame: Frame | None = None
        self._arrived = 0.0
        self._engine_down = False
        self._cluster: str | None = None
        self.view: PublicView | None = None
        self.playlist = Playlist(settings.scenes, clock())
        # Type sizes of the chrome (from the window's height) and of the scenes (from the
        # stage's); both follow resizes.
        self._sizes = Sizes.for_height(1080)
        self._scene_sizes = self._sizes

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.banner = DeadmanBanner(deadman, self)
        lay.addWidget(self.banner)
        self.header = QHBoxLayout()
        self.title_label = make_label("", "title", self)
        self.sim_badge = make_label("SIMULATED DATA", "badge", self)
        self.sim_badge.hide()
        self.clock_label = make_label("", "title", self)
        self.header.addWidget(self.title_label)
        self.header.addWidget(self.sim_badge)
        self.header.addStretch(1)
        self.header.addWidget(self.clock_label)
        lay.addLayout(self.header)
        self.stage = QWidget(self)
        self.stage.installEventFilter(self)  # scenes follow the stage's size (see eventFilter)
        lay.addWidget(self.stage, 1)
        self.footer = QHBoxLayout()
        self.age_label = make_label("waiting for data", "age", self)
        self.position_label = make_label("", "small", self)
        self.footer.addWidget(self.age_label)
        self.footer.addStretch(1)
        self.footer.addWidget(self.position_label)
        lay.addLayout(self.footer)

        # One widget per scene name in the playlist (and any scene asked for by name later).
        self.scenes: dict[str, Scene] = {}
        for spec in settings.scenes:
            self._scene(spec.name)
        self._shown: Scene = self._scene(self.playlist.current.name)
        self._shown.show()
        self._fading: QPropertyAnimation | None = None
        self._outgoing: Scene | None = None
        self._apply_sizes()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)
        self._timer.start()
        self._last_second = -1

    # -- scenes -----------------------------------------------------------------------------

    def _scene(self, name: str) -> Scene:
        scene = self.scenes.get(name)
        if scene is None:
            scene = SCENE_CLASSES[name](self.stage)
            scene.setGeometry(self.stage.rect())
            scene.apply_sizes(self._scene_sizes)
            scene.hide()
            self.scenes[name] = scene
        return scene

    @property
    def current_scene(self) -> str:
        return self._shown.name

    def show_scene(self, name: str, animate: bool = True) -> None:
        """Put scene ``name`` on screen (cross-faded unless ``animate`` is False)."""
        if name not in SCENE_CLASSES:
            raise KeyError(f"no scene {name!r}; scenes: {', '.join(SCENE_NAMES)}")
        if not self.playlist.show(name, self._clock()):
            # A scene outside the playlist (snapshot): shown until the playlist moves on.
            self.playlist = Playlist((SceneSpec(name, self.playlist.current.duration_s),)
                                     + tuple(self.settings.scenes), self._clock())
        self._switch_to(self._scene(name), animate)

    def _switch_to(self, scene: Scene, animate: bool) -> None:
        if scene is self._shown:
            return
        self._finish_fade()
        old, self._shown = self._shown, scene
        self._draw(scene)
        scene.setGeometry(self.stage.rect())
        scene.raise_()
        scene.show()
        duration = self.settings.transition_ms if animate else 0
        if duration <= 0:
            old.hide()
            self._update_position()
            return
        effect = QGraphicsOpacityEffect(scene)
        effect.setOpacity(0.0)
        scene.setGraphicsEffect(effect)
        anim = QPropertyAnimation(effect, b"opacity", self)
        anim.setDuration(duration)
        anim.setStartValue(0.0)
        anim.setEndValue(1.0)
        anim.setEasingCurve(QEasingCurve.Type.InOutQuad)
        anim.finished.connect(self._finish_fade)
        self._fading, self._outgoing = anim, old
        anim.start()
        self._update_position()

    @Slot()
    def _finish_fade(self) -> None:
        """End a cross-fade: the old scene goes, the new one is drawn without the effect."""
        anim, old = self._fading, self._outgoing
        self._fading = self._outgoing = None
        if anim is not None:
            anim.stop()
            anim.deleteLater()
        if old is not None:
            old.hide()
        self._shown.setGraphicsEffect(None)  # type: ignore[arg-type]

    @property
    def fading(self) -> bool:
        return self._fading is not None

    # -- data -------------------------------------------------------------------------------

    @Slot(object)
    def show_frame(self, frame: Frame) -> None:
        self._frame = frame
        self._arrived = self._clock()
        self._refresh(frame)

    @Slot(str, object)
    def show_cluster_frame(self, name: str, frame: Frame) -> None:
        """A fleet's frames: the first cluster that reports is the one shown."""
        if self._cluster is None:
            self._cluster = name
        if name == self._cluster:
            self.show_frame(frame)

    @Slot(object)
    def show_engine_status(self, status: EngineStatus | None) -> None:
        self._engine_down = status is not None and status.down
        self._last_second = -1  # at once, not at the next second
        self.tick()

    @Slot(str, object)
    def show_cluster_engine_status(self, name: str, status: EngineStatus) -> None:
        if name == self._cluster:
            self.show_engine_status(status)

    def _refresh(self, frame: Frame) -> None:
        verdict = assess(frame, self.deadman)
        try:
            self.view = public_view(frame, self.settings, verdict)
        except Exception:  # noqa: BLE001 - the public screen shows the last view, never an error
            log.exception("presentation: could not build the public view")
            return
        self.banner.show_verdict(verdict)
        self._draw(self._shown)
        self._update_chrome()

    def _draw(self, scene: Scene) -> None:
        if self.view is None:
            return
        try:
            scene.show_view(self.view)
        except Exception:  # noqa: BLE001 - a scene that cannot draw must not stop the show
            log.exception("presentation: scene %s could not draw", scene.name)

    @Slot()
    def tick(self) -> None:
        """Four times a second: the playlist; every second: the clock, the age, aged data."""
        if self.playlist.tick(self._clock()):
            self._switch_to(self._scene(self.playlist.current.name), animate=True)
        second = int(self._wall_clock())
        if second == self._last_second:
            return
        self._last_second = second
        frame = self._frame
        if frame is not None:
            elapsed = self._clock() - self._arrived
            if self._engine_down or elapsed >= STALL_S:
                self._refresh(aged_frame(frame, elapsed, self._engine_down))
        self._update_chrome()

    def _update_chrome(self) -> None:
        set_text(self.clock_label, clock_text(self._wall_clock()))
        view = self.view
        if view is None:
            return
        set_text(self.title_label, view.title)
        self.sim_badge.setVisible(view.simulated)
        age, stale = view.age_for(self.current_scene)
        if age is None:
            text = "no data yet" + (" \u00b7 reconnecting" if view.reconnecting else "")
        elif stale:
            text = (f"\u25cc STALE \u00b7 last data {fmt_duration(age)} old"
                    + (" \u00b7 reconnecting" if view.reconnecting else ""))
        else:
            text = f"data {fmt_duration(age)} old"
        set_text(self.age_label, text)
        set_state_property(self.age_label, "stale", "true" if (stale or age is None) else "false")
        self._update_position()

    def _update_position(self) -> None:
        n = len(self.playlist.scenes)
        dots = "".join("\u25cf" if i == self.playlist.index else "\u25cb" for i in range(n))
        set_text(self.position_label, dots)

    # -- geometry ---------------------------------------------------------------------------

    def _apply_sizes(self) -> None:
        th = _theme.current()
        s = self._sizes
        self.setStyleSheet(stylesheet(s, th.background, th.text, th.text_dim, th.accent, th.stale,
                                      th.severity[list(th.severity)[1]]))
        self.banner.set_font_px(s.body)
        self.header.setContentsMargins(s.margin, s.gap, s.margin, 0)
        self.header.setSpacing(s.gap)
        self.footer.setContentsMargins(s.margin, 0, s.margin, s.gap)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        sizes = Sizes.for_height(max(1, self.height()))
        if sizes != self._sizes:
            self._sizes = sizes
            self._apply_sizes()
        QTimer.singleShot(0, self._fit_scenes)
        self._fit_scenes()

    def _fit_scenes(self) -> None:
        """Every scene fills the stage, its type sized for the stage's height: when the BLIND
        banner takes room, the scene's text shrinks instead of being clipped."""
        sizes = dataclasses.replace(  # text for the stage, margins aligned with the header's
            Sizes.for_height(min(self.height(), round(self.stage.height() * DESIGN_HEIGHT
                                                      / STAGE_DESIGN_HEIGHT))),
            margin=self._sizes.margin)
        if sizes != self._scene_sizes:
            self._scene_sizes = sizes
            th = _theme.current()
            self.stage.setStyleSheet(stylesheet(sizes, th.background, th.text, th.text_dim, th.accent,
                                                th.stale, th.severity[list(th.severity)[1]]))
            for scene in self.scenes.values():
                scene.apply_sizes(sizes)
        for scene in self.scenes.values():
            scene.setGeometry(self.stage.rect())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.stage and event.type() == QEvent.Type.Resize:
            self._fit_scenes()
        return super().eventFilter(watched, event)

    def render_now(self) -> None:
        """Lay out and draw the scene on screen now (snapshot and tests)."""
        self._finish_fade()
        self._fit_scenes()
        self._draw(self._shown)
        self._update_chrome()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        """Escape leaves full screen, then closes (the console is not a kiosk lock); the arrow
        keys and space step through the scenes by hand."""
        key = event.key()
        if key == Qt.Key.Key_Escape:
            if self.isFullScreen():
                self.showNormal()
            else:
                self.close()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Left, Qt.Key.Key_Space):
            step = -1 if key == Qt.Key.Key_Left else 1
            scenes = self.playlist.scenes
            self.playlist.index = (self.playlist.index + step) % len(scenes)
            self.playlist.started = self._clock()
            self._switch_to(self._scene(self.playlist.current.name), animate=True)
        else:
            super().keyPressEvent(event)

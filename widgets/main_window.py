"""The main window: a thin shell of dockable panels, a source banner and a status bar.

It owns no data work: frames come in through `show_frame` (connected to the bridge) and are
handed to each panel, which redraws on its own timer. Navigation requests from any panel
(`PanelContext.navigator`: drill-downs, the outline on the map, back/forward) are served by
`widgets.navigation`; the named dock layouts live in `widgets.layouts`, the keyboard actions and
the command palette in `widgets.keyboard`, the themes in `widgets.theme`. Geometry and the dock
layout of each screen persist in QSettings; the layout is locked by default (no dock title bars,
the panels carry their own headers) and can be unlocked from the View menu to rearrange it.

Panels built by other modules are imported lazily and defensively: a panel that fails to
import becomes a placeholder that says so, instead of taking the console down.

Several clusters: `set_clusters` names them and `show_cluster_frame(name, frame)` receives
every cluster's frames; `widgets.clusters` decides which reach the panels and switches.

Never calm while blind: the engine's own health arrives through `show_engine_status` (a worker
process that died is named in the banner and in the sources panel until a new one delivers),
and when no frame arrives the last one is handed to the panels again every second, aged to the
wall clock (`aged_frame`), so every "updated ... ago" keeps counting and the data turns stale
where it would have, at once while the engine is known to be down.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenuBar,
    QVBoxLayout,
    QWidget,
)

from console.engine import EngineState, EngineStatus
from console.model import Frame
from widgets import layouts as _layouts
from widgets import theme as _theme
from widgets.formatting import fmt_duration
from widgets.clusters import ClusterSwitch
from widgets.keyboard import Keyboard, focus_target
from widgets.navigation import NavigationController
from widgets.panel import LayoutFirewall, Panel, PanelContext
from widgets.sources_panel import failing_banner
from widgets.theme import set_state_property

log = logging.getLogger(__name__)

STATE_VERSION = 2  # bump when the set of docks changes, so old saved layouts are ignored
#: Without a new frame for this long, the panels get the last one again, aged to the clock
#: (an engine builds a frame every second, with or without new data).
STALL_S = 3.0
#: Without a new frame for this long the banner says so, even if the engine is not known dead.
STALL_BANNER_S = 10.0


def aged_frame(frame: Frame, elapsed_s: float, engine_down: bool = False) -> Frame:
    """``frame`` as seen ``elapsed_s`` after it arrived: the same data, its clock moved on.

    Every age is "frame time minus the data's own time", so moving the frame's time to the wall
    clock makes each panel's age keep growing when nothing arrives, and each kind of data turn
    stale when its limit passes. With the engine down nothing can refresh the data: every kind
    a source provides is stale at once (a kind no source provides stays without a limit).
    """
    limits = frame.stale_after_s
    if engine_down:
        limits = {k: (0.0 if math.isfinite(v) else v) for k, v in limits.items()}
    return dataclasses.replace(frame, time=frame.time + max(0.0, elapsed_s), stale_after_s=limits)


def engine_banner(status: EngineStatus | None, frame: Frame | None, elapsed_s: float,
                  now: float) -> str | None:
    """The banner's words about the engine itself, or None while it delivers frames."""
    shown = "" if frame is None else (
        f" \u2014 the panels show its last data, from "
        f"{time.strftime('%H:%M:%S', time.localtime(frame.time))} "
        f"({fmt_duration(elapsed_s)} ago)")
    if status is not None and status.down:
        return status.words(now) + shown + (", marked stale" if shown else "")
    if frame is not None and elapsed_s >= STALL_BANNER_S:
        return f"No new data from the console engine for {fmt_duration(elapsed_s)}" + shown
    return None


@dataclass(frozen=True)
class PanelSpec:
    key: str
    module: str
    cls: str
    title: str
    public: bool = False  # shown in presentation mode (nothing confidential in it)


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("kpi", "widgets.kpi_panel", "KpiPanel", "Overview", public=True),
    PanelSpec("heatmap", "widgets.heatmap_panel", "HeatmapPanel", "GPU health map", public=True),
    PanelSpec("capacity", "widgets.capacity_panel", "CapacityPanel", "Delivered compute over time",
              public=True),
    PanelSpec("jobs", "widgets.jobs_panel", "JobsPanel", "Jobs"),
    PanelSpec("tenants", "widgets.tenants_panel", "TenantsPanel", "Tenants"),
    PanelSpec("alerts", "widgets.alerts_panel", "AlertsPanel", "Alerts"),
    PanelSpec("incidents", "widgets.incidents_panel", "IncidentsPanel", "Incidents"),
    PanelSpec("sources", "widgets.sources_panel", "SourcesPanel", "Data sources"),
    PanelSpec("fleet", "widgets.fleet_panel", "FleetPanel", "Fleet"),
)


class UnavailablePanel(Panel):
    """Stands in for a panel whose module could not be loaded; says why, in words."""

    def __init__(self, title: str, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        lay = QVBoxLayout(self)
        label = QLabel(f"{title} is unavailable: {reason}", self)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(label)

    def render(self, frame: Frame) -> None:
        pass


def load_panel(spec: PanelSpec, context: PanelContext) -> QWidget:
    try:
        cls = getattr(importlib.import_module(spec.module), spec.cls)
        return cls(context)
    except ModuleNotFoundError as exc:
        if exc.name != spec.module:
            log.exception("panel %s could not be created", spec.key)
        else:
            log.warning("panel %s is not installed", spec.key)
        return UnavailablePanel(spec.title, "not installed")
    except Exception as exc:  # a broken panel must not stop the console
        log.exception("panel %s could not be created", spec.key)
        return UnavailablePanel(spec.title, f"{type(exc).__name__}: {exc}")


class MainWindow(QMainWindow):
    """The console window (GUI thread). `cluster_changed(name)` after a switch of cluster."""

    cluster_changed = Signal(str)
    #: Every frame handed to the panels, fresh or aged to the clock (dead-man's switch,
    #: notifications and a presentation window opened from the menu listen to it).
    frame_shown = Signal(object)
    #: Every frame of every cluster of a fleet as it arrives, shown or not (notifications must
    #: not miss a critical alert on a cluster the operator is not looking at).
    cluster_frame = Signal(object)

    def __init__(self, context: PanelContext | None = None, *, settings: QSettings | None = None,
                 persist: bool = True, presentation: bool = False, parent: QWidget | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.context = context or PanelContext()
        #: ``clock`` measures how long ago the last frame arrived, ``wall_clock`` is for the
        #: banner's times; both injectable so tests can age a frame without waiting.
        self._clock = clock
        self._wall_clock = wall_clock
        self._frame_arrived = 0.0
        #: What the panels show for each live frame, when set: the time scrubber's past moment
        #: (widgets/time_scrubber.py). `frame_shown` keeps carrying the live frames.
        self.frame_filter: Callable[[Frame], Frame] | None = None
        self.engine_status: EngineStatus | None = None
        self.presentation = presentation
        self._persist = persist
        self._settings = settings if settings is not None else (
            QSettings("AISC", "AISC Console") if persist else None)
        self._prefix = "presentation" if presentation else "window"
        self._frame: Frame | None = None
        self.clusters = ClusterSwitch(self)  # several clusters: which one the panels show
        self.setObjectName("MainWindow")
        self.setWindowTitle("AISC Console")
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        for corner, area in ((Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.TopDockWidgetArea),
                             (Qt.Corner.TopRightCorner, Qt.DockWidgetArea.TopDockWidgetArea)):
            self.setCorner(corner, area)

        self.layout_name = _layouts.DEFAULT
        self.layout_actions: dict[str, QAction] = {}
        self._layout_store = _layouts.LayoutStore(self._settings, self._prefix, STATE_VERSION)
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        if not presentation:
            self._apply_saved_theme()
        for spec in (s for s in PANELS if s.public or not presentation):
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(f"dock_{spec.key}")
            self.docks[spec.key] = dock
            self._make_panel(spec)
        self._arrange_default()
        if "fleet" in self.docks:
            self.docks["fleet"].hide()  # shown only when there is more than one cluster

        # Drill-downs, the outline on the map and back/forward live in their own module.
        self.navigation = NavigationController(self)
        self._build_top()
        self._build_status_bar()
        self._build_actions()
        self.keyboard: Keyboard | None = None
        if not presentation:  # the palette would name nodes, jobs and tenants in public
            self.keyboard = Keyboard(self)
            self.keyboard.install()
        self.set_layout_locked(True)
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(1000)
        self._age_timer.timeout.connect(self.tick)
        self._age_timer.start()
        self.resize(1920, 1080)
        self._restore_geometry()

    # -- layout -----------------------------------------------------------------------------

    def _arrange_default(self) -> None:
        """Place the docks (no tabs, no sizes: those wait for the first show, see `arrange`)."""
        _layouts.arrange(self, self.docks, self._layout_spec(), hidden=("fleet",), tabs=False)
        # No central widget: the docks share the whole window.
        self._first_show = True

    def _layout_spec(self) -> _layouts.DockLayout:
        return _layouts.PRESENTATION if self.presentation else _layouts.layout_named(self.layout_name)

    def _apply_default_sizes(self) -> None:
        """Arrange the current named layout at the window's real size."""
        hidden = () if len(self._cluster_names) > 1 else ("fleet",)
        _layouts.arrange(self, self.docks, self._layout_spec(), hidden=hidden,
                         kpi_px=_theme.current().px)
        self._size_fleet_dock()

    def set_named_layout(self, name: str) -> None:
        """Switch to the named dock layout ("NOC wall", "triage", "capacity") now; remembered
        for this screen when the window closes."""
        self.layout_name = _layouts.layout_named(name).name
        for n, a in self.layout_actions.items():
            a.setChecked(n == self.layout_name)
        if self.isVisible() and not self._first_show:
            self._apply_default_sizes()
            self.set_layout_locked(self.layout_locked)
            self.statusBar().showMessage(f"Layout: {self.layout_name}", 5_000)

    def next_layout(self) -> None:
        names = [x.name for x in _layouts.LAYOUTS]
        i = names.index(self.layout_name) if self.layout_name in names else -1
        self.set_named_layout(names[(i + 1) % len(names)])

    def _size_fleet_dock(self) -> None:
        """Tall enough for every cluster's row and no taller: the map below needs the room."""
        dock = self.docks.get("fleet")
        if dock is None or dock.isHidden():
            return
        th = _theme.current()
        height = self.panels["fleet"].sizeHint().height() if "fleet" in self.panels else th.px(120)
        self.resizeDocks([dock], [height], Qt.Orientation.Vertical)

    def set_layout_locked(self, locked: bool) -> None:
        """Locked: no dock title bars (panels have their own headers), docks cannot move."""
        self.layout_locked = locked
        features = (QDockWidget.DockWidgetFeature.NoDockWidgetFeatures if locked else
                    QDockWidget.DockWidgetFeature.DockWidgetMovable
                    | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                    | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        for dock in self.docks.values():
            dock.setFeatures(features)
            dock.setTitleBarWidget(QWidget(dock) if locked else None)
        if hasattr(self, "_lock_action"):
            self._lock_action.setChecked(locked)

    def save_layout(self) -> None:
        if self._settings is None:
            return
        s = self._settings
        s.setValue(f"{self._prefix}/geometry", self.saveGeometry())
        s.setValue(f"{self._prefix}/state", self.saveState(STATE_VERSION))
        s.setValue(f"{self._prefix}/locked", self.layout_locked)
        self._layout_store.save(self, self.layout_name)
        s.sync()

    def _restore_geometry(self) -> None:
        geometry = None if self._settings is None else self._settings.value(f"{self._prefix}/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)

    def restore_layout(self) -> bool:
        """Restore the saved dock layout (done at first show); False when none was saved."""
        if self._settings is None:
            return False
        s = self._settings
        saved = None if self.presentation else self._layout_store.saved_name(self)
        if saved is not None:
            self.set_named_layout(saved)
        state = s.value(f"{self._prefix}/state")
        ok = self._layout_store.restore(self) or (
            isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION))
        locked = s.value(f"{self._prefix}/locked", True)
        self.set_layout_locked(locked not in (False, "false", 0, "0"))
        return bool(ok)

    # -- chrome -------------------------------------------------------------------------------

    def _build_top(self) -> None:
        top = QWidget(self)
        lay = QVBoxLayout(top)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.menu_bar = QMenuBar(top)
        if not self.presentation:
            lay.addWidget(self.menu_bar)
        else:
            self.menu_bar.hide()
        self.banner = QLabel(top)
        self.banner.setObjectName("SourceBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        lay.addWidget(self.banner)
        self.setMenuWidget(top)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cluster_combo = QComboBox(self)
        self.cluster_combo.setObjectName("ClusterSwitcher")
        self.cluster_combo.setToolTip("Which cluster the panels show (Ctrl+Shift+1..9)")
        self.cluster_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.cluster_combo.activated.connect(self.clusters.on_combo_activated)
        self.cluster_combo.hide()  # only with more than one cluster
        self.cluster_caption = QLabel("Cluster", self)
        self.cluster_caption.setObjectName("ClusterSwitcherCaption")
        self.cluster_caption.setBuddy(self.cluster_combo)
        self.cluster_caption.hide()
        self.cluster_label = QLabel("no data yet", self)
        self.sim_badge = QLabel("SIMULATED CLUSTER", self)
        self.sim_badge.setObjectName("SimulatedBadge")
        self.sim_badge.setToolTip("The data comes from the built-in simulated cluster, not a real machine.")
        self.sim_badge.hide()
        self.age_label = QLabel("", self)
        bar.addWidget(self.cluster_label)
        bar.addWidget(self.sim_badge)
        # Permanent (right-hand) widgets stay visible while a status message is shown.
        bar.addPermanentWidget(self.cluster_caption)
        bar.addPermanentWidget(self.cluster_combo)
        bar.addPermanentWidget(self.age_label)
        self._size_age_label()

    def _size_age_label(self) -> None:
        """A fixed size for the per-frame label: a label whose text changes width makes the
        status bar, and with it the whole main window, relayout and repaint on every frame."""
        fm = self.age_label.fontMetrics()
        self.age_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.age_label.setFixedSize(fm.horizontalAdvance("frame 9,999,999 at 00:00:00 (59 min 59 s ago)") + 12,
                                    fm.height() + 4)

    def _build_actions(self) -> None:
        def action(text: str, shortcut: QKeySequence | str | None, slot, checkable: bool = False) -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setCheckable(checkable)
            a.triggered.connect(slot)
            self.addAction(a)  # shortcuts work even with the menu bar hidden
            return a

        file_menu = self.menu_bar.addMenu("&File")
        file_menu.addAction(action("&Quit", "Ctrl+Q", self.close))
        view = self.view_menu = self.menu_bar.addMenu("&View")
        self.fullscreen_action = action("&Full screen", "F11", self.toggle_fullscreen)
        view.addAction(self.fullscreen_action)
        view.addAction(action("Larger text", "Ctrl+=", lambda: self.change_font_scale(1.15)))
        view.addAction(action("Smaller text", "Ctrl+-", lambda: self.change_font_scale(1 / 1.15)))
        view.addAction(action("Normal text size", "Ctrl+0", lambda: self.change_font_scale(None)))
        self._lock_action = action("&Lock layout", None, lambda on: self.set_layout_locked(bool(on)), True)
        view.addAction(self._lock_action)
        # Filled by set_clusters; only shown with more than one cluster.
        self._cluster_menu = self.menu_bar.addMenu("C&luster")
        self._cluster_menu.menuAction().setVisible(False)
        view.addSeparator()
        self.focus_actions: list[QAction] = []
        for i, key in enumerate(self.docks):
            if i >= 9:
                break
            a = action(f"Go to {self.docks[key].windowTitle()}", f"Ctrl+{i + 1}",
                       lambda _=False, k=key: self.focus_panel(k))
            view.addAction(a)
            self.focus_actions.append(a)
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())

    # -- behaviour ----------------------------------------------------------------------------

    def focus_panel(self, key: str) -> None:
        dock = self.docks.get(key)
        if dock is None:
            return
        dock.show()
        dock.raise_()
        focus_target(self.panels[key]).setFocus(Qt.FocusReason.ShortcutFocusReason)

    # -- themes ---------------------------------------------------------------------------------

    def _make_panel(self, spec: PanelSpec) -> QWidget:
        """Create the panel of ``spec`` into its dock (at start, and again for a new theme)."""
        panel = load_panel(spec, self.context)
        if self.presentation and hasattr(panel, "public_safe"):
            panel.public_safe = True
        if hasattr(panel, "cluster_requested"):  # the fleet panel's rows switch cluster
            panel.cluster_requested.connect(self.switch_cluster)
        self.docks[spec.key].setWidget(LayoutFirewall(panel))
        self.panels[spec.key] = panel
        return panel

    def _apply_saved_theme(self) -> None:
        """The theme the operator last chose from the menu, over the configured one."""
        saved = None if self._settings is None else self._settings.value("display/theme")
        if saved:
            blind = self._settings.value("display/colour_blind", False) in (True, "true", 1, "1")
            self.set_theme(str(saved), colour_blind=blind, remember=False)

    def set_theme(self, name: str, *, colour_blind: bool | None = None, remember: bool = True) -> None:
        """Restyle the whole window in theme ``name`` ("dark", "light", "high-contrast"),
        optionally with the colour-blind-safe health colours. Plots take their colours when
        they are built, so the panels are built again, with the newest frame."""
        th = _theme.current()
        blind = th.colour_blind if colour_blind is None else colour_blind
        try:
            new = _theme.theme_named(name, colour_blind=blind, font_scale=th.font_scale)
        except ValueError as exc:
            log.warning("%s", exc)
            return
        app = QApplication.instance()
        if app is not None:
            _theme.apply(app, new)
        else:
            _theme.set_current(new)
        for spec in PANELS:
            if spec.key in self.panels:
                self.panels[spec.key].deleteLater()
                panel = self._make_panel(spec)
                if self._frame is not None:
                    panel.show_frame(self._frame)
                    if panel.isVisible():
                        panel.render_now()
        if hasattr(self, "navigation"):
            self.navigation.show_outline()
        if getattr(self, "keyboard", None) is not None:
            self.keyboard.sync_theme()
        if remember and self._settings is not None:
            self._settings.setValue("display/theme", new.name)
            self._settings.setValue("display/colour_blind", new.colour_blind)

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def change_font_scale(self, factor: float | None) -> None:
        """Rescale text for a wall screen and remember it (QSS sizes follow at once)."""
        th = _theme.current()
        scale = 1.0 if factor is None else min(3.0, max(0.6, th.font_scale * factor))
        app = QApplication.instance()
        if app is not None:
            _theme.apply(app, th.scaled(scale))
        # Panels sit behind layout firewalls: tell the docks their size hints changed.
        for dock in self.docks.values():
            if dock.widget() is not None:
                dock.widget().updateGeometry()
        self._size_age_label()
        if self._settings is not None:
            self._settings.setValue("display/font_scale", scale)

    # -- several clusters ---------------------------------------------------------------------

    @property
    def _drilldowns(self) -> dict[str, QWidget]:
        """The drill-down windows of the cluster on screen: tenants by account, nodes as
        ``node:<name>``, jobs as ``job:<id>``."""
        return self.navigation.drilldowns

    @property
    def frame(self) -> Frame | None:
        """The newest frame of the cluster on screen (None before the first)."""
        return self._frame

    @property
    def current_cluster(self) -> str | None:
        """The cluster the panels show (None until `set_clusters`, with a single engine)."""
        return self.clusters.current

    @property
    def cluster_names(self) -> tuple[str, ...]:
        return self.clusters.names

    @property
    def cluster_actions(self) -> list[QAction]:
        """"Show cluster X" (Ctrl+Shift+1..9), one per cluster."""
        return self.clusters.shortcuts

    @property
    def _cluster_names(self) -> tuple[str, ...]:
        return self.clusters.names

    @property
    def _pending(self) -> str | None:
        return self.clusters.pending

    @property
    def _cluster_status(self) -> dict[str, EngineStatus]:
        return self.clusters.status

    def set_clusters(self, names: Sequence[str], *, actions: Mapping[str, Any] | None = None,
                     simulated: Mapping[str, bool] | None = None, current: str | None = None) -> None:
        """Name the clusters this window can show, their actions, and which one to show first.

        With more than one: the switcher and the fleet overview appear, and Ctrl+Shift+1..9
        switch. Frames then come through `show_cluster_frame` (`widgets.clusters`).
        """
        self.clusters.set_clusters(names, actions=actions, simulated=simulated, current=current)

    @Slot(str, object)
    def show_cluster_frame(self, name: str, frame: Frame) -> None:
        """A frame of any cluster of the fleet; only the shown cluster's reach the panels."""
        self.clusters.show_cluster_frame(name, frame)

    @Slot(str, object)
    def show_cluster_engine_status(self, name: str, status: EngineStatus) -> None:
        """A fleet engine's health; the banner and sources panel follow the cluster shown."""
        self.clusters.show_cluster_engine_status(name, status)

    @Slot(str)
    def switch_cluster(self, name: str) -> bool:
        """Show ``name`` in every panel; False when it has no data yet (shown when it comes)."""
        return self.clusters.switch(name)

    @Slot(object)
    def show_frame(self, frame: Frame, arrived: float | None = None) -> None:
        """Hand the frame to every panel and to the shown cluster's drill-downs; cheap (panels
        redraw on their timers). ``arrived``: when it came (``clock``), if not just now."""
        self._frame = frame
        self._frame_arrived = self._clock() if arrived is None else arrived
        self._hand_to_panels(frame)
        if not self._cluster_names:  # a single engine: the fleet view has just this one row
            fleet = self.panels.get("fleet")
            if fleet is not None and hasattr(fleet, "show_fleet"):
                fleet.show_fleet({frame.cluster: frame})
        self._update_chrome(frame)
        if arrived is not None:
            self.tick()  # an older frame (another cluster's): aged at once, not a second later

    def _hand_to_panels(self, frame: Frame) -> None:
        shown = frame if self.frame_filter is None else self.frame_filter(frame)
        for panel in self.panels.values():
            panel.show_frame(shown)
        self.navigation.hand_frame(shown)
        self.frame_shown.emit(frame)

    def reshow(self) -> None:
        """Hand the newest frame to the panels again (the time scrubber moved)."""
        if self._frame is not None:
            self._hand_to_panels(self._frame)

    @Slot(object)
    def show_engine_status(self, status: EngineStatus | None) -> None:
        """The engine's own health (from the bridge): shown at once, not at the next tick.
        None: not known (a cluster whose engine has not reported yet)."""
        self.engine_status = status
        sources = self.panels.get("sources")
        if sources is not None and hasattr(sources, "set_engine_status"):
            sources.set_engine_status(status)
        if status is not None and status.state is EngineState.DOWN:
            log.warning("console window: %s", status.words(self._wall_clock()))
        self.tick()
        if sources is not None and sources.isVisible():
            sources.render_now()

    @Slot()
    def tick(self) -> None:
        """Every second: the status bar's frame age, and the last frame aged to the clock for
        the panels when no new one came (a dead or stuck engine must not look calm)."""
        frame = self._frame
        if frame is not None:
            elapsed = self._clock() - self._frame_arrived
            down = self.engine_status is not None and self.engine_status.down
            if down or elapsed >= STALL_S:
                self._hand_to_panels(aged_frame(frame, elapsed, down))
            self._update_banner(frame, elapsed)
        self._update_status_age()

    def render_all(self) -> None:
        """Render every panel now (snapshot and tests; live rendering is timer-driven)."""
        for panel in self.panels.values():
            panel.render_now()
        if self._frame is not None:
            self._update_chrome(self._frame)

    def _update_banner(self, frame: Frame | None, elapsed_s: float) -> None:
        """The engine's trouble first (it makes every panel blind), then the sources'."""
        parts: list[str] = []
        severity = "warning"
        engine = engine_banner(self.engine_status, frame, elapsed_s, self._wall_clock())
        if engine is not None:
            parts.append(engine)
            severity = "critical"
        sources = None if frame is None else failing_banner(frame)
        if sources is not None:
            parts.append(sources[0])
            severity = "critical" if sources[1] == "critical" else severity
        if not parts:
            self.banner.hide()
            return
        text = "  \u2022  ".join(parts)
        if self.banner.text() != text:
            self.banner.setText(text)
        set_state_property(self.banner, "severity", severity)
        self.banner.show()

    def _update_chrome(self, frame: Frame) -> None:
        self._update_banner(frame, self._clock() - self._frame_arrived)
        k = frame.kpis
        if k.gpus_total is None or k.nodes_total is None:  # unknown is never shown as 0
            cluster = f"{frame.cluster} \u00b7 GPU and node counts: no data yet"
        else:
            cluster = f"{frame.cluster} \u00b7 {k.gpus_total:,} GPUs on {k.nodes_total:,} nodes"
        if self._pending is not None:
            cluster = (f"{self._pending} \u00b7 waiting for its first data "
                       f"(still showing {frame.cluster})")
        if self.cluster_label.text() != cluster:
            self.cluster_label.setText(cluster)
        title = f"{frame.cluster} \u2014 AISC Console"
        if self.windowTitle() != title:
            self.setWindowTitle(title)
        self.sim_badge.setVisible(bool(frame.simulated))
        self._update_status_age()

    @Slot()
    def _update_status_age(self) -> None:
        frame = self._frame
        if frame is None:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(frame.time))
        lag = time.time() - frame.time
        text = f"frame {frame.seq:,} at {stamp}"
        if lag > 5:
            text += f" ({fmt_duration(lag)} ago)"
        if self.age_label.text() != text:
            self.age_label.setText(text)

    def ask_panel(self, key: str, method: str, *args: object) -> bool:
        """Call an optional method of a panel if that panel offers it."""
        fn = getattr(self.panels.get(key), method, None)
        if callable(fn):
            fn(*args)
            return True
        return False

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._first_show:
            self._first_show = False
            if not self.restore_layout():
                self._apply_default_sizes()
            dock = self.docks.get("fleet")
            if dock is not None and len(self._cluster_names) <= 1:
                dock.hide()  # a layout saved with several clusters must not show an empty fleet

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self._persist:
            self.save_layout()
        self.navigation.close_all()
        super().closeEvent(event)


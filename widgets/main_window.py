"""The main window: a thin shell of dockable panels, a source banner and a status bar.

It owns no data work: frames come in through `show_frame` (connected to the bridge) and are
handed to each panel, which redraws on its own timer. Navigation requests from any panel
(`PanelContext.navigator`) are served here. Geometry and dock layout persist in QSettings; the
layout is locked by default (no dock title bars, the panels carry their own headers) and can be
unlocked from the View menu to rearrange it.

Panels built by other modules are imported lazily and defensively: a panel that fails to
import becomes a placeholder that says so, instead of taking the console down.

Several clusters: `set_clusters` names them, `show_cluster_frame(name, frame)` receives every
cluster's frames (from `FleetBridge`), and only the frames of the cluster on screen reach the
panels; the others feed the fleet overview and the drill-down windows opened for them. Switching
(the status-bar combo box, Ctrl+Shift+1..9, or a row of the fleet panel) hands the panels the
other cluster's newest frame, never rebuilds them.

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

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt, QTimer, Signal, Slot
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
from widgets import theme as _theme
from widgets.formatting import fmt_duration
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
        self.engine_status: EngineStatus | None = None
        self._cluster_status: dict[str, EngineStatus] = {}
        self._fleet_arrived: dict[str, float] = {}
        self.presentation = presentation
        self._persist = persist
        self._settings = settings if settings is not None else (
            QSettings("AISC", "AISC Console") if persist else None)
        self._prefix = "presentation" if presentation else "window"
        self._frame: Frame | None = None
        # Drill-down windows per cluster (None: the single cluster of an engine), by account.
        self._drilldowns_by_cluster: dict[str | None, dict[str, QWidget]] = {}
        self._cluster_names: tuple[str, ...] = ()
        self._current: str | None = None
        self._pending: str | None = None  # asked for, but no frame of it yet
        self._fleet_frames: dict[str, Frame | None] = {}
        self._cluster_actions: dict[str, Any] = {}
        self.cluster_actions: list[QAction] = []
        self.setObjectName("MainWindow")
        self.setWindowTitle("AISC Console")
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        for corner, area in ((Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.TopDockWidgetArea),
                             (Qt.Corner.TopRightCorner, Qt.DockWidgetArea.TopDockWidgetArea)):
            self.setCorner(corner, area)

        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        specs = [s for s in PANELS if s.public or not presentation]
        for spec in specs:
            panel = load_panel(spec, self.context)
            if presentation and hasattr(panel, "public_safe"):
                panel.public_safe = True
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(f"dock_{spec.key}")
            dock.setWidget(LayoutFirewall(panel))
            self.panels[spec.key] = panel
            self.docks[spec.key] = dock
        self._arrange_default()
        if "fleet" in self.docks:
            self.docks["fleet"].hide()  # shown only when there is more than one cluster
            fleet_panel = self.panels["fleet"]
            if hasattr(fleet_panel, "cluster_requested"):
                fleet_panel.cluster_requested.connect(self.switch_cluster)

        self._build_top()
        self._build_status_bar()
        self._build_actions()
        self.set_layout_locked(True)
        self.context.navigator.tenant_requested.connect(self._on_tenant_requested)
        self.context.navigator.gpu_requested.connect(self._on_gpu_requested)
        self.context.navigator.node_requested.connect(self._on_node_requested)
        self.context.navigator.job_requested.connect(self._on_job_requested)
        self.context.navigator.rack_requested.connect(self._on_rack_requested)
        self.context.navigator.nodes_requested.connect(self._on_nodes_requested)
        # Per cluster, the drill-down window whose subject the health map outlines (the one
        # of that cluster most recently active): switching back to a cluster restores it.
        self._outline_owners: dict[str | None, QWidget] = {}
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(1000)
        self._age_timer.timeout.connect(self.tick)
        self._age_timer.start()
        self.resize(1920, 1080)
        self._restore_geometry()

    # -- layout -----------------------------------------------------------------------------

    def _arrange_default(self) -> None:
        """The first-run layout for 1920x1080: KPIs across the top, the map left, plots right."""
        d = self.docks
        top, left, right = (Qt.DockWidgetArea.TopDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea,
                            Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(top, d["kpi"])
        self.addDockWidget(left, d["heatmap"])
        self.addDockWidget(right, d["capacity"])
        if "jobs" in d:
            self.splitDockWidget(d["heatmap"], d["jobs"], Qt.Orientation.Vertical)
        if "alerts" in d:
            self.splitDockWidget(d["capacity"], d["tenants"], Qt.Orientation.Vertical)
            self.splitDockWidget(d["capacity"], d["alerts"], Qt.Orientation.Vertical)
        if "fleet" in d:  # under the KPI strip, across the window: one row per cluster
            self.splitDockWidget(d["kpi"], d["fleet"], Qt.Orientation.Vertical)
        # No central widget: the docks share the whole window.
        self._first_show = True

    def _apply_default_sizes(self) -> None:
        """Tabs and dock proportions, once the window is shown at its real size.

        Tabifying before the window is shown leaves stray tab bars drawn over the docks
        (Qt 6.11), and sizes set before it has its size are ignored: both wait for showEvent.
        """
        d = self.docks
        if "alerts" in d:
            self.tabifyDockWidget(d["alerts"], d["incidents"])
            self.tabifyDockWidget(d["tenants"], d["sources"])
            d["alerts"].raise_()
            d["tenants"].raise_()
        # Designed at 1920x1080 and scaled to the window: on a 4K wall the same proportions, not
        # the same pixels (a 150-pixel KPI row would leave the numbers a sliver of the screen);
        # the KPI row follows the text size, which grows with the screen.
        fx = max(self.width(), 1) / 1920.0
        fy = max(self.height(), 1) / 1080.0
        kpi = _theme.current().px(200 if self.presentation else 150)

        def size(docks: list[str], px: list[int], f: float, o: Qt.Orientation) -> None:
            self.resizeDocks([d[k] for k in docks], [round(v * f) for v in px], o)

        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        if self.presentation:
            # Only three docks: the KPI row alone in the list would be given all the height.
            self.resizeDocks([d["kpi"], d["heatmap"]], [kpi, max(1, self.height() - kpi)], vertical)
            size(["heatmap", "capacity"], [1150, 770], fx, horizontal)
        else:
            self.resizeDocks([d["kpi"]], [kpi], vertical)
            size(["heatmap", "capacity"], [1080, 840], fx, horizontal)
            if "jobs" in d:
                size(["heatmap", "jobs"], [520, 380], fy, vertical)
            if "alerts" in d:
                size(["capacity", "alerts", "tenants"], [320, 280, 300], fy, vertical)
            self._size_fleet_dock()

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
        state = s.value(f"{self._prefix}/state")
        ok = isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION)
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
        self.cluster_combo.activated.connect(self._on_combo_activated)
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
        view = self.menu_bar.addMenu("&View")
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
        panel = self.panels[key]
        panel.setFocus(Qt.FocusReason.ShortcutFocusReason)

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
        return self._drilldowns_by_cluster.setdefault(self._current, {})

    @property
    def current_cluster(self) -> str | None:
        """The cluster the panels show (None until `set_clusters`, with a single engine)."""
        return self._current

    @property
    def cluster_names(self) -> tuple[str, ...]:
        return self._cluster_names

    def set_clusters(self, names: Sequence[str], *, actions: Mapping[str, Any] | None = None,
                     simulated: Mapping[str, bool] | None = None, current: str | None = None) -> None:
        """Name the clusters this window can show, their actions, and which one to show first.

        With more than one: the switcher and the fleet overview appear, and Ctrl+Shift+1..9
        switch. Frames then come through `show_cluster_frame`.
        """
        self._cluster_names = tuple(names)
        self._cluster_actions = dict(actions or {})
        self._fleet_frames = {n: self._fleet_frames.get(n) for n in self._cluster_names}
        several = len(self._cluster_names) > 1
        combo = self.cluster_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(list(self._cluster_names))
        combo.blockSignals(False)
        combo.setVisible(several)
        self.cluster_caption.setVisible(several)
        for a in self.cluster_actions:
            self.removeAction(a)
            a.deleteLater()
        self.cluster_actions = []
        for i, name in enumerate(self._cluster_names[:9]):
            a = QAction(f"Show cluster {name}", self)
            a.setShortcut(QKeySequence(f"Ctrl+Shift+{i + 1}"))
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.triggered.connect(lambda _=False, n=name: self.switch_cluster(n))
            self.addAction(a)
            self.cluster_actions.append(a)
        if hasattr(self, "_cluster_menu"):
            self._cluster_menu.clear()
            self._cluster_menu.menuAction().setVisible(several)
            for a in self.cluster_actions:
                self._cluster_menu.addAction(a)
        fleet = self.panels.get("fleet")
        if fleet is not None and hasattr(fleet, "set_clusters"):
            fleet.set_clusters(self._cluster_names, simulated)
        dock = self.docks.get("fleet")
        if dock is not None:
            dock.setVisible(several)
            self._size_fleet_dock()
        first = current if current in self._cluster_names else (
            self._cluster_names[0] if self._cluster_names else None)
        self._current = first
        self._pending = None
        if first is not None:
            self._select_in_combo(first)
            if not self.presentation:
                self.context.actions = self._cluster_actions.get(first)
            if fleet is not None and hasattr(fleet, "set_shown"):
                fleet.set_shown(first)
            frame = self._fleet_frames.get(first)
            if frame is not None:
                self.show_frame(frame, arrived=self._fleet_arrived.get(first))

    @Slot(str, object)
    def show_cluster_frame(self, name: str, frame: Frame) -> None:
        """A frame of any cluster of the fleet; only the shown cluster's reach the panels."""
        if name not in self._fleet_frames:
            return  # not a cluster of ours (a late frame after set_clusters changed)
        self._fleet_frames[name] = frame
        self._fleet_arrived[name] = self._clock()
        fleet = self.panels.get("fleet")
        if fleet is not None and hasattr(fleet, "show_fleet"):
            fleet.show_fleet(self._fleet_frames)
        if self._pending == name:
            self.switch_cluster(name)
        elif name == self._current:
            self.show_frame(frame)
        else:
            for win in list(self._drilldowns_by_cluster.get(name, {}).values()):
                win.show_frame(frame)

    @Slot(str, object)
    def show_cluster_engine_status(self, name: str, status: EngineStatus) -> None:
        """A fleet engine's health; the banner and sources panel follow the cluster shown."""
        self._cluster_status[name] = status
        if name == self._current:
            self.show_engine_status(status)

    @Slot(str)
    def switch_cluster(self, name: str) -> bool:
        """Show ``name`` in every panel; True when done now, False when it has no data yet (it
        is then shown as soon as its first frame arrives) or is not a configured cluster."""
        if name not in self._cluster_names:
            return False
        self._select_in_combo(name)
        frame = self._fleet_frames.get(name)
        if frame is None:
            self._pending = None if name == self._current else name
            if self._pending is not None:
                shown = self._current or "nothing"
                self.cluster_label.setText(f"{name} · waiting for its first data "
                                           f"(still showing {shown})")
            return False
        self._pending = None
        changed = name != self._current
        self._current = name
        if not self.presentation:
            self.context.actions = self._cluster_actions.get(name)
        if changed:
            self.show_engine_status(self._cluster_status.get(name))
        fleet = self.panels.get("fleet")
        if fleet is not None and hasattr(fleet, "set_shown"):
            fleet.set_shown(name)
        # Its frame's age counts from when it arrived, not from the switch.
        self.show_frame(frame, arrived=self._fleet_arrived.get(name))
        self._show_outline()
        if changed:
            # At once, not on the next redraw tick: the operator just asked for it.
            for panel in self.panels.values():
                if panel.isVisible():
                    panel.render_now()
            self.cluster_changed.emit(name)
        return True

    def _select_in_combo(self, name: str) -> None:
        i = self.cluster_combo.findText(name, Qt.MatchFlag.MatchExactly)
        if i >= 0 and self.cluster_combo.currentIndex() != i:
            self.cluster_combo.blockSignals(True)
            self.cluster_combo.setCurrentIndex(i)
            self.cluster_combo.blockSignals(False)

    @Slot(int)
    def _on_combo_activated(self, index: int) -> None:
        if 0 <= index < len(self._cluster_names):
            self.switch_cluster(self._cluster_names[index])

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
        for panel in self.panels.values():
            panel.show_frame(frame)
        for win in list(self._drilldowns.values()):
            win.show_frame(frame)

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

    @Slot(str)
    def _on_tenant_requested(self, account: str) -> None:
        if self.presentation:
            return  # tenant identities are not shown in public
        win = self._drilldowns.get(account)
        if win is None:
            try:
                mod = importlib.import_module("widgets.tenant_drilldown")
                win = mod.TenantDrilldownWindow(account, self.context, self)
            except Exception as exc:
                log.exception("tenant drill-down for %s failed", account)
                self.statusBar().showMessage(f"Cannot open tenant {account}: {exc}", 10_000)
                return
            cluster = self._current
            windows = self._drilldowns
            windows[account] = win
            win.destroyed.connect(lambda _=None, a=account, w=windows: w.pop(a, None))
            win.destroyed.connect(lambda _=None, w=win: self._forget_outline_owner(w))
            win.closed.connect(lambda w=win: self._clear_highlight(w))
            win.activated.connect(lambda w=win: self._highlight_from(w))
            if len(self._cluster_names) > 1 and cluster is not None:
                _name_cluster_in_title(win, cluster)
            if self._frame is not None:
                win.show_frame(self._frame)
        win.show()
        win.raise_()
        win.activateWindow()
        self._highlight_from(win)

    @Slot(str, int)
    def _on_gpu_requested(self, node: str, gpu: int) -> None:
        self.statusBar().showMessage(f"Selected GPU {node}/{gpu}", 10_000)
        self._ask_panel("jobs", "select_node", node)
        self._open_node(node, int(gpu))

    @Slot(str)
    def _on_node_requested(self, node: str) -> None:
        self.statusBar().showMessage(f"Selected node {node}", 10_000)
        self._ask_panel("jobs", "select_node", node)
        self._open_node(node, None)

    @Slot(int)
    def _on_job_requested(self, job_id: int) -> None:
        self.statusBar().showMessage(f"Selected job {job_id}", 10_000)
        if self._ask_panel("jobs", "select_job", job_id):
            self.focus_panel("jobs")
        win = self._open_drilldown(f"job:{int(job_id)}", "widgets.job_drilldown",
                                   "JobDrilldownWindow", int(job_id))
        if win is not None:
            self._highlight_from(win)

    @Slot(str)
    def _on_rack_requested(self, rack: str) -> None:
        self.statusBar().showMessage(f"Rack {rack}: see its block on the GPU health map", 10_000)
        self.focus_panel("heatmap")

    @Slot(str, tuple)
    def _on_nodes_requested(self, words: str, nodes: tuple) -> None:
        """Outline a group of nodes (a PDU's, a switch's) on the map until a drill-down window
        takes the outline or the operator switches cluster."""
        from widgets.drilldown_common import MapSubject

        self._outline_owners.pop(self._current, None)
        cluster = None if self._frame is None else self._frame.cluster
        self._ask_panel("heatmap", "set_outline", MapSubject(nodes=tuple(nodes), cluster=cluster))
        self.statusBar().showMessage(f"{words}: {len(nodes)} nodes outlined on the GPU health map", 10_000)
        self.focus_panel("heatmap")

    def _open_node(self, node: str, gpu: int | None) -> None:
        win = self._open_drilldown(f"node:{node}", "widgets.node_drilldown", "NodeDrilldownWindow",
                                   node, gpu=gpu)
        if win is None:
            return
        if gpu is not None and getattr(win, "selected_gpu", gpu) != gpu:
            win.select_gpu(gpu)
        self._highlight_from(win)

    def _open_drilldown(self, key: str, module: str, cls: str, subject: object,
                        **kw: object) -> QWidget | None:
        """Open or raise the drill-down window ``key`` of the cluster on screen (one each).

        Presentation mode opens none: these windows name users, tenants and jobs.
        """
        if self.presentation:
            return None
        win = self._drilldowns.get(key)
        if win is None:
            try:
                win = getattr(importlib.import_module(module), cls)(subject, self.context, self, **kw)
            except Exception as exc:
                log.exception("drill-down %s failed", key)
                self.statusBar().showMessage(f"Cannot open {key.replace(':', ' ')}: {exc}", 10_000)
                return None
            windows = self._drilldowns
            windows[key] = win
            win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            win.destroyed.connect(lambda _=None, k=key, w=windows: w.pop(k, None))
            win.destroyed.connect(lambda _=None, w=win: self._forget_outline_owner(w))
            if hasattr(win, "closed"):
                win.closed.connect(lambda w=win: self._clear_highlight(w))
            if hasattr(win, "activated"):
                win.activated.connect(lambda w=win: self._highlight_from(w))
            if hasattr(win, "gpu_selected"):
                win.gpu_selected.connect(lambda _g, w=win: self._highlight_from(w))
            if len(self._cluster_names) > 1 and self._current is not None:
                _name_cluster_in_title(win, self._current)
            if self._frame is not None:
                win.show_frame(self._frame)
        win.show()
        win.raise_()
        win.activateWindow()
        return win

    def _highlight_from(self, win: QWidget) -> None:
        """Outline the subject (a node, a GPU, a job's GPUs) of the drill-down window that was
        just opened or activated, on its own cluster's map: on screen now if that cluster is
        shown, else when the operator switches to it."""
        subject = getattr(win, "map_subject", None)
        if not callable(subject) or subject() is None:
            return  # a window with nothing to outline keeps the outline as it is
        self._outline_owners[self._cluster_of(win)] = win
        self._show_outline()

    def _clear_highlight(self, win: QWidget) -> None:
        """A drill-down window closed: its outline goes (another window outlines on focus)."""
        if self._forget_outline_owner(win):
            self._show_outline()

    def _forget_outline_owner(self, win: QObject) -> bool:
        gone = [c for c, w in self._outline_owners.items() if w is win]
        for c in gone:
            del self._outline_owners[c]
        return bool(gone)

    def _show_outline(self) -> None:
        """Hand the map the subject of the shown cluster's outline owner, or nothing: a node
        name of another cluster may be a different machine here."""
        owner = self._outline_owners.get(self._current)
        try:
            subject = owner.map_subject() if owner is not None else None
        except RuntimeError:  # deleted on the C++ side before its destroyed signal reached us
            self._outline_owners.pop(self._current, None)
            subject = None
        self._ask_panel("heatmap", "set_outline", subject)

    def _cluster_of(self, win: QWidget) -> str | None:
        for cluster, windows in self._drilldowns_by_cluster.items():
            if any(w is win for w in windows.values()):
                return cluster
        return self._current

    def _ask_panel(self, key: str, method: str, *args) -> bool:
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
        for windows in list(self._drilldowns_by_cluster.values()):
            for win in list(windows.values()):
                win.close()
        super().closeEvent(event)


def _name_cluster_in_title(win: QWidget, cluster: str) -> None:
    """Keep "· <cluster>" at the end of a drill-down's title, whatever the window sets itself:
    with several clusters two "HKU — tenant" windows must say which machine each one is about."""
    suffix = f" \u00b7 {cluster}"

    def keep(title: str) -> None:
        if not title.endswith(suffix):
            win.setWindowTitle(title + suffix)

    win.windowTitleChanged.connect(keep)
    keep(win.windowTitle())

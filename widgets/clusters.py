"""Several clusters in one window: which one the panels show, and switching between them.

`set_clusters` names them, `show_cluster_frame(name, frame)` receives every cluster's frames
(from `FleetBridge`), and only the frames of the cluster on screen reach the panels; the others
feed the fleet overview and the drill-down windows opened for them. Switching (the status-bar
combo box, Ctrl+Shift+1..9, or a row of the fleet panel) hands the panels the other cluster's
newest frame, never rebuilds them; a cluster without data yet is shown as soon as its first
frame arrives. Kept out of the main window so that the window stays a shell of panels.
Lives in the GUI thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence

from console.engine import EngineStatus
from console.model import Frame

if TYPE_CHECKING:  # the window whose panels show the cluster; typing only
    from widgets.main_window import MainWindow


class ClusterSwitch(QObject):
    """The fleet's clusters for one main window (see the module docstring)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.names: tuple[str, ...] = ()
        self.current: str | None = None
        self.pending: str | None = None  # asked for, but no frame of it yet
        self.frames: dict[str, Frame | None] = {}
        self.arrived: dict[str, float] = {}  # when each cluster's newest frame came (clock)
        self.status: dict[str, EngineStatus] = {}
        self.cluster_actions: dict[str, Any] = {}  # each cluster's OperatorActions
        self.shortcuts: list[QAction] = []  # "Show cluster X", Ctrl+Shift+1..9

    def set_clusters(self, names: Sequence[str], *, actions: Mapping[str, Any] | None = None,
                     simulated: Mapping[str, bool] | None = None, current: str | None = None) -> None:
        """Name the clusters, their actions, and which one to show first (see MainWindow)."""
        w = self.window
        self.names = tuple(names)
        self.cluster_actions = dict(actions or {})
        self.frames = {n: self.frames.get(n) for n in self.names}
        several = len(self.names) > 1
        combo = w.cluster_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(list(self.names))
        combo.blockSignals(False)
        combo.setVisible(several)
        w.cluster_caption.setVisible(several)
        for a in self.shortcuts:
            w.removeAction(a)
            a.deleteLater()
        self.shortcuts = []
        for i, name in enumerate(self.names[:9]):
            a = QAction(f"Show cluster {name}", w)
            a.setShortcut(QKeySequence(f"Ctrl+Shift+{i + 1}"))
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.triggered.connect(lambda _=False, n=name: self.switch(n))
            w.addAction(a)
            self.shortcuts.append(a)
        menu = getattr(w, "_cluster_menu", None)
        if menu is not None:
            menu.clear()
            menu.menuAction().setVisible(several)
            for a in self.shortcuts:
                menu.addAction(a)
        fleet = w.panels.get("fleet")
        if fleet is not None and hasattr(fleet, "set_clusters"):
            fleet.set_clusters(self.names, simulated)
        dock = w.docks.get("fleet")
        if dock is not None:
            dock.setVisible(several)
            w._size_fleet_dock()
        first = current if current in self.names else (self.names[0] if self.names else None)
        self.current = first
        self.pending = None
        if first is not None:
            self.select_in_combo(first)
            if not w.presentation:
                w.context.actions = self.cluster_actions.get(first)
            if fleet is not None and hasattr(fleet, "set_shown"):
                fleet.set_shown(first)
            frame = self.frames.get(first)
            if frame is not None:
                w.show_frame(frame, arrived=self.arrived.get(first))

    def show_cluster_frame(self, name: str, frame: Frame) -> None:
        """A frame of any cluster of the fleet; only the shown cluster's reach the panels."""
        if name not in self.frames:
            return  # not a cluster of ours (a late frame after set_clusters changed)
        w = self.window
        self.frames[name] = frame
        self.arrived[name] = w._clock()
        w.cluster_frame.emit(frame)
        fleet = w.panels.get("fleet")
        if fleet is not None and hasattr(fleet, "show_fleet"):
            fleet.show_fleet(self.frames)
        if self.pending == name:
            self.switch(name)
        elif name == self.current:
            w.show_frame(frame)
        else:
            w.navigation.hand_frame(frame, name, shown=False)

    def show_cluster_engine_status(self, name: str, status: EngineStatus) -> None:
        """A fleet engine's health; the banner and sources panel follow the cluster shown."""
        self.status[name] = status
        if name == self.current:
            self.window.show_engine_status(status)

    def switch(self, name: str) -> bool:
        """Show ``name`` in every panel; True when done now, False when it has no data yet (it
        is then shown as soon as its first frame arrives) or is not a configured cluster."""
        if name not in self.names:
            return False
        w = self.window
        self.select_in_combo(name)
        frame = self.frames.get(name)
        if frame is None:
            self.pending = None if name == self.current else name
            if self.pending is not None:
                shown = self.current or "nothing"
                w.cluster_label.setText(f"{name} \u00b7 waiting for its first data "
                                        f"(still showing {shown})")
            return False
        self.pending = None
        changed = name != self.current
        self.current = name
        if not w.presentation:
            w.context.actions = self.cluster_actions.get(name)
        if changed:
            w.show_engine_status(self.status.get(name))
        fleet = w.panels.get("fleet")
        if fleet is not None and hasattr(fleet, "set_shown"):
            fleet.set_shown(name)
        # Its frame's age counts from when it arrived, not from the switch.
        w.show_frame(frame, arrived=self.arrived.get(name))
        w.navigation.show_outline()
        if changed:
            # At once, not on the next redraw tick: the operator just asked for it.
            for panel in w.panels.values():
                if panel.isVisible():
                    panel.render_now()  # type: ignore[attr-defined]  # a Panel
            w.cluster_changed.emit(name)
        return True

    def select_in_combo(self, name: str) -> None:
        combo = self.window.cluster_combo
        i = combo.findText(name, Qt.MatchFlag.MatchExactly)
        if i >= 0 and combo.currentIndex() != i:
            combo.blockSignals(True)
            combo.setCurrentIndex(i)
            combo.blockSignals(False)

    @Slot(int)
    def on_combo_activated(self, index: int) -> None:
        if 0 <= index < len(self.names):
            self.switch(self.names[index])

"""Navigation: drill-down windows, the outline on the health map, and back/forward history.

Every panel asks for a place through `PanelContext.navigator` ("node n0123", "job 4812");
this module serves those requests, so the main window only hosts panels. One drill-down
window per subject and per cluster (opening it again raises it), and the health map outlines
the subject of the cluster's most recently active drill-down. Every place opened is recorded
in a browser-like history: `back` and `forward` (Alt+Left, Alt+Right) reopen the places in
order without recording them again, so an operator who followed an alert to a node, then to
a job on it, can retrace the path from the keyboard.

Presentation mode opens no drill-down: those windows name users, tenants and jobs.
Lives in the GUI thread.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QWidget

from console.model import Frame

if TYPE_CHECKING:  # the shell that hosts the panels; typing only, to avoid an import cycle
    from widgets.main_window import MainWindow

log = logging.getLogger(__name__)

#: Places remembered for back/forward; older ones fall off the start.
HISTORY_LIMIT = 100


@dataclass(frozen=True)
class Place:
    """Somewhere the operator went: a kind ("tenant", "node", "gpu", "job", "rack", "nodes"),
    what it is about, and the cluster shown at the time (None with a single engine)."""

    kind: str
    args: tuple[Any, ...]
    cluster: str | None

    def words(self) -> str:
        """How the status bar names it."""
        if self.kind == "gpu":
            return f"GPU {self.args[0]}/{self.args[1]}"
        if self.kind == "nodes":
            return str(self.args[0])
        return f"{self.kind} {self.args[0]}"


class History:
    """A browser-like list of places with a cursor; Qt-free so it is tested on its own."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self.places: list[Place] = []
        self.index = -1
        self.limit = limit

    def push(self, place: Place) -> None:
        """Record a newly visited place: whatever was ahead of the cursor is dropped."""
        if 0 <= self.index < len(self.places) and self.places[self.index] == place:
            return  # the same place again (raised twice) is one step, not two
        del self.places[self.index + 1:]
        self.places.append(place)
        if len(self.places) > self.limit:
            del self.places[0]
        self.index = len(self.places) - 1

    def can_go_back(self) -> bool:
        return self.index > 0

    def can_go_forward(self) -> bool:
        return self.index < len(self.places) - 1

    def back(self) -> Place | None:
        if not self.can_go_back():
            return None
        self.index -= 1
        return self.places[self.index]

    def forward(self) -> Place | None:
        if not self.can_go_forward():
            return None
        self.index += 1
        return self.places[self.index]

    @property
    def current(self) -> Place | None:
        return self.places[self.index] if 0 <= self.index < len(self.places) else None


class NavigationController(QObject):
    """Serves the navigator's requests for one main window. `moved` after every navigation
    (the window enables its Back and Forward actions from `history`)."""

    moved = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.history = History()
        self._replaying = False
        # Drill-down windows per cluster (None: the single cluster of an engine), by key:
        # tenants by account, nodes as ``node:<name>``, jobs as ``job:<id>``.
        self.drilldowns_by_cluster: dict[str | None, dict[str, QWidget]] = {}
        # Per cluster, the drill-down window whose subject the health map outlines (the one
        # of that cluster most recently active): switching back to a cluster restores it.
        self.outline_owners: dict[str | None, QWidget] = {}
        nav = window.context.navigator
        nav.tenant_requested.connect(self.open_tenant)
        nav.gpu_requested.connect(self.open_gpu)
        nav.node_requested.connect(self.open_node)
        nav.job_requested.connect(self.open_job)
        nav.rack_requested.connect(self.open_rack)
        nav.nodes_requested.connect(self.outline_nodes)

    # -- what the window asks -------------------------------------------------------------------

    @property
    def drilldowns(self) -> dict[str, QWidget]:
        """The drill-down windows of the cluster on screen."""
        return self.drilldowns_by_cluster.setdefault(self.window.current_cluster, {})

    def hand_frame(self, frame: Frame, cluster: str | None = None, *, shown: bool = True) -> None:
        """Give a frame to the drill-downs of ``cluster`` (the shown one when ``shown``)."""
        windows = self.drilldowns if shown else self.drilldowns_by_cluster.get(cluster, {})
        for win in list(windows.values()):
            win.show_frame(frame)  # type: ignore[attr-defined]  # every drill-down has it

    def close_all(self) -> None:
        for windows in list(self.drilldowns_by_cluster.values()):
            for win in list(windows.values()):
                win.close()

    def back(self) -> bool:
        """Reopen the previous place; False when there is none."""
        return self._replay(self.history.back(), "Back to")

    def forward(self) -> bool:
        """Reopen the next place (after going back); False when there is none."""
        return self._replay(self.history.forward(), "Forward to")

    # -- requests -------------------------------------------------------------------------------

    @Slot(str)
    def open_tenant(self, account: str) -> None:
        self._record("tenant", (account,))
        win = self._open_drilldown(account, "widgets.tenant_drilldown", "TenantDrilldownWindow",
                                   account, words=f"tenant {account}", delete_on_close=False)
        if win is not None:
            self.highlight_from(win)

    @Slot(str, int)
    def open_gpu(self, node: str, gpu: int) -> None:
        self._record("gpu", (node, int(gpu)))
        self._message(f"Selected GPU {node}/{gpu}")
        self.window.ask_panel("jobs", "select_node", node)
        self._open_node(node, int(gpu))

    @Slot(str)
    def open_node(self, node: str) -> None:
        self._record("node", (node,))
        self._message(f"Selected node {node}")
        self.window.ask_panel("jobs", "select_node", node)
        self._open_node(node, None)

    @Slot(int)
    def open_job(self, job_id: int) -> None:
        self._record("job", (int(job_id),))
        self._message(f"Selected job {job_id}")
        if self.window.ask_panel("jobs", "select_job", job_id):
            self.window.focus_panel("jobs")
        win = self._open_drilldown(f"job:{int(job_id)}", "widgets.job_drilldown",
                                   "JobDrilldownWindow", int(job_id))
        if win is not None:
            self.highlight_from(win)

    @Slot(str)
    def open_rack(self, rack: str) -> None:
        self._record("rack", (rack,))
        self._message(f"Rack {rack}: see its block on the GPU health map")
        self.window.focus_panel("heatmap")

    @Slot(str, tuple)
    def outline_nodes(self, words: str, nodes: tuple) -> None:
        """Outline a group of nodes (a PDU's, a switch's) on the map until a drill-down window
        takes the outline or the operator switches cluster."""
        from widgets.drilldown_common import MapSubject

        self._record("nodes", (words, tuple(nodes)))
        current = self.window.current_cluster
        self.outline_owners.pop(current, None)
        frame = self.window.frame
        cluster = None if frame is None else frame.cluster
        self.window.ask_panel("heatmap", "set_outline", MapSubject(nodes=tuple(nodes), cluster=cluster))
        self._message(f"{words}: {len(nodes)} nodes outlined on the GPU health map")
        self.window.focus_panel("heatmap")

    # -- the outline on the map -----------------------------------------------------------------

    def highlight_from(self, win: QWidget) -> None:
        """Outline the subject (a node, a GPU, a job's GPUs) of the drill-down window that was
        just opened or activated, on its own cluster's map: on screen now if that cluster is
        shown, else when the operator switches to it."""
        subject = getattr(win, "map_subject", None)
        if not callable(subject) or subject() is None:
            return  # a window with nothing to outline keeps the outline as it is
        self.outline_owners[self._cluster_of(win)] = win
        self.show_outline()

    def show_outline(self) -> None:
        """Hand the map the subject of the shown cluster's outline owner, or nothing: a node
        name of another cluster may be a different machine here."""
        current = self.window.current_cluster
        owner = self.outline_owners.get(current)
        try:
            subject = owner.map_subject() if owner is not None else None  # type: ignore[attr-defined]
        except RuntimeError:  # deleted on the C++ side before its destroyed signal reached us
            self.outline_owners.pop(current, None)
            subject = None
        self.window.ask_panel("heatmap", "set_outline", subject)

    def _clear_highlight(self, win: QWidget) -> None:
        """A drill-down window closed: its outline goes (another window outlines on focus)."""
        if self._forget_outline_owner(win):
            self.show_outline()

    def _forget_outline_owner(self, win: QObject) -> bool:
        gone = [c for c, w in self.outline_owners.items() if w is win]
        for c in gone:
            del self.outline_owners[c]
        return bool(gone)

    def _cluster_of(self, win: QWidget) -> str | None:
        for cluster, windows in self.drilldowns_by_cluster.items():
            if any(w is win for w in windows.values()):
                return cluster
        return self.window.current_cluster

    # -- drill-down windows ---------------------------------------------------------------------

    def _open_node(self, node: str, gpu: int | None) -> None:
        win = self._open_drilldown(f"node:{node}", "widgets.node_drilldown", "NodeDrilldownWindow",
                                   node, gpu=gpu)
        if win is None:
            return
        if gpu is not None and getattr(win, "selected_gpu", gpu) != gpu:
            win.select_gpu(gpu)  # type: ignore[attr-defined]
        self.highlight_from(win)

    def _open_drilldown(self, key: str, module: str, cls: str, subject: object,
                        words: str | None = None, delete_on_close: bool = True,
                        **kw: object) -> QWidget | None:
        """Open or raise the drill-down window ``key`` of the cluster on screen (one each).

        A tenant's window is kept when closed (reopened as it was); the others are deleted.
        """
        if self.window.presentation:
            return None
        windows = self.drilldowns
        win = windows.get(key)
        if win is None:
            try:
                win = getattr(importlib.import_module(module), cls)(subject, self.window.context,
                                                                    self.window, **kw)
            except Exception as exc:  # a broken drill-down must not take the console down
                log.exception("drill-down %s failed", key)
                self._message(f"Cannot open {words or key.replace(':', ' ')}: {exc}")
                return None
            assert win is not None
            windows[key] = win
            win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, delete_on_close)
            win.destroyed.connect(lambda _=None, k=key, w=windows: w.pop(k, None))
            win.destroyed.connect(lambda _=None, w=win: self._forget_outline_owner(w))
            for signal, slot in (("closed", self._clear_highlight), ("activated", self.highlight_from)):
                if hasattr(win, signal):
                    getattr(win, signal).connect(lambda *_a, w=win, s=slot: s(w))
            if hasattr(win, "gpu_selected"):
                win.gpu_selected.connect(lambda _g, w=win: self.highlight_from(w))
            current = self.window.current_cluster
            if len(self.window.cluster_names) > 1 and current is not None:
                name_cluster_in_title(win, current)
            if self.window.frame is not None:
                win.show_frame(self.window.frame)
        win.show()
        win.raise_()
        win.activateWindow()
        return win

    # -- history --------------------------------------------------------------------------------

    def _record(self, kind: str, args: tuple[Any, ...]) -> None:
        if self.window.presentation:
            return
        if not self._replaying:
            self.history.push(Place(kind, args, self.window.current_cluster))
        self.moved.emit()

    def _replay(self, place: Place | None, words: str) -> bool:
        if place is None:
            return False
        if place.cluster is not None and place.cluster != self.window.current_cluster:
            self.window.switch_cluster(place.cluster)
        opener: dict[str, Callable[..., None]] = {
            "tenant": self.open_tenant, "gpu": self.open_gpu, "node": self.open_node,
            "job": self.open_job, "rack": self.open_rack, "nodes": self.outline_nodes,
        }
        self._replaying = True
        try:
            opener[place.kind](*place.args)
        finally:
            self._replaying = False
        self._message(f"{words} {place.words()}")
        return True

    def _message(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 10_000)


def name_cluster_in_title(win: QWidget, cluster: str) -> None:
    """Keep "· <cluster>" at the end of a drill-down's title, whatever the window sets itself:
    with several clusters two "HKU — tenant" windows must say which machine each one is about."""
    suffix = f" \u00b7 {cluster}"

    def keep(title: str) -> None:
        if not title.endswith(suffix):
            win.setWindowTitle(title + suffix)

    win.windowTitleChanged.connect(keep)
    keep(win.windowTitle())

"""Named dock layouts ("NOC wall", "triage", "capacity"), switched from the View menu or the
keyboard and remembered per screen.

Why named layouts: one arrangement cannot serve a wall display read from across the room, an
engineer working through an incident, and a capacity review. "NOC wall" is the glance
dashboard; "triage" gives the Alerts panel half the screen and its full height, so the list
and the details pane sit side by side with room for dozens of rows; "capacity" puts delivered
compute and the tenants first.

Every layout has the same shape: the KPI row across the top (and the fleet row under it when
there are several clusters), then columns left to right, each a stack of cells, each cell one
dock or several tabbed (the first one raised). Sizes are given for 1920x1080 and scaled to the
window, so a 4K wall gets the same proportions.

Remembered per screen: an operations room moves the console between a desk monitor and a wall,
and each wants its own arrangement. The chosen layout and the operator's adjustments to it are
saved under a key made of the screen's name and size (`screen_key`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget


@dataclass(frozen=True)
class Column:
    """One column under the KPI row: its width at 1920 px, and its cells top to bottom, each
    a tuple of dock keys (tabbed, the first raised) with its height at 1080 px."""

    width: int
    cells: tuple[tuple[tuple[str, ...], int], ...]


@dataclass(frozen=True)
class DockLayout:
    name: str
    shortcut: str
    columns: tuple[Column, ...]
    kpi_height: int = 150
    description: str = ""


LAYOUTS: tuple[DockLayout, ...] = (
    DockLayout("NOC wall", "Ctrl+Alt+1", (
        Column(1080, ((("heatmap",), 520), (("jobs",), 380))),
        Column(840, ((("capacity",), 300), (("alerts", "incidents"), 310),
                     (("tenants", "sources"), 290))),
    ), description="the health map and headline figures first, for a wall display"),
    DockLayout("triage", "Ctrl+Alt+2", (
        Column(1200, ((("alerts", "incidents"), 900),)),
        Column(720, ((("heatmap",), 400), (("jobs", "tenants", "capacity", "sources"), 500))),
    ), description="the alerts list and its details side by side, the full height"),
    DockLayout("capacity", "Ctrl+Alt+3", (
        Column(1000, ((("capacity",), 430), (("tenants", "sources"), 470))),
        Column(920, ((("heatmap",), 470), (("jobs", "alerts", "incidents"), 430))),
    ), description="delivered compute, tenants and the queue first"),
)
#: Presentation mode's only arrangement: the public panels, the map and the plot large.
PRESENTATION = DockLayout("presentation", "", (
    Column(1150, ((("heatmap",), 880),)),
    Column(770, ((("capacity",), 880),)),
), kpi_height=200)
DEFAULT = LAYOUTS[0].name
DESIGN = (1920, 1080)


def layout_named(name: str) -> DockLayout:
    """The layout called ``name`` (case-insensitive); ValueError naming the choices if none."""
    for layout in (*LAYOUTS, PRESENTATION):
        if layout.name.lower() == name.strip().lower():
            return layout
    raise ValueError(f"no layout named {name!r}; choose one of "
                     + ", ".join(repr(x.name) for x in LAYOUTS))


def screen_key(widget: QWidget) -> str:
    """A QSettings-safe key for the screen ``widget`` is on: its name and size."""
    screen = widget.screen()
    if screen is None:
        return "unknown"
    size = screen.size()
    raw = f"{screen.name() or 'screen'}@{size.width()}x{size.height()}"
    return re.sub(r"[^A-Za-z0-9@._-]", "_", raw)


def arrange(window: QMainWindow, docks: Mapping[str, QDockWidget], layout: DockLayout, *,
            hidden: Sequence[str] = (), tabs: bool = True, kpi_px: Callable[[int], int] = int) -> None:
    """Place every dock of ``docks`` as ``layout`` says, and size them to the window.

    ``hidden`` docks are placed but stay hidden (the fleet row with one cluster). With
    ``tabs`` False the tabbed docks are only placed side by side and nothing is sized: before
    the window is shown, tabifying leaves stray tab bars drawn over the docks (Qt 6.11) and
    sizes are ignored, so the caller arranges again once it is shown. ``kpi_px`` turns the KPI
    row's design height into pixels (it follows the text size, which grows on a wall).
    A dock a layout does not name is put in the last cell as a tab: nothing gets lost.
    """
    for dock in docks.values():
        window.removeDockWidget(dock)
    top, left = Qt.DockWidgetArea.TopDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea
    vertical, horizontal = Qt.Orientation.Vertical, Qt.Orientation.Horizontal
    named = {k for c in layout.columns for cell, _h in c.cells for k in cell}
    strays = tuple(k for k in docks if k not in named and k not in ("kpi", "fleet"))
    columns = [Column(c.width, tuple((tuple(k for k in cell if k in docks), h)
                                     for cell, h in c.cells)) for c in layout.columns]
    if strays:
        last = columns[-1]
        cells = list(last.cells)
        cells[-1] = (cells[-1][0] + strays, cells[-1][1])
        columns[-1] = Column(last.width, tuple(cells))
    columns = [Column(c.width, tuple((cell, h) for cell, h in c.cells if cell))
               for c in columns]
    columns = [c for c in columns if c.cells]

    if "kpi" in docks:
        window.addDockWidget(top, docks["kpi"])
        if "fleet" in docks:  # under the KPI strip, across the window: one row per cluster
            window.splitDockWidget(docks["kpi"], docks["fleet"], vertical)
    # The columns first, side by side; then each one split downwards (splitting a column
    # before its neighbour exists would put the neighbour beside its top cell only).
    previous: QDockWidget | None = None
    for column in columns:
        first = docks[column.cells[0][0][0]]
        if previous is None:
            window.addDockWidget(left, first)
        else:
            window.splitDockWidget(previous, first, horizontal)
        previous = first
    for column in columns:
        above = docks[column.cells[0][0][0]]
        for cell, _h in column.cells[1:]:
            below = docks[cell[0]]
            window.splitDockWidget(above, below, vertical)
            above = below
    for column in columns:
        for cell, _h in column.cells:
            for key in cell[1:]:
                if tabs:
                    window.tabifyDockWidget(docks[cell[0]], docks[key])
                else:
                    window.splitDockWidget(docks[cell[0]], docks[key], horizontal)
    for key, dock in docks.items():
        dock.setVisible(key not in hidden)
    if not tabs:
        return
    for column in columns:
        for cell, _h in column.cells:
            docks[cell[0]].raise_()
    fx = max(window.width(), 1) / DESIGN[0]
    fy = max(window.height(), 1) / DESIGN[1]
    if "kpi" in docks and columns:
        kpi = kpi_px(layout.kpi_height)
        if all(len(c.cells) == 1 for c in columns):
            # the KPI row alone in the list would be given all the height
            window.resizeDocks([docks["kpi"], docks[columns[0].cells[0][0][0]]],
                               [kpi, max(1, window.height() - kpi)], vertical)
        else:
            window.resizeDocks([docks["kpi"]], [kpi], vertical)
    if len(columns) > 1:
        window.resizeDocks([docks[c.cells[0][0][0]] for c in columns],
                           [round(c.width * fx) for c in columns], horizontal)
    for column in columns:
        if len(column.cells) > 1:
            window.resizeDocks([docks[cell[0]] for cell, _h in column.cells],
                               [round(h * fy) for _c, h in column.cells], vertical)


class LayoutStore:
    """The chosen layout and its saved dock state, per screen, in QSettings."""

    def __init__(self, settings: QSettings | None, prefix: str, version: int) -> None:
        self.settings = settings
        self.prefix = prefix
        self.version = version

    def _key(self, screen: str, what: str) -> str:
        return f"{self.prefix}/layouts/{screen}/{what}"

    def save(self, window: QMainWindow, name: str) -> None:
        if self.settings is None:
            return
        screen = screen_key(window)
        self.settings.setValue(self._key(screen, "name"), name)
        self.settings.setValue(self._key(screen, "state"), window.saveState(self.version))

    def saved_name(self, window: QMainWindow) -> str | None:
        """The layout last chosen on this window's screen, if it still exists."""
        if self.settings is None:
            return None
        name = self.settings.value(self._key(screen_key(window), "name"))
        try:
            return layout_named(str(name)).name if name else None
        except ValueError:
            return None

    def restore(self, window: QMainWindow) -> bool:
        """Put back the docks as they were last on this screen; False when never saved here."""
        if self.settings is None:
            return False
        state = self.settings.value(self._key(screen_key(window), "state"))
        return isinstance(state, QByteArray) and bool(window.restoreState(state, self.version))

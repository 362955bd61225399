"""What every read-only table of the console shares: header texts, row flags, view set-up.

Models keep their own rows (a numpy permutation of a columnar table, or a list) and implement
``_row_count`` and ``data``; this base supplies the Qt boilerplate once so that the jobs,
tenants and fleet tables behave identically (left-aligned headers that the sort arrow cannot
cover, selectable rows, no editing), and `ColumnSizer` keeps their column widths right when the
text grows for a wall screen and when the dock is narrower than the table.

No horizontal scrolling for what an operator reads every minute: a table names those columns
(``keep_visible``) and the sizer narrows its free-text columns (names, reasons), which elide,
until every one of them ends inside the viewport; numbers are never narrowed below their
widest typical value, so a figure is never cut.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QTreeView, QWidget

from widgets import theme as theme_mod

ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


class ReadOnlyTableModel(QAbstractTableModel):
    """A flat, read-only table with fixed column headers (``headers``)."""

    headers: tuple[str, ...] = ()

    def _row_count(self) -> int:  # pragma: no cover - subclasses say how many rows they show
        raise NotImplementedError

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008,N802
        return 0 if parent.isValid() else self._row_count()

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008,N802
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.headers):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.headers[section]
            if role == Qt.ItemDataRole.TextAlignmentRole:
                # left even over numbers: the sort arrow sits on the right and would cover it
                return int(Qt.AlignmentFlag.AlignLeft) | int(Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return ROW_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags


def setup_row_table(table: QTableView, object_name: str) -> None:
    """Whole-row single selection, no editing, striped rows, fixed row heights (no per-row sizing)."""
    table.setObjectName(object_name)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    vh = table.verticalHeader()
    vh.setVisible(False)
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    table.horizontalHeader().setHighlightSections(False)


# ---------------------------------------------------------------------------------------------
# Column widths that follow the font scale (wall screens, Ctrl+=).
# ---------------------------------------------------------------------------------------------

#: Horizontal room a header section takes besides its text: the QSS padding (6 px a side, not
#: scaled) and the 1 px border between sections.
HEADER_PADDING = 2 * 6 + 1
#: Room a cell takes besides its text (the item view's margins on both sides).
CELL_PADDING = 12
#: The window size the design widths were chosen for.
DESIGN_SIZE = (1920, 1080)
#: The narrowest a free-text column gets when the table must fit its dock (at 14 px text):
#: about nine characters, enough to tell "The Chine…" from "The Hong…".
FREE_TEXT_FLOOR = 100


def header_text_width(header: QHeaderView, text: str) -> int:
    """Pixels a header section needs to show ``text`` whole: the QSS draws it bold."""
    font = QFont(header.font())
    font.setBold(True)
    return QFontMetrics(font).horizontalAdvance(text) + HEADER_PADDING


def room_scale(widget: QWidget) -> float:
    """How much larger than the 1920x1080 design the widget's window is (never below 1).

    Free-text columns grow with this rather than with the text: on a 4K wall the docks are
    twice as wide and so are names, but a larger font on the same screen must not push the
    numbers out of a half-width dock.
    """
    win = widget.window()
    w, h = win.width(), win.height()
    if w <= 0 or h <= 0:
        return 1.0
    return max(1.0, min(w / DESIGN_SIZE[0], h / DESIGN_SIZE[1]))


class ColumnSizer(QObject):
    """Keeps a view's column widths right for the current font scale and window size.

    Widths are given in pixels at 14 px text on a 1920x1080 window (fixed widths, never
    resize-to-contents: that costs 173 ms at 50k rows, PERF.md). Numeric and short-word columns
    scale with the font and are never narrower than their bold header or a typical ``samples``
    value, so a number is never cut; ``free_text`` columns (names, reasons) scale with the
    room instead and elide first. Widths are recomputed only when the scale or the room
    changes (shown, resized window, Ctrl+=), so an operator's own column drag survives.
    """

    def __init__(self, view: QAbstractItemView, widths: Sequence[int], *,
                 free_text: Collection[int] = (), samples: Mapping[int, str] | None = None,
                 keep_visible: Collection[int] = ()) -> None:
        super().__init__(view)
        self.view = view
        self.widths = tuple(widths)
        self.free_text = frozenset(free_text)
        self.samples = dict(samples or {})
        #: Columns that must end inside the viewport (see the module docstring).
        self.keep_visible = frozenset(keep_visible)
        self._key: tuple[float, float, int] | None = None
        view.installEventFilter(self)
        view.viewport().installEventFilter(self)  # the dock was resized: fit again
        self.header.installEventFilter(self)  # its font may change after the view's
        self.apply()

    @property
    def header(self) -> QHeaderView:
        view = self.view
        if isinstance(view, QTableView):
            return view.horizontalHeader()
        return view.header()  # type: ignore[attr-defined]  # a QTreeView

    def width_for(self, col: int, font_scale: float, room: float) -> int:
        """The width of column ``col`` at this font scale and room."""
        header = self.header
        model = self.view.model()
        text = model.headerData(col, Qt.Orientation.Horizontal) if model is not None else None
        need = header_text_width(header, str(text)) if text else 0
        base = self.widths[col]
        if col in self.free_text:
            return max(need, round(base * min(font_scale, room)))
        sample = self.samples.get(col)
        if sample:
            indent = 0
            if col == 0 and isinstance(self.view, QTreeView) and self.view.rootIsDecorated():
                indent = 2 * self.view.indentation()  # a group's branch mark, then its members
            need = max(need, QFontMetrics(self.view.font()).horizontalAdvance(sample)
                       + CELL_PADDING + indent)
        return max(need, round(base * font_scale))

    def apply(self, force: bool = False) -> bool:
        """Set the widths if the font scale, the room or the viewport changed; True when set."""
        scale = theme_mod.current().font_scale
        visible = self.view.isVisible()
        room = room_scale(self.view) if visible else 1.0
        # The viewport only matters when columns must fit it, and only in coarse steps, so a
        # small drag of a dock edge keeps the operator's own column widths.
        # (64-pixel steps, rounded down: the columns then fit anywhere within the step).
        avail = self.view.viewport().width() // 64 * 64 if self.keep_visible and visible else 0
        key = (scale, round(room, 1), avail)
        if key == self._key and not force:
            return False
        self._key = key
        header = self.header
        count = min(len(self.widths), header.count())
        widths = {col: self.width_for(col, scale, key[1]) for col in range(count)}
        if avail > 0:
            widths = self.fitted(widths, avail, scale)
        for col, width in widths.items():
            header.resizeSection(col, width)
        return True

    def fitted(self, widths: dict[int, int], avail: int, font_scale: float) -> dict[int, int]:
        """``widths`` with the free-text columns narrowed (down to `FREE_TEXT_FLOOR`, never
        below their header) until every `keep_visible` column ends within ``avail`` pixels."""
        header = self.header
        shown = sorted((header.visualIndex(c), c) for c in widths if not header.isSectionHidden(c))
        last = max((v for v, c in shown if c in self.keep_visible), default=-1)
        span = [c for v, c in shown if v <= last]
        excess = sum(widths[c] for c in span) - avail
        if excess <= 0:
            return widths
        model = self.view.model()
        floors: dict[int, int] = {}
        for c in span:
            if c in self.free_text:
                text = model.headerData(c, Qt.Orientation.Horizontal) if model is not None else None
                need = header_text_width(header, str(text)) if text else 0
                floors[c] = min(widths[c], max(need, round(FREE_TEXT_FLOOR * font_scale)))
        give = {c: widths[c] - f for c, f in floors.items() if widths[c] > f}
        total = sum(give.values())
        if total <= 0:
            return widths
        out = dict(widths)
        share = min(1.0, excess / total)
        for c, g in give.items():
            cut = min(g, int(g * share + 0.999))
            out[c] = widths[c] - cut
        return out

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        et = event.type()
        if et in _RESIZE_EVENTS and (watched is self.view or (
                self.keep_visible and watched is self.view.viewport())):
            self.apply()
        elif et == QEvent.Type.FontChange and watched is self.header:
            self.apply(force=True)
        return False


_RESIZE_EVENTS = frozenset({QEvent.Type.Show, QEvent.Type.Resize, QEvent.Type.FontChange,
                            QEvent.Type.StyleChange})

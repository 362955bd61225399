"""Export any table to CSV and any plot to PNG from its context menu: one helper for all.

Operators paste figures into reports and tickets, so every table and every plot must give its
data up without a screenshot. Rather than each panel adding its own menu, `ExportMenus` is one
application-wide event filter: a right click on any item view (table or tree) that has no menu
of its own offers "Export table to CSV…", and every pyqtgraph plot gets "Export plot to PNG…"
in the plot's own menu (next to pyqtgraph's "Export..."). New panels get both for free.

What is written is what the operator sees: the visible columns in their on-screen order, the
rows in their sorted order, the cell texts as displayed (units and "no data" included, so a
blank is never mistaken for 0); a tree exports its top-level rows and their children.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QAbstractItemModel, QEvent, QModelIndex, QObject, QPoint, QRectF, Qt
from PySide6.QtGui import QAction, QContextMenuEvent, QImage, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QFileDialog, QHeaderView, QMenu, QTableView, QTreeView,
    QWidget,
)

log = logging.getLogger(__name__)

TABLE_ACTION = "Export table to CSV\u2026"
PLOT_ACTION = "Export plot to PNG\u2026"
_INSTALLED = "_aisc_png_export"


def _columns(view: QAbstractItemView) -> list[int]:
    """Visible columns in their on-screen (visual) order."""
    model = view.model()
    if model is None:
        return []
    header: QHeaderView | None = None
    if isinstance(view, QTableView):
        header = view.horizontalHeader()
    elif isinstance(view, QTreeView):
        header = view.header()
    cols = list(range(model.columnCount()))
    if header is None:
        return cols
    cols = [c for c in cols if not header.isSectionHidden(c)]
    return sorted(cols, key=header.visualIndex)


def _rows(model: QAbstractItemModel, parent: QModelIndex, view: QAbstractItemView,
          cols: list[int], depth: int = 0) -> list[list[str]]:
    out: list[list[str]] = []
    for r in range(model.rowCount(parent)):
        if isinstance(view, QTableView) and view.isRowHidden(r):
            continue
        if isinstance(view, QTreeView) and view.isRowHidden(r, parent):
            continue
        cells = []
        for c in cols:
            v = model.data(model.index(r, c, parent), Qt.ItemDataRole.DisplayRole)
            cells.append("" if v is None else str(v))
        out.append(cells)
        if isinstance(view, QTreeView) and depth < 4:
            out.extend(_rows(model, model.index(r, 0, parent), view, cols, depth + 1))
    return out


def table_rows(view: QAbstractItemView) -> list[list[str]]:
    """The header and rows of ``view`` exactly as shown (visible columns, sorted rows)."""
    model = view.model()
    if model is None:
        return []
    cols = _columns(view)
    header = [str(model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole) or "")
              for c in cols]
    return [header, *_rows(model, QModelIndex(), view, cols)]


def export_table_csv(view: QAbstractItemView, path: str | Path) -> int:
    """Write ``view`` to a CSV file (UTF-8); returns the number of data rows written."""
    rows = table_rows(view)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return max(0, len(rows) - 1)


def export_plot_png(plot: pg.GraphicsView, path: str | Path, scale: float = 2.0) -> QImage:
    """Render ``plot`` (axes, legend and all) at ``scale`` x its size, for print, to a PNG."""
    w, h = max(1, round(plot.width() * scale)), max(1, round(plot.height() * scale))
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(plot.backgroundBrush().color())
    painter = QPainter(img)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot.render(painter, QRectF(0, 0, w, h), plot.viewport().rect())
    finally:
        painter.end()
    path = Path(path)
    if path.suffix.lower() != ".png":  # the image format follows the file name
        path = path.with_name(path.name + ".png")
    if not img.save(str(path)):
        raise OSError(f"could not write {path}")
    return img


def _name(widget: QWidget) -> str:
    w: QWidget | None = widget
    while w is not None:
        title = w.windowTitle() if w.isWindow() else getattr(w, "title", "")
        if isinstance(title, str) and title:
            return "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")
        w = w.parentWidget()
    return "export"


def _ask_path(parent: QWidget, caption: str, suggested: str, filt: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, caption, suggested, filt)
    return path or None


def table_menu(view: QAbstractItemView) -> QMenu:
    """The context menu of a table without one of its own."""
    menu = QMenu(view)
    act = menu.addAction(TABLE_ACTION)
    act.triggered.connect(lambda: _save_table(view))
    return menu


def _save_table(view: QAbstractItemView) -> None:
    path = _ask_path(view, "Export table to CSV", f"{_name(view)}.csv", "CSV files (*.csv)")
    if path:
        try:
            export_table_csv(view, path)
        except OSError as exc:
            log.warning("table export to %s failed: %s", path, exc)


def install_plot_export(plot: pg.GraphicsView) -> QAction:
    """Add "Export plot to PNG…" to the plot's own menu (once per plot)."""
    existing = getattr(plot, _INSTALLED, None)
    if isinstance(existing, QAction):
        return existing
    act = QAction(PLOT_ACTION, plot)

    def save() -> None:
        path = _ask_path(plot, "Export plot to PNG", f"{_name(plot)}.png", "PNG images (*.png)")
        if path:
            try:
                export_plot_png(plot, path)
            except OSError as exc:
                log.warning("plot export failed: %s", exc)

    act.triggered.connect(save)
    plot.scene().contextMenu.append(act)
    setattr(plot, _INSTALLED, act)
    return act


class ExportMenus(QObject):
    """Application-wide event filter giving every table and plot its export entry."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        t = event.type()
        if t == QEvent.Type.ContextMenu:
            view = watched.parent() if isinstance(watched, QWidget) else None
            if (isinstance(view, QAbstractItemView) and watched is view.viewport()
                    and view.contextMenuPolicy() == Qt.ContextMenuPolicy.DefaultContextMenu
                    and isinstance(event, QContextMenuEvent)):
                table_menu(view).popup(event.globalPos())
                return True
        elif t == QEvent.Type.Show and isinstance(watched, pg.GraphicsView):
            install_plot_export(watched)
        return False


_filter: ExportMenus | None = None


def install_exports(app: QApplication | None = None) -> ExportMenus:
    """Install the filter on the application (idempotent). Call once at start-up."""
    global _filter
    app = app or QApplication.instance()  # type: ignore[assignment]
    if _filter is None:
        _filter = ExportMenus()
        if app is not None:
            app.installEventFilter(_filter)
    return _filter


def context_menu_at(view: QAbstractItemView, pos: QPoint | None = None) -> QMenu:
    """The menu a right click on ``view`` would show (tests and keyboard users: Shift+F10)."""
    return table_menu(view)

"""The command palette (Ctrl+K): type part of a name, Enter opens it.

Finds any node, GPU, job, tenant, rack, alert or panel (`console.search_index`, built from the
newest frame when the palette opens) and opens it as a click would: a drill-down through the
navigator, an alert selected in the Alerts panel, a panel given the keyboard focus. Up and
Down move through the results, Enter opens the highlighted one, Escape closes. Lives in the
GUI thread; the index is built once per opening, the search runs on every keystroke.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog, QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget,
)

from console.search_index import Entry, SearchIndex
from widgets import theme as theme_mod

#: Results shown at most: the list must stay readable, and a more specific word narrows it.
LIMIT = 40
KIND_WORDS = {"panel": "Panel", "node": "Node", "gpu": "GPU", "job": "Job", "tenant": "Tenant",
              "rack": "Rack", "alert": "Alert"}
HINT = ("Type part of a node, GPU, job, tenant, rack, alert or panel name; "
        "\u2191 \u2193 choose, Enter opens, Esc closes")


class CommandPalette(QDialog):
    """A frameless box over the main window: a line to type in and the ranked results.

    `chosen(entry)` when the operator opens a result; the owner decides what opening means.
    """

    chosen = Signal(object)

    def __init__(self, index_factory: Callable[[], SearchIndex], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.FramelessWindowHint | Qt.WindowType.Dialog)
        self.setObjectName("CommandPaletteDialog")
        self.setWindowTitle("Go to")
        self._index_factory = index_factory
        self.index = SearchIndex(())
        frame = QFrame(self)
        frame.setObjectName("CommandPalette")
        self.edit = QLineEdit(frame)
        self.edit.setObjectName("PaletteQuery")
        self.edit.setPlaceholderText("Go to a node, GPU, job, tenant, rack, alert or panel\u2026")
        self.results = QListWidget(frame)
        self.results.setObjectName("PaletteResults")
        self.results.setUniformItemSizes(True)
        self.results.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the typing line keeps the focus
        self.hint = QLabel(HINT, frame)
        self.hint.setObjectName("KpiCaption")
        self.hint.setWordWrap(True)
        lay = QVBoxLayout(frame)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(6)
        lay.addWidget(self.edit)
        lay.addWidget(self.results, 1)
        lay.addWidget(self.hint)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(frame)
        self.edit.textChanged.connect(self.search)
        self.edit.installEventFilter(self)
        self.results.itemActivated.connect(lambda _item: self.open_current())
        self.results.itemClicked.connect(lambda _item: self.open_current())

    def popup(self) -> None:
        """Rebuild the index from the newest data and show the palette, empty, over its parent."""
        self.index = self._index_factory()
        self.edit.clear()
        self.search("")
        parent = self.parentWidget()
        th = theme_mod.current()
        width = th.px(760)
        height = th.px(520)
        if parent is not None:
            width = min(width, max(320, parent.width() - 40))
            height = min(height, max(200, parent.height() - 80))
            top_left = parent.mapToGlobal(parent.rect().topLeft())
            self.setGeometry(top_left.x() + (parent.width() - width) // 2,
                             top_left.y() + max(20, parent.height() // 8), width, height)
        else:
            self.resize(width, height)
        self.show()
        self.raise_()
        self.activateWindow()
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def search(self, text: str) -> list[Entry]:
        """Show the entries matching ``text``, best first, the first one highlighted."""
        found = self.index.search(text, LIMIT)
        self.results.clear()
        for entry in found:
            words = f"{KIND_WORDS.get(entry.kind, entry.kind)}  {entry.label}"
            item = QListWidgetItem(f"{words}    \u2014 {entry.detail}" if entry.detail else words)
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(entry.detail)
            self.results.addItem(item)
        if found:
            self.results.setCurrentRow(0)
            self.hint.setText(HINT)
        elif text.strip():
            self.hint.setText(f"Nothing matches \u201c{text.strip()}\u201d")
        else:
            self.hint.setText(HINT)
        return found

    def current_entry(self) -> Entry | None:
        item = self.results.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def open_current(self) -> Entry | None:
        """Open the highlighted result (what Enter does) and close the palette."""
        entry = self.current_entry()
        if entry is None:
            return None
        self.hide()
        self.chosen.emit(entry)
        return entry

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            rows = self.results.count()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp) and rows:
                step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 10,
                        Qt.Key.Key_PageUp: -10}[Qt.Key(key)]
                self.results.setCurrentRow(max(0, min(rows - 1, self.results.currentRow() + step)))
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.open_current()
                return True
            if key == Qt.Key.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(watched, event)

"""Keyboard first: the actions and menus that make every operation reachable without a mouse.

Installed on the main window by `install`: the command palette (Ctrl+K), back and forward
through drill-downs (Alt+Left, Alt+Right), the next and previous panel (F6, Shift+F6), filter
(Ctrl+F: the filter of the panel that has the focus, else the Alerts panel's), acknowledge
and silence the selected alert (Ctrl+Shift+A, Ctrl+Shift+S), the named layouts
(Ctrl+Alt+1..3, Ctrl+L for the next one) and the themes. Every action is in a menu as well, so
it can be found, and carries an application-wide shortcut that works with the menu bar hidden.
Enter on a table row opens it (the panels do that themselves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QApplication, QWidget

from console.search_index import Entry, SearchIndex, build_index
from widgets import layouts as layouts_mod
from widgets import theme as theme_mod
from widgets.command_palette import CommandPalette

if TYPE_CHECKING:  # the window these actions are installed on; typing only
    from widgets.main_window import MainWindow

THEME_TITLES = {"dark": "&Dark", "light": "&Light", "high-contrast": "&High contrast"}


def focus_target(panel: QWidget) -> QWidget:
    """The widget of a panel that should take the keyboard focus: its first table or list
    that accepts focus (Up, Down and Enter then work at once), else the panel itself."""
    for view in panel.findChildren(QAbstractItemView):
        if view.focusPolicy() != Qt.FocusPolicy.NoFocus and view.isVisibleTo(panel):
            return view
    if panel.focusPolicy() == Qt.FocusPolicy.NoFocus:
        panel.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a panel without a table (the map)
    return panel


def _action(window: MainWindow, text: str, shortcut: str | None, slot: Callable[..., object],
            checkable: bool = False) -> QAction:
    a = QAction(text, window)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    a.setCheckable(checkable)
    a.triggered.connect(slot)
    window.addAction(a)  # works with the menu bar hidden
    return a


class Keyboard:
    """The keyboard actions of one main window (see the module docstring)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.palette = CommandPalette(self.build_index, window)
        self.palette.chosen.connect(self.open_entry)
        self.actions: dict[str, QAction] = {}

    # -- menus ----------------------------------------------------------------------------------

    def install(self) -> None:
        w = self.window
        go = w.menu_bar.addMenu("&Go")
        add = self._add
        add(go, "palette", "&Go to\u2026 (nodes, GPUs, jobs, tenants, racks, alerts, panels)",
            "Ctrl+K", self.palette.popup)
        go.addSeparator()
        add(go, "back", "&Back", "Alt+Left", self.back)
        add(go, "forward", "&Forward", "Alt+Right", self.forward)
        go.addSeparator()
        add(go, "next_panel", "&Next panel", "F6", lambda: self.cycle_panel(1))
        add(go, "previous_panel", "&Previous panel", "Shift+F6", lambda: self.cycle_panel(-1))
        add(go, "filter", "&Filter\u2026", "Ctrl+F", self.focus_filter)
        alerts = w.menu_bar.addMenu("&Alerts")
        add(alerts, "acknowledge", "&Acknowledge the selected alert\u2026", "Ctrl+Shift+A",
            lambda: self.alert_action("acknowledge"))
        add(alerts, "silence", "&Silence the selected alert\u2026", "Ctrl+Shift+S",
            lambda: self.alert_action("silence"))
        view = w.view_menu
        view.addSeparator()
        layout_menu = view.addMenu("La&yout")
        group = QActionGroup(w)
        for spec in layouts_mod.LAYOUTS:
            a = _action(w, spec.name, spec.shortcut,
                        lambda _=False, n=spec.name: w.set_named_layout(n), checkable=True)
            a.setToolTip(spec.description)
            a.setChecked(spec.name == w.layout_name)
            group.addAction(a)
            layout_menu.addAction(a)
            w.layout_actions[spec.name] = a
        layout_menu.addSeparator()
        add(layout_menu, "next_layout", "&Next layout", "Ctrl+L", w.next_layout)
        theme_menu = view.addMenu("&Theme")
        themes = QActionGroup(w)
        current = theme_mod.current()
        for name in theme_mod.THEMES:
            a = _action(w, THEME_TITLES.get(name, name), None,
                        lambda _=False, n=name: w.set_theme(n), checkable=True)
            a.setChecked(current.name == name)
            themes.addAction(a)
            theme_menu.addAction(a)
            self.actions[f"theme:{name}"] = a
        theme_menu.addSeparator()
        cb = add(theme_menu, "colour_blind", "&Colour-blind-safe health colours", None,
                 lambda on: w.set_theme(theme_mod.current().name, colour_blind=bool(on)),
                 checkable=True)
        cb.setChecked(current.colour_blind)
        self._update_history_actions()
        w.navigation.moved.connect(self._update_history_actions)

    def _add(self, menu, key: str, text: str, shortcut: str | None, slot: Callable[..., object],
             checkable: bool = False) -> QAction:
        a = _action(self.window, text, shortcut, slot, checkable)
        menu.addAction(a)
        self.actions[key] = a
        return a

    def sync_theme(self) -> None:
        """Tick the theme now in use (after a switch from the menu or the config)."""
        th = theme_mod.current()
        for name in theme_mod.THEMES:
            a = self.actions.get(f"theme:{name}")
            if a is not None:
                a.setChecked(th.name == name)
        if "colour_blind" in self.actions:
            self.actions["colour_blind"].setChecked(th.colour_blind)

    # -- the palette ----------------------------------------------------------------------------

    def build_index(self) -> SearchIndex:
        w = self.window
        panels = [(k, d.windowTitle()) for k, d in w.docks.items() if k != "fleet" or not d.isHidden()]
        return build_index(w.frame, panels)

    def open_entry(self, entry: Entry) -> None:
        """Open what the palette found, as a click on it would."""
        w = self.window
        nav = w.context.navigator
        kind, key = entry.kind, entry.key
        if kind == "panel":
            w.focus_panel(str(key[0]))
        elif kind == "node":
            nav.node_requested.emit(str(key[0]))
        elif kind == "gpu":
            nav.gpu_requested.emit(str(key[0]), int(key[1]))
        elif kind == "job":
            nav.job_requested.emit(int(key[0]))
        elif kind == "tenant":
            nav.tenant_requested.emit(str(key[0]))
        elif kind == "rack":
            nav.rack_requested.emit(str(key[0]))
        elif kind == "alert":
            w.focus_panel("alerts")
            panel = w.panels.get("alerts")
            select = getattr(panel, "select_key", None)
            if callable(select) and not select(str(key[0])):
                w.statusBar().showMessage(f"{entry.label}: not in the alerts list now "
                                          "(resolved, or hidden by a filter)", 10_000)

    # -- actions --------------------------------------------------------------------------------

    def back(self) -> None:
        if not self.window.navigation.back():
            self.window.statusBar().showMessage("Nothing to go back to", 5_000)
        self._update_history_actions()

    def forward(self) -> None:
        if not self.window.navigation.forward():
            self.window.statusBar().showMessage("Nothing to go forward to", 5_000)
        self._update_history_actions()

    def _update_history_actions(self) -> None:
        h = self.window.navigation.history
        if "back" in self.actions:
            self.actions["back"].setEnabled(h.can_go_back())
            self.actions["forward"].setEnabled(h.can_go_forward())

    def focused_panel(self) -> str | None:
        """The key of the panel that holds the keyboard focus, if any."""
        focus = QApplication.focusWidget()
        for key, panel in self.window.panels.items():
            if focus is not None and (focus is panel or panel.isAncestorOf(focus)):
                return key
        return None

    def cycle_panel(self, step: int) -> str | None:
        """Give the focus to the next visible panel (F6) or the previous one (Shift+F6)."""
        w = self.window
        keys = [k for k, d in w.docks.items() if not d.isHidden()]
        if not keys:
            return None
        now = self.focused_panel()
        i = keys.index(now) if now in keys else (-1 if step > 0 else 0)
        key = keys[(i + step) % len(keys)]
        w.focus_panel(key)
        w.statusBar().showMessage(f"Panel: {w.docks[key].windowTitle()}", 5_000)
        return key

    def focus_filter(self) -> bool:
        """Ctrl+F: the filter line of the focused panel, else the Alerts panel's."""
        w = self.window
        for key in (self.focused_panel(), "alerts", "jobs"):
            edit = getattr(w.panels.get(key or ""), "filter_edit", None)
            if edit is not None:
                w.focus_panel(str(key))
                edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
                edit.selectAll()
                return True
        return False

    def alert_action(self, action: str) -> object:
        """Acknowledge or silence the alert selected in the Alerts panel (with its usual
        confirmation); says why not when it cannot, and how to select one when none is."""
        w = self.window
        panel = w.panels.get("alerts")
        method = {"acknowledge": "acknowledge_selected", "silence": "silence_selected"}[action]
        if panel is None or not callable(getattr(panel, method, None)):
            return None
        if getattr(panel, "selected_row", lambda: None)() is None:
            w.focus_panel("alerts")
            w.statusBar().showMessage("Select an alert first: Up and Down in the Alerts list",
                                      10_000)
            return None
        refusal = getattr(panel, "refusal", lambda _a: None)(action)
        if refusal is not None:
            w.statusBar().showMessage(f"Cannot {action}: {refusal}", 10_000)
            return None
        return getattr(panel, method)()

"""Keyboard first: the command palette, back/forward through drill-downs, the shortcuts for
acknowledge, silence and filter, panel focus, and Enter opening a row."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from frames import make_test_frame
from widgets.main_window import MainWindow
from widgets.navigation import History, Place
from widgets.panel import PanelContext


def shown_window(qtbot, frame=None) -> MainWindow:
    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    win.setFixedSize(1920, 1080)
    win.show()
    qtbot.waitUntil(win.isVisible)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    win.show_frame(frame or make_test_frame())
    win.render_all()
    return win


def press(qtbot, win: MainWindow, key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press as the operator makes it in the main window: to whatever has the focus
    there, through the application's shortcut map."""
    if QApplication.activeWindow() is not win:
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    target = QApplication.focusWidget() or win
    qtbot.keyClick(target, key, modifiers)


# --- the palette -------------------------------------------------------------------------------


def test_ctrl_k_finds_a_node_by_part_of_its_name_and_enter_opens_its_drilldown(qtbot):
    win = shown_window(qtbot)
    press(qtbot, win, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    palette = win.keyboard.palette
    qtbot.waitUntil(palette.isVisible)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is palette.edit)  # type at once
    qtbot.keyClicks(palette.edit, "0003")
    first = palette.current_entry()
    assert (first.kind, first.key) == ("node", ("n0003",))
    # its GPUs come after it, in order; the rack and jobs do not match
    kinds = [palette.results.item(i).data(Qt.ItemDataRole.UserRole).kind
             for i in range(palette.results.count())]
    assert kinds[0] == "node" and kinds[1:9] == ["gpu"] * 8
    qtbot.keyClick(palette.edit, Qt.Key.Key_Return)
    assert not palette.isVisible()
    node = win._drilldowns["node:n0003"]
    assert type(node).__name__ == "NodeDrilldownWindow" and node.isVisible()
    node.close()


def test_the_palette_moves_with_the_arrows_and_escape_closes_it(qtbot):
    win = shown_window(qtbot)
    palette = win.keyboard.palette
    palette.popup()
    qtbot.keyClicks(palette.edit, "n0001 gpu")
    assert palette.current_entry().key == ("n0001", 0)
    qtbot.keyClick(palette.edit, Qt.Key.Key_Down)
    qtbot.keyClick(palette.edit, Qt.Key.Key_Down)
    assert palette.current_entry().key == ("n0001", 2)
    qtbot.keyClick(palette.edit, Qt.Key.Key_Up)
    assert palette.current_entry().key == ("n0001", 1)
    qtbot.keyClick(palette.edit, Qt.Key.Key_Escape)
    assert not palette.isVisible()
    assert win._drilldowns == {}
    palette.popup()
    assert palette.edit.text() == "" and palette.results.count() == 0  # opens empty
    qtbot.keyClicks(palette.edit, "nothing-like-this")
    assert palette.results.count() == 0
    assert palette.hint.text() == "Nothing matches \u201cnothing-like-this\u201d"


def test_the_palette_opens_a_job_a_tenant_an_alert_and_a_panel(qtbot):
    win = shown_window(qtbot)
    palette = win.keyboard.palette

    def open_first(query: str):
        palette.popup()
        qtbot.keyClicks(palette.edit, query)
        return palette.open_current()

    assert open_first("llama-pre").key == (101,)
    assert "job:101" in win._drilldowns
    assert open_first("cuhk vis").key == ("cuhk",)  # the display name "CUHK Vision"
    assert win._drilldowns["cuhk"].isVisible()
    entry = open_first("xid")
    assert (entry.kind, entry.key) == ("alert", ("am:f-xid",))
    assert win.panels["alerts"].selected_row().key == "am:f-xid"
    assert open_first("jobs").key == ("jobs",)
    assert win.panels["jobs"].isAncestorOf(QApplication.focusWidget())
    for w in list(win._drilldowns.values()):
        w.close()


def test_presentation_mode_has_no_palette(qtbot):
    win = MainWindow(PanelContext(), persist=False, presentation=True)
    qtbot.addWidget(win)
    assert win.keyboard is None  # it would name nodes, jobs and tenants in public
    assert "Ctrl+K" not in {a.shortcut().toString() for a in win.actions()}


# --- back and forward --------------------------------------------------------------------------


def test_history_drops_what_was_ahead_when_a_new_place_is_visited():
    h = History(limit=3)
    a, b, c, d = (Place("node", (n,), None) for n in "abcd")
    assert h.back() is None and h.current is None
    h.push(a)
    h.push(a)  # the same place twice is one step
    h.push(b)
    h.push(c)
    assert h.places == [a, b, c]
    assert h.back() == b and h.back() == a and h.back() is None
    assert h.forward() == b
    h.push(d)
    assert h.places == [a, b, d] and not h.can_go_forward()
    h.push(a)  # over the limit: the oldest falls off
    assert h.places == [b, d, a] and h.current == a


def test_alt_left_and_alt_right_walk_through_the_drilldowns(qtbot):
    win = shown_window(qtbot)
    nav = win.context.navigator
    back, forward = win.keyboard.actions["back"], win.keyboard.actions["forward"]
    assert not back.isEnabled() and not forward.isEnabled()
    nav.node_requested.emit("n0002")
    nav.job_requested.emit(102)
    nav.tenant_requested.emit("acme")
    assert back.isEnabled() and not forward.isEnabled()
    win._drilldowns["node:n0002"].close()  # a closed window is opened again by Back
    qtbot.waitUntil(lambda: "node:n0002" not in win._drilldowns)

    press(qtbot, win, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert win.statusBar().currentMessage() == "Back to job 102"
    assert win.panels["jobs"].selected_job_id() == 102
    assert win.panels["heatmap"].subject.job_id == 102  # the map outlines the job again
    press(qtbot, win, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert win.statusBar().currentMessage() == "Back to node n0002"
    assert win._drilldowns["node:n0002"].isVisible()
    assert not back.isEnabled() and forward.isEnabled()
    press(qtbot, win, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)  # Back is disabled
    assert win.statusBar().currentMessage() == "Back to node n0002"
    assert win.keyboard.back() is None
    assert win.statusBar().currentMessage() == "Nothing to go back to"
    press(qtbot, win, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert win.statusBar().currentMessage() == "Forward to job 102"
    # going back and forward records nothing new
    assert [p.args[0] for p in win.navigation.history.places] == ["n0002", 102, "acme"]
    for w in list(win._drilldowns.values()):
        w.close()


# --- shortcuts ---------------------------------------------------------------------------------


def test_ctrl_f_goes_to_the_filter_of_the_focused_panel_else_the_alerts(qtbot):
    win = shown_window(qtbot)
    win.focus_panel("jobs")
    assert QApplication.focusWidget() is win.panels["jobs"].table  # tables take the focus
    press(qtbot, win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is win.panels["jobs"].filter_edit
    win.focus_panel("heatmap")  # no filter there: the alerts' filter
    press(qtbot, win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is win.panels["alerts"].filter_edit


def test_acknowledge_and_silence_shortcuts_act_on_the_selected_alert(qtbot, tmp_path):
    from types import SimpleNamespace

    from console.actions import Actions
    from console.journal import Journal

    read_only = shown_window(qtbot)
    assert read_only.panels["alerts"].select_key("am:f-xid")
    press(qtbot, read_only, Qt.Key.Key_A,
          Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert read_only.statusBar().currentMessage() == (
        "Cannot acknowledge: actions are not available in this mode (read-only)")
    read_only.close()

    client = SimpleNamespace(create_silence=lambda *a: "new", expire_silence=lambda *a: None)
    source = SimpleNamespace(name="alertmanager", kind="alerts", interval_s=10.0, client=client)
    actions = Actions([source], Journal(tmp_path / "journal.jsonl"), operator="alice")
    win = MainWindow(PanelContext(actions=actions, operator="alice"), persist=False)
    qtbot.addWidget(win)
    win.show()
    win.show_frame(make_test_frame())
    win.render_all()
    alerts = win.panels["alerts"]
    asked: list[str] = []
    alerts.ask_ack = lambda row: asked.append(f"ack {row.name}")  # answers "cancel"
    alerts.exec_silence_dialog = lambda dialog: asked.append("silence") and False
    press(qtbot, win, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert asked == []  # nothing selected: it says how to select one
    assert win.statusBar().currentMessage() == "Select an alert first: Up and Down in the Alerts list"
    assert win.panels["alerts"].isAncestorOf(QApplication.focusWidget())
    assert alerts.select_key("am:f-xid")
    press(qtbot, win, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert asked == ["ack GpuXidError"]
    press(qtbot, win, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert asked == ["ack GpuXidError", "silence"]
    actions.close()


def test_f6_cycles_the_focus_through_the_panels_and_enter_opens_the_row(qtbot):
    win = shown_window(qtbot)
    visible = [k for k, d in win.docks.items() if not d.isHidden()]
    win.focus_panel(visible[-1])
    seen = []
    for _ in visible:
        press(qtbot, win, Qt.Key.Key_F6)
        seen.append(win.keyboard.focused_panel())
    assert seen == visible
    assert win.statusBar().currentMessage() == f"Panel: {win.docks[visible[-1]].windowTitle()}"
    press(qtbot, win, Qt.Key.Key_F6, Qt.KeyboardModifier.ShiftModifier)
    assert win.keyboard.focused_panel() == visible[-2]

    win.focus_panel("alerts")
    alerts = win.panels["alerts"]
    assert QApplication.focusWidget() is alerts.tree
    assert alerts.select_key("am:f-xid")
    press(qtbot, win, Qt.Key.Key_Return)  # the most specific place: GPU 2 of n0001
    node = win._drilldowns["node:n0001"]
    assert node.selected_gpu == 2
    node.close()

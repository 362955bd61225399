"""Named dock layouts (switched, saved and restored per screen) and tables whose every-minute
columns are on screen without horizontal scrolling at 1920x1080, with the simulated data."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication

from console.config import demo_settings
from console.engine import Engine
from widgets import layouts
from widgets.main_window import MainWindow
from widgets.panel import PanelContext


@pytest.fixture(scope="module")
def sim_frame():
    """The simulator's first full frame: 384 nodes, its real tenant names, its queue."""
    with Engine(demo_settings(seed=7)) as engine:
        return engine.wait_ready(timeout=60)


def window(qtbot, settings=None, frame=None) -> MainWindow:
    win = MainWindow(PanelContext(), settings=settings, persist=settings is not None)
    qtbot.addWidget(win)
    win.setFixedSize(1920, 1080)
    win.show()
    QApplication.sendPostedEvents()
    if frame is not None:
        win.show_frame(frame)
        win.render_all()
        QApplication.sendPostedEvents()
    return win


def area(win: MainWindow, key: str) -> int:
    dock = win.docks[key]
    return dock.width() * dock.height() if dock.isVisible() else 0


def test_every_named_layout_places_every_dock_and_is_in_the_menu(qtbot):
    win = window(qtbot)
    assert list(win.layout_actions) == ["NOC wall", "triage", "capacity"]
    assert [a.shortcut().toString() for a in win.layout_actions.values()] == [
        "Ctrl+Alt+1", "Ctrl+Alt+2", "Ctrl+Alt+3"]
    for name in win.layout_actions:
        win.set_named_layout(name)
        assert win.layout_actions[name].isChecked()
        assert win.statusBar().currentMessage() == f"Layout: {name}"
        assert all(not d.isFloating() for d in win.docks.values())
        shown = {k for k, d in win.docks.items() if d.isVisible()}
        assert {"kpi", "heatmap", "alerts"} <= shown and "fleet" not in shown
        # every other dock is on screen or a tab behind one that is
        for key, dock in win.docks.items():
            if key != "fleet" and not dock.isVisible():
                assert any(t.isVisible() for t in win.tabifiedDockWidgets(dock)), (name, key)


def test_triage_gives_the_alerts_panel_the_room_for_incident_work(qtbot, sim_frame):
    win = window(qtbot, frame=sim_frame)
    wall = area(win, "alerts")
    assert win.panels["alerts"].split_mode == "list"  # a third of the height: the list alone
    win.keyboard.actions["next_layout"].trigger()  # Ctrl+L: NOC wall -> triage
    QApplication.sendPostedEvents()
    assert win.layout_name == "triage"
    alerts = win.docks["alerts"]
    assert area(win, "alerts") > 3 * wall
    assert alerts.height() > 0.75 * win.height() and alerts.width() > 0.6 * win.width()
    panel = win.panels["alerts"]
    assert panel.split_mode == "side"  # the details beside the list, both full height
    rows_tall = panel.tree.viewport().height() // max(1, panel.tree.sizeHintForRow(0) or 20)
    assert rows_tall >= 30


def test_the_layout_is_remembered_per_screen(qtbot, qsettings):
    win = window(qtbot, qsettings)
    win.set_named_layout("capacity")
    win.close()
    key = layouts.screen_key(win)
    assert qsettings.value(f"window/layouts/{key}/name") == "capacity"

    again = window(qtbot, qsettings)
    assert again.layout_name == "capacity" and again.layout_actions["capacity"].isChecked()
    assert again.docks["capacity"].isVisible() and again.docks["tenants"].isVisible()
    again.close()

    # another screen (another name or size) has its own entry: the default there
    qsettings.setValue(f"window/layouts/{key}/name", None)
    qsettings.remove(f"window/layouts/{key}")
    qsettings.setValue("window/layouts/HDMI-2@3840x2160/name", "triage")
    third = window(qtbot, qsettings)
    assert third.layout_name == layouts.DEFAULT


def test_an_unknown_layout_name_says_which_exist():
    with pytest.raises(ValueError, match="'NOC wall', 'triage', 'capacity'"):
        layouts.layout_named("wall of doom")
    assert layouts.layout_named("Triage").name == "triage"


def _section_rect(view, col: int) -> QRect:
    header = view.horizontalHeader() if hasattr(view, "horizontalHeader") else view.header()
    return QRect(header.sectionViewportPosition(col), 0, header.sectionSize(col), header.height())


@pytest.mark.parametrize("layout", ["NOC wall", "triage", "capacity"])
def test_every_minute_columns_fit_without_scrolling_at_1920x1080(qtbot, sim_frame, layout):
    from widgets.alerts_model import COL_AGE, COL_ALERT, COL_SEVERITY, COL_STATE, COL_WHERE
    from widgets.jobs_model import COL_GPUS, COL_ID, COL_NODES, COL_REASON, COL_STATE as J_STATE
    from widgets.jobs_model import COL_TENANT, COL_TIME
    from widgets.tenants_panel import COL_EFF, COL_GPUS as T_GPUS, COL_NAME

    win = window(qtbot, frame=sim_frame)
    win.set_named_layout(layout)
    QApplication.sendPostedEvents()
    tables = {
        "jobs": (win.panels["jobs"].table,
                 [COL_ID, COL_TENANT, J_STATE, COL_GPUS, COL_TIME, COL_NODES, COL_REASON]),
        "tenants": (win.panels["tenants"].table, [COL_NAME, T_GPUS, COL_EFF]),
        "alerts": (win.panels["alerts"].tree, [COL_SEVERITY, COL_ALERT, COL_WHERE, COL_STATE, COL_AGE]),
    }
    for key, (view, columns) in tables.items():
        win.focus_panel(key)  # a tab behind another comes to the front
        QApplication.sendPostedEvents()
        assert view.isVisible(), key
        viewport = view.viewport().rect()
        assert viewport.width() > 300, key
        for col in columns:
            rect = _section_rect(view, col)
            assert viewport.contains(rect.topLeft()) and rect.right() <= viewport.right(), (
                layout, key, view.model().headerData(col, Qt.Orientation.Horizontal))
        # numbers are never narrowed below what they need: only names elide
        sizer = win.panels[key].column_sizer if key != "jobs" else view.column_sizer
        header = view.horizontalHeader() if hasattr(view, "horizontalHeader") else view.header()
        for col in columns:
            if col not in sizer.free_text:
                assert header.sectionSize(col) == sizer.width_for(col, 1.0, 1.0), (key, col)

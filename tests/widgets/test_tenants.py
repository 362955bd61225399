"""Tenants panel: one row per tenant of the frame, exact figures, drill-down requests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt

from frames import make_test_frame
from widgets.panel import PanelContext
from widgets.tenants_panel import (
    COL_EFF, COL_GPUS, COL_NAME, COL_PF, HEADERS, TenantsPanel, TenantsTableModel,
)


def row_texts(m: TenantsTableModel, row: int) -> list[str]:
    return [m.data(m.index(row, c)) for c in range(len(HEADERS))]


def test_qtmodeltester(qtmodeltester) -> None:
    m = TenantsTableModel()
    m.set_tenants(make_test_frame().tenants)
    qtmodeltester.check(m)


def test_rows_are_the_frames_tenants() -> None:
    f = make_test_frame()
    m = TenantsTableModel()
    m.set_tenants(f.tenants)
    assert m.rowCount() == len(f.tenants) == 3
    assert m.visible_accounts() == ["hku", "cuhk", "acme"]  # GPUs in use, most first
    # money columns wait for the first accounting read (tests/widgets/test_tenants_money.py)
    assert row_texts(m, 0) == ["HKU AI Lab", "university", "16", "50.0 %", "9.50 PF", "60 %",
                               "1", "3", "42"] + ["no data"] * 5
    assert row_texts(m, 2)[COL_EFF] == "no data"  # NaN efficiency is not 0


def test_sort_by_columns() -> None:
    m = TenantsTableModel()
    m.set_tenants(make_test_frame().tenants)
    m.sort(COL_NAME, Qt.SortOrder.AscendingOrder)
    assert m.visible_accounts() == ["acme", "cuhk", "hku"]
    m.sort(COL_PF, Qt.SortOrder.AscendingOrder)
    assert m.visible_accounts() == ["acme", "cuhk", "hku"]
    m.sort(COL_EFF, Qt.SortOrder.DescendingOrder)
    assert m.visible_accounts() == ["hku", "cuhk", "acme"]


def test_update_same_tenants_is_data_changed(qtbot) -> None:
    f = make_test_frame()
    m = TenantsTableModel()
    m.set_tenants(f.tenants)
    resets: list[int] = []
    m.modelReset.connect(lambda: resets.append(1))
    t2 = replace(f.tenants, delivered_pf=np.array([9.9, 2.0, 0.5], np.float32))
    with qtbot.waitSignal(m.dataChanged):
        m.set_tenants(t2)
    assert resets == [] and m.data(m.index(0, COL_PF)) == "9.90 PF"


def test_frozen_order_while_pointer_over(qtbot) -> None:
    f = make_test_frame()
    m = TenantsTableModel()
    m.set_tenants(f.tenants)
    m.set_order_frozen(True)
    m.set_tenants(replace(f.tenants, gpus_in_use=np.array([1, 2, 30], np.int32)))
    assert m.visible_accounts() == ["hku", "cuhk", "acme"]
    m.set_order_frozen(False)
    assert m.visible_accounts() == ["acme", "cuhk", "hku"]
    assert m.data(m.index(0, COL_GPUS)) == "30"


def test_panel_double_click_and_enter_request_drilldown(qtbot) -> None:
    ctx = PanelContext()
    panel = TenantsPanel(ctx)
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    assert panel.model.rowCount() == 3
    with qtbot.waitSignal(ctx.navigator.tenant_requested) as blocker:
        panel.table.doubleClicked.emit(panel.model.index(1, 3))
    assert blocker.args == ["cuhk"]
    panel.table.setCurrentIndex(panel.model.index(2, 0))
    with qtbot.waitSignal(ctx.navigator.tenant_requested) as blocker:
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert blocker.args == ["acme"]

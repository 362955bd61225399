"""The job queue: exact sort and filter results on a known table, calm updates, drill-downs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication

from console.model import JobState
from frames import NOW, big_job_table, job_table, make_test_frame
from widgets.jobs_model import (
    COL_GPUS, COL_ID, COL_NAME, COL_NODES, COL_REASON, COL_STATE, COL_TENANT, COL_TIME,
    COL_USER, HEADERS, JobsTableModel,
)
from widgets.jobs_panel import JobsPanel
from widgets.panel import PanelContext

ASC, DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder


def model_with(jobs=None, now: float = NOW) -> JobsTableModel:
    m = JobsTableModel()
    f = make_test_frame()
    m.set_jobs(jobs if jobs is not None else f.jobs, now, f.tenants)
    return m


def cells(m: JobsTableModel, col: int) -> list[str]:
    return [m.data(m.index(r, col)) for r in range(m.rowCount())]


def test_qtmodeltester_small(qtmodeltester) -> None:
    m = model_with()
    qtmodeltester.check(m)
    m.set_filter_text("bob")
    qtmodeltester.check(m)


def test_qtmodeltester_big(qtmodeltester) -> None:
    m = model_with(big_job_table(2_000))
    qtmodeltester.check(m, force_py=True)


def test_default_sort_is_longest_wait_or_run_first() -> None:
    m = model_with()
    assert m.rowCount() == 10
    assert m.sort_column == COL_TIME and m.sort_descending
    # elapsed: pending = now - submit, running = now - start
    assert list(m.visible_job_ids()) == [108, 105, 106, 101, 102, 111, 112, 103, 107, 104]


def test_cells_of_one_job() -> None:
    m = model_with()
    row = m.row_of_job(101)
    assert [m.data(m.index(row, c)) for c in range(len(HEADERS))] == [
        "101", "llama-pretrain", "alice", "HKU AI Lab", "training", "running", "16",
        "2 \u00b7 n[0001-0002]", "1 h 00 min", ""]
    row = m.row_of_job(106)
    assert m.data(m.index(row, COL_REASON)) == "tenant's GPU quota reached"
    assert m.data(m.index(row, COL_TIME)) == "1 h 06 min"
    assert "AssocGrpGRES" in m.data(m.index(row, COL_REASON), Qt.ItemDataRole.ToolTipRole)
    assert m.data(m.index(m.row_of_job(112), COL_ID)) == "110_1"


@pytest.mark.parametrize("col, order, expected", [
    (COL_ID, ASC, [101, 102, 103, 104, 105, 106, 107, 108, 111, 112]),
    (COL_ID, DESC, [112, 111, 108, 107, 106, 105, 104, 103, 102, 101]),
    (COL_GPUS, DESC, [106, 105, 101, 107, 102, 103, 108, 104, 111, 112]),
    (COL_USER, ASC, [101, 105, 108, 102, 111, 112, 103, 104, 106, 107]),
    (COL_TENANT, ASC, [104, 106, 102, 103, 111, 112, 101, 105, 107, 108]),
    (COL_STATE, ASC, [105, 106, 107, 108, 111, 112, 101, 102, 103, 104]),
    (COL_NAME, ASC, [102, 107, 106, 105, 101, 111, 112, 104, 108, 103]),
    (COL_REASON, ASC, [101, 102, 103, 104, 108, 106, 105, 107, 111, 112]),
])
def test_sort_exact(col: int, order: Qt.SortOrder, expected: list[int]) -> None:
    m = model_with()
    m.sort(col, order)
    assert list(m.visible_job_ids()) == expected


@pytest.mark.parametrize("text, expected", [
    ("alice", {101, 105, 108}),
    ("acme", {104, 106}),  # account
    ("robotics", {104, 106}),  # tenant display name
    ("INFERENCE", {102, 107}),  # partition, case-insensitive
    ("quota", {106}),  # reason words
    ("dependency", {107}),  # raw reason
    ("110_", {111, 112}),  # array id
    ("10", {101, 102, 103, 104, 105, 106, 107, 108, 111, 112}),
    ("scan", {111, 112}),
    ("nothing-like-this", set()),
])
def test_filter_text_exact(text: str, expected: set[int]) -> None:
    m = model_with()
    m.set_filter_text(text)
    assert set(m.visible_job_ids().tolist()) == expected


def test_state_and_tenant_filters_combine() -> None:
    m = model_with()
    m.set_state_filter("running")
    assert set(m.visible_job_ids().tolist()) == {101, 102, 103, 104}
    m.set_state_filter("pending")
    assert set(m.visible_job_ids().tolist()) == {105, 106, 107, 108, 111, 112}
    m.set_tenant_filter("hku")
    assert set(m.visible_job_ids().tolist()) == {105, 107, 108}
    m.set_filter_text("alice")
    assert set(m.visible_job_ids().tolist()) == {105, 108}
    m.set_state_filter("all")
    m.set_filter_text("")
    m.set_tenant_filter(None)
    assert m.rowCount() == 10
    with pytest.raises(ValueError):
        m.set_state_filter("done")


def test_same_rows_emit_data_changed_not_reset(qtbot) -> None:
    m = model_with()
    resets: list[int] = []
    m.modelReset.connect(lambda: resets.append(1))
    before = cells(m, COL_TIME)
    with qtbot.waitSignal(m.dataChanged) as blocker:
        m.set_jobs(make_test_frame().jobs, NOW + 30, make_test_frame().tenants)
    assert resets == []
    after = cells(m, COL_TIME)
    changed = [r for r in range(10) if before[r] != after[r]]
    top, bottom = blocker.args[0], blocker.args[1]
    # exactly the span of rows whose shown text changed, every column
    assert (top.row(), top.column(), bottom.row(), bottom.column()) == (
        changed[0], 0, changed[-1], len(HEADERS) - 1)
    assert m.data(m.index(m.row_of_job(104), COL_TIME)) == "1 min"  # 60 s + 30 s


def test_changed_rows_reset(qtbot) -> None:
    m = model_with()
    rows = [dict(job_id=1, state=JobState.PENDING, submit_time=NOW - 5, account="hku")]
    from console.model import JobTable
    with qtbot.waitSignal(m.modelReset):
        m.set_jobs(JobTable.build(rows, []), NOW, make_test_frame().tenants)
    assert m.rowCount() == 1 and cells(m, COL_TENANT) == ["HKU AI Lab"]


def test_frozen_order_keeps_rows_in_place_and_appends_new() -> None:
    m = model_with()
    m.sort(COL_GPUS, DESC)
    before = list(m.visible_job_ids())
    m.set_order_frozen(True)
    # job 104 grows to 128 GPUs and a new job 200 arrives: nothing moves, 200 goes last
    jt = job_table()
    gpus = jt.gpus.copy()
    gpus[3] = 128
    from dataclasses import replace
    jt2 = replace(jt, gpus=gpus)
    m.set_jobs(jt2, NOW, make_test_frame().tenants)
    assert list(m.visible_job_ids()) == before
    assert m.data(m.index(m.row_of_job(104), COL_GPUS)) == "128"
    m.set_order_frozen(False)
    assert list(m.visible_job_ids())[0] == 104


def test_fifty_thousand_rows_sort_and_filter() -> None:
    big = big_job_table(50_000)
    m = model_with(big)
    assert m.rowCount() == 50_000
    m.sort(COL_GPUS, ASC)
    g = big.gpus[[m.table_row(r) for r in range(0, 50_000, 997)]]
    assert np.all(np.diff(g) >= 0)
    m.set_state_filter("pending")
    assert m.rowCount() == int((big.state == int(JobState.PENDING)).sum())
    m.set_filter_text("user7")
    expected = (big.state == int(JobState.PENDING)) & (np.char.find(big.user, "user7") >= 0)
    assert set(m.visible_job_ids().tolist()) == set(big.job_id[expected].tolist())
    m.set_jobs(big, NOW + 5, make_test_frame().tenants)  # same rows: stays filtered
    assert m.rowCount() == int(expected.sum())


def test_panel_renders_and_filters(qtbot) -> None:
    panel = JobsPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    assert panel.model.rowCount() == 10
    assert panel.count_label.text() == "10 jobs"
    panel.set_state_filter("running")
    assert panel.model.rowCount() == 4 and panel.count_label.text() == "4 of 10 jobs"
    panel.filter_edit.setText("sweep")
    assert list(panel.model.visible_job_ids()) == [103]
    assert panel.header.age_label.text() == "updated just now"


def test_panel_double_click_opens_job_or_tenant(qtbot) -> None:
    ctx = PanelContext()
    panel = JobsPanel(ctx)
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    row = panel.model.row_of_job(102)
    with qtbot.waitSignal(ctx.navigator.job_requested) as blocker:
        panel.table.doubleClicked.emit(panel.model.index(row, COL_NAME))
    assert blocker.args == [102]
    with qtbot.waitSignal(ctx.navigator.tenant_requested) as blocker:
        panel.table.doubleClicked.emit(panel.model.index(row, COL_TENANT))
    assert blocker.args == ["cuhk"]


def test_panel_enter_key_activates(qtbot) -> None:
    ctx = PanelContext()
    panel = JobsPanel(ctx)
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    panel.table.setCurrentIndex(panel.model.index(panel.model.row_of_job(104), COL_NODES))
    with qtbot.waitSignal(ctx.navigator.job_requested) as blocker:
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert blocker.args == [104]


def test_panel_selection_survives_new_frames(qtbot) -> None:
    panel = JobsPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    panel.table.selectRow(panel.model.row_of_job(107))
    jt = job_table()
    from console.model import JobTable
    keep = np.array([i for i in range(len(jt)) if jt.job_id[i] != 108])
    smaller = JobTable.build(
        [dict(job_id=int(jt.job_id[i]), state=int(jt.state[i]), account=jt.accounts[jt.account[i]],
              submit_time=float(jt.submit_time[i]), start_time=float(jt.start_time[i]),
              gpus=int(jt.gpus[i])) for i in keep], [])
    panel.show_frame(make_test_frame(seq=2, jobs=smaller))
    panel.render_now()
    assert panel.model.rowCount() == 9
    assert panel.selected_job_id() == 107


def test_pointer_over_table_freezes_order(qtbot) -> None:
    panel = JobsPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    vp = panel.table.viewport()
    QApplication.sendEvent(vp, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    assert panel.model.order_frozen
    QApplication.sendEvent(vp, QEvent(QEvent.Type.Leave))
    assert not panel.model.order_frozen


def test_node_filter_uses_allocations() -> None:
    m = model_with()
    m.set_node_filter("n0003")
    assert set(m.visible_job_ids().tolist()) == {102, 103}
    m.set_node_filter("n0002")
    assert set(m.visible_job_ids().tolist()) == {101}  # hostlist "n[0001-0002]" resolved
    m.set_node_filter("n9999")
    assert m.rowCount() == 0
    m.set_node_filter(None)
    assert m.rowCount() == 10


def test_panel_select_job_and_node_for_the_navigator(qtbot) -> None:
    panel = JobsPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    panel.set_state_filter("running")
    assert panel.select_job(105)  # pending: the filter that hid it is cleared
    assert panel.selected_job_id() == 105 and panel.state_combo.currentData() == "all"
    assert not panel.select_job(999)
    panel.select_node("n0003")
    assert set(panel.model.visible_job_ids().tolist()) == {102, 103}
    assert panel.node_chip.isVisibleTo(panel) and panel.node_chip.text().startswith("on node n0003")
    assert panel.count_label.text() == "2 of 10 jobs"
    panel.node_chip.click()
    assert panel.model.rowCount() == 10 and not panel.node_chip.isVisibleTo(panel)


def test_state_sorts_in_queue_order_not_alphabetically() -> None:
    from console.model import JobTable

    states = [JobState.COMPLETED, JobState.RUNNING, JobState.CANCELLED, JobState.PENDING,
              JobState.FAILED, JobState.PENDING]
    jobs = JobTable.build([dict(job_id=200 + i, account="hku", partition="gpu", state=s, gpus=1)
                           for i, s in enumerate(states)], alloc=[])
    m = model_with(jobs)
    m.sort(COL_STATE, ASC)
    assert list(m.visible_job_ids()) == [203, 205, 201, 204, 202, 200]


def test_the_panel_opens_with_the_queue_first() -> None:
    panel = JobsPanel(PanelContext())
    assert panel.model.sort_column == COL_STATE and not panel.model.sort_descending


def test_an_unchanged_queue_costs_no_repaint_and_a_change_repaints_its_row(qtbot) -> None:
    from console.model import JobTable

    def table(state_of_201: JobState) -> JobTable:
        rows = [dict(job_id=200, account="hku", partition="gpu", state=JobState.RUNNING, gpus=8,
                     start_time=NOW - 7200, submit_time=NOW - 9000, reason="None"),
                dict(job_id=201, account="hku", partition="gpu", state=state_of_201, gpus=8,
                     start_time=NOW - 600 if state_of_201 == JobState.RUNNING else None,
                     submit_time=NOW - 3600, reason="Resources"),
                dict(job_id=202, account="hku", partition="gpu", state=JobState.PENDING, gpus=8,
                     submit_time=NOW - 1800, reason="Priority")]
        return JobTable.build(rows, alloc=[])

    m = JobsTableModel()
    m.sort(COL_ID, ASC)
    m.set_jobs(table(JobState.PENDING), NOW, make_test_frame().tenants)
    changes: list[tuple[int, int]] = []
    m.dataChanged.connect(lambda a, b: changes.append((a.row(), b.row())))
    m.set_jobs(table(JobState.PENDING), NOW + 5, make_test_frame().tenants)  # same minute shown
    assert changes == []
    m.set_jobs(table(JobState.RUNNING), NOW + 6, make_test_frame().tenants)
    assert changes == [(1, 1)]
    assert m.data(m.index(1, COL_STATE)) == "running"
    m.set_jobs(table(JobState.RUNNING), NOW + 66, make_test_frame().tenants)  # minutes tick over
    assert changes[-1] == (0, 2)

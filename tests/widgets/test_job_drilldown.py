"""Job drill-down: header in words, its GPUs and summary, filtered events, cancel through real
`Actions` on the simulator, disabled reasons, the vanished job, and main-window navigation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from console.actions import Actions
from console.journal import Journal
from console.model import JobState
from console.testing import engine_from_sim
from frames import NOW, job_table, make_test_frame
from widgets.drilldown_common import local_time
from widgets.job_drilldown import GPU_HEADERS, JobDrilldownWindow, job_gpu_summary
from widgets.main_window import MainWindow
from widgets.panel import PanelContext


def open_window(qtbot, job_id: int, context: PanelContext | None = None,
                frame=None) -> JobDrilldownWindow:
    w = JobDrilldownWindow(job_id, context or PanelContext())
    qtbot.addWidget(w)
    w.show_frame(frame if frame is not None else make_test_frame())
    w.render_now()
    return w


def test_running_job_header_in_words(qtbot) -> None:
    w = open_window(qtbot, 101)
    f = w.fields
    assert {k: f.text(k) for k in f.values} == {
        "job": "101", "name": "llama-pretrain", "user": "alice",
        "tenant": "HKU AI Lab (hku)", "partition": "training", "state": "RUNNING",
        "gpus": "16", "nodes": "2: n0001, n0002",
        "submit": local_time(NOW - 7200), "start": local_time(NOW - 3600),
        "end": local_time(NOW - 3600 + 86400),
        "time": "running 1 h 00 min (waited 1 h 00 min)", "reason": "\u2014",
    }
    assert w.windowTitle() == "Job 101 \u2014 llama-pretrain"


def test_pending_job_reason_and_wait_on_the_data_clock(qtbot) -> None:
    frame = make_test_frame()
    # data_now unset: the frame time is the clock; set it and the wait follows it
    w = open_window(qtbot, 106, frame=frame)
    assert w.fields.text("reason") == "tenant's GPU quota reached (quota: AssocGrpGRES)"
    assert w.fields.text("time") == "waiting 1 h 06 min"
    assert w.fields.text("nodes") == "8 (none allocated)"
    assert w.fields.text("start") == "not started"
    import dataclasses
    later = dataclasses.replace(frame, data_now=NOW + 3600)
    w.show_frame(later)
    w.render_now()
    assert w.fields.text("time") == "waiting 2 h 06 min"
    arr = open_window(qtbot, 112)
    assert arr.fields.text("job") == "112 (array 110_1)"
    assert arr.gpu_model.rowCount() == 0
    assert arr.summary_label.text() == "No GPUs allocated to it now."


def test_its_gpus_and_summary(qtbot) -> None:
    frame = make_test_frame()
    tensor = frame.gpu.tensor.copy()
    tensor[16:20] = [0.5, 0.5, 0.1, 0.5]  # job 102 on n0003 GPUs 0-3: GPU 2 straggles
    import dataclasses
    frame = dataclasses.replace(frame, gpu=dataclasses.replace(frame.gpu, tensor=tensor))
    w = open_window(qtbot, 102, frame=frame)
    assert w.gpu_model.headers == GPU_HEADERS
    assert w.gpu_model.rows == [
        ("n0003", str(i), "OK", "", "50 %", f"{t} %", "60 \u00b0C", "400 W", "1,900 MHz", "300 TFLOPS")
        for i, t in zip(range(4), (50, 50, 10, 50))]
    assert w.gpu_model.bold_row == 2
    s = job_gpu_summary(frame, np.arange(16, 20))
    assert s["straggler"] == 18 and s["straggling"] and s["tflops"] == 1200.0
    assert w.summary_label.text() == (
        "mean utilisation 50 % \u00b7 mean tensor activity 40 % \u00b7 delivering 1,200 TFLOPS"
        " \u00b7 STRAGGLER, in bold: n0003 GPU 2, tensor 10 %, utilisation 50 %")
    even = open_window(qtbot, 101)
    assert even.summary_label.text().endswith("no straggler: its GPUs all show the same activity")
    assert even.gpu_model.rows[2][2:3] == ("failed",)
    assert even.gpu_model.rows[2][3] == ""  # marked failed, with no raw evidence in this frame
    tensor[18] = 0.45  # close to the others: the lowest, but no straggler
    near = dataclasses.replace(frame, gpu=dataclasses.replace(frame.gpu, tensor=tensor))
    w.show_frame(near)
    w.render_now()
    assert w.gpu_model.bold_row == -1
    assert w.summary_label.text().endswith(
        "lowest: n0003 GPU 2, tensor 45 %, utilisation 50 % (within 20 % of the others: no straggler)")


def test_events_are_those_naming_the_job(qtbot) -> None:
    w = open_window(qtbot, 102)
    assert [(e.kind, e.title) for e in w.events] == [
        ("cause", "job 102 hung (all 4 GPUs stalled since 12:53, NCCL or checkpoint)"),
        ("anomaly", "job stall")]
    w101 = open_window(qtbot, 101)
    assert [(e.kind, e.title) for e in w101.events] == [
        ("cause", "node n0001 GPU 2 fell off the bus (XID 79): drain and reboot"),
        ("alert", "GpuXidError")]
    assert open_window(qtbot, 104).events == []


class CanAct:
    """Actions whose every capability is offered (nothing is called in these tests)."""

    def capabilities(self) -> dict[str, str | None]:
        return {"cancel_job": None, "drain_node": None, "resume_node": None}


def test_vanished_job_says_so_and_keeps_details_greyed(qtbot) -> None:
    w = open_window(qtbot, 104, PanelContext(actions=CanAct()))
    assert w.cancel_button.isEnabled()
    assert w.present and w.details.isEnabled()
    jt = job_table()
    keep = np.flatnonzero(jt.job_id != 104)
    rows = [dict(job_id=int(jt.job_id[i]), state=int(jt.state[i])) for i in keep]
    gone = make_test_frame(seq=2, jobs=type(jt).build(rows, alloc=[]))
    w.show_frame(gone)
    w.render_now()
    seen = time.strftime("%H:%M:%S", time.localtime(NOW))
    assert w.gone_label.text() == (f"job 104 is no longer in the scheduler's list \u2014 last "
                                   f"seen {seen}; the details below are from then")
    assert not w.details.isEnabled()
    assert w.fields.text("name") == "robot-sim"  # last known details stay
    assert not w.cancel_button.isEnabled()
    assert "no longer in the scheduler's list" in w.cancel_button.toolTip()
    never = open_window(qtbot, 999, frame=gone)
    assert never.gone_label.text().startswith("job 999 is not in the scheduler's list")


def test_cancel_disabled_without_actions_with_visible_reason(qtbot) -> None:
    w = open_window(qtbot, 101)
    assert not w.cancel_button.isEnabled()
    assert w.note_label.text() == ("Cancel is not available: actions are not available in "
                                   "this mode (read-only)")
    assert not w.cancel()


@pytest.fixture
def sim_frame(tmp_path):
    from console.engine import run_sync

    engine = engine_from_sim(nodes=16, seed=3, faults="none")
    frame = run_sync(engine, 2)
    actions = Actions(engine.sources, Journal(tmp_path / "journal.jsonl"))
    yield engine, frame, actions
    actions.close()
    engine.actions.close()


def test_cancel_confirms_then_cancels_the_simulated_job(qtbot, sim_frame) -> None:
    engine, frame, actions = sim_frame
    running = np.flatnonzero(frame.jobs.state == int(JobState.RUNNING))
    job_id = int(frame.jobs.job_id[running[0]])
    w = open_window(qtbot, job_id, PanelContext(actions=actions), frame=frame)
    assert w.cancel_button.isEnabled() and w.note_label.text() == ""
    questions: list[str] = []
    w.confirm = lambda title, text: questions.append(text) or False
    assert not w.cancel()
    assert questions[0].startswith(f"Cancel job {job_id} \u201c")
    w.confirm = lambda title, text: True
    assert w.cancel()
    qtbot.waitUntil(lambda: w.last_result is not None)
    assert w.last_result.ok
    assert w.status_label.text() == f"job {job_id} cancelled (simulator)"
    sched = engine.sources[0].cluster.updates()[1].jobs
    row = np.flatnonzero(sched.job_id == job_id)
    assert len(row) == 0 or int(sched.state[row[0]]) == int(JobState.CANCELLED)


def test_finished_job_cannot_be_cancelled(qtbot, tmp_path) -> None:
    jt = job_table()
    rows = [dict(job_id=101, name="done", user="alice", account="hku", state=JobState.COMPLETED,
                 gpus=16, submit_time=NOW - 100, start_time=NOW - 90, end_time=NOW - 10)]
    frame = make_test_frame(jobs=type(jt).build(rows, alloc=[]))

    class Src:
        name = "slurm"
        client = type("C", (), {"cancel_job": lambda self, j: None, "api_version": "v0.0.41"})()

    actions = Actions([Src()], Journal(tmp_path / "j.jsonl"))
    w = open_window(qtbot, 101, PanelContext(actions=actions), frame=frame)
    assert not w.cancel_button.isEnabled()
    assert w.cancel_button.toolTip() == "Not available: the job is COMPLETED; nothing to cancel"
    assert w.fields.text("time") == "ran 1 min (waited 10 s)"
    actions.close()


# --- main window navigation -------------------------------------------------------------------


def make_main(qtbot, **kw) -> MainWindow:
    win = MainWindow(PanelContext(), persist=False, **kw)
    qtbot.addWidget(win)
    win.show_frame(make_test_frame())
    return win


def test_navigation_opens_one_window_per_subject(qtbot) -> None:
    win = make_main(qtbot)
    nav = win.context.navigator
    nav.job_requested.emit(102)
    job = win._drilldowns["job:102"]
    assert type(job).__name__ == "JobDrilldownWindow" and job.isVisible()
    nav.job_requested.emit(102)
    assert win._drilldowns["job:102"] is job
    nav.node_requested.emit("n0003")
    node = win._drilldowns["node:n0003"]
    assert type(node).__name__ == "NodeDrilldownWindow" and node.selected_gpu is None
    nav.gpu_requested.emit("n0003", 5)
    assert win._drilldowns["node:n0003"] is node and node.selected_gpu == 5
    node.render_now()
    assert node.gpu_model.bold_row == 5
    # the health map outlines that GPU, and the outline goes when the window closes
    heat = win.panels["heatmap"]
    heat.render_now()
    L = heat.layout_info
    g = 2 * 8 + 5
    x, y, _w, _h = heat.highlight_rect()
    assert (x, y) == (L.gpu_x[g] - 0.5, L.gpu_y[g] - 0.5)
    node.close()
    assert heat.highlight_rect() is None
    qtbot.waitUntil(lambda: "node:n0003" not in win._drilldowns)
    job.close()


def test_node_request_outlines_the_whole_node(qtbot) -> None:
    win = make_main(qtbot)
    win.context.navigator.node_requested.emit("n0002")
    heat = win.panels["heatmap"]
    heat.render_now()
    L = heat.layout_info
    x, y, w, h = heat.highlight_rect()
    assert (x, y) == (L.gpu_x[8] - 0.5, L.gpu_y[8] - 0.5)
    assert w == L.gpu_x[15] + 3 - L.gpu_x[8] + 1.0
    win._drilldowns["node:n0002"].close()


def test_presentation_mode_opens_no_drilldown(qtbot) -> None:
    win = make_main(qtbot, presentation=True)
    nav = win.context.navigator
    nav.node_requested.emit("n0001")
    nav.gpu_requested.emit("n0001", 2)
    nav.job_requested.emit(101)
    assert win._drilldowns == {}


def test_why_a_gpu_of_the_job_is_not_ok(qtbot, make_frame) -> None:
    # conftest frame: job 101 holds n00 GPUs 0-7; GPU 2 reported XID 79
    w = open_window(qtbot, 101, frame=make_frame())
    assert [r[3] for r in w.gpu_model.rows][:3] == ["", "", "XID 79 (fatal)"]
    assert w.gpu_model.colours[2][2] == "#e5484d"  # failed, in the failure colour


def _without_job(frame, job_id: int):
    """The next frame after `job_id` ended: its GPUs are free."""
    import dataclasses

    gf = frame.gpu
    held = gf.job_id == job_id
    job_id_arr, job_row = gf.job_id.copy(), gf.job_row.copy()
    job_id_arr[held], job_row[held] = 0, -1
    return dataclasses.replace(frame, seq=frame.seq + 1,
                               gpu=dataclasses.replace(gf, job_id=job_id_arr, job_row=job_row))


def test_job_window_outlines_all_its_gpus_until_it_ends(qtbot) -> None:
    win = make_main(qtbot)
    win.context.navigator.job_requested.emit(101)  # n0001 and n0002, all 16 GPUs, rack R01
    job = win._drilldowns["job:101"]
    heat = win.panels["heatmap"]
    heat.render_now()
    L = heat.layout_info
    # two whole nodes one above the other in their rack block: one rectangle around both
    assert heat.outline_rects() == [(L.gpu_x[0] - 0.5, L.gpu_y[0] - 0.5, 32.0, 8.0)]
    assert heat.subject.job_id == 101 and heat.subject.cluster == "test"
    win.show_frame(_without_job(make_test_frame(), 101))
    heat.render_now()
    assert heat.outline_rects() == []
    job.close()
    assert heat.subject is None


def test_the_active_drilldown_window_owns_the_outline(qtbot) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    win = make_main(qtbot)
    nav = win.context.navigator
    heat = win.panels["heatmap"]
    heat.render_now()
    L = heat.layout_info
    job_rects = [(L.gpu_x[16] - 0.5, L.gpu_y[16] - 0.5, 16.0, 4.0)]  # job 102: n0003 GPUs 0-3
    nav.job_requested.emit(102)
    assert heat.outline_rects() == job_rects
    nav.node_requested.emit("n0004")
    node = win._drilldowns["node:n0004"]
    assert heat.outline_rects() == [(L.gpu_x[24] - 0.5, L.gpu_y[24] - 0.5, 32.0, 4.0)]
    job = win._drilldowns["job:102"]
    QApplication.sendEvent(job, QEvent(QEvent.Type.WindowActivate))
    assert heat.outline_rects() == job_rects
    node.close()  # not the owner: the job's outline stays
    assert heat.outline_rects() == job_rects
    job.close()
    assert heat.outline_rects() == [] and heat.subject is None


def test_a_big_job_is_one_path_of_few_rectangles(qtbot) -> None:
    """64 whole nodes of one rack outlined by the same two items, as one rectangle."""
    import dataclasses

    from console.model import Topology
    from widgets.drilldown_common import MapSubject
    from widgets.heatmap_panel import HeatmapPanel

    n = 128
    base = make_test_frame()
    topo = Topology(
        node_names=tuple(f"n{i:04d}" for i in range(n)), node_rack=np.arange(n, dtype=np.int32) // 64,
        rack_names=("R01", "R02"), gpus_per_node=8, node_gpu_count=np.full(n, 8, np.int16),
        node_model=("H800",) * n, gpu_peak_tflops=np.full(n * 8, 989.0, np.float32),
        gpu_max_clock_mhz=np.full(n * 8, 1980.0, np.float32), version=1)
    f32 = np.full(n * 8, 50.0, np.float32)
    job_id = np.zeros(n * 8, np.int64)
    job_id[64 * 8:] = 4242  # the whole of rack R02
    gpu = dataclasses.replace(
        base.gpu, **{k: f32 for k in ("util", "tensor", "sm_clock", "temp", "power", "fb_used", "xid",
                                     "ecc_dbe", "nvlink_crc", "throttle", "delivered_tflops")},
        health=np.zeros(n * 8, np.int8), job_row=np.full(n * 8, -1, np.int32), job_id=job_id,
        tenant=np.full(n * 8, -1, np.int16))
    frame = dataclasses.replace(base, topology=topo, gpu=gpu)
    panel = HeatmapPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show_frame(frame)
    panel.render_now()
    before = len(panel.viewbox.addedItems)
    panel.set_outline(MapSubject(job_id=4242))
    L = panel.layout_info
    first, last = 64 * 8, n * 8 - 1
    assert panel.outline_rects() == [(L.gpu_x[first] - 0.5, L.gpu_y[first] - 0.5, 32.0,
                                      float(L.gpu_y[last] + 3 - L.gpu_y[first] + 1))]
    assert len(panel.viewbox.addedItems) == before


def test_tenant_window_outlines_every_gpu_its_jobs_hold(qtbot) -> None:
    from widgets.heatmap_layout import CELL

    win = make_main(qtbot)
    frame = make_test_frame()
    account = frame.tenants.account[0]
    held = int((np.asarray(frame.gpu.tenant) == 0).sum())
    assert held > 0
    win.context.navigator.tenant_requested.emit(account)
    tenant_win = win._drilldowns[account]
    heat = win.panels["heatmap"]
    heat.render_now()
    assert heat.subject.tenant == account and heat.subject.cluster == "test"
    rects = heat.outline_rects()
    # Each GPU is a CELL x CELL cell: the rectangles cover exactly the tenant's GPUs.
    assert rects and sum(w * h for _, _, w, h in rects) == held * CELL * CELL
    tenant_win.close()
    assert heat.subject is None and heat.outline_rects() == []


def test_a_group_of_nodes_is_outlined_until_a_drilldown_takes_the_outline(qtbot) -> None:
    from widgets.heatmap_layout import CELL

    win = make_main(qtbot)
    heat = win.panels["heatmap"]
    heat.render_now()
    win.context.navigator.nodes_requested.emit("PDU R01-PDU-A", ("n0001", "n0002", "gone"))
    heat.render_now()
    rects = heat.outline_rects()
    # Both nodes' GPUs (the unknown name is ignored), one above the other: one rectangle.
    assert len(rects) == 1 and sum(w * h for _, _, w, h in rects) == 2 * 8 * CELL * CELL
    assert "PDU R01-PDU-A: 3 nodes outlined" in win.statusBar().currentMessage()
    win.context.navigator.job_requested.emit(102)  # a drill-down window takes the outline
    heat.render_now()
    assert heat.subject.job_id == 102

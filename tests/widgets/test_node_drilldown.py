"""Node drill-down: exact GPU rows and evidence, subject-filtered alerts/anomalies/causes,
drain and resume through real `Actions`, disabled state with its reason, links, Escape."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from console.actions import Actions
from console.journal import Journal
from console.model import NodeState
from console.testing import engine_from_sim
from frames import make_test_frame
from widgets.node_drilldown import COL_EVIDENCE, COL_JOB, COL_TENANT, GPU_HEADERS, NodeDrilldownWindow
from widgets.panel import PanelContext


class FakeSlurmClient:
    """A Slurm REST client that has detected v0.0.38 (no node updates there)."""

    api_version = "v0.0.38"
    supports_node_update = False

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def drain_node(self, name: str, reason: str) -> None:
        self.calls.append(("drain", name, reason))

    def resume_node(self, name: str) -> None:
        self.calls.append(("resume", name))

    def cancel_job(self, job_id: int) -> None:
        self.calls.append(("cancel", job_id))


class FakeSlurmSource:
    name = "slurm"

    def __init__(self, client: FakeSlurmClient) -> None:
        self.client = client


def open_window(qtbot, node: str, context: PanelContext | None = None, gpu: int | None = None,
                frame=None) -> NodeDrilldownWindow:
    w = NodeDrilldownWindow(node, context or PanelContext(), gpu=gpu)
    qtbot.addWidget(w)
    w.show_frame(frame if frame is not None else make_test_frame())
    w.render_now()
    return w


def test_gpu_table_rows_exactly(qtbot) -> None:
    w = open_window(qtbot, "n0001", gpu=2)
    rows = w.gpu_model.rows
    assert w.gpu_model.headers == GPU_HEADERS
    assert len(rows) == 8
    assert rows[0] == ("0", "OK", "nothing abnormal", "none", "50 %", "30 %", "1,900 MHz",
                       "60 \u00b0C", "400 W", "39.1 GiB", "0", "0/s", "101", "HKU AI Lab")
    # GPU 2 is marked failed in the frame without raw evidence: the row says so in words
    assert rows[2][:2] == ("2", "failed")
    assert rows[2][COL_EVIDENCE] == "marked failed; no further detail in this data"
    assert w.gpu_model.bold_row == 2
    assert w.gpu_table.currentIndex().row() == 2
    assert w.gpu_detail.text().startswith("GPU 2 \u00b7 failed")


def test_header_fields_in_words(qtbot) -> None:
    w = open_window(qtbot, "n0003")
    f = w.fields
    assert f.text("state") == "MIXED \u2014 some GPUs allocated"
    assert f.text("rack") == "R02"
    assert f.text("responding") == "yes"
    assert f.text("model") == "H800"
    assert f.text("gpus") == "6 of 8"
    assert f.text("partitions") == "training"
    assert f.text("jobs") == "102 (CUHK Vision), 103 (CUHK Vision)"
    assert f.text("health") == "OK"
    assert w.header.title_label.text() == "Node n0003 \u00b7 rack R02"


def test_evidence_words_from_explain(qtbot, make_frame) -> None:
    # conftest frame: n00 GPU 2 has XID 79; node n03 is DOWN and not responding
    frame = make_frame()
    w = open_window(qtbot, "n00", frame=frame, gpu=2)
    row = w.gpu_model.rows[2]
    assert row[COL_EVIDENCE] == "XID 79 (fatal)"
    assert row[3] == "XID 79 (GPU_HAS_FALLEN_OFF_THE_BUS)"
    assert "reboot the node" in w.gpu_model.tips[2][3]
    assert "what to do: Drain and reboot the node" in w.gpu_detail.text()
    down = open_window(qtbot, "n03", frame=frame)
    assert down.fields.text("state") == "DOWN \u2014 unusable \u2014 reason: Not responding"
    assert down.fields.text("responding") == "NO \u2014 Slurm cannot reach slurmd"
    assert down.gpu_model.rows[0][COL_EVIDENCE] == ("node not responding to Slurm; "
                                                    "node DOWN: Not responding")


def test_events_are_those_naming_the_node(qtbot) -> None:
    w = open_window(qtbot, "n0003")
    assert [(e.kind, e.title) for e in w.events] == [
        ("cause", "job 102 hung (all 4 GPUs stalled since 12:53, NCCL or checkpoint)"),
        ("alert", "GpuTemperatureHigh"),
        ("alert", "GpuTemperatureHigh"),
        ("anomaly", "job stall"),
        ("anomaly", "gpu outlier"),
    ]
    assert w.events[0].action == "Ask the owner (bob) to check NCCL logs; cancel if it does not recover"
    assert [e.gpu for e in w.events[1:3]] == [6, 5]  # newest alert first
    assert "Do:" in w.events_view.toPlainText()
    w1 = open_window(qtbot, "n0001")
    assert [(e.kind, e.title) for e in w1.events] == [
        ("cause", "node n0001 GPU 2 fell off the bus (XID 79): drain and reboot"),
        ("alert", "GpuXidError")]
    w2 = open_window(qtbot, "n0002")
    assert w2.events == []
    assert "Nothing known to be wrong" in w2.events_view.toPlainText()


def test_without_actions_buttons_are_disabled_with_a_visible_reason(qtbot) -> None:
    w = open_window(qtbot, "n0001")
    assert not w.drain_button.isEnabled() and not w.resume_button.isEnabled()
    assert w.drain_button.toolTip() == ("Not available: actions are not available in this "
                                        "mode (read-only)")
    assert w.note_label.text() == ("Drain and Resume are not available: actions are not "
                                   "available in this mode (read-only)")
    assert not w.drain()


def test_old_slurm_api_disables_drain_with_its_reason(qtbot, tmp_path) -> None:
    client = FakeSlurmClient()
    actions = Actions([FakeSlurmSource(client)], Journal(tmp_path / "j.jsonl"))
    w = open_window(qtbot, "n0001", PanelContext(actions=actions))
    w.show()
    reason = "draining needs Slurm REST API v0.0.39 or newer; this server offers v0.0.38"
    assert not w.drain_button.isEnabled()
    assert w.drain_button.toolTip() == f"Not available: {reason}"
    assert w.note_label.isVisible() and reason in w.note_label.text()
    w.ask_text = lambda *a: pytest.fail("must not ask when drain is unavailable")
    assert not w.drain()
    assert client.calls == []
    actions.close()


@pytest.fixture
def sim(tmp_path):
    from console.engine import run_sync

    engine = engine_from_sim(nodes=16, seed=3, faults="none")
    actions = Actions(engine.sources, Journal(tmp_path / "journal.jsonl"), operator="olga")
    # run_sync numbers its polls from 1: call it once per engine, after any set-up
    yield engine, lambda: run_sync(engine, 2), actions
    actions.close()
    engine.actions.close()


def test_drain_asks_for_a_reason_then_drains_the_simulated_node(qtbot, sim) -> None:
    engine, make, actions = sim
    cluster = engine.sources[0].cluster
    frame = make()
    node = frame.topology.node_names[3]
    w = open_window(qtbot, node, PanelContext(actions=actions, operator="olga"), frame=frame)
    assert w.drain_button.isEnabled() and w.note_label.text() == ""
    assert not w.resume_button.isEnabled()
    assert "not drained or down" in w.resume_button.toolTip()
    asked: list[tuple] = []
    w.ask_text = lambda title, text, default="": asked.append((title, text)) or None
    assert not w.drain()  # backed out: nothing happens
    assert not cluster.drain[3]
    w.ask_text = lambda title, text, default="": "  GPU 3 XID 79, RMA  "
    assert w.drain()
    qtbot.waitUntil(lambda: w.last_result is not None)
    assert w.last_result.ok
    assert w.status_label.text() == f"node {node} is draining (simulator)"
    assert asked[0][0] == f"Drain {node}"
    assert cluster.drain[3] and cluster.drain_reason[3] == "GPU 3 XID 79, RMA"
    lines = (actions.journal.path.read_text().splitlines())
    assert len(lines) == 2 and '"operator": "olga"' in lines[0]


def test_resume_confirms_then_resumes(qtbot, sim) -> None:
    engine, make, actions = sim
    cluster = engine.sources[0].cluster
    cluster_node = "n0006"
    cluster.drain_node(cluster_node, "test")
    frame = make()
    assert frame.topology.node_names[5] == cluster_node
    assert NodeState(int(frame.nodes.state[5])) in (NodeState.DRAINING, NodeState.DRAINED)
    w = open_window(qtbot, cluster_node, PanelContext(actions=actions), frame=frame)
    assert not w.drain_button.isEnabled() and "already DRAIN" in w.drain_button.toolTip()
    assert w.resume_button.isEnabled()
    w.confirm = lambda title, text: False
    assert not w.resume()
    w.confirm = lambda title, text: True
    assert w.resume()
    qtbot.waitUntil(lambda: w.last_result is not None)
    assert w.last_result.ok and not cluster.drain[5]


def test_links_go_through_the_navigator(qtbot) -> None:
    w = open_window(qtbot, "n0003")
    nav = w.context.navigator
    with qtbot.waitSignal(nav.job_requested) as b:
        w._on_gpu_activated(w.gpu_model.index(4, COL_JOB))
    assert b.args == [103]
    with qtbot.waitSignal(nav.tenant_requested) as b:
        w._on_gpu_activated(w.gpu_model.index(0, COL_TENANT))
    assert b.args == ["cuhk"]
    with qtbot.waitSignal(nav.rack_requested) as b:
        w.fields.values["rack"].linkActivated.emit("rack:R02")
    assert b.args == ["R02"]
    with qtbot.waitSignal(nav.job_requested) as b:
        w.fields.values["jobs"].linkActivated.emit("job:102")
    assert b.args == [102]


def test_escape_closes_and_says_so(qtbot) -> None:
    w = open_window(qtbot, "n0001")
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.gpu_table.setFocus()
    with qtbot.waitSignal(w.closed):
        qtbot.keyClick(w.gpu_table, Qt.Key.Key_Escape)
    assert not w.isVisible()


def test_unknown_node_says_so(qtbot) -> None:
    w = open_window(qtbot, "n9999")
    assert w.missing_label.text().startswith("node n9999 is not in the current data")
    assert w.gpu_model.rowCount() == 0


def test_stays_live(qtbot) -> None:
    w = open_window(qtbot, "n0002")
    assert w.gpu_model.rows[0][COL_JOB] == "101"
    w.show_frame(make_test_frame(seq=2, now=time.time(), cause_list=()))
    w.render_now()
    assert w.events == []

"""Alerts panel: one severity-sorted list with console anomalies, grouping, links, ack flow."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from console.actions import Actions, ack_matchers
from console.journal import Journal
from console.model import Alert, Severity
from frames import NOW, alerts, anomalies, make_test_frame
from widgets.alerts_model import (
    COL_ALERT, COL_SEVERITY, COL_SOURCE, COL_STATE, COL_WHERE, AlertsTreeModel, rows_from_frame,
)
from widgets.alerts_panel import AlertsPanel
from widgets.panel import PanelContext


class FakeAlertmanagerClient:
    def __init__(self) -> None:
        self.created: list[tuple] = []
        self.expired: list[str] = []

    def create_silence(self, matchers, starts_at, ends_at, created_by, comment) -> str:
        self.created.append((tuple(matchers), starts_at, ends_at, created_by, comment))
        return f"new-{len(self.created)}"

    def expire_silence(self, silence_id: str) -> None:
        self.expired.append(silence_id)


@pytest.fixture
def am() -> FakeAlertmanagerClient:
    return FakeAlertmanagerClient()


@pytest.fixture
def panel(qtbot, am, tmp_path: Path) -> AlertsPanel:
    source = SimpleNamespace(name="alertmanager", kind="alerts", interval_s=10.0, client=am)
    actions = Actions([source], Journal(tmp_path / "journal.jsonl"), operator="alice",
                      clock=lambda: NOW)
    p = AlertsPanel(PanelContext(actions=actions, operator="alice"))
    qtbot.addWidget(p)
    p.show_frame(make_test_frame())
    p.render_now()
    yield p
    actions.close()


def test_rows_sorted_by_severity_then_state_then_newest() -> None:
    rows = rows_from_frame(alerts(), anomalies())
    assert [(r.severity, r.state, r.name) for r in rows] == [
        (Severity.CRITICAL, "firing", "GpuXidError"),
        (Severity.CRITICAL, "firing", "Job stalled"),
        (Severity.WARNING, "firing", "GpuTemperatureHigh"),
        (Severity.WARNING, "firing", "ExporterDown"),
        (Severity.WARNING, "firing", "GPU unlike its peers"),
        (Severity.WARNING, "silenced", "GpuTemperatureHigh"),
        (Severity.INFO, "firing", "QueueLong"),
    ]
    assert [r.detected_by_console for r in rows] == [False, True, False, False, True, False, False]


def test_several_alertmanagers_deduplicated_by_fingerprint() -> None:
    a = alerts()
    rows = rows_from_frame(a + (a[1],), ())
    assert len(rows) == len(a)


def test_resolved_anomalies_leave_the_list() -> None:
    from dataclasses import replace
    an = anomalies()
    rows = rows_from_frame((), (an[0], replace(an[1], ended_at=NOW)))
    assert [r.key for r in rows] == ["console:an-stall"]


def test_qtmodeltester_grouped_and_flat(qtmodeltester) -> None:
    m = AlertsTreeModel()
    m.set_frame(make_test_frame())
    qtmodeltester.check(m)
    for mode in ("rack", "node", "job", "tenant", "none"):
        m.set_group_mode(mode)
        qtmodeltester.check(m)


def test_grouped_by_alert_name_worst_group_first() -> None:
    m = AlertsTreeModel()
    m.set_frame(make_test_frame())
    top = [m.data(m.index(r, COL_ALERT)) for r in range(m.rowCount())]
    assert top == ["GpuXidError  (1)", "Job stalled  (1)", "GpuTemperatureHigh  (2)",
                   "ExporterDown  (1)", "GPU unlike its peers  (1)", "QueueLong  (1)"]
    g = m.index(2, 0)
    assert m.rowCount(g) == 2
    assert m.data(m.index(2, COL_STATE)) == "firing"  # the group's worst state
    assert m.data(m.index(2, COL_STATE), Qt.ItemDataRole.ToolTipRole) == "2 alerts: 1 firing, 1 silenced"
    assert m.data(m.index(0, COL_SEVERITY, g)) == "\u25c6 warning"
    assert m.data(m.index(0, COL_WHERE, g)) == "n0003 GPU 6"
    assert m.data(m.index(1, COL_ALERT)) == "Job stalled  (1)"
    assert m.data(m.index(0, COL_SOURCE, m.index(1, 0))) == "detected by console"


def test_group_by_rack_and_flat() -> None:
    m = AlertsTreeModel()
    m.set_frame(make_test_frame())
    m.set_group_mode("rack")
    groups = {g.key: [r.key for r in g.rows] for g in m.groups()}
    assert groups == {
        "rack R01": ["am:f-xid"],
        "no rack": ["console:an-stall", "am:f-info"],
        "rack R02": ["am:f-temp2", "am:f-exp", "console:an-hot", "am:f-temp"],
    }
    assert [g.key for g in m.groups()] == ["rack R01", "no rack", "rack R02"]
    m.set_group_mode("none")
    assert m.rowCount() == 7
    assert m.data(m.index(0, COL_ALERT)) == "GpuXidError: XID 79 on n0001 GPU 2"
    with pytest.raises(ValueError):
        m.set_group_mode("colour")


def test_filter_and_hide_muted() -> None:
    m = AlertsTreeModel()
    m.set_frame(make_test_frame())
    m.set_filter_text("n0003")
    assert [r.key for r in m.visible_rows()] == ["console:an-stall", "am:f-temp2", "am:f-temp",
                                                 "console:an-hot"]
    m.set_hide_muted(True)
    assert "am:f-temp" not in [r.key for r in m.visible_rows()]


def test_same_alerts_update_in_place(qtbot) -> None:
    m = AlertsTreeModel()
    m.set_frame(make_test_frame())
    resets: list[int] = []
    m.modelReset.connect(lambda: resets.append(1))
    with qtbot.waitSignal(m.dataChanged):
        m.set_frame(make_test_frame(seq=2, now=NOW + 600))
    assert resets == []
    g = m.index(0, 0)
    assert m.data(m.index(0, 4, g)) == "12 min"


def test_new_alert_held_while_pointer_over_list() -> None:
    m = AlertsTreeModel()
    m.set_frame(make_test_frame())
    m.set_order_frozen(True)
    extra = Alert("f-new", "NodeDown", Severity.CRITICAL, "firing", NOW, labels={"alertname": "NodeDown"})
    m.set_frame(make_test_frame(alert_list=alerts() + (extra,)))
    assert m.has_held_changes and "am:f-new" not in [r.key for r in m.visible_rows()]
    m.set_order_frozen(False)
    assert not m.has_held_changes
    assert m.visible_rows()[0].key == "am:f-new"


def test_panel_details_and_links(panel: AlertsPanel, qtbot) -> None:
    assert panel.tabs.tabText(0) == "Alerts (7)"
    assert panel.select_key("am:f-xid")
    text = panel.details.toPlainText()
    assert "GpuXidError" in text and "XID 79 on n0001 GPU 2" in text
    assert "Hostname" in text and "GPU fell off the bus" in text
    nav = panel.context.navigator
    assert panel.link_buttons["gpu"].text() == "GPU 2"
    with qtbot.waitSignal(nav.gpu_requested) as b:
        panel.open_link("gpu")
    assert b.args == ["n0001", 2]
    with qtbot.waitSignal(nav.job_requested) as b:
        panel.open_link("job")
    assert b.args == [101]
    with qtbot.waitSignal(nav.tenant_requested) as b:
        panel.open_link("tenant")
    assert b.args == ["hku"]
    with qtbot.waitSignal(nav.rack_requested) as b:
        panel.open_link("rack")
    assert b.args == ["R01"]
    with qtbot.waitSignal(nav.gpu_requested) as b:
        panel.tree.doubleClicked.emit(panel.tree.currentIndex())
    assert b.args == ["n0001", 2]


def test_console_anomaly_marked_and_not_acknowledgeable(panel: AlertsPanel, qtbot) -> None:
    assert panel.select_key("console:an-stall")
    assert "detected by console" in panel.details.toPlainText()
    assert not panel.ack_button.isEnabled()
    assert "detected by the console" in panel.ack_button.toolTip()
    with qtbot.waitSignal(panel.context.navigator.node_requested) as b:
        panel.open_link("node")
    assert b.args == ["n0003"]


def test_acknowledge_flow_creates_ack_silence(panel: AlertsPanel, am, qtbot) -> None:
    asked: list[str] = []
    panel.ask_ack = lambda row: (asked.append(row.key), ("swapping the GPU", 1800.0))[1]
    assert panel.select_key("am:f-xid")
    assert panel.ack_button.isEnabled()
    qtbot.mouseClick(panel.ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.last_result is not None, timeout=5000)
    assert asked == ["am:f-xid"]
    assert panel.last_result.ok
    matchers, starts, ends, author, comment = am.created[0]
    assert comment.startswith("ACK!") and comment == "ACK! swapping the GPU"
    assert author == "alice" and ends - starts == 1800
    assert matchers == ack_matchers(alerts()[1])
    assert panel.status_label.text().startswith("acknowledged {alertname=\"GpuXidError\"")


def test_acknowledge_cancelled_does_nothing(panel: AlertsPanel, am) -> None:
    panel.ask_ack = lambda row: None
    panel.select_key("am:f-exp")
    assert panel.acknowledge_selected() is False
    assert am.created == []


def test_expire_silence_of_selected_alert_after_confirmation(panel: AlertsPanel, am, qtbot) -> None:
    questions: list[str] = []
    panel.confirm = lambda title, text: (questions.append(text), True)[1]
    panel.select_key("am:f-temp")
    assert panel.expire_button.isEnabled()
    assert not panel.ack_button.isEnabled()  # already silenced
    assert panel.expire_selected_silence()
    qtbot.waitUntil(lambda: panel.last_result is not None, timeout=5000)
    assert am.expired == ["sil-1"]
    assert "ACK! fan swap scheduled" in questions[0]
    assert panel.status_label.text() == "silence sil-1 expired on alertmanager"


def test_expire_refused_when_not_confirmed(panel: AlertsPanel, am) -> None:
    panel.confirm = lambda title, text: False
    panel.select_key("am:f-temp")
    assert panel.expire_selected_silence() is False and am.expired == []


def test_silences_tab_lists_active_silences(panel: AlertsPanel) -> None:
    t = panel.silences_table
    assert panel.tabs.tabText(1) == "Silences (1)"
    assert t.rowCount() == 1
    assert t.item(0, 0).text() == "active \u00b7 acknowledgement"
    assert t.item(0, 1).text() == '{alertname="GpuTemperatureHigh", gpu="5"}'
    assert t.item(0, 4).text() == "10 min"
    panel.tabs.setCurrentWidget(t)
    t.selectRow(0)
    assert panel._selected_silence_id() == "sil-1" and panel.expire_button.isEnabled()


def test_actions_unavailable_disable_buttons_with_reason(qtbot) -> None:
    p = AlertsPanel(PanelContext(actions=None))
    qtbot.addWidget(p)
    p.show_frame(make_test_frame())
    p.render_now()
    p.select_key("am:f-xid")
    assert not p.ack_button.isEnabled() and not p.silence_button.isEnabled()
    assert p.ack_button.toolTip() == "Not available: actions are not available in this mode (read-only)"


def test_selection_survives_regrouping(panel: AlertsPanel) -> None:
    panel.select_key("am:f-exp")
    panel.set_group_mode("node")
    assert panel.group_combo.currentData() == "node"
    assert panel.selected_row().key == "am:f-exp"

"""Incidents panel: ranked causes with confidence, blast radius, evidence and drill-down links."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QUrl

from console.model import Cause, Subject
from frames import NOW, causes, make_test_frame
from widgets.incidents_panel import IncidentsPanel, blast_radius, subject_link
from widgets.panel import PanelContext


def make(qtbot, **kw) -> IncidentsPanel:
    p = IncidentsPanel(PanelContext())
    qtbot.addWidget(p)
    p.show_frame(make_test_frame(**kw))
    p.render_now()
    return p


def test_lists_titles_in_rank_order(qtbot) -> None:
    p = make(qtbot)
    assert p.list.topLevelItemCount() == 2
    rows = [[p.list.topLevelItem(i).text(c) for c in range(4)] for i in range(2)]
    assert rows == [
        ["92 %", "critical", "node n0001 GPU 2 fell off the bus (XID 79): drain and reboot",
         "8 GPUs, 1 node, 1 job, 1 tenant; 16 GPU-hours at risk"],
        ["71 %", "warning", "job 102 hung (all 4 GPUs stalled since 12:53, NCCL or checkpoint)",
         "4 GPUs, 1 node, 1 job, 1 tenant; 4 GPU-hours at risk"],
    ]
    assert not p.empty_label.isVisibleTo(p)


def test_details_show_evidence_and_action(qtbot) -> None:
    p = make(qtbot)
    assert p.selected_cause().id == "c-xid"  # the top one is selected at first
    text = p.details.toPlainText()
    assert "XID 79 reported by DCGM on n0001 GPU 2 at 12:58" in text
    assert "job 101 lost 1 of 16 GPUs" in text
    assert "What to do: Drain n0001, reboot, and run dcgmi diag -r 3" in text
    assert p.select_cause("c-stall")
    text = p.details.toPlainText()
    assert "GPU utilisation 0 % on all 4 GPUs for 6 min" in text and "confidence 71 %" in text


def test_links_reach_the_navigator(qtbot) -> None:
    p = make(qtbot)
    nav = p.context.navigator
    html = p.details.toHtml()
    for href in ("gpu:n0001/2", "node:n0001", "job:101", "tenant:hku"):
        assert f'href="{href}"' in html
    with qtbot.waitSignal(nav.gpu_requested) as b:
        p.details.anchorClicked.emit(QUrl("gpu:n0001/2"))
    assert b.args == ["n0001", 2]
    with qtbot.waitSignal(nav.job_requested) as b:
        p.open_link("job:101")
    assert b.args == [101]
    with qtbot.waitSignal(nav.tenant_requested) as b:
        p.open_link("tenant:hku")
    assert b.args == ["hku"]
    with qtbot.waitSignal(nav.rack_requested) as b:
        p.open_link("rack:R07")
    assert b.args == ["R07"]
    with qtbot.waitSignal(nav.node_requested) as b:
        p.open_link("node:n0001")
    assert b.args == ["n0001"]


def test_selection_kept_while_figures_update(qtbot) -> None:
    p = make(qtbot)
    p.select_cause("c-stall")
    item = p.list.topLevelItem(1)
    updated = (causes()[0], replace(causes()[1], confidence=0.8, gpu_hours_at_risk=5.0))
    p.show_frame(make_test_frame(seq=2, cause_list=updated))
    p.render_now()
    assert p.list.topLevelItem(1) is item  # updated in place, not rebuilt
    assert p.selected_cause().id == "c-stall" and item.text(0) == "80 %"
    assert "5 GPU-hours at risk" in item.text(3)


def test_new_cause_set_rebuilds_and_keeps_selection(qtbot) -> None:
    p = make(qtbot)
    p.select_cause("c-stall")
    rack = Cause("c-rack", "rack R02 cooling: 12 GPUs hot, 0 elsewhere", "thermal", 0.95,
                 Subject("rack", "R02"), ("12 of 16 GPUs in R02 above 85 C",), "Check CRAH unit",
                 NOW - 50, gpus=12, nodes=("n0003", "n0004"), jobs=(102, 103), tenants=("cuhk",))
    p.show_frame(make_test_frame(seq=2, cause_list=(rack,) + causes()))
    p.render_now()
    assert [p.list.topLevelItem(i).text(2)[:12] for i in range(3)] == [
        "rack R02 coo", "node n0001 G", "job 102 hung"]
    assert p.selected_cause().id == "c-stall"


def test_no_causes_says_so(qtbot) -> None:
    p = make(qtbot, cause_list=())
    assert p.list.topLevelItemCount() == 0
    assert p.empty_label.isVisibleTo(p)
    assert p.details.toPlainText() == ""


def test_blast_radius_and_subject_words() -> None:
    c = causes()[0]
    assert blast_radius(replace(c, gpus=0, nodes=(), jobs=(), tenants=(), gpu_hours_at_risk=0)) == \
        "nothing allocated affected"
    assert blast_radius(replace(c, gpus=31, nodes=("a", "b"), jobs=(1, 2, 3, 4),
                                tenants=("x", "y", "z"), gpu_hours_at_risk=120.4)) == \
        "31 GPUs, 2 nodes, 4 jobs, 3 tenants; 120 GPU-hours at risk"
    assert subject_link(c) == ("gpu:n0001/2", "GPU 2 of n0001")
    assert subject_link(replace(c, subject=Subject("rack", "R07"))) == ("rack:R07", "rack R07")
    assert subject_link(replace(c, subject=Subject("cluster", "cluster"))) is None


def pdu_cause() -> Cause:
    return Cause("C:pdu_trip:pdu:R01-PDU-A", "PDU R01-PDU-A lost power: 2 nodes down, 0 others fed by it up",
                 "pdu_trip", 0.9, Subject("pdu", "R01-PDU-A"), ("n0001 DOWN", "n0002 DOWN"),
                 "Check the PDU's breaker", NOW - 60, gpus=16, nodes=("n0001", "n0002"))


def test_a_pdu_cause_links_to_its_nodes_on_the_map(qtbot) -> None:
    p = make(qtbot, cause_list=(pdu_cause(),))
    assert subject_link(pdu_cause()) == ("group:C:pdu_trip:pdu:R01-PDU-A", "PDU R01-PDU-A on the map")
    assert 'href="group:C:pdu_trip:pdu:R01-PDU-A"' in p.details.toHtml()
    with qtbot.waitSignal(p.context.navigator.nodes_requested) as b:
        p.open_link("group:C:pdu_trip:pdu:R01-PDU-A")
    assert b.args == ["PDU R01-PDU-A", ("n0001", "n0002")]

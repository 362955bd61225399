"""Fleet overview and cluster switching: exact row texts and colours, switching by row, combo
and shortcut, frames of other clusters kept off the panels, drill-downs per cluster, the fleet
dock hidden with one cluster; the fleet bridge and run_gui with a fleet."""

from __future__ import annotations

import gc
import threading
from dataclasses import replace

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from conftest import NOW
from console.model import Frame, Severity
from widgets import theme
from widgets.bridge import FleetBridge
from widgets.fleet_panel import (
    COL_ALERTS, COL_AGE, COL_CLUSTER, COL_SOURCES, HEADERS, FleetPanel, FleetTableModel,
)
from widgets.main_window import MainWindow
from widgets.panel import PanelContext


def named(frame: Frame, cluster: str, racks: tuple[str, str] | None = None) -> Frame:
    """The same known frame under another cluster's name (and, optionally, rack names)."""
    topo = frame.topology if racks is None else replace(frame.topology, rack_names=racks)
    return replace(frame, cluster=cluster, topology=topo)


def make_panel(qtbot, frames, shown=None) -> FleetPanel:
    panel = FleetPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.set_clusters(list(frames), {n: True for n in frames})
    panel.show_fleet(frames)
    panel.set_shown(shown)
    panel.render_at(NOW)
    return panel


def test_qtmodeltester(qtmodeltester, make_frame) -> None:
    from console.fleet import fleet_rows

    m = FleetTableModel()
    m.set_rows(fleet_rows({"a": named(make_frame(), "a"), "b": None}, NOW), "a")
    qtmodeltester.check(m)


def test_rows_say_each_clusters_figures_in_words(qtbot, make_frame) -> None:
    frames = {"alpha": named(make_frame(), "alpha"),
              "beta": named(make_frame(scheduler_failing=True, scheduler_age=130.0), "beta"),
              "gamma": None}
    panel = make_panel(qtbot, frames, shown="alpha")
    assert panel.model.rowCount() == 3 and panel.model.columnCount() == len(HEADERS)
    assert panel.row_texts(0) == [
        "\u25b6 alpha \u00b7 simulated", "7.25 PF of 31.7 PF (BF16 dense) \u00b7 23 %", "23 of 32",
        "2 running \u00b7 1 pending", "\u2716 1 critical  \u25b2 2 warning", "5 s old", "\u25cf OK"]
    beta = panel.row_texts(1)
    assert beta[COL_CLUSTER] == "   beta \u00b7 simulated"
    assert beta[COL_AGE] == "STALE \u00b7 2 min old"  # 130 s of scheduler data > 30 s
    assert beta[COL_SOURCES] == ("\u2716 failing \u2014 slurm: cannot connect to slurm.example:6820 "
                                 "(connection refused)")
    assert panel.row_texts(2) == ["   gamma \u00b7 simulated", "waiting for first data", "\u2014",
                                  "\u2014", "\u2014", "no data yet", "\u2026 waiting"]
    # alpha has a critical alert firing, beta a failing source; gamma is only waiting
    assert panel.header.age_label.text() == "2 of 3 clusters need attention: alpha, beta"


def test_colours_come_with_words(qtbot, make_frame) -> None:
    frames = {"alpha": named(make_frame(), "alpha"),
              "beta": named(make_frame(scheduler_failing=True), "beta")}
    panel = make_panel(qtbot, frames, shown="alpha")
    m, th = panel.model, theme.current()
    fg = Qt.ItemDataRole.ForegroundRole
    assert m.data(m.index(0, COL_ALERTS), fg) == QColor(th.severity[Severity.CRITICAL])
    assert m.data(m.index(0, COL_SOURCES), fg) == QColor(th.ok_text)
    assert m.data(m.index(1, COL_SOURCES), fg) == QColor(th.severity[Severity.CRITICAL])
    assert m.data(m.index(0, COL_CLUSTER), Qt.ItemDataRole.FontRole).bold()
    assert m.data(m.index(1, COL_CLUSTER), Qt.ItemDataRole.FontRole) is None
    assert "connection refused" in m.data(m.index(1, COL_SOURCES), Qt.ItemDataRole.ToolTipRole)


def test_updates_are_data_changed_not_resets(qtbot, make_frame) -> None:
    frames = {"alpha": named(make_frame(), "alpha"), "beta": None}
    panel = make_panel(qtbot, frames)
    resets: list[int] = []
    panel.model.modelReset.connect(lambda: resets.append(1))
    with qtbot.waitSignal(panel.model.dataChanged) as sig:
        panel.show_fleet({"alpha": frames["alpha"], "beta": named(make_frame(), "beta")})
        panel.render_at(NOW)
    assert resets == [] and sig.args[0].row() == 1
    assert panel.row_texts(1)[1] == "7.25 PF of 31.7 PF (BF16 dense) \u00b7 23 %"


def test_double_click_and_enter_request_the_cluster(qtbot, make_frame) -> None:
    panel = make_panel(qtbot, {"alpha": named(make_frame(), "alpha"), "beta": named(make_frame(), "beta")})
    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.waitSignal(panel.cluster_requested) as sig:
        panel.table.doubleClicked.emit(panel.model.index(1, 2))
    assert sig.args == ["beta"]
    panel.table.setFocus()
    panel.table.setCurrentIndex(panel.model.index(0, 0))
    with qtbot.waitSignal(panel.cluster_requested) as sig:
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert sig.args == ["alpha"]


# --- the main window with several clusters -------------------------------------------------------


def fleet_window(qtbot, names=("alpha", "beta"), actions=None) -> MainWindow:
    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    win.set_clusters(names, actions=actions, simulated={n: True for n in names})
    return win


def test_one_cluster_hides_the_fleet_dock_and_the_switcher(qtbot, make_frame) -> None:
    win = MainWindow(PanelContext(), persist=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.show_frame(make_frame())
    assert win.docks["fleet"].isHidden() and win.cluster_combo.isHidden()
    win.set_clusters(["only"])
    assert win.docks["fleet"].isHidden() and win.cluster_combo.isHidden()


def test_several_clusters_show_the_fleet_dock_and_the_switcher(qtbot) -> None:
    win = fleet_window(qtbot, ("alpha", "beta", "gamma"))
    win.show()
    qtbot.waitExposed(win)
    assert win.docks["fleet"].isVisible() and win.cluster_combo.isVisible()
    assert [win.cluster_combo.itemText(i) for i in range(3)] == ["alpha", "beta", "gamma"]
    assert [a.shortcut().toString() for a in win.cluster_actions] == [
        "Ctrl+Shift+1", "Ctrl+Shift+2", "Ctrl+Shift+3"]
    assert win.current_cluster == "alpha"
    win.panels["fleet"].render_at(NOW)
    assert win.panels["fleet"].model.names() == ["alpha", "beta", "gamma"]


def test_only_the_shown_clusters_frames_reach_the_panels(qtbot, make_frame) -> None:
    acts = {"alpha": object(), "beta": object()}
    win = fleet_window(qtbot, actions=acts)
    a, b = named(make_frame(seq=1), "alpha"), named(make_frame(seq=2), "beta")
    win.show_cluster_frame("alpha", a)
    win.show_cluster_frame("beta", b)
    assert win.panels["kpi"].frame is a and win.panels["jobs"].frame is a
    assert win.cluster_label.text() == "alpha \u00b7 32 GPUs on 4 nodes"
    assert win.windowTitle() == "alpha \u2014 AISC Console"
    assert win.context.actions is acts["alpha"]

    with qtbot.waitSignal(win.cluster_changed) as sig:
        assert win.switch_cluster("beta")
    assert sig.args == ["beta"]
    assert all(p.frame is b for p in win.panels.values())
    assert win.cluster_label.text() == "beta \u00b7 32 GPUs on 4 nodes"
    assert win.windowTitle() == "beta \u2014 AISC Console"
    assert win.cluster_combo.currentText() == "beta"
    assert win.context.actions is acts["beta"]
    a2 = named(make_frame(seq=3), "alpha")
    win.show_cluster_frame("alpha", a2)  # the other cluster's news: fleet only
    assert win.panels["kpi"].frame is b
    assert win.panels["fleet"]._frames["alpha"] is a2
    assert not win.switch_cluster("nonexistent")


def test_switching_by_combo_shortcut_and_fleet_row(qtbot, make_frame) -> None:
    win = fleet_window(qtbot, ("alpha", "beta", "gamma"))
    frames = {n: named(make_frame(), n) for n in ("alpha", "beta", "gamma")}
    for n, f in frames.items():
        win.show_cluster_frame(n, f)
    win.cluster_combo.activated.emit(2)
    assert win.current_cluster == "gamma" and win.panels["kpi"].frame is frames["gamma"]
    win.cluster_actions[1].trigger()  # Ctrl+Shift+2
    assert win.current_cluster == "beta" and win.panels["heatmap"].frame is frames["beta"]
    win.panels["fleet"].cluster_requested.emit("alpha")
    assert win.current_cluster == "alpha" and win.panels["alerts"].frame is frames["alpha"]


def test_switching_to_a_cluster_without_data_waits_for_its_first_frame(qtbot, make_frame) -> None:
    win = fleet_window(qtbot)
    a = named(make_frame(), "alpha")
    win.show_cluster_frame("alpha", a)
    assert not win.switch_cluster("beta")
    assert win.current_cluster == "alpha" and win.panels["kpi"].frame is a
    assert win.cluster_label.text() == "beta \u00b7 waiting for its first data (still showing alpha)"
    b = named(make_frame(), "beta")
    win.show_cluster_frame("beta", b)
    assert win.current_cluster == "beta" and win.panels["kpi"].frame is b
    assert win.cluster_label.text() == "beta \u00b7 32 GPUs on 4 nodes"


def test_the_health_map_relayouts_for_another_clusters_topology(qtbot, make_frame) -> None:
    win = fleet_window(qtbot)
    win.show()
    qtbot.waitExposed(win)
    # Same topology version and size, different racks: only the cluster tells them apart.
    win.show_cluster_frame("alpha", named(make_frame(), "alpha", ("R01", "R02")))
    win.show_cluster_frame("beta", named(make_frame(), "beta", ("X-east", "X-west")))
    heatmap = win.panels["heatmap"]
    heatmap.render_now()
    assert [i.text() for i in heatmap._rack_items] == ["R01", "R02"]
    win.switch_cluster("beta")
    heatmap.render_now()
    assert [i.text() for i in heatmap._rack_items] == ["X-east", "X-west"]


def test_drilldowns_belong_to_the_cluster_they_were_opened_for(qtbot, make_frame) -> None:
    win = fleet_window(qtbot)
    a, b = named(make_frame(seq=1), "alpha"), named(make_frame(seq=2), "beta")
    win.show_cluster_frame("alpha", a)
    win.show_cluster_frame("beta", b)
    win.context.navigator.tenant_requested.emit("hku")
    hku_alpha = win._drilldowns["hku"]
    assert hku_alpha.frame is a
    assert hku_alpha.windowTitle().endswith("\u00b7 alpha")
    win.switch_cluster("beta")
    assert hku_alpha.frame is a  # beta's frames are not alpha's tenant
    a2 = named(make_frame(seq=3), "alpha")
    win.show_cluster_frame("alpha", a2)
    assert hku_alpha.frame is a2  # still live, on its own cluster
    win.context.navigator.tenant_requested.emit("hku")
    hku_beta = win._drilldowns["hku"]
    assert hku_beta is not hku_alpha and hku_beta.frame is b
    hku_beta.render_now()
    assert hku_beta.windowTitle() == "HKU \u2014 tenant \u00b7 beta"
    hku_alpha.close()
    hku_beta.close()


# --- the bridge and run_gui with a fleet ---------------------------------------------------------


def test_fleet_bridge_keeps_the_newest_frame_per_cluster(qtbot, make_frame) -> None:
    bridge = FleetBridge()
    got: list[tuple[str, int]] = []
    bridge.frame_ready.connect(lambda name, f: got.append((name, f.seq)))
    pusher = threading.Thread(target=lambda: [bridge.push(n, make_frame(seq=i))
                                              for i in range(20) for n in ("a", "b")])
    pusher.start()
    pusher.join(10)
    qtbot.waitUntil(lambda: len(got) >= 2)
    assert got == [("a", 19), ("b", 19)]
    assert bridge.dropped == 38 and bridge.delivered == 2
    bridge.close()
    bridge.push("a", make_frame(seq=99))
    QApplication.processEvents()
    assert len(got) == 2


class FakeFleet:
    """A fleet whose engines call back from their own thread, as a real fleet does."""

    def __init__(self, frames: dict[str, Frame]) -> None:
        self.frames = frames
        self.names = tuple(frames)
        self.callbacks: list = []
        self.started = threading.Event()
        self.stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, cb) -> None:
        self.callbacks.append(cb)

    def unsubscribe(self, cb) -> None:
        self.callbacks.remove(cb)

    def latest_frames(self) -> dict:
        return {n: None for n in self.names}

    def actions(self) -> dict:
        return {n: None for n in self.names}

    def simulated(self) -> dict:
        return {n: True for n in self.names}

    def start(self) -> None:
        self.started.set()
        self._thread = threading.Thread(
            target=lambda: [cb(n, f) for n, f in self.frames.items() for cb in self.callbacks], daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(10)


def test_run_gui_with_a_fleet(qtbot, make_frame, tmp_path) -> None:
    from widgets import app as app_module

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    fleet = FakeFleet({"alpha": named(make_frame(seq=4), "alpha"), "beta": named(make_frame(seq=5), "beta")})
    seen: dict = {}

    def close_when_both_arrived() -> None:
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if wins and all(wins[0].clusters.frames.get(n) is not None for n in fleet.names):
            w = wins[0]
            seen.update(shown=w._frame.seq, current=w.current_cluster,
                        fleet_dock=w.docks["fleet"].isVisible(), combo=w.cluster_combo.isVisible())
            w.close()
        else:
            QTimer.singleShot(20, close_when_both_arrived)

    QTimer.singleShot(0, close_when_both_arrived)
    try:
        rc = app_module.run_gui(fleet)
    finally:
        gc.unfreeze()
    assert rc == 0 and fleet.started.is_set() and fleet.stopped.is_set()
    assert seen == {"shown": 4, "current": "alpha", "fleet_dock": True, "combo": True}


# --- unknown is "no data", never 0 -----------------------------------------------------------

def _unknown(frame: Frame, kinds, **fields) -> Frame:
    """The frame as the state builds it when ``kinds`` of data never arrived: their figures None."""
    return replace(frame, kpis=replace(frame.kpis, **{k: None for k in fields}),
                   data_time={**frame.data_time, **{k: None for k in kinds}})


def test_rows_say_no_data_for_unknown_figures_never_zero(qtbot, make_frame) -> None:
    no_tel = _unknown(named(make_frame(), "no_tel"), ("telemetry",), delivered_pf=None,
                      busy_pf=None, gpus_busy=None, gpus_healthy=None, gpus_by_health=None)
    # Data that arrived once but is past its stale limit: the figures are unknown again.
    stale = replace(named(make_frame(scheduler_age=130.0), "stale"),
                    kpis=replace(make_frame().kpis, jobs_running=None, jobs_pending=None,
                                 alerts_firing=None, alerts_by_severity=None))
    cpu_only = replace(named(make_frame(), "cpu_only"),
                       kpis=replace(make_frame().kpis, gpus_total=0, installed_pf=0.0,
                                    gpus_healthy=0, delivered_pf=0.0, alerts_firing=0,
                                    alerts_by_severity={"critical": 0, "warning": 0, "info": 0}))
    panel = make_panel(qtbot, {"no_tel": no_tel, "stale": stale, "cpu_only": cpu_only})
    row = panel.row_texts(0)
    assert row[1] == "telemetry: no data yet \u00b7 31.7 PF installed"
    assert row[2] == "health: no data \u00b7 32 GPUs"
    assert row[3] == "2 running \u00b7 1 pending"
    srow = panel.row_texts(1)
    assert srow[3] == "scheduler: no data" and srow[4] == "alerts: no data"
    crow = panel.row_texts(2)
    assert crow[1] == "no GPUs known yet" and crow[2] == "no GPUs"
    m, th = panel.model, theme.current()
    fg = Qt.ItemDataRole.ForegroundRole
    for r, c in ((0, 1), (0, 2), (1, 3), (1, COL_ALERTS)):
        assert m.data(m.index(r, c), fg) == QColor(th.text_dim), (r, c)
    # an unknown alert count is not "critical firing": only the stale data asks for attention
    assert panel.header.age_label.text() == "2 of 3 clusters need attention: no_tel, stale"

"""KPI tiles: exact texts for a known frame, stale look, and the formatting rules they use."""

from __future__ import annotations

import math

import numpy as np

from console.model import History
from widgets.formatting import fmt_age, fmt_duration, fmt_int, fmt_latency, fmt_metric, fmt_pct, fmt_pf
from widgets.kpi_panel import KpiPanel, delivered_trend


def make_panel(qtbot, frame) -> KpiPanel:
    panel = KpiPanel()
    qtbot.addWidget(panel)
    panel.show_frame(frame)
    panel.render_now()
    return panel


def test_tiles_show_the_frame_figures_in_words(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    t = panel.tiles
    assert t["delivered"].value.text() == "7.25 PF"
    assert t["delivered"].sub.text() == "of 31.7 PF (BF16 dense) \u00b7 23 % of installed"
    assert t["capacity"].value.text() == "11.9 PF"
    assert t["capacity"].sub.text() == "of 23.7 PF available"
    assert t["gpus"].value.text() == "23"
    assert t["gpus"].sub.text() == "of 32 \u00b7 12 in use"
    assert t["gpus"].trend.text() == "9 not healthy"
    assert t["jobs"].value.text() == "2"
    assert t["jobs"].sub.text() == "1 pending"
    assert t["jobs"].trend.text() == "16 GPUs waiting"
    assert t["alerts"].value.text() == "3"
    alerts = t["alerts"].sub.text().replace("&nbsp;", " ")
    assert "1 critical" in alerts and "2 warning" in alerts and "0 info" in alerts
    assert panel.header.age_label.text() == "updated 5 s ago"
    assert not any(tile.stale for tile in t.values())


def test_delivered_trend_from_history(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    # history: 5.0 + 0.25 k over ten minutes (k = 0..9, one point missing): +2.25 PF in 9 min
    assert panel.tiles["delivered"].trend.text() == "\u25b2 +2.25 PF in 9 min"


def test_trend_is_steady_for_tiny_changes_and_empty_without_history():
    t = np.array([0.0, 60.0, 120.0])
    h = History(t=t, series={"delivered_pf": np.array([100.0, 100.1, 100.2], np.float32)},
                tenant_delivered_pf=np.zeros((3, 0)), tenant_gpus=np.zeros((3, 0)))
    assert delivered_trend(h, installed_pf=3000.0) == "\u25b6 steady over 2 min"
    h1 = History(t=t[:1], series={"delivered_pf": np.array([1.0], np.float32)},
                 tenant_delivered_pf=np.zeros((1, 0)), tenant_gpus=np.zeros((1, 0)))
    assert delivered_trend(h1, installed_pf=3000.0) == ""
    down = History(t=t, series={"delivered_pf": np.array([300.0, np.nan, 200.0], np.float32)},
                   tenant_delivered_pf=np.zeros((3, 0)), tenant_gpus=np.zeros((3, 0)))
    assert delivered_trend(down, installed_pf=3000.0) == "\u25bc \u2212100 PF in 2 min"


def test_stale_telemetry_greys_tiles_and_says_so(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame(telemetry_age=200.0))
    assert panel.tiles["delivered"].stale
    assert panel.tiles["gpus"].stale
    assert not panel.tiles["jobs"].stale  # scheduler data is fresh
    assert not panel.tiles["alerts"].stale
    label = panel.header.age_label
    assert label.text() == "STALE (telemetry) \u00b7 updated 3 min ago"
    assert label.property("stale") == "true"


def test_tiles_update_in_place(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    value_label = panel.tiles["delivered"].value
    panel.show_frame(make_frame(telemetry_age=200.0))
    panel.render_now()
    assert panel.tiles["delivered"].value is value_label
    assert panel.tiles["delivered"].stale
    panel.show_frame(make_frame())
    panel.render_now()
    assert not panel.tiles["delivered"].stale


def test_number_formatting():
    assert fmt_pf(2412.4) == "2,412 PF"
    assert fmt_pf(37.54) == "37.5 PF"
    assert fmt_pf(0.4213) == "0.42 PF"
    assert fmt_pf(0.0) == "0 PF"
    assert fmt_pf(math.nan) == "\u2014"
    assert fmt_int(3040) == "3,040"
    assert fmt_int(None) == "\u2014"
    assert fmt_pct(0.873) == "87 %"
    assert fmt_latency(0.0451) == "45 ms"
    assert fmt_latency(12.0) == "12.0 s"
    assert fmt_metric("temp", np.float32(64.6)) == "65 \u00b0C"
    assert fmt_metric("tensor", 0.5) == "50 %"
    assert fmt_metric("util", np.float32(np.nan)) == "no data"


def test_age_formatting():
    assert fmt_age(None) == "no data yet"
    assert fmt_age(0.2) == "updated just now"
    assert fmt_age(3.4) == "updated 3 s ago"
    assert fmt_age(130) == "updated 2 min ago"
    assert fmt_duration(2 * 3600 + 5 * 60) == "2 h 05 min"
    assert fmt_duration(3 * 86400 + 4 * 3600) == "3 d 4 h"


# --- unknown is "no data", never 0 -----------------------------------------------------------

def _unknown(frame, kinds, **fields):
    """The frame as the state builds it when ``kinds`` of data never arrived: their figures None."""
    from dataclasses import replace

    return replace(frame, kpis=replace(frame.kpis, **{k: None for k in fields}),
                   data_time={**frame.data_time, **{k: None for k in kinds}})


TELEMETRY_FIGURES = dict(delivered_pf=None, busy_pf=None, gpus_busy=None, gpus_healthy=None,
                         gpus_by_health=None)


def test_tiles_say_no_data_for_figures_of_a_source_that_never_answered(qtbot, make_frame):
    panel = make_panel(qtbot, _unknown(make_frame(), ("telemetry",), **TELEMETRY_FIGURES))
    t = panel.tiles
    assert t["delivered"].value.text() == "no data"
    assert t["delivered"].sub.text() == "of 31.7 PF (BF16 dense)"  # no share of an unknown
    assert t["delivered"].trend.text() == ""  # and no trend claimed for it
    assert t["capacity"].value.text() == "11.9 PF"  # the scheduler's figures are known
    assert t["capacity"].trend.text() == "no data busy \u00b7 7.92 PF out of service"
    assert t["gpus"].value.text() == "no data"
    assert t["gpus"].sub.text() == "of 32 \u00b7 12 in use"
    assert t["gpus"].trend.text() == "health: no data"
    assert t["delivered"].stale and t["gpus"].stale and not t["jobs"].stale
    assert panel.header.age_label.text() == "STALE (telemetry) \u00b7 updated 5 s ago"


def test_tiles_with_nothing_known_show_no_number_at_all(qtbot, make_frame):
    from console.model import Kpis

    nothing = {f: None for f in Kpis.__dataclass_fields__ if f not in ("precision", "anomalies_open")}
    panel = make_panel(qtbot, _unknown(make_frame(), ("telemetry", "scheduler", "alerts"), **nothing))
    texts = {key: (tile.value.text(), tile.sub.text(), tile.trend.text())
             for key, tile in panel.tiles.items()}
    assert texts == {
        "delivered": ("no data", "of no data (BF16 dense)", ""),
        "capacity": ("no data", "of no data available", "no data busy \u00b7 no data out of service"),
        "gpus": ("no data", "of no data \u00b7 no data in use", "health: no data"),
        "jobs": ("no data", "no data pending", "no data GPUs waiting"),
        "alerts": ("no data", "alerts: no data", "0 anomalies open"),
    }
    assert panel.tiles["alerts"].value.styleSheet() == ""  # no severity colour for unknown
    assert all(tile.stale for tile in panel.tiles.values())
    assert panel.header.age_label.text() == "STALE (telemetry, scheduler, alerts) \u00b7 no data yet"

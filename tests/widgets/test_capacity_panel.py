"""Capacity over time: curves created once, data equal to the history, legend with units."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from widgets.capacity_panel import CapacityPanel, local_zone_label


def make_panel(qtbot, frame) -> CapacityPanel:
    panel = CapacityPanel()
    qtbot.addWidget(panel)
    panel.show_frame(frame)
    panel.render_now()
    return panel


def test_curves_hold_the_history(qtbot, make_frame):
    frame = make_frame()
    panel = make_panel(qtbot, frame)
    for key in ("delivered_pf", "installed_pf", "available_pf", "allocated_pf", "busy_pf"):
        curve = panel.curves[key]
        np.testing.assert_array_equal(curve.xData, frame.history.t)
        np.testing.assert_array_equal(curve.yData, frame.history.series[key].astype(np.float64))
    # the missed scrape stays a gap, never a zero
    assert np.isnan(panel.curves["delivered_pf"].yData[3])


def test_curves_are_created_once_and_updated_in_place(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    items_before = list(panel.plot.listDataItems())
    curve = panel.curves["delivered_pf"]
    frame2 = make_frame(seq=2, now=make_frame().time + 60)
    panel.show_frame(frame2)
    panel.render_now()
    assert list(panel.plot.listDataItems()) == items_before
    assert panel.curves["delivered_pf"] is curve
    np.testing.assert_array_equal(curve.xData, frame2.history.t)


def test_peak_downsampling_clip_to_view_and_date_axis(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    curve = panel.curves["delivered_pf"]
    assert curve.opts["autoDownsample"] is True
    assert curve.opts["downsampleMethod"] == "peak"
    assert curve.opts["clipToView"] is True
    assert isinstance(panel.plot.getAxis("bottom"), pg.DateAxisItem)
    assert panel.plot.getAxis("bottom").labelText == local_zone_label()
    assert "BF16 dense" in panel.plot.getAxis("left").labelText


def test_legend_names_each_series_with_its_newest_value_and_unit(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    assert panel.legend_entries(make_frame().history.series) == [
        "delivered 7.25 PF", "busy 9.80 PF", "allocated 11.8 PF", "available 23.7 PF", "installed 31.7 PF",
    ]
    text = panel.legend.text().replace("&nbsp;", " ")
    assert "delivered 7.25 PF" in text and "installed 31.7 PF" in text


def test_y_range_fixed_to_installed_capacity(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    lo, hi = panel.plot.getViewBox().viewRange()[1]
    assert lo == 0.0
    assert abs(hi - 31.664 * 1.08) < 1e-3


def test_stale_telemetry_dims_curves(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame(telemetry_age=400.0))
    assert panel.curves["delivered_pf"].opacity() < 0.5
    assert panel.header.age_label.text() == "STALE \u00b7 updated 6 min ago"
    assert panel.header.age_label.property("stale") == "true"


def test_short_history_axis_shows_clock_times_not_fractions(qtbot) -> None:
    import time as _time

    from widgets.capacity_panel import ClockAxis

    axis = ClockAxis(orientation="bottom")
    t = 1_700_000_049.0
    (label,) = axis.tickStrings([t], 1.0, 5.0)
    assert label == _time.strftime("%H:%M:%S", _time.localtime(t))


def test_reference_lines_at_round_values() -> None:
    from widgets.capacity_panel import gridline_data, nice_step

    assert nice_step(3283.0) == 1000.0 and nice_step(1100.0) == 200.0 and nice_step(0.0) == 1.0
    x, y = gridline_data(10.0, 20.0, 3283.0)
    assert list(y[0::3]) == [1000.0, 2000.0, 3000.0]
    assert list(x[:2]) == [10.0, 20.0] and np.isnan(x[2]) and np.isnan(y[2])


def test_sub_second_ticks_do_not_repeat_a_time(qtbot) -> None:
    from widgets.capacity_panel import ClockAxis

    axis = ClockAxis(orientation="bottom")
    t = 1_700_000_049.0
    labels = axis.tickStrings([t, t + 0.5, t + 1.0], 1.0, 0.5)
    assert labels[1] == "" and labels[0] != labels[2] != ""

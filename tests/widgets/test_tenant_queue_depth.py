"""The drill-down's "Usage and money" tab plots the tenant's pending GPUs over time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from console.model import History
from frames import make_test_frame
from widgets.panel import PanelContext
from widgets.tenant_drilldown import TenantDrilldownWindow


def _frame_with_queue(pending_hku: list[float]):
    f = make_test_frame()
    n = len(pending_hku)
    t = f.time - np.arange(n - 1, -1, -1, dtype=np.float64) * 60.0
    q = np.full((n, len(f.tenants)), 3.0, np.float32)  # every other tenant: 3 GPUs waiting
    q[:, f.tenants.index("hku")] = pending_hku
    h = History(t=t, series={"jobs_pending": np.ones(n, np.float32)},
                tenant_delivered_pf=np.zeros((n, len(f.tenants)), np.float32),
                tenant_gpus=np.zeros((n, len(f.tenants)), np.float32),
                tenant_gpus_pending=q)
    return replace(f, history=h)


def test_pending_gpus_over_time_are_plotted_with_gaps_for_unknown(qtbot) -> None:
    win = TenantDrilldownWindow("hku", PanelContext())
    qtbot.addWidget(win)
    series = [0.0, 16.0, np.nan, 24.0, 8.0]  # a minute the scheduler was not read
    frame = _frame_with_queue(series)
    win.show_frame(frame)
    win.render_now()
    pane = win.money
    qtbot.waitUntil(lambda: len(pane.pending_series()[0]) == len(series))
    x, y = pane.pending_series()
    assert x.tolist() == frame.history.t.tolist()
    assert y[[0, 1, 3, 4]].tolist() == [0.0, 16.0, 24.0, 8.0]  # this tenant's column, not another's
    assert np.isnan(y[2])  # unknown stays a gap, never 0
    assert pane.pending_curve.opts["connect"] == "finite"
    assert pane.pending_caption.text() == "Its GPUs pending over time; most 24"


def test_without_the_column_the_plot_is_empty_and_says_so(qtbot) -> None:
    win = TenantDrilldownWindow("hku", PanelContext())
    qtbot.addWidget(win)
    win.show_frame(make_test_frame())  # a history made without the pending column
    win.render_now()
    x, y = win.money.pending_series()
    assert len(x) == 0 and len(y) == 0
    assert win.money.pending_caption.text() == "Its GPUs pending over time: no history yet"

"""Tenant drill-down: exactly the tenant's jobs and GPUs, its usage series, and it stays live."""

from __future__ import annotations

import numpy as np

from console.model import Health
from frames import make_test_frame
from widgets import theme as theme_mod
from widgets.panel import PanelContext
from widgets.tenant_drilldown import (
    CELL_PX, NODE_GAP_PX, TenantDrilldownWindow, map_shape, tenant_map_cells, tenant_map_rgba,
)
from widgets.theme import hex_rgba


def open_window(qtbot, account: str) -> TenantDrilldownWindow:
    w = TenantDrilldownWindow(account, PanelContext())
    qtbot.addWidget(w)
    w.show_frame(make_test_frame())
    w.render_now()
    return w


def test_shows_exactly_the_tenants_jobs(qtbot) -> None:
    w = open_window(qtbot, "cuhk")
    assert set(w.jobs_model.visible_job_ids().tolist()) == {102, 103, 111, 112}
    assert w.jobs_caption.text() == "Its jobs (4)"
    w2 = open_window(qtbot, "acme")
    assert set(w2.jobs_model.visible_job_ids().tolist()) == {104, 106}


def test_highlights_exactly_the_tenants_gpus(qtbot) -> None:
    w = open_window(qtbot, "cuhk")
    # job 102 has n0003 GPUs 0-3, job 103 has n0003 GPUs 4-5 (n0003 is node index 2)
    assert w.highlighted_gpus().tolist() == [16, 17, 18, 19, 20, 21]
    img = tenant_map_cells(make_test_frame(), 1)
    rows, per_row = map_shape(4, 8)
    assert img.shape == (rows, per_row * 8, 4)
    assert w.map_rgba().shape == (rows * CELL_PX, per_row * (8 * CELL_PX + NODE_GAP_PX), 4)
    flat = img.reshape(-1, 4)
    th = theme_mod.current()
    ok = np.array(hex_rgba(th.health[Health.OK]), np.uint8)
    dim = np.array(hex_rgba(th.surface_alt), np.uint8)
    coloured = np.flatnonzero(np.all(flat[:32] == ok, axis=1))
    assert coloured.tolist() == [16, 17, 18, 19, 20, 21]
    assert np.all(flat[[0, 8, 22, 24]] == dim)
    assert w.map_caption.text().startswith("Its GPUs: 6 on 1 nodes \u2014 blue OK")


def test_failed_gpu_of_tenant_drawn_in_failure_colour(qtbot) -> None:
    w = open_window(qtbot, "hku")
    assert len(w.highlighted_gpus()) == 16
    th = theme_mod.current()
    assert tuple(tenant_map_cells(make_test_frame(), 0).reshape(-1, 4)[2]) == \
        hex_rgba(th.health[Health.FAILED])
    # on the drawn map, GPU 2 of the first node is the CELL_PX square at x = 2 * CELL_PX
    assert tuple(w.map_rgba()[0, 2 * CELL_PX]) == hex_rgba(th.health[Health.FAILED])
    assert tuple(w.map_rgba()[0, 3 * CELL_PX - 1]) == hex_rgba(th.background)  # the gap
    assert "1 failed" in w.map_caption.text()


def test_summary_figures_and_usage_series(qtbot) -> None:
    w = open_window(qtbot, "hku")
    f = w.figure_labels
    assert f["gpus"].text() == "16"
    assert f["subsidy"].text() == "70 %"
    assert f["price"].text() == "$2 / GPU-h"
    assert f["cost"].text() == "$32 (subsidy $22)"
    assert f["eff"].text() == "60 %"
    assert f["jobs"].text() == "1 / 3"
    frame = make_test_frame()
    x, y = w.pf_curve.getData()
    assert np.array_equal(x, frame.history.t)
    assert np.allclose(y, frame.history.tenant_delivered_pf[:, 0])
    assert np.allclose(w.gpus_curve.getData()[1], 16)
    assert w.windowTitle() == "HKU AI Lab \u2014 tenant"


def test_unknown_tenant_says_so(qtbot) -> None:
    w = open_window(qtbot, "ghost")
    assert w.kind_label.text() == "not in the current data"
    assert w.jobs_model.rowCount() == 0 and len(w.highlighted_gpus()) == 0


def test_stays_live(qtbot) -> None:
    w = open_window(qtbot, "acme")
    w.show_frame(make_test_frame(seq=2, now=make_test_frame().time + 600))
    w.render_now()
    assert w.jobs_model.data(w.jobs_model.index(w.jobs_model.row_of_job(104), 8)) == "11 min"


def test_map_shape() -> None:
    assert map_shape(380, 8) == (38, 10)  # 80 x 38 cells: about twice as wide as tall
    assert map_shape(4096, 8) == (128, 32)
    assert map_shape(0, 8) == (0, 0)
    assert map_shape(3, 8) == (3, 1)


def test_map_image_is_contiguous_rgba() -> None:
    img = tenant_map_rgba(make_test_frame(), 0)
    assert img.shape[:2] == (4 * CELL_PX, 8 * CELL_PX + NODE_GAP_PX)
    assert img.dtype == np.uint8 and img.flags.c_contiguous and img.shape[2] == 4

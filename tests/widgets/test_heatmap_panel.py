"""GPU health map: one image, exact colour codes and marks per GPU, tooltip, hover and click."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from console.model import Health, Topology
from widgets import theme
from widgets.heatmap_panel import (
    CODE_EMPTY,
    CODE_HEALTH,
    CODE_MARK_DARK,
    CODE_MARK_LIGHT,
    CODE_NO_DATA,
    N_CONT,
    PATTERNS,
    MARK_CROSS,
    MARK_SLASH,
    HeatmapPanel,
    build_layout,
)
from widgets.panel import PanelContext


def make_panel(qtbot, frame, context=None) -> HeatmapPanel:
    panel = HeatmapPanel(context or PanelContext())
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show_frame(frame)
    panel.render_now()
    return panel


def rgba(colour: str) -> tuple[int, int, int, int]:
    return theme.hex_rgba(colour)


def test_one_image_item_for_all_gpus(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    images = [i for i in panel.viewbox.addedItems if isinstance(i, pg.ImageItem)]
    assert images == [panel.image_item]
    assert np.array_equal(panel.image_item.image, panel.image)
    assert panel.image.dtype == np.uint8


def test_health_colours_and_marks(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    th = theme.current()
    assert panel.rgba_of_gpu(0) == rgba(th.health[Health.OK])
    assert panel.rgba_of_gpu(1) == rgba(th.health[Health.DEGRADED])
    assert panel.rgba_of_gpu(2) == rgba(th.health[Health.FAILED])
    assert panel.rgba_of_gpu(3) == rgba(th.health[Health.UNAVAILABLE])
    assert panel.rgba_of_gpu(4) == rgba(th.health[Health.NO_DATA])
    ok = CODE_HEALTH + Health.OK
    assert (panel.cell_pixels(0) == ok).all()  # healthy: plain colour, no mark
    deg = panel.cell_pixels(1)
    assert deg[1, 1] == CODE_MARK_DARK and (deg.reshape(-1)[[0, 1, 2, 3, 5, 6, 7, 8]] == CODE_HEALTH + 1).all()
    failed = panel.cell_pixels(2).reshape(-1)
    assert (failed[PATTERNS[MARK_CROSS]] == CODE_MARK_DARK).all()
    assert (failed[~PATTERNS[MARK_CROSS]] == CODE_HEALTH + Health.FAILED).all()
    nd = panel.cell_pixels(4).reshape(-1)  # no data: grey with a light slash
    assert (nd[PATTERNS[MARK_SLASH]] == CODE_MARK_LIGHT).all()
    assert (nd[~PATTERNS[MARK_SLASH]] == CODE_HEALTH + Health.NO_DATA).all()


def test_legend_counts_every_health_state_in_words(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    text = panel.legend.text()
    # counted from the per-GPU health array: GPUs 0, 5..23 are OK; 4 and all of n03 no data
    for words in ("OK 20", "degraded 1", "failed 1", "out of service 1", "no data 9"):
        assert words in text


def test_continuous_metric_uses_fixed_levels_and_grey_for_nan(qtbot, make_frame):
    frame = make_frame()
    panel = make_panel(qtbot, frame)
    panel.set_metric("util")
    assert panel.metric_spec.key == "util"
    # util = 3 g % 101: GPU 10 is 30 % -> code round(0.30 * 239)
    x, y = panel.layout_info.gpu_x[10], panel.layout_info.gpu_y[10]
    assert panel.image[y, x + 1] == round(0.30 * (N_CONT - 1))
    # NaN (no data) is never the colour of zero
    assert panel.image[panel.layout_info.gpu_y[4], panel.layout_info.gpu_x[4] + 1] == CODE_NO_DATA
    assert panel.rgba_of_gpu(4) == rgba(theme.current().health[Health.NO_DATA])
    assert panel.rgba_of_gpu(4) != panel.rgba_of_gpu(0)
    assert panel.colour_bar.isVisibleTo(panel)
    assert panel.bar_lo.text() == "0 %" and panel.bar_hi.text() == "100 %"
    assert "no data 9" in panel.legend.text()
    panel.set_metric("temp")
    # temp = 40 + g on a 30..90 scale: GPU 5 is 45 °C -> code round(15/60 * 239)
    x, y = panel.layout_info.gpu_x[5], panel.layout_info.gpu_y[5]
    assert panel.image[y, x + 1] == round(15 / 60 * (N_CONT - 1))


def test_tooltip_names_gpu_node_rack_job_and_tenant(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    text = panel.tooltip_for_gpu(10)
    assert text.splitlines() == [
        "GPU n01/2 (H800) \u2014 node n01, rack R01",
        "Health: OK",
        "Job 102 \u201ceval\u201d \u2014 tenant cuhk, user bob",
        "Utilisation 30 % \u00b7 tensor 0 % \u00b7 SM clock 1,755 MHz",
        "Temperature 50 \u00b0C \u00b7 power 400 W \u00b7 memory 40.0 GiB",
        "Delivering 0 TFLOPS",
    ]
    failed = panel.tooltip_for_gpu(2)
    assert "Health: failed \u00b7 last XID 79" in failed
    nd = panel.tooltip_for_gpu(30).splitlines()
    assert nd[0].startswith("GPU n03/6") and "rack R02" in nd[0]
    assert nd[1] == "Health: no data" and nd[2] == "No job"
    assert "Temperature no data" in nd[4]


def test_public_safe_tooltip_has_no_names(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    panel.public_safe = True
    text = panel.tooltip_for_gpu(10)
    assert "In use by job 102" in text
    assert "cuhk" not in text and "bob" not in text and "eval" not in text


def test_mouse_position_maps_to_the_gpu_under_it(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    L = panel.layout_info
    for g in (0, 7, 9, 31):
        cx, cy = L.gpu_centre(g)
        assert panel.gpu_at_view(cx, cy) == g
    # the gutter between two GPUs belongs to none
    assert panel.gpu_at_view(L.gpu_x[0] + 3.5, L.gpu_y[0] + 1.5) == -1
    assert panel.gpu_at_view(-5, -5) == -1
    # and through the scene, as the mouse handler does
    cx, cy = L.gpu_centre(9)
    scene_pos = panel.viewbox.mapViewToScene(pg.Point(cx, cy))
    assert panel.gpu_at_scene(scene_pos) == 9


def test_click_requests_the_gpu(qtbot, make_frame):
    context = PanelContext()
    panel = make_panel(qtbot, make_frame(), context)
    cx, cy = panel.layout_info.gpu_centre(11)
    scene_pos = panel.viewbox.mapViewToScene(pg.Point(cx, cy))

    class Click:
        def scenePos(self):  # noqa: N802 - mimics the Qt event
            return scene_pos

    with qtbot.waitSignal(context.navigator.gpu_requested) as blocker:
        panel._on_mouse_clicked(Click())
    assert blocker.args == ["n01", 3]


def test_layout_rebuilt_only_when_topology_version_changes(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    first = panel.layout_info
    panel.show_frame(make_frame(seq=2))
    panel.render_now()
    assert panel.layout_info is first
    panel.show_frame(make_frame(seq=3, topology_version=2))
    panel.render_now()
    assert panel.layout_info is not first


def test_stale_telemetry_dims_the_map(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame(telemetry_age=120.0))
    assert panel.image_item.opacity() < 0.5
    assert panel.header.age_label.text() == "STALE \u00b7 updated 2 min ago"
    panel.show_frame(make_frame())
    panel.render_now()
    assert panel.image_item.opacity() == 1.0


def test_layout_groups_racks_and_marks_empty_slots():
    n = 6
    topo = Topology(
        node_names=tuple(f"n{i}" for i in range(n)), node_rack=np.array([0, 0, 0, 1, 1, 2], np.int32),
        rack_names=("A", "B", "C"), gpus_per_node=4, node_gpu_count=np.array([4, 4, 4, 4, 2, 4], np.int16),
        node_model=("",) * n, gpu_peak_tflops=np.ones(n * 4, np.float32),
        gpu_max_clock_mhz=np.ones(n * 4, np.float32))
    L = build_layout(topo, 400, 300, gap_code=0, empty_code=CODE_EMPTY)
    # nodes of a rack are consecutive rows of the same block, GPUs of a node one row
    assert L.gpu_y[0] == L.gpu_y[3] and L.gpu_y[4] == L.gpu_y[0] + 4 and L.gpu_x[4] == L.gpu_x[0]
    assert L.gpu_x[1] == L.gpu_x[0] + 4
    assert L.gpu_x[12] != L.gpu_x[0] or L.gpu_y[12] > L.gpu_y[8]  # rack B is another block
    # node n4 has only 2 GPUs: its slots 2 and 3 are drawn as empty, belong to no GPU
    g = 4 * 4 + 2
    assert L.gpu_at(L.gpu_x[g] + 1, L.gpu_y[g] + 1) == -1
    assert L.background[L.gpu_y[g] + 1, L.gpu_x[g] + 1] == CODE_EMPTY
    # every real GPU has exactly 9 pixels
    counts = np.bincount(L.valid_gpu, minlength=topo.n_gpus)
    assert (counts[topo.gpu_exists()] == 9).all() and (counts[~topo.gpu_exists()] == 0).all()


def test_unchanged_cells_are_not_redrawn_and_a_changed_cell_is(qtbot, make_frame, monkeypatch):
    import dataclasses

    frame = make_frame()
    panel = make_panel(qtbot, frame)
    calls: list[int] = []
    real = panel.image_item.setImage
    monkeypatch.setattr(panel.image_item, "setImage", lambda *a, **k: (calls.append(1), real(*a, **k)))
    panel.show_frame(make_frame(seq=2))  # same health everywhere
    panel.render_now()
    assert calls == []
    health = frame.gpu.health.copy()
    health[0] = Health.FAILED
    changed = dataclasses.replace(frame, gpu=dataclasses.replace(frame.gpu, health=health))
    panel.show_frame(changed)
    panel.render_now()
    assert calls == [1]
    assert panel.rgba_of_gpu(0) == rgba(theme.current().health[Health.FAILED])

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
    PATCH,
    METRICS,
    HeatmapPanel,
    build_layout,
    build_lut,
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


# --- outlines: the subject of the active drill-down window ------------------------------------


def test_outline_boxes_merge_runs_of_gpus_and_rows_of_a_rack(make_frame):
    from widgets.heatmap_layout import CELL, PATCH, outline_boxes

    L = build_layout(make_frame().topology, 400, 300)
    x, y = L.gpu_x, L.gpu_y
    # two whole nodes of one rack (n00, n01): consecutive rows, one box
    assert outline_boxes(L, np.arange(16)).tolist() == [[x[0], y[0], x[7] + PATCH, y[8] + PATCH]]
    # GPUs 0, 1 and 3 of n00: a run of two and a single
    assert outline_boxes(L, np.array([3, 0, 1])).tolist() == [
        [x[0], y[0], x[1] + PATCH, y[0] + PATCH], [x[3], y[3], x[3] + PATCH, y[3] + PATCH]]
    # GPUs 0-3 of n00 and of n01 stack into one box; GPU 6 of n01 is a box of its own
    boxes = outline_boxes(L, np.r_[0:4, 8:12, 14]).tolist()
    assert sorted(boxes) == sorted([[x[0], y[0], x[3] + PATCH, y[8] + PATCH],
                                    [x[14], y[14], x[14] + PATCH, y[14] + PATCH]])
    # a run of 6 under a run of 4 does not merge
    assert len(outline_boxes(L, np.r_[0:4, 8:14])) == 2
    # a node of each rack: two blocks, two boxes; nothing and out-of-range GPUs: none
    assert len(outline_boxes(L, np.r_[0:8, 16:24])) == 2
    assert outline_boxes(L, np.array([], np.int64)).shape == (0, 4)
    assert outline_boxes(L, np.array([-1, 999])).shape == (0, 4)
    assert y[8] == y[0] + CELL


def test_job_outline_follows_the_gpus_it_holds_with_the_same_items(qtbot, make_frame):
    import dataclasses

    from widgets.drilldown_common import MapSubject

    frame = make_frame()
    panel = make_panel(qtbot, frame)
    items = list(panel.viewbox.addedItems)
    L = panel.layout_info
    panel.set_outline(MapSubject(job_id=101, cluster=frame.cluster))  # n00, GPUs 0-7
    assert panel.outline_rects() == [(L.gpu_x[0] - 0.5, L.gpu_y[0] - 0.5, 32.0, 4.0)]
    assert panel.outline_item.isVisible() and panel.outline_halo.isVisible()
    # the job grows onto n01 GPUs 4-7: the same two path items now draw two rectangles
    gf = frame.gpu
    job_id = gf.job_id.copy()
    job_id[12:16] = 101
    grown = dataclasses.replace(frame, seq=2, gpu=dataclasses.replace(gf, job_id=job_id))
    panel.show_frame(grown)
    panel.render_now()
    assert sorted(panel.outline_rects()) == sorted([
        (L.gpu_x[0] - 0.5, L.gpu_y[0] - 0.5, 32.0, 4.0),
        (L.gpu_x[12] - 0.5, L.gpu_y[12] - 0.5, 16.0, 4.0)])
    assert panel.outline_item.path().elementCount() == 2 * 5  # two closed rectangles
    # it ends: its GPUs are free, the outline goes
    job_id[job_id == 101] = 0
    ended = dataclasses.replace(frame, seq=3, gpu=dataclasses.replace(gf, job_id=job_id))
    panel.show_frame(ended)
    panel.render_now()
    assert panel.outline_rects() == [] and panel.highlight_rect() is None
    assert not panel.outline_item.isVisible() and not panel.outline_halo.isVisible()
    assert list(panel.viewbox.addedItems) == items  # nothing added, nothing replaced


def test_outline_only_on_its_own_clusters_frames(qtbot, make_frame):
    from widgets.drilldown_common import MapSubject

    frame = make_frame()  # cluster "Test Cluster"
    panel = make_panel(qtbot, frame)
    panel.set_outline(MapSubject(node="n01", cluster="Other Cluster"))
    assert panel.highlight_rect() is None
    panel.set_outline(MapSubject(node="n01", cluster=frame.cluster))
    L = panel.layout_info
    assert panel.highlight_rect() == (L.gpu_x[8] - 0.5, L.gpu_y[8] - 0.5, 32.0, 4.0)
    panel.set_outline(MapSubject(node="n01", gpu=3))  # no cluster named: outlined on any
    assert panel.highlight_rect() == (L.gpu_x[11] - 0.5, L.gpu_y[11] - 0.5, 4.0, 4.0)
    panel.set_outline(MapSubject(node="nope"))
    assert panel.highlight_rect() is None
    panel.set_outline(None)
    assert panel.highlight_rect() is None and panel.subject is None


# --- the compact image of continuous metrics ------------------------------------------------


def test_every_gpu_patch_starts_on_a_cell_boundary_for_the_compact_image():
    from widgets.heatmap_layout import CELL

    n = 40
    topo = Topology(
        node_names=tuple(f"n{i}" for i in range(n)), node_rack=np.arange(n, dtype=np.int32) // 7,
        rack_names=tuple(f"R{i}" for i in range(6)), gpus_per_node=4,
        node_gpu_count=np.array([4] * 39 + [2], np.int16), node_model=("",) * n,
        gpu_peak_tflops=np.ones(n * 4, np.float32), gpu_max_clock_mhz=np.ones(n * 4, np.float32))
    for size in ((400, 300), (130, 700), (97, 61)):
        L = build_layout(topo, *size, gap_code=0, empty_code=CODE_EMPTY)
        g = np.flatnonzero(L.gpu_x >= 0)
        assert (L.gpu_x[g] % CELL == 0).all() and (L.gpu_y[g] % CELL == 0).all()
        assert L.compact_index.shape == (L.height // CELL, L.width // CELL)
        assert L.width % CELL == 0 and L.height % CELL == 0
        real = g[topo.gpu_exists()[g]]
        assert (L.compact_index[L.gpu_y[real] // CELL, L.gpu_x[real] // CELL] == real).all()
        # node n39 has 2 GPUs: slots 2 and 3 are empty (n + 1); the rest of the image is gap (n)
        assert L.compact_index[L.gpu_y[158] // CELL, L.gpu_x[158] // CELL] == topo.n_gpus + 1
        assert (L.compact_index >= 0).all() and (L.compact_index <= topo.n_gpus + 1).all()
        assert (L.compact_index == topo.n_gpus).sum() == L.compact_index.size - topo.n_gpus


def test_continuous_codes_into_matches_colour_codes():
    import dataclasses

    from conftest import build_frame

    from widgets.heatmap_panel import METRIC_BY_KEY, CodeBuffers, colour_codes, continuous_codes_into

    frame = build_frame()
    rng = np.random.default_rng(3)
    n = frame.topology.n_gpus
    bufs = CodeBuffers(n)
    for key in ("util", "temp", "power", "tensor"):
        spec = METRIC_BY_KEY[key]
        values = rng.uniform(spec.lo - 10, spec.hi + 10, n).astype(np.float32)
        values[[1, 5, 9]] = [np.nan, np.inf, -np.inf]
        f = dataclasses.replace(frame, gpu=dataclasses.replace(frame.gpu, **{key: values}))
        expected = colour_codes(spec, f)[0]
        assert np.array_equal(continuous_codes_into(spec, values, bufs), expected)
        assert bufs.codes[1] == bufs.codes[5] == bufs.codes[9] == CODE_NO_DATA


def test_small_cells_draw_a_continuous_metric_one_pixel_per_gpu(qtbot, make_frame):
    from widgets.heatmap_panel import CELL, CODE_GAP, colour_codes

    frame = make_frame()
    panel = make_panel(qtbot, frame)
    panel.compact_below = 1e9  # as if the cells were too small for marks
    panel.set_metric("util")
    L = panel.layout_info
    assert panel.compact
    assert panel.image.shape == (L.height // CELL, L.width // CELL)
    assert np.shares_memory(panel.image_item.image, panel.image)  # a view, no copy
    expected = colour_codes(panel.metric_spec, frame)[0]
    # GPU 2 failed, 3 out of service: their cross and bar would cover most of a patch this
    # small, so the whole cell is dark, as the full-size image looks from afar
    expected[[2, 3]] = CODE_MARK_DARK
    assert [panel.code_of_gpu(g) for g in range(32)] == expected.tolist()
    assert panel.code_of_gpu(10) == round(0.30 * (N_CONT - 1))
    assert panel.code_of_gpu(4) == CODE_NO_DATA  # grey, never the colour of zero
    assert (panel.cell_pixels(10) == expected[10]).all()
    assert panel.image[0, 0] == CODE_GAP  # the label row
    # scaled up by CELL onto the same image coordinates as the full-size image
    r = panel.image_item.mapRectToParent(panel.image_item.boundingRect())
    assert (r.x(), r.y(), r.width(), r.height()) == (0.0, 0.0, float(L.width), float(L.height))
    # the gutter is drawn in its GPU's colour, so hovering it names that GPU
    assert panel.gpu_at_view(L.gpu_x[9] + 3.5, L.gpu_y[9] + 3.5) == 9
    assert "no data 9" in panel.legend.text()
    assert "failed or out of service 2 (cells too small for marks)" in panel.legend.text()
    # the health map keeps its cells and marks whatever the size
    panel.set_metric("health")
    assert not panel.compact and panel.image.shape == (L.height, L.width)
    failed = panel.cell_pixels(2).reshape(-1)
    assert (failed[PATTERNS[MARK_CROSS]] == CODE_MARK_DARK).all()


def test_leaving_the_compact_image_redraws_every_cell_and_mark(qtbot, make_frame):
    frame = make_frame()
    fresh = make_panel(qtbot, frame)
    fresh.set_metric("util")
    panel = make_panel(qtbot, frame)
    panel.compact_below = 1e9
    panel.set_metric("util")
    assert panel.compact
    panel.compact_below = 0.0  # the view grew: cells are big enough for marks again
    panel.show_frame(make_frame(seq=2))
    panel.render_now()
    assert not panel.compact
    assert np.array_equal(panel.image, fresh.image)
    assert "failed or out of service" not in panel.legend.text()
    assert panel.image_item.mapRectToParent(panel.image_item.boundingRect()).width() == panel.layout_info.width


def test_unchanged_compact_frame_is_not_redrawn(qtbot, make_frame, monkeypatch):
    import dataclasses

    frame = make_frame()
    panel = make_panel(qtbot, frame)
    panel.compact_below = 1e9
    panel.set_metric("util")
    image = panel.image
    calls: list[int] = []
    real = panel.image_item.setImage
    monkeypatch.setattr(panel.image_item, "setImage", lambda *a, **k: (calls.append(1), real(*a, **k)))
    panel.show_frame(make_frame(seq=2))
    panel.render_now()
    assert calls == []
    util = frame.gpu.util.copy()
    util[0] = 100.0
    panel.show_frame(dataclasses.replace(frame, gpu=dataclasses.replace(frame.gpu, util=util)))
    panel.render_now()
    assert calls == [1]
    assert panel.image is image  # updated in place
    assert panel.code_of_gpu(0) == N_CONT - 1


# --- blocks and names without racks -----------------------------------------------------------


def _frame_of(names: tuple[str, ...], rack_names: tuple[str, ...] = ("unracked",),
              node_rack: list[int] | None = None, rack_source: tuple[str, ...] = ("",), seq: int = 1,
              gpu_counts: list[int] | None = None):
    """The known frame re-cut onto other nodes (8 GPUs each, all OK): what the state builds for
    a site whose exporter has no rack label and whose config names no racks."""
    import dataclasses

    from conftest import build_frame

    from console.model import GpuFrame

    base = build_frame(seq=seq, simulated=False)
    n = len(names) * 8
    topo = Topology(
        node_names=names, node_rack=np.array(node_rack or [0] * len(names), np.int32),
        rack_names=rack_names, gpus_per_node=8,
        node_gpu_count=np.array(gpu_counts or [8] * len(names), np.int16),
        node_model=("H100",) * len(names), gpu_peak_tflops=np.full(n, 989.5, np.float32),
        gpu_max_clock_mhz=np.full(n, 1980.0, np.float32), version=6 + seq, rack_source=rack_source)
    arrays = {f.name: np.zeros(n, np.asarray(getattr(base.gpu, f.name)).dtype)
              for f in dataclasses.fields(GpuFrame) if getattr(base.gpu, f.name) is not None}
    arrays["job_row"][:], arrays["tenant"][:] = -1, -1
    return dataclasses.replace(base, topology=topo, gpu=GpuFrame(**arrays))


NINE = tuple(f"gpu{i:02d}" for i in range(1, 9)) + ("cpu01",)


def shown_panel(qtbot, frame, size=(900, 500)) -> HeatmapPanel:
    """A panel on screen (off-screen platform), so the map's view has its real size."""
    panel = HeatmapPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_frame(frame)
    panel.render_now()
    return panel


def _label_texts(items) -> list[str]:
    return [i.text() for i in items if i.isVisible()]


def test_without_racks_nodes_are_grouped_by_hostname_and_every_row_is_named(qtbot):
    panel = shown_panel(qtbot, _frame_of(NINE))
    assert _label_texts(panel._rack_items) == ["cpu", "gpu"]
    assert _label_texts(panel._row_items) == list(NINE)
    # the legend's layout gives the note its width when the event loop runs
    qtbot.waitUntil(lambda: panel.grouping_label.text() == "grouped by hostname prefix (no rack labels)")
    assert panel.grouping_label.isVisible()
    L = panel.layout_info
    view = panel.viewbox
    for i, item in enumerate(panel._row_items):
        # each name sits on its own row, centred on it, and fits left of the row's first GPU
        # without running into the block on its left
        assert (item.pos().x(), item.pos().y()) == (float(L.gpu_x[i * 8]), float(L.gpu_y[i * 8]) + PATCH / 2)
        width = item.boundingRect().width()
        left = view.mapViewToScene(pg.Point(item.pos().x(), 0)).x() + item.transform().dx()
        block_left = view.mapViewToScene(pg.Point(L.rack_origin[int(L.grouping.node_group[i])][0], 0)).x()
        assert item.transform().dx() == -width - 6 and left >= block_left
        assert item.transform().dy() == -item.boundingRect().height() / 2
        assert item.font().pixelSize() >= 10
    tip = panel.tooltip_for_gpu(3 * 8 + 1).splitlines()[0]
    assert tip == "GPU gpu04/1 (H100) \u2014 node gpu04, no rack, group gpu"


def test_many_nodes_get_numbered_blocks_and_no_row_names(qtbot):
    names = tuple(f"n{i:04d}" for i in range(1, 129))
    panel = shown_panel(qtbot, _frame_of(names), size=(1400, 500))  # room for the whole note
    assert panel._row_items == []
    assert panel.layout_info.grouping.names == ("n0001\u20130032", "n0033\u20130064", "n0065\u20130096",
                                                "n0097\u20130128")
    assert _label_texts(panel._rack_items)[0] == "n0001\u20130032"
    qtbot.waitUntil(lambda: panel.grouping_label.text()
                    == "grouped by hostname prefix, up to 32 nodes per block (no rack labels)")
    # the 33rd node is the first row of the second block
    L = panel.layout_info
    assert L.gpu_y[32 * 8] == L.gpu_y[0] and L.gpu_x[32 * 8] > L.gpu_x[31 * 8]


def test_racks_keep_their_names_and_the_legend_says_where_they_came_from(qtbot):
    frame = _frame_of(("gpu01", "gpu02", "gpu03"), rack_names=("A1", "unracked"), node_rack=[0, 0, 1],
                      rack_source=("config", ""))
    panel = shown_panel(qtbot, frame, size=(1400, 500))
    assert _label_texts(panel._rack_items) == ["A1", "gpu"]
    qtbot.waitUntil(lambda: panel.grouping_label.text()
                    == "racks from config; 1 node without a rack grouped by hostname prefix")
    assert panel.tooltip_for_gpu(0).splitlines()[0].endswith("node gpu01, rack A1")
    assert panel.tooltip_for_gpu(16).splitlines()[0].endswith("node gpu03, no rack, group gpu")
    labelled = _frame_of(("gpu01", "gpu02"), rack_names=("R01", "R02"), node_rack=[0, 1],
                         rack_source=("label", "label"), seq=2)
    panel.show_frame(labelled)
    panel.render_now()
    assert _label_texts(panel._rack_items) == ["R01", "R02"]
    qtbot.waitUntil(lambda: panel.grouping_label.text() == "racks from the exporter's rack label")


def test_the_simulator_racks_are_named_as_the_simulators(qtbot, make_frame):
    import dataclasses

    frame = make_frame()  # simulated, racks R01 and R02
    topo = dataclasses.replace(frame.topology, rack_source=("label", "label"))
    panel = shown_panel(qtbot, dataclasses.replace(frame, topology=topo))
    assert _label_texts(panel._rack_items) == ["R01", "R02"]
    qtbot.waitUntil(lambda: panel.grouping_label.text() == "racks from the simulator")


def test_rows_too_short_for_legible_names_are_left_unnamed(qtbot):
    names = tuple(f"gpu{i:02d}" for i in range(1, 65))  # 64 nodes: names wanted if they fit
    panel = shown_panel(qtbot, _frame_of(names))
    assert _label_texts(panel._row_items) == list(names)
    assert all(i.font().pixelSize() >= 10 for i in panel._row_items)
    panel.resize(420, 160)  # a small dock: rows a few pixels tall
    panel.show_frame(_frame_of(names, seq=2))
    panel.render_now()
    assert panel._row_items == [] and panel.layout_info.row_label_w == 0
    assert panel.layout_info.grouping.names == ("gpu01\u201332", "gpu33\u201364")


def test_a_narrow_legend_shortens_the_grouping_note_and_keeps_it_whole_in_the_tooltip(qtbot):
    panel = shown_panel(qtbot, _frame_of(NINE))
    full = "grouped by hostname prefix (no rack labels)"
    qtbot.waitUntil(lambda: panel.grouping_label.text() == full)
    panel.resize(520, 400)
    qtbot.waitUntil(lambda: panel.grouping_label.text() != full)
    assert panel.grouping_label.text().endswith("\u2026")
    assert panel.grouping_label.toolTip() == full and panel.grouping_label.full_text() == full
    assert "OK 72" in panel.legend.text()  # the counts beside it stay whole


def test_a_cpu_node_is_said_in_words_and_slots_a_node_lacks_are_not_drawn(qtbot):
    # cpu01 has no GPUs: no row of eight dark boxes (which reads as GPUs without data), its
    # name and "CPU node, no GPUs" instead. A 4-GPU node's other four slots stay undrawn too.
    counts = [8, 8, 8, 8, 4, 8, 8, 8, 0]
    panel = shown_panel(qtbot, _frame_of(NINE, gpu_counts=counts))
    assert _label_texts(panel._row_items) == list(NINE) + ["CPU node, no GPUs"]
    lut = build_lut(METRICS[0], theme.Theme())
    assert lut[CODE_EMPTY][3] == 0  # fully transparent, like the gaps between blocks

"""GPU health map: every GPU one cell of ONE image, grouped block -> node -> GPU.

A block is a rack when the config or the exporter's rack label names one; nodes nobody places
are grouped by host name (`console.grouping`), and the legend says which it is. With few
nodes, every row carries its node's name.

32,768 GPUs must repaint in a few milliseconds, so the map is a single pyqtgraph `ImageItem`
of uint8 colour codes through a fixed 256-entry lookup table (never one item per GPU, never
auto-levels). The geometry (which image pixel is which GPU) is computed once per topology
version, or when the view's shape changes a lot; per frame the panel only gathers codes through
precomputed index arrays. Hover maps the mouse to a GPU through the same index image.

Every GPU is a CELL x CELL block of image pixels: a 3 x 3 patch that carries its colour and,
for states that need more than colour, a mark (dot = degraded, cross = failed, bar = out of
service, slash = no data), plus a 1-pixel gutter so neighbouring GPUs stay distinguishable.
"No data" is grey with a slash, never the colour of zero.

Every GPU patch starts on a multiple of CELL, so the map can also be drawn at one image pixel
per GPU ("compact"), scaled up by CELL: a continuous metric redraws every cell every frame, and
when a patch is smaller than a few screen pixels its marks are not legible anyway. The compact
image is 16 times smaller to fill, colour and paint; geometry, hover and outlines are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QCursor, QPainterPath, QTransform
from PySide6.QtWidgets import (QComboBox, QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem,
                               QHBoxLayout, QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget)

from console.grouping import group_topology, is_fallback_rack, row_labels
from console.model import Frame, Health, Topology
from widgets import theme as _theme
from widgets.drilldown_common import MapSubject
from widgets.heatmap_layout import (CELL, COMPACT_BELOW, LABEL_PX, PATCH, RACK_GAP_CELLS, ROW_LABEL_MAX_NODES,
                                     HeatmapLayout, build_layout, outline_boxes)
from widgets.formatting import fmt_int, fmt_metric
from widgets.panel import Panel, PanelContext
from widgets.theme import HEALTH_WORDS, PanelHeader, colormap_lut, hex_rgba

#: Marks inside a 3x3 patch (row-major positions 0..8): none, dot, cross, bar, slash.
MARK_NONE, MARK_DOT, MARK_CROSS, MARK_BAR, MARK_SLASH = range(5)
PATTERNS = np.zeros((5, PATCH * PATCH), bool)
PATTERNS[MARK_DOT, [4]] = True
PATTERNS[MARK_CROSS, [0, 2, 4, 6, 8]] = True
PATTERNS[MARK_BAR, [3, 4, 5]] = True
PATTERNS[MARK_SLASH, [2, 4, 6]] = True


# ---------------------------------------------------------------------------------------------
# Colour codes: one fixed lookup table per metric
# ---------------------------------------------------------------------------------------------

N_CONT = 240  # codes 0..239: the continuous colour map
CODE_HEALTH = 240  # 240..244: Health.OK .. Health.NO_DATA
CODE_NO_DATA = 245
CODE_MARK_DARK = 246
CODE_MARK_LIGHT = 247
CODE_GAP = 248
CODE_EMPTY = 249  # a GPU slot the node does not have


@dataclass(frozen=True)
class MetricSpec:
    key: str  # "health" or a GpuFrame attribute
    label: str
    lo: float
    hi: float
    cmap: str  # pyqtgraph colour map name ("" for the categorical health colours)
    note: str = ""


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("health", "Health", 0, 4, ""),
    MetricSpec("util", "GPU utilisation", 0.0, 100.0, "viridis"),
    MetricSpec("tensor", "Tensor activity", 0.0, 1.0, "viridis"),
    MetricSpec("temp", "Temperature", 30.0, 90.0, "CET-D1", "red = near the 87 \u00b0C slowdown"),
    MetricSpec("power", "Power", 0.0, 700.0, "viridis"),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}

HEALTH_MARKS = {
    Health.OK: MARK_NONE, Health.DEGRADED: MARK_DOT, Health.FAILED: MARK_CROSS,
    Health.UNAVAILABLE: MARK_BAR, Health.NO_DATA: MARK_SLASH,
}
MARK_GLYPHS = {MARK_NONE: "\u25a0", MARK_DOT: "\u25a3", MARK_CROSS: "\u2612",
               MARK_BAR: "\u229f", MARK_SLASH: "\u25a8"}


def build_lut(spec: MetricSpec, theme: _theme.Theme) -> np.ndarray:
    """uint8[256, 4]: the continuous map, health colours, no-data grey, marks, gaps."""
    lut = np.zeros((256, 4), np.uint8)
    if spec.cmap:
        lut[:N_CONT] = colormap_lut(spec.cmap, N_CONT)
    for h in Health:
        lut[CODE_HEALTH + int(h)] = hex_rgba(theme.health[h])
    lut[CODE_NO_DATA] = hex_rgba(theme.health[Health.NO_DATA])
    lut[CODE_MARK_DARK] = hex_rgba("#0b0c0f")
    lut[CODE_MARK_LIGHT] = hex_rgba("#c8ccd4")
    lut[CODE_GAP] = hex_rgba(theme.background, 0)
    # A slot the node does not have is not drawn at all: a dark box there reads as a GPU
    # without data (a CPU-only node would look like eight of them).
    lut[CODE_EMPTY] = hex_rgba(theme.background, 0)
    return lut


def colour_codes(spec: MetricSpec, frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-GPU (colour code, mark, mark code) for one metric; vectorised, no per-GPU Python."""
    health = np.asarray(frame.gpu.health)
    hcodes = np.clip(health, 0, 4).astype(np.intp)
    marks = np.array([HEALTH_MARKS[Health(i)] for i in range(5)], np.uint8)[hcodes]
    if spec.key == "health":
        codes = (CODE_HEALTH + hcodes).astype(np.uint8)
        mark_codes = np.where(hcodes == Health.NO_DATA, CODE_MARK_LIGHT, CODE_MARK_DARK).astype(np.uint8)
        return codes, marks, mark_codes
    values = np.asarray(getattr(frame.gpu, spec.key), np.float32)
    nan = ~np.isfinite(values)
    scaled = (np.where(nan, np.float32(spec.lo), values) - spec.lo) * ((N_CONT - 1) / (spec.hi - spec.lo))
    codes = np.clip(np.rint(scaled), 0, N_CONT - 1).astype(np.uint8)
    codes[nan] = CODE_NO_DATA
    marks = np.where(nan, MARK_SLASH, marks).astype(np.uint8)
    mark_codes = np.full(len(codes), CODE_MARK_LIGHT, np.uint8)
    return codes, marks, mark_codes


class CodeBuffers:
    """Preallocated per-GPU buffers for the continuous colour codes: a metric redrawn every
    frame should not allocate a handful of 32,768-element arrays each time."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.scratch = np.empty(n, np.float32)
        self.missing = np.empty(n, bool)
        self.flag = np.empty(n, bool)
        # codes of the GPUs, then the gap and empty-slot codes the compact gather points at
        self.ext = np.empty(n + 2, np.uint8)
        self.ext[n], self.ext[n + 1] = CODE_GAP, CODE_EMPTY
        self.drawn = np.empty(n, np.uint8)

    @property
    def codes(self) -> np.ndarray:
        return self.ext[:self.n]


def continuous_codes_into(spec: MetricSpec, values: np.ndarray, buf: CodeBuffers) -> np.ndarray:
    """The colour codes of `colour_codes` for a continuous metric, written into `buf.codes`."""
    values = np.asarray(values, np.float32)
    sc, miss, out = buf.scratch, buf.missing, buf.codes
    np.isfinite(values, out=miss)
    np.logical_not(miss, out=miss)
    np.subtract(values, np.float32(spec.lo), out=sc)
    np.multiply(sc, np.float32((N_CONT - 1) / (spec.hi - spec.lo)), out=sc)
    np.copyto(sc, 0.0, where=miss)
    np.clip(sc, 0, N_CONT - 1, out=sc)
    np.rint(sc, out=sc)
    np.copyto(out, sc, casting="unsafe")
    np.copyto(out, CODE_NO_DATA, where=miss)
    return out


class CodeImageItem(pg.ImageItem):
    """A pyqtgraph `ImageItem` for uint8 colour codes that paints an opaque RGB32 image.

    Qt scales an opaque RGB32 image several times faster than the indexed image pyqtgraph
    makes from codes and a lookup table: measured 0.2 ms against 1.5 ms (1.9 ms with
    transparent entries) to draw the compact 4,096-node map at 1070 x 444, and the indexed
    image is converted again on every repaint. The lookup table's alpha is ignored: gaps are
    painted in the background colour, which looks the same and needs no blending.
    """

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self._lut_src: np.ndarray | None = None
        self._lut32 = np.zeros(256, np.uint32)
        self._rgb = np.zeros((0, 0), np.uint32)

    def render(self) -> None:
        img, lut = self.image, self.lut
        if (img is None or img.ndim != 2 or img.dtype != np.uint8 or img.size == 0
                or not isinstance(lut, np.ndarray) or lut.shape != (256, 4)):
            super().render()  # anything else: pyqtgraph's own conversion
            return
        if lut is not self._lut_src:
            rgb = lut[:, :3].astype(np.uint32)
            self._lut32 = (np.uint32(0xFF000000) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8)
                           | rgb[:, 2]).astype(np.uint32)
            self._lut_src = lut
        if self._rgb.shape != img.shape:
            self._rgb = np.empty(img.shape, np.uint32)
        np.take(self._lut32, img, out=self._rgb, mode="clip")
        self.qimage = pg.functions.ndarray_to_qimage(self._rgb, pg.QtGui.QImage.Format.Format_RGB32)
        self._renderRequired = False
        self._unrenderable = False


class ElidedLabel(QLabel):
    """One line that ends in "…" when its row is too narrow, the whole text in its tooltip:
    the grouping note must never push the health counts beside it out of view."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        if text == self._full:
            return
        self._full = text
        self.setToolTip(text)
        self.updateGeometry()
        self._elide()

    def sizeHint(self):  # noqa: N802 - Qt override
        hint = super().sizeHint()
        hint.setWidth(self.fontMetrics().horizontalAdvance(self._full) + 4)
        return hint

    def minimumSizeHint(self):  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        hint.setWidth(min(self.fontMetrics().horizontalAdvance("…") * 4, self.sizeHint().width()))
        return hint

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        text = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(self.width(), 0))
        if text != self.text():
            self.setText(text)


class HeatmapPanel(Panel):
    """The GPU health map with metric selector, legend, hover tooltip and click (GUI thread)."""

    title = "GPU health map"
    redraw_ms = 500

    def __init__(self, context: PanelContext | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context or PanelContext()
        self.public_safe = False  # presentation mode: no job, user or tenant names
        self.metric_spec: MetricSpec = METRICS[0]
        self.layout_info: HeatmapLayout | None = None
        self.image: np.ndarray = np.zeros((1, 1), np.uint8)
        self.lut = build_lut(self.metric_spec, _theme.current())
        self._layout_view_size = (0, 0)
        self._layout_cluster = ""  # versions count per cluster: a switch of cluster relayouts
        self._rack_items: list[QGraphicsSimpleTextItem] = []  # block labels
        self._row_items: list[QGraphicsSimpleTextItem] = []  # node names beside their rows
        self._hover_g = -1
        self._subject: MapSubject | None = None
        self._outline_key: tuple | None = None  # (layout, GPUs) the outline was built for
        self.outline_boxes = np.zeros((0, 4), np.int32)
        self._drawn: tuple | None = None  # (layout, lut, codes, marks, mark codes) on screen
        self.compact_below = COMPACT_BELOW
        self.compact = False  # the image on screen is one pixel per GPU
        self._compact_image = np.zeros((1, 1), np.uint8)
        self._bufs = CodeBuffers(0)
        self._compact_drawn: tuple | None = None  # (layout, lut) of the compact image
        self._image_geometry: tuple | None = None  # (layout, compact) the item is scaled for

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 4)
        lay.setSpacing(2)
        self.header = PanelHeader(self.title, self)
        self.selector = QComboBox(self)
        for m in METRICS:
            self.selector.addItem(m.label, m.key)
        self.selector.currentIndexChanged.connect(self._on_metric_changed)
        self.header.add_widget(self.selector)
        lay.addWidget(self.header)

        self.view = pg.GraphicsLayoutWidget(self)
        self.view.setBackground(_theme.current().background)
        self.view.ci.setContentsMargins(0, 0, 0, 0)
        self.viewbox = self.view.addViewBox()
        self.viewbox.setMouseEnabled(False, False)
        self.viewbox.setMenuEnabled(False)
        self.viewbox.invertY(True)
        self.viewbox.setAspectLocked(True)
        self.viewbox.setDefaultPadding(0.01)
        self.image_item = CodeImageItem()
        self.image_item.setAutoDownsample(False)
        self.viewbox.addItem(self.image_item)
        # The subject of the active drill-down window: one path of rectangles (a node, a GPU,
        # or all of a job's nodes) over the image, updated in place rather than re-rendering
        # the map. A light line on a dark halo stays visible on the darkest and the brightest
        # cells alike; cosmetic pens keep their width at any zoom.
        self.outline_halo = QGraphicsPathItem()
        self.outline_item = QGraphicsPathItem()
        for item, colour, width, z in ((self.outline_halo, "#000000", 5, 10),
                                       (self.outline_item, "#ffffff", 2, 11)):
            pen = pg.mkPen(colour, width=width)
            pen.setCosmetic(True)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            item.setPen(pen)
            item.setBrush(Qt.BrushStyle.NoBrush)
            item.setZValue(z)
            item.hide()
            self.viewbox.addItem(item, ignoreBounds=True)
        lay.addWidget(self.view, 1)

        self.legend = QLabel(self)
        self.legend.setObjectName("HeatmapLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.colour_bar = QLabel(self)
        self.colour_bar.setFixedHeight(12)
        self.colour_bar.setMinimumWidth(160)
        legend_row = QWidget(self)
        lrow = QHBoxLayout(legend_row)
        lrow.setContentsMargins(6, 0, 6, 0)
        self.bar_lo = QLabel(self)
        self.bar_hi = QLabel(self)
        lrow.addWidget(self.bar_lo)
        lrow.addWidget(self.colour_bar)
        lrow.addWidget(self.bar_hi)
        lrow.addWidget(self.legend, 1)
        # How the blocks were chosen ("racks from config", "grouped by hostname prefix"): an
        # operator must know whether a block is a rack before reading "rack" into it.
        self.grouping_label = ElidedLabel(self)
        self.grouping_label.setObjectName("HeatmapGrouping")
        self.grouping_label.setStyleSheet(f"color: {_theme.current().text_dim};")
        lrow.addWidget(self.grouping_label, 0)
        lay.addWidget(legend_row)

        scene = self.view.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)
        self._apply_metric_legend()

    # -- public API -------------------------------------------------------------------------

    def set_metric(self, key: str) -> None:
        """Colour the map by `key` ("health", "util", "tensor", "temp", "power")."""
        idx = [m.key for m in METRICS].index(key)
        self.selector.setCurrentIndex(idx)  # emits -> _on_metric_changed

    def gpu_at_view(self, x: float, y: float) -> int:
        """Flat GPU index under view (image) coordinates, -1 over gaps."""
        return -1 if self.layout_info is None else self.layout_info.gpu_at(x, y, self.compact)

    def gpu_at_scene(self, pos: QPointF) -> int:
        p = self.viewbox.mapSceneToView(pos)
        return self.gpu_at_view(p.x(), p.y())

    def code_of_gpu(self, g: int) -> int:
        """The colour code of GPU g's cell (read where no mark is ever drawn: top middle)."""
        assert self.layout_info is not None
        x, y = int(self.layout_info.gpu_x[g]), int(self.layout_info.gpu_y[g])
        if self.compact:
            return int(self.image[y // CELL, x // CELL])
        return int(self.image[y, x + 1])

    def rgba_of_gpu(self, g: int) -> tuple[int, int, int, int]:
        """The fill colour of GPU g's cell."""
        return tuple(int(v) for v in self.lut[self.code_of_gpu(g)])  # type: ignore[return-value]

    def cell_pixels(self, g: int) -> np.ndarray:
        """uint8[3, 3] colour codes of GPU g's patch (colour plus mark) as drawn."""
        assert self.layout_info is not None
        if self.compact:
            return np.full((PATCH, PATCH), self.code_of_gpu(g), np.uint8)
        x, y = int(self.layout_info.gpu_x[g]), int(self.layout_info.gpu_y[g])
        return self.image[y:y + PATCH, x:x + PATCH].copy()

    def tooltip_for_gpu(self, g: int, frame: Frame | None = None) -> str:
        """Plain-text tooltip: GPU, node, rack, health, job and tenant, then the values."""
        frame = frame or self.frame
        if frame is None or not (0 <= g < frame.topology.n_gpus):
            return ""
        topo = frame.topology
        node_i, local = divmod(g, topo.gpus_per_node)
        node = topo.node_names[node_i]
        model = topo.node_model[node_i] if node_i < len(topo.node_model) else ""
        gf = frame.gpu
        health = Health(int(gf.health[g])) if 0 <= int(gf.health[g]) <= 4 else Health.NO_DATA
        lines = [f"GPU {node}/{local}{f' ({model})' if model else ''} \u2014 node {node}, "
                 f"{self._place_of(topo, node_i)}"]
        hline = f"Health: {HEALTH_WORDS[health]}"
        xid = float(gf.xid[g])
        if math.isfinite(xid) and xid > 0:
            hline += f" \u00b7 last XID {int(xid)}"
        lines.append(hline)
        row = int(gf.job_row[g])
        if row >= 0 and row < len(frame.jobs):
            jid = int(frame.jobs.job_id[row])
            if self.public_safe:
                lines.append(f"In use by job {jid}")
            else:
                name = str(frame.jobs.name[row])
                t = int(gf.tenant[g])
                tenant = frame.tenants.account[t] if 0 <= t < len(frame.tenants) else frame.jobs.accounts[int(frame.jobs.account[row])]
                lines.append(f"Job {jid} \u201c{name}\u201d \u2014 tenant {tenant}, user {frame.jobs.user[row]}")
        else:
            lines.append("No job")
        lines.append(f"Utilisation {fmt_metric('util', gf.util[g])} \u00b7 tensor {fmt_metric('tensor', gf.tensor[g])}"
                     f" \u00b7 SM clock {fmt_metric('sm_clock', gf.sm_clock[g])}")
        lines.append(f"Temperature {fmt_metric('temp', gf.temp[g])} \u00b7 power {fmt_metric('power', gf.power[g])}"
                     f" \u00b7 memory {fmt_metric('fb_used', gf.fb_used[g])}")
        lines.append(f"Delivering {fmt_metric('delivered_tflops', gf.delivered_tflops[g])}")
        return "\n".join(lines)

    def _place_of(self, topo: Topology, node_i: int) -> str:
        """ "rack R07", or for a node no config or label places "no rack, group gpu": a
        host-name group must not be read as a rack."""
        rack_i = int(topo.node_rack[node_i])
        rack = topo.rack_names[rack_i] if 0 <= rack_i < len(topo.rack_names) else "?"
        if not is_fallback_rack(rack_i, topo.rack_names, topo.rack_source):
            return f"rack {rack}"
        L = self.layout_info
        if L is None or L.topology_version != topo.version or node_i >= len(L.grouping.node_group):
            return "no rack"
        return f"no rack, group {L.grouping.names[int(L.grouping.node_group[node_i])]}"

    def set_outline(self, subject: MapSubject | None) -> None:
        """Outline the subject of the active drill-down window; None clears the outline.

        A job's outline follows the GPUs it holds in each new frame (gone when it holds
        none); nothing is outlined on frames of a cluster other than `subject.cluster`.
        """
        self._subject = subject
        self._place_outline()

    @property
    def subject(self) -> MapSubject | None:
        return self._subject

    def set_highlight(self, node: str | None, gpu: int | None = None) -> None:
        """Outline ``node`` (or its GPU ``gpu``) on the map; None clears the outline."""
        self.set_outline(None if node is None else MapSubject(node=node, gpu=gpu))

    def outline_rects(self) -> list[tuple[float, float, float, float]]:
        """(x, y, width, height) of each outlined rectangle, image coordinates; [] if none."""
        if not self.outline_item.isVisible():
            return []
        pad = 0.5
        return [(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad)
                for x0, y0, x1, y1 in self.outline_boxes.tolist()]

    def highlight_rect(self) -> tuple[float, float, float, float] | None:
        """(x, y, width, height) around the whole outline in image coordinates, None when hidden."""
        rects = self.outline_rects()
        if not rects:
            return None
        x0 = min(r[0] for r in rects)
        y0 = min(r[1] for r in rects)
        x1 = max(r[0] + r[2] for r in rects)
        y1 = max(r[1] + r[3] for r in rects)
        return x0, y0, x1 - x0, y1 - y0

    def _subject_gpus(self, frame: Frame) -> np.ndarray:
        subject = self._subject
        if subject is None or (subject.cluster is not None and subject.cluster != frame.cluster):
            return np.zeros(0, np.intp)
        topo = frame.topology
        if subject.job_id is not None:
            return np.flatnonzero(frame.gpu.job_id == subject.job_id)
        if subject.nodes:
            index = topo.node_index()
            rows = np.array([index[n] for n in subject.nodes if n in index], np.intp)
            if rows.size == 0:
                return np.zeros(0, np.intp)
            local = np.arange(topo.gpus_per_node)
            real = local[None, :] < np.asarray(topo.node_gpu_count)[rows][:, None]
            return (rows[:, None] * topo.gpus_per_node + local[None, :])[real]
        if subject.tenant is not None:
            accounts = tuple(frame.tenants.account)
            if subject.tenant not in accounts:
                return np.zeros(0, np.intp)
            return np.flatnonzero(np.asarray(frame.gpu.tenant) == accounts.index(subject.tenant))
        node_i = topo.node_index().get(subject.node, -1) if subject.node is not None else -1
        if node_i < 0:
            return np.zeros(0, np.intp)
        gpn = topo.gpus_per_node
        if subject.gpu is not None and 0 <= subject.gpu < gpn:
            return np.array([node_i * gpn + subject.gpu], np.intp)
        return node_i * gpn + np.arange(max(1, int(topo.node_gpu_count[node_i])), dtype=np.intp)

    def _place_outline(self) -> None:
        L, frame = self.layout_info, self.frame
        gpus = np.zeros(0, np.intp) if L is None or frame is None else self._subject_gpus(frame)
        key = self._outline_key
        if key is not None and key[0] is L and np.array_equal(key[1], gpus):
            return  # the same GPUs on the same geometry: the path on screen is right
        self._outline_key = (L, gpus)
        boxes = np.zeros((0, 4), np.int32) if L is None else outline_boxes(L, gpus)
        self.outline_boxes = boxes
        if len(boxes) == 0:
            self.outline_halo.hide()
            self.outline_item.hide()
            return
        pad = 0.5
        path = QPainterPath()
        for x0, y0, x1, y1 in boxes.tolist():
            path.addRect(QRectF(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad))
        for item in (self.outline_halo, self.outline_item):
            item.setPath(path)
            item.show()

    # -- rendering ----------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        self._ensure_layout(frame.topology, frame.cluster, frame.simulated)
        L = self.layout_info
        assert L is not None
        if self.metric_spec.cmap and L.scale < self.compact_below:
            codes = self._render_compact(frame, L)
        else:
            codes = self._render_cells(frame, L)
        if self._image_geometry != (L, self.compact):
            # The compact image is scaled up by CELL onto the same image coordinates, so hover,
            # rack labels and outlines do not care which one is on screen.
            self._image_geometry = (L, self.compact)
            self.image_item.setRect(QRectF(0, 0, L.width, L.height))
        stale = self.header.set_age(frame, "telemetry")
        opacity = 0.35 if stale else 1.0
        if self.image_item.opacity() != opacity:
            self.image_item.setOpacity(opacity)
        self._update_legend_counts(frame, codes)
        self._place_outline()
        if self._hover_g >= 0:
            self._hover_g = -1  # values changed: the next mouse move rebuilds the tooltip

    def _render_cells(self, frame: Frame, L: HeatmapLayout) -> np.ndarray:
        """CELL x CELL pixels per GPU, with marks; returns the per-GPU colour codes."""
        codes, marks, mark_codes = colour_codes(self.metric_spec, frame)
        drawn = self._drawn
        if not (not self.compact and drawn is not None and drawn[0] is L and drawn[1] is self.lut
                and np.array_equal(drawn[2], codes) and np.array_equal(drawn[3], marks)
                and np.array_equal(drawn[4], mark_codes)):
            # Only when a cell's colour or mark changed: health changes rarely, and an unchanged
            # image then costs neither the scatter (300k pixels at 4,096 nodes) nor a repaint.
            img = self._cell_image
            flat = img.reshape(-1)
            vg = L.valid_gpu
            flat[L.valid_pos] = codes[vg]  # every cell pixel, so old marks are gone too
            if marks.any():  # continuous metrics mark only missing data: usually nothing to do
                m = PATTERNS[marks[vg], L.valid_sub]
                flat[L.valid_pos[m]] = mark_codes[vg[m]]
            self.compact = False
            self.image = img
            self.image_item.setImage(img, autoLevels=False, levels=(0, 255), lut=self.lut)
            self._drawn = (L, self.lut, codes, marks, mark_codes)
        return codes

    def _render_compact(self, frame: Frame, L: HeatmapLayout) -> np.ndarray:
        """One pixel per GPU: codes into preallocated buffers, one gather into the image in
        place, and no new image unless a cell changed. Returns the per-GPU colour codes."""
        bufs = self._bufs
        if bufs.n != L.n_gpus:
            bufs = self._bufs = CodeBuffers(L.n_gpus)
            self._compact_drawn = None
        codes = continuous_codes_into(self.metric_spec, getattr(frame.gpu, self.metric_spec.key), bufs)
        # A failed or out-of-service GPU's cross or bar covers most of a patch this small, so
        # the full-size image shows it as a dark cell: draw it so here too, not in its colour.
        health = np.asarray(frame.gpu.health)
        out_of_use, flag = bufs.missing, bufs.flag
        np.equal(health, int(Health.FAILED), out=out_of_use)
        np.equal(health, int(Health.UNAVAILABLE), out=flag)
        np.logical_or(out_of_use, flag, out=out_of_use)
        np.copyto(codes, CODE_MARK_DARK, where=out_of_use)
        drawn = self._compact_drawn
        if (self.compact and drawn is not None and drawn[0] is L and drawn[1] is self.lut
                and np.array_equal(codes, bufs.drawn)):
            return codes
        img = self._compact_image
        np.take(bufs.ext, L.compact_index, out=img, mode="clip")
        bufs.drawn[:] = codes
        self.compact = True
        self.image = img
        self.image_item.setImage(img, autoLevels=False, levels=(0, 255), lut=self.lut)
        self._compact_drawn = (L, self.lut)
        self._drawn = None  # the cell image is stale now: redraw it whole when it is next used
        return codes

    def _ensure_layout(self, topology: Topology, cluster: str = "", simulated: bool = False) -> None:
        """Rebuild the geometry when the topology (of this cluster: every cluster numbers its
        own versions) changes or the view's shape changed a lot."""
        size = (max(self.view.width(), 200), max(self.view.height(), 120))
        L = self.layout_info
        old = self._layout_view_size
        resized = old[0] == 0 or abs(size[0] / old[0] - 1) > 0.2 or abs(size[1] / old[1] - 1) > 0.2
        if (L is not None and L.topology_version == topology.version and L.n_gpus == topology.n_gpus
                and cluster == self._layout_cluster and not resized):
            return
        self._layout_view_size = size
        self._layout_cluster = cluster
        th = _theme.current()
        font = pg.QtGui.QFont(th.font_family)
        font.setPixelSize(th.px(13))
        metrics = pg.QtGui.QFontMetrics(font)
        grouping = group_topology(topology, simulated=simulated)
        longest = max(grouping.names, key=len, default="")
        label_px = metrics.horizontalAdvance(longest) + 12  # a label never touches the next one
        names = row_labels(topology.node_names) if topology.n_nodes <= ROW_LABEL_MAX_NODES else ()
        label_row_px = max(LABEL_PX, metrics.height() + 4)

        def plan(row_font) -> HeatmapLayout:
            row_px = self._row_label_width(names, row_font) if row_font is not None else 0.0
            # Leave room on the right for the last label in a row to overhang its block.
            return build_layout(topology, size[0] - 8 - label_px / 2, size[1] - 8, label_text_px=label_px,
                                gap_code=CODE_GAP, empty_code=CODE_EMPTY, label_row_px=label_row_px,
                                grouping=grouping, row_label_px=row_px)

        row_font = None
        if names:
            row_font = pg.QtGui.QFont(th.font_family)
            row_font.setPixelSize(th.px(13))
        L = plan(row_font)
        if row_font is not None:
            want = self._row_font_px(CELL * L.scale, th)
            if want > row_font.pixelSize():  # tall rows: bigger names, in a wider column
                row_font.setPixelSize(want)
                L = plan(row_font)
                want = self._row_font_px(CELL * L.scale, th)
            if want < 10:  # rows too short for legible names (UI.md: no text under 10 px)
                row_font, names = None, ()
                L = plan(None)
            else:  # never taller than the row; a smaller font fits the column kept for it
                row_font.setPixelSize(min(row_font.pixelSize(), want))
        self.layout_info = L
        self._cell_image = L.background.copy()
        self._compact_image = np.empty(L.compact_index.shape, np.uint8)
        self.image = self._cell_image
        self._drawn = self._compact_drawn = None
        for item in self._rack_items + self._row_items:
            self.viewbox.removeItem(item)
        self._rack_items, self._row_items = [], []
        for r, (x, y) in enumerate(L.rack_origin):
            # Label whole columns of the grid, so labels line up from row to row.
            if (r % L.columns) % L.rack_label_stride or r >= len(grouping.names):
                continue
            self._rack_items.append(self._add_label(grouping.names[r], font, th.text_dim, x - 1, y))
        if row_font is not None:
            gpn = topology.gpus_per_node
            for i, name in enumerate(names):
                # Right-aligned against the node's first GPU, centred on its row.
                x, y = float(L.gpu_x[i * gpn]), float(L.gpu_y[i * gpn]) + PATCH / 2
                self._row_items.append(self._add_label(name, row_font, th.text, x, y, right_middle=True))
                if int(topology.node_gpu_count[i]) == 0:  # said in words where its GPUs would be
                    self._row_items.append(self._add_label(
                        "CPU node, no GPUs", row_font, th.text_dim, x, float(L.gpu_y[i * gpn])))
        self.grouping_label.set_full_text(grouping.how)
        overhang = label_px / max(L.scale, 1e-3) / 2
        self.viewbox.setRange(xRange=(0, L.width + overhang), yRange=(0, L.height), padding=0.01)

    def _add_label(self, text: str, font, colour: str, x: float, y: float,
                   right_middle: bool = False) -> QGraphicsSimpleTextItem:
        """A label at image point (x, y): its top left there, or with ``right_middle`` its
        right end (6 screen pixels short) and its middle, for a node's name beside its row."""
        # A plain C++ text item that ignores the view's scaling: pyqtgraph's TextItem
        # recomputes its transform in Python on every paint, which at 4,096 nodes (hundreds
        # of rack labels) cost several milliseconds per frame.
        item = QGraphicsSimpleTextItem(text)
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        # Drawn from a cached pixmap: the labels repaint with the map under them on every
        # frame of a continuous metric, and laying out glyphs costs more than a blit.
        item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        item.setBrush(pg.mkBrush(colour))
        item.setFont(font)
        if right_middle:  # in screen pixels: the item ignores the view's scaling
            box = item.boundingRect()
            item.setTransform(QTransform.fromTranslate(-box.width() - 6, -box.height() / 2))
        item.setPos(x, y)
        self.viewbox.addItem(item)
        return item

    @staticmethod
    def _row_label_width(names: tuple[str, ...], font) -> float:
        """Screen pixels the longest node name needs beside its row, margins included."""
        metrics = pg.QtGui.QFontMetrics(font)
        return float(max((metrics.horizontalAdvance(n) for n in names), default=0) + 12)

    @staticmethod
    def _row_font_px(row_h: float, th: _theme.Theme) -> int:
        """Node-name size for rows ``row_h`` screen pixels tall: about half a tall row (up to
        1.7 times the desk size, for a wall), the desk size when the row holds it, else as
        much as the row holds; under 10 means the rows are too short for names."""
        return max(min(int(row_h * 0.55), th.px(22)), min(th.px(13), int(row_h * 0.9)))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._dirty = self._frame is not None

    def _apply_metric_legend(self) -> None:
        spec = self.metric_spec
        continuous = bool(spec.cmap)
        for w in (self.colour_bar, self.bar_lo, self.bar_hi):
            w.setVisible(continuous)
        if continuous:
            stops = ", ".join(
                f"stop:{i / 8:.3f} rgb({r},{g},{b})"
                for i, (r, g, b, _a) in enumerate(self.lut[np.linspace(0, N_CONT - 1, 9).astype(int)]))
            self.colour_bar.setStyleSheet(
                f"background: qlineargradient(x1:0, y1:0, x2:1, y2:0, {stops}); border-radius: 2px;")
            self.bar_lo.setText(fmt_metric(spec.key, spec.lo))
            self.bar_hi.setText(fmt_metric(spec.key, spec.hi))

    def _update_legend_counts(self, frame: Frame, codes: np.ndarray) -> None:
        th = _theme.current()
        exists = frame.topology.gpu_exists()
        if self.metric_spec.key == "health":
            counts = np.bincount(np.clip(frame.gpu.health[exists], 0, 4).astype(np.intp), minlength=5)
            parts = [
                f'<span style="color:{th.health[h]}">{MARK_GLYPHS[HEALTH_MARKS[h]]}</span> '
                f"{HEALTH_WORDS[h]} {fmt_int(counts[int(h)])}"
                for h in Health
            ]
        else:
            n_nd = int((codes[exists] == CODE_NO_DATA).sum())
            parts = [f'<span style="color:{th.health[Health.NO_DATA]}">{MARK_GLYPHS[MARK_SLASH]}</span> '
                     f"no data {fmt_int(n_nd)}"]
            if self.compact:
                n_dark = int((codes[exists] == CODE_MARK_DARK).sum())
                parts.append(f"\u25a1 failed or out of service {fmt_int(n_dark)} (cells too "
                             "small for marks)")
            if self.metric_spec.note:
                parts.insert(0, self.metric_spec.note)
        text = " &nbsp;&nbsp; ".join(parts)
        if self.legend.text() != text:
            self.legend.setText(text)

    # -- slots ----------------------------------------------------------------------------------

    def _on_metric_changed(self, index: int) -> None:
        self.metric_spec = METRICS[index]
        self.lut = build_lut(self.metric_spec, _theme.current())
        self._apply_metric_legend()
        if self._frame is not None:
            self.render(self._frame)

    def _on_mouse_moved(self, pos: QPointF) -> None:
        g = self.gpu_at_scene(pos)
        if g == self._hover_g:
            return
        self._hover_g = g
        if g < 0:
            QToolTip.hideText()
            return
        QToolTip.showText(QCursor.pos(), self.tooltip_for_gpu(g), self.view)

    def _on_mouse_clicked(self, event) -> None:
        g = self.gpu_at_scene(event.scenePos())
        frame = self.frame
        if g < 0 or frame is None:
            return
        node_i, local = divmod(g, frame.topology.gpus_per_node)
        self.context.navigator.gpu_requested.emit(frame.topology.node_names[node_i], int(local))

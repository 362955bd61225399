"""Health-map geometry: which image pixel is which GPU, block by block (pure numpy, no Qt).

A block is a rack, or, for nodes no config or label places, a group `console.grouping` finds
from their host names. Computed once per topology version, or when the view's shape changes a
lot; kept apart from the panel so the layout can be tested and reasoned about without a display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from console.grouping import Grouping, group_topology
from console.model import Topology

# ---------------------------------------------------------------------------------------------
# Geometry: where each GPU sits (pure numpy, computed once per topology version)
# ---------------------------------------------------------------------------------------------

CELL = 4  # image pixels per GPU along each axis (3 drawn + 1 gutter)
PATCH = 3
RACK_GAP_CELLS = 2  # horizontal gap between rack blocks, in cells
LABEL_PX = 20  # screen pixels reserved above each row of racks for the rack labels
#: Node names are written beside their rows only up to this many nodes: beyond it a row is a
#: few screen pixels tall and the names would only be noise (the tooltip names every GPU).
ROW_LABEL_MAX_NODES = 64
#: Continuous metrics are drawn compact (one image pixel per GPU) below this many screen
#: pixels per image pixel: a mark's pixel is then smaller than a screen pixel and shows, or
#: not, by the luck of the scaling rather than by the GPU's state.
COMPACT_BELOW = 1.0


@dataclass(frozen=True, eq=False)
class HeatmapLayout:
    """The image geometry for one topology version."""

    topology_version: int
    n_gpus: int
    width: int  # image pixels
    height: int
    columns: int  # blocks per grid row
    scale: float  # expected screen pixels per image pixel at the size it was planned for
    pix_gpu: np.ndarray  # int32[height, width]: flat GPU index, -1 = gap
    valid_pos: np.ndarray  # int64: flat image positions that belong to a GPU
    valid_gpu: np.ndarray  # int32: the GPU of each such position
    valid_sub: np.ndarray  # uint8: position 0..8 inside the GPU's 3x3 patch
    gpu_x: np.ndarray  # int32[n_gpus]: left image pixel of each GPU patch (-1 if not drawn)
    gpu_y: np.ndarray  # int32[n_gpus]
    rack_origin: tuple[tuple[float, float], ...]  # image (x, y) of each block label, block order
    rack_label_stride: int  # label every n-th block when blocks are narrower than a label
    background: np.ndarray  # uint8[height, width] base image (gaps and empty slots)
    #: intp[height // CELL, width // CELL]: the GPU of each cell, n_gpus for a gap, n_gpus + 1
    #: for an empty slot; one gather through it draws the compact image.
    compact_index: np.ndarray
    #: The blocks drawn (racks, or host-name groups for nodes without a rack) and how chosen.
    grouping: Grouping
    #: Image pixels kept left of each block's GPUs for the node names (0: no row labels).
    row_label_w: int = 0

    def gpu_at(self, x: float, y: float, whole_cell: bool = False) -> int:
        """Flat GPU index under image coordinates (x, y), or -1 over a gap or outside.

        `whole_cell`: the gutter belongs to its GPU too (the compact image draws it so).
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            return -1
        xi, yi = int(math.floor(x)), int(math.floor(y))
        if whole_cell:
            xi, yi = xi - xi % CELL, yi - yi % CELL
        if 0 <= xi < self.width and 0 <= yi < self.height:
            return int(self.pix_gpu[yi, xi])
        return -1

    def gpu_centre(self, g: int) -> tuple[float, float]:
        """Image coordinates of the centre of GPU g's patch (for tests and highlights)."""
        return float(self.gpu_x[g]) + PATCH / 2.0, float(self.gpu_y[g]) + PATCH / 2.0


def _group_members(grouping: Grouping) -> list[np.ndarray]:
    n_groups = max(len(grouping.names), int(grouping.node_group.max(initial=-1)) + 1, 1)
    groups = np.asarray(grouping.node_group, np.int64)
    return [np.flatnonzero(groups == r) for r in range(n_groups)]


def plan_columns(n_racks: int, block_w: int, block_h: int, view_w: float, view_h: float,
                 label_px: float = LABEL_PX, row_label_px: float = 0.0) -> tuple[int, float]:
    """Blocks per row that give the biggest cells in a view of view_w x view_h screen pixels.

    ``row_label_px`` is the screen width kept left of every block for its node names: it does
    not scale with the cells, so it is taken off the width before the cells share the rest.
    Returns (columns, screen pixels per image pixel).
    """
    best = (1, 0.0)
    gap = RACK_GAP_CELLS * CELL
    for cols in range(1, max(1, n_racks) + 1):
        rows = math.ceil(n_racks / cols)
        width = cols * block_w + (cols - 1) * gap
        free_w = view_w - cols * row_label_px
        s_w = free_w / width if free_w > 0 else 0.0
        s_h = (view_h - rows * label_px) / (rows * block_h) if view_h > rows * label_px else 0.0
        s = min(s_w, s_h)
        if s > best[1] * 1.0001:
            best = (cols, s)
    return best


def build_layout(topology: Topology, view_w: float = 1100.0, view_h: float = 560.0,
                 label_text_px: float = 36.0, gap_code: int = 0, empty_code: int = 0,
                 label_row_px: float = LABEL_PX, grouping: Grouping | None = None,
                 row_label_px: float = 0.0) -> HeatmapLayout:
    """Lay blocks out in the grid that makes GPU cells largest in a view of that size.

    ``label_row_px`` is the screen height kept above each row of blocks for their labels: the
    panel passes its label font's height, which grows with the font scale on a wall.
    ``grouping`` chooses the blocks (by default `group_topology`: racks, and host-name groups
    for nodes without one); ``row_label_px`` > 0 keeps that many screen pixels left of each
    block for the node names.
    """
    grouping = grouping if grouping is not None else group_topology(topology)
    gpn = max(1, topology.gpus_per_node)
    members = _group_members(grouping)
    n_racks = len(members)
    rows_per_rack = max(1, max((len(m) for m in members), default=1))
    cols, scale = plan_columns(n_racks, gpn * CELL, rows_per_rack * CELL, max(view_w, 50.0),
                               max(view_h, 50.0), label_px=label_row_px,
                               row_label_px=row_label_px)
    scale = max(scale, 1e-3)
    # Whole numbers of cells, so that every GPU patch starts on a multiple of CELL.
    label_h = CELL * max(1, int(math.ceil(label_row_px / scale / CELL)))
    label_w = CELL * int(math.ceil(row_label_px / scale / CELL)) if row_label_px > 0 else 0
    block_w, block_h = label_w + gpn * CELL, rows_per_rack * CELL
    gap = RACK_GAP_CELLS * CELL
    grid_rows = math.ceil(n_racks / cols)
    width = cols * block_w + (cols - 1) * gap
    height = grid_rows * (label_h + block_h)

    n_gpus = topology.n_gpus
    gpu_x = np.full(n_gpus, -1, np.int32)
    gpu_y = np.full(n_gpus, -1, np.int32)
    origins: list[tuple[float, float]] = []
    local = np.arange(gpn, dtype=np.int32)
    for r, nodes in enumerate(members):
        bx = (r % cols) * (block_w + gap)
        by = (r // cols) * (label_h + block_h)
        origins.append((float(bx), float(by)))
        if len(nodes) == 0:
            continue
        g = (nodes[:, None] * gpn + local[None, :]).reshape(-1)
        gpu_x[g] = np.tile(bx + label_w + local * CELL, len(nodes))
        gpu_y[g] = np.repeat(by + label_h + np.arange(len(nodes), dtype=np.int32) * CELL, gpn)

    exists = topology.gpu_exists()
    background = np.full((height, width), gap_code, np.uint8)
    pix_gpu = np.full((height, width), -1, np.int32)
    drawn = np.flatnonzero(gpu_x >= 0)
    present = drawn[exists[drawn]]
    absent = drawn[~exists[drawn]]
    for dy in range(PATCH):
        for dx in range(PATCH):
            background[gpu_y[absent] + dy, gpu_x[absent] + dx] = empty_code
            pix_gpu[gpu_y[present] + dy, gpu_x[present] + dx] = present
    flat = pix_gpu.reshape(-1)
    valid_pos = np.flatnonzero(flat >= 0)
    valid_gpu = flat[valid_pos].astype(np.int32)
    ys, xs = np.divmod(valid_pos, width)
    valid_sub = ((ys - gpu_y[valid_gpu]) * PATCH + (xs - gpu_x[valid_gpu])).astype(np.uint8)
    stride = max(1, int(math.ceil(label_text_px / max((block_w + gap) * scale, 1.0))))
    cell_gpu = pix_gpu[::CELL, ::CELL]
    compact_index = np.where(cell_gpu >= 0, cell_gpu,
                             n_gpus + (background[::CELL, ::CELL] == empty_code)).astype(np.intp)
    return HeatmapLayout(
        topology_version=topology.version, n_gpus=n_gpus, width=width, height=height,
        columns=cols, scale=scale, pix_gpu=pix_gpu, valid_pos=valid_pos, valid_gpu=valid_gpu,
        valid_sub=valid_sub, gpu_x=gpu_x, gpu_y=gpu_y, rack_origin=tuple(origins),
        rack_label_stride=stride, background=background, compact_index=compact_index,
        grouping=grouping, row_label_w=label_w,
    )


def outline_boxes(layout: HeatmapLayout, gpus: np.ndarray) -> np.ndarray:
    """int32[k, 4] boxes (x0, y0, x1, y1), image pixels, that together cover the patches of
    `gpus`: runs of neighbouring GPUs in a node row become one box, and equal runs in
    consecutive rows of a rack block one box, so a job on 64 whole nodes of a rack is one
    rectangle, not 512. Vectorised: a job may hold thousands of GPUs."""
    gpus = np.asarray(gpus, np.intp)
    gpus = gpus[(gpus >= 0) & (gpus < layout.n_gpus)]
    gpus = gpus[layout.gpu_x[gpus] >= 0]
    if len(gpus) == 0:
        return np.zeros((0, 4), np.int32)
    x, y = layout.gpu_x[gpus], layout.gpu_y[gpus]
    order = np.lexsort((x, y))
    x, y = x[order], y[order]
    brk = np.ones(len(x), bool)
    brk[1:] = (y[1:] != y[:-1]) | (x[1:] != x[:-1] + CELL)
    first = np.flatnonzero(brk)
    last = np.r_[first[1:], len(x)] - 1
    x0, x1, y0 = x[first], x[last] + PATCH, y[first]
    order = np.lexsort((y0, x1, x0))
    x0, x1, y0 = x0[order], x1[order], y0[order]
    brk = np.ones(len(x0), bool)
    brk[1:] = (x0[1:] != x0[:-1]) | (x1[1:] != x1[:-1]) | (y0[1:] != y0[:-1] + CELL)
    first = np.flatnonzero(brk)
    last = np.r_[first[1:], len(x0)] - 1
    return np.stack([x0[first], y0[first], x1[first], y0[last] + PATCH], axis=1).astype(np.int32)

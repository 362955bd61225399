"""A window for one tenant: its jobs, its GPUs on a health map, its usage over time, its money.

Opened from the tenants panel (or any tenant link) through the navigator; the main window keeps
feeding it frames with `show_frame`, so it stays live like a panel (it is one: the same dirty
flag and redraw timer, painting skipped while hidden). Lives in the GUI thread.

The map is one `ImageItem` (32,768 cells cost milliseconds that way, PERF.md): the tenant's
GPUs in their health colour, every other GPU dimmed, so "where does this tenant run, and is any
of it broken" reads at once.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame, QGridLayout, QHBoxLayout, QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget,
)

from console.model import Frame, Health
from widgets import theme as theme_mod
from widgets.drilldown_common import MapSubject
from widgets.formatting import fmt_int, fmt_pct, fmt_pf
from widgets.jobs_model import COL_TENANT, JobsTableModel
from widgets.jobs_panel import JobsTableView
from widgets.panel import Panel, PanelContext
from widgets.tenant_money import TenantMoneyPane
from widgets.tenants_panel import fmt_money
from widgets.theme import HEALTH_WORDS, PanelHeader, hex_rgba

_FIGURES = (("gpus", "GPUs in use"), ("share", "Share of machine"), ("pf", "Delivered"),
            ("eff", "Efficiency"), ("jobs", "Jobs running / pending"), ("subsidy", "Subsidy"),
            ("price", "List price"), ("cost", "Cost per hour"))


def map_shape(n_nodes: int, gpus_per_node: int) -> tuple[int, int]:
    """(rows, nodes per row) for a map about twice as wide as it is tall."""
    if n_nodes <= 0 or gpus_per_node <= 0:
        return 0, 0
    per_row = max(1, round(math.sqrt(2.0 * n_nodes * gpus_per_node) / gpus_per_node))
    return math.ceil(n_nodes / per_row), per_row


#: Pixels per GPU cell on the map (the last one a gap, so single GPUs stay distinct).
CELL_PX = 4
NODE_GAP_PX = 2


def tenant_map_cells(frame: Frame, tenant_row: int) -> np.ndarray:
    """uint8[rows, per_row * gpn, 4]: one cell per GPU slot, the tenant's GPUs in health
    colours, every other GPU dimmed, empty slots in the background colour."""
    th = theme_mod.current()
    topo = frame.topology
    gpn = topo.gpus_per_node
    rows, per_row = map_shape(topo.n_nodes, gpn)
    palette = np.array([hex_rgba(th.health[h]) for h in Health], np.uint8)
    dim = np.array(hex_rgba(th.surface_alt), np.uint8)
    empty = np.array(hex_rgba(th.background), np.uint8)
    n = topo.n_gpus
    colours = np.empty((n, 4), np.uint8)
    colours[:] = dim
    mine = frame.gpu.tenant == tenant_row
    health = np.clip(frame.gpu.health.astype(np.int64), 0, len(palette) - 1)
    colours[mine] = palette[health[mine]]
    colours[~topo.gpu_exists()] = empty
    img = np.empty((rows * per_row * gpn, 4), np.uint8)
    img[:] = empty
    img[:n] = colours
    # node k sits at row k // per_row, columns (k % per_row) * gpn ...
    return np.ascontiguousarray(img.reshape(rows, per_row * gpn, 4))


def tenant_map_rgba(frame: Frame, tenant_row: int) -> np.ndarray:
    """The cells drawn CELL_PX pixels wide with a one-pixel gap between GPUs and NODE_GAP_PX
    more between nodes, so a node reads as a block and one bad GPU as one square."""
    cells = tenant_map_cells(frame, tenant_row)
    gpn = frame.topology.gpus_per_node
    if not cells.size:
        return cells
    rows, width = cells.shape[:2]
    per_row = width // gpn
    bg = np.array(hex_rgba(theme_mod.current().background), np.uint8)
    img = np.repeat(np.repeat(cells, CELL_PX, axis=0), CELL_PX, axis=1)
    img[CELL_PX - 1::CELL_PX, :] = bg
    img[:, CELL_PX - 1::CELL_PX] = bg
    img = img.reshape(rows * CELL_PX, per_row, gpn * CELL_PX, 4)
    gap = np.empty((rows * CELL_PX, per_row, NODE_GAP_PX, 4), np.uint8)
    gap[:] = bg
    img = np.concatenate([img, gap], axis=2)
    return np.ascontiguousarray(img.reshape(rows * CELL_PX, per_row * (gpn * CELL_PX + NODE_GAP_PX), 4))


class TenantDrilldownWindow(Panel):
    """Everything about one tenant, live. Top-level window; one per tenant account."""

    title = "Tenant"
    #: Brought to the front / closed: the main window outlines the tenant's GPUs on its map.
    activated = Signal()
    closed = Signal()

    def __init__(self, account: str, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.account = account
        self.context = context
        self.setWindowTitle(f"Tenant {account}")
        self.resize(1280, 860)
        th = theme_mod.current()

        self.header = PanelHeader(f"Tenant {account}", self)
        self.kind_label = QLabel("", self)
        self.kind_label.setObjectName("DrilldownKind")
        self.header.add_widget(self.kind_label)

        figures = QFrame(self)
        figures.setObjectName("DrilldownFigures")
        grid = QGridLayout(figures)
        grid.setContentsMargins(8, 4, 8, 4)
        grid.setHorizontalSpacing(24)
        self.figure_labels: dict[str, QLabel] = {}
        for col, (key, caption) in enumerate(_FIGURES):
            cap = QLabel(caption, figures)
            cap.setObjectName("KpiCaption")
            val = QLabel("\u2014", figures)
            val.setObjectName("DrilldownValue")
            val.setStyleSheet(f"font-size: {th.px(20)}px; font-weight: bold;")
            grid.addWidget(cap, 0, col)
            grid.addWidget(val, 1, col)
            self.figure_labels[key] = val

        # GPU map: one ImageItem, created once.
        self.map_widget = pg.GraphicsLayoutWidget(self)
        self.map_widget.setMinimumHeight(220)
        self.map_view = self.map_widget.addViewBox(lockAspect=True, enableMouse=False)
        self.map_view.invertY(True)
        self.map_item = pg.ImageItem(axisOrder="row-major")
        self.map_view.addItem(self.map_item)
        self.map_caption = QLabel("", self)
        self.map_caption.setObjectName("KpiCaption")
        self.map_caption.setWordWrap(True)
        self._map_rgba = np.zeros((0, 0, 4), np.uint8)
        self._highlight = np.zeros(0, np.int64)
        self._topo_version: int | None = None

        # Usage over time: delivered PF and GPUs held, curves created once.
        self.usage_plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem()})
        self.usage_plot.setMinimumHeight(220)
        self.usage_plot.showGrid(x=False, y=True, alpha=0.2)
        self.usage_plot.setLabel("left", "delivered PF")
        self.usage_plot.addLegend(offset=(10, 5))
        self.pf_curve = self.usage_plot.plot([], [], pen=pg.mkPen(th.accent, width=2),
                                             name="delivered PF")
        self.gpu_view = pg.ViewBox()
        pi = self.usage_plot.getPlotItem()
        pi.showAxis("right")
        pi.scene().addItem(self.gpu_view)
        pi.getAxis("right").linkToView(self.gpu_view)
        pi.getAxis("right").setLabel("GPUs in use")
        self.gpu_view.setXLink(pi)
        self.gpus_curve = pg.PlotDataItem([], [], pen=pg.mkPen(th.health[Health.DEGRADED], width=2))
        self.gpu_view.addItem(self.gpus_curve)
        pi.legend.addItem(self.gpus_curve, "GPUs in use")
        pi.vb.sigResized.connect(self._sync_views)

        # Its jobs: the queue model, filtered to this tenant.
        self.jobs_model = JobsTableModel(self)
        self.jobs_model.set_tenant_filter(account)
        self.jobs_table = JobsTableView(self.jobs_model, self)
        self.jobs_table.setColumnHidden(COL_TENANT, True)  # always this tenant here
        self.jobs_caption = QLabel("Jobs", self)
        self.jobs_caption.setObjectName("PanelTitle")
        self.jobs_table.doubleClicked.connect(self._on_job_double_clicked)

        top = QSplitter(Qt.Orientation.Horizontal, self)
        map_box = QWidget(top)
        mb = QVBoxLayout(map_box)
        mb.setContentsMargins(0, 0, 0, 0)
        mb.addWidget(self.map_caption)
        mb.addWidget(self.map_widget, 1)
        top.addWidget(map_box)
        top.addWidget(self.usage_plot)
        top.setSizes([560, 720])
        jobs_box = QWidget(self)
        jb = QVBoxLayout(jobs_box)
        jb.setContentsMargins(0, 0, 0, 0)
        jb.addWidget(self.jobs_caption)
        jb.addWidget(self.jobs_table, 1)
        # Usage and money over a chosen period (accounting), beside its live jobs.
        self.money = TenantMoneyPane(account, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(jobs_box, "Jobs")
        self.tabs.addTab(self.money, "Usage and money")
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(top)
        split.addWidget(self.tabs)
        split.setSizes([380, 420])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        row = QHBoxLayout()
        row.addWidget(figures)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(split, 1)

    # --- frames -----------------------------------------------------------------------------

    def map_subject(self) -> MapSubject:
        """Every GPU the tenant's jobs hold, on the main health map, followed frame by frame."""
        frame = self.frame
        return MapSubject(tenant=self.account, cluster=None if frame is None else frame.cluster)

    def event(self, ev) -> bool:  # noqa: D401 - Qt override
        if ev.type() == QEvent.Type.WindowActivate:
            self.activated.emit()
        return super().event(ev)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()

    def render(self, frame: Frame) -> None:
        self.header.set_age(frame, "scheduler")
        t = frame.tenants
        row = t.account.index(self.account) if self.account in t.account else -1
        self.jobs_model.set_jobs(frame.jobs, frame.data_now or frame.time, t)
        self._render_map(frame, row)
        self.money.render(frame)
        if row < 0:
            self.header.title_label.setText(f"Tenant {self.account}")
            self.kind_label.setText("not in the current data")
            for lab in self.figure_labels.values():
                lab.setText("\u2014")
            self.pf_curve.setData([], [])
            self.gpus_curve.setData([], [])
            return
        name = t.display[row] or self.account
        self.setWindowTitle(f"{name} \u2014 tenant")
        self.header.title_label.setText(f"{name} ({self.account})")
        self.kind_label.setText(t.kind[row])
        f = self.figure_labels
        f["gpus"].setText(fmt_int(int(t.gpus_in_use[row])))
        f["share"].setText(fmt_pct(float(t.share[row]), 1))
        f["pf"].setText(fmt_pf(float(t.delivered_pf[row])))
        eff = float(t.efficiency[row])
        f["eff"].setText(fmt_pct(eff) if np.isfinite(eff) else "no data")
        f["jobs"].setText(f"{fmt_int(int(t.jobs_running[row]))} / {fmt_int(int(t.jobs_pending[row]))}")
        f["subsidy"].setText(fmt_pct(float(t.subsidy[row])))
        cur = self.money.view.currency if self.money.view is not None else "$"
        f["price"].setText(f"{fmt_money(float(t.price_per_gpu_hour[row]), cur)} / GPU-h")
        f["cost"].setText(f"{fmt_money(float(t.cost_per_hour[row]), cur)} "
                          f"(subsidy {fmt_money(float(t.subsidy_per_hour[row]), cur)})")
        self.jobs_caption.setText(f"Its jobs ({fmt_int(self.jobs_model.rowCount())})")
        h = frame.history
        if h.tenant_delivered_pf.ndim == 2 and row < h.tenant_delivered_pf.shape[1] and len(h.t):
            self.pf_curve.setData(h.t, h.tenant_delivered_pf[:, row], connect="finite")
            self.gpus_curve.setData(h.t, h.tenant_gpus[:, row], connect="finite")
            self.gpu_view.enableAutoRange(axis=pg.ViewBox.YAxis)

    def _render_map(self, frame: Frame, row: int) -> None:
        self._map_rgba = tenant_map_rgba(frame, row)
        self._highlight = np.flatnonzero(frame.gpu.tenant == row) if row >= 0 else np.zeros(0, np.int64)
        self.map_item.setImage(self._map_rgba, autoLevels=False)
        if self._topo_version != frame.topology.version:
            self._topo_version = frame.topology.version
            h, w = self._map_rgba.shape[:2]
            self.map_view.setRange(xRange=(0, max(w, 1)), yRange=(0, max(h, 1)), padding=0.02)
        hl = frame.gpu.health[self._highlight]
        bad = int(np.sum(hl != int(Health.OK)))
        nodes = len(np.unique(self._highlight // frame.topology.gpus_per_node)) if len(self._highlight) else 0
        text = f"Its GPUs: {fmt_int(len(self._highlight))} on {fmt_int(nodes)} nodes"
        if bad:
            words = ", ".join(f"{fmt_int(int(np.sum(hl == int(k))))} {HEALTH_WORDS[k]}"
                              for k in Health if k != Health.OK and np.any(hl == int(k)))
            text += f" \u2014 {words}"
        self.map_caption.setText(text + " \u2014 blue OK, amber degraded, red failed, "
                                 "purple out of service, grey no data; others dimmed")

    # --- queries for tests and the main window ------------------------------------------------

    def highlighted_gpus(self) -> np.ndarray:
        """Flat GPU indices drawn in colour (the tenant's)."""
        return self._highlight

    def map_rgba(self) -> np.ndarray:
        return self._map_rgba

    @Slot()
    def _sync_views(self) -> None:
        self.gpu_view.setGeometry(self.usage_plot.getPlotItem().vb.sceneBoundingRect())
        self.gpu_view.linkedViewChanged(self.usage_plot.getPlotItem().vb, self.gpu_view.XAxis)

    @Slot(QModelIndex)
    def _on_job_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.context.navigator.job_requested.emit(self.jobs_model.job_id_at(index.row()))

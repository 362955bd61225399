"""The presentation scenes: headline, health map, delivered compute, tenants, jobs (GUI thread).

Each scene is a widget that draws one `console.presentation.PublicView` and nothing else: it
is never handed a frame, so it has no name to show. Text is in labels (and, in the plot, in
pyqtgraph's axis and text items); the health map paints shapes only. Unknown figures read "no
data", never 0.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from console.model import Health
from console.presentation import (
    HEALTH_ORDER,
    KIND_PLURALS,
    KIND_SINGULARS,
    WINDOW_S,
    PublicView,
    equivalence,
    milestone_share,
)
from widgets import theme as _theme
from widgets.capacity_panel import local_zone_label
from widgets.formatting import fmt_int, fmt_pf
from widgets.presentation.sizing import Sizes
from widgets.theme import HEALTH_WORDS

NO_DATA = "no data"

#: Health marks, as the dashboard's map uses them: state is never colour alone.
HEALTH_MARKS: dict[Health, str] = {
    Health.OK: "\u25a0",  # square
    Health.DEGRADED: "\u25b2",  # triangle
    Health.FAILED: "\u2716",  # heavy X
    Health.UNAVAILABLE: "\u2215",  # slash
    Health.NO_DATA: "\u25a1",  # hollow square
}


def make_label(text: str, role: str, parent: QWidget, wrap: bool = False) -> QLabel:
    label = QLabel(text, parent)
    label.setProperty("role", role)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    return label


def set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


def pf_or_no_data(pf: float | None) -> str:
    return NO_DATA if pf is None else fmt_pf(pf)


class Scene(QWidget):
    """One scene: a title and a body; `show_view` draws a view, `apply_sizes` scales it."""

    name = ""
    heading = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"Scene_{self.name}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.outer = QVBoxLayout(self)
        self.heading_label = make_label(self.heading, "title", self)
        self.outer.addWidget(self.heading_label)
        self.view: PublicView | None = None

    def apply_sizes(self, s: Sizes) -> None:
        self.outer.setContentsMargins(s.margin, s.gap, s.margin, s.gap)
        self.outer.setSpacing(s.gap)

    def show_view(self, view: PublicView) -> None:
        self.view = view


class MilestoneBar(QWidget):
    """How far delivered has come towards one milestone: a filled bar, no text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.share: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_share(self, share: float | None) -> None:
        if share != self.share:
            self.share = share
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        th = _theme.current()
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        p.setPen(QPen(QColor(th.text_dim), max(1.0, r.height() / 12)))
        p.setBrush(QColor(th.surface_alt))
        p.drawRect(r)
        if self.share is not None:
            fill = QRectF(r)
            fill.setWidth(r.width() * min(1.0, max(0.0, self.share)))
            p.fillRect(fill, QColor(th.accent))
        p.end()


class HeadlineScene(Scene):
    """Delivered PF now, against the centre's milestones, and what that means in words."""

    name = "headline"
    heading = "Delivered compute now"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.value = make_label("\u2014", "hero", self)
        self.basis = make_label("", "body", self)
        self.outer.addWidget(self.value)
        self.outer.addWidget(self.basis)
        self.grid = QGridLayout()
        self.outer.addLayout(self.grid)
        self.rows: list[tuple[QLabel, MilestoneBar, QLabel]] = []
        self.sentence = make_label("", "accent", self, wrap=True)
        self.assumption = make_label("", "small", self, wrap=True)
        self.outer.addStretch(1)
        self.outer.addWidget(self.sentence)
        self.outer.addWidget(self.assumption)
        self._bar_height = 40

    def apply_sizes(self, s: Sizes) -> None:
        super().apply_sizes(s)
        self.grid.setHorizontalSpacing(s.gap)
        self.grid.setVerticalSpacing(s.gap // 2)
        self._bar_height = max(12, s.body * 2 // 3)
        for _, bar, _ in self.rows:
            bar.setFixedHeight(self._bar_height)

    def _ensure_rows(self, n: int) -> None:
        while len(self.rows) < n:
            i = len(self.rows)
            name = make_label("", "body", self)
            bar = MilestoneBar(self)
            bar.setFixedHeight(self._bar_height)
            share = make_label("", "body", self)
            share.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.grid.addWidget(name, i, 0)
            self.grid.addWidget(bar, i, 1)
            self.grid.addWidget(share, i, 2)
            self.grid.setColumnStretch(1, 1)
            self.rows.append((name, bar, share))

    def show_view(self, view: PublicView) -> None:
        super().show_view(view)
        set_text(self.value, pf_or_no_data(view.delivered_pf))
        installed = ("installed: no data" if view.installed_pf is None
                     else f"of {fmt_pf(view.installed_pf)} installed")
        set_text(self.basis, f"petaflops at {view.precision}, {installed}")
        self._ensure_rows(len(view.milestones))
        for (name, bar, share_label), m in zip(self.rows, view.milestones):
            share = milestone_share(view.delivered_pf, m)
            set_text(name, f"{fmt_pf(m.pf)} {m.label}")
            bar.set_share(share)
            set_text(share_label, NO_DATA if share is None else f"{share * 100:.0f} %")
        eq = equivalence(view.delivered_pf, view.precision)
        set_text(self.sentence, "" if eq is None else eq[0])
        set_text(self.assumption, "" if eq is None else eq[1])


class HealthMap(QWidget):
    """Every GPU as a cell, node rows grouped in rack blocks by position (no names, no text).

    Colour and shape both carry the state: OK a filled cell, degraded a triangle, failed a
    cross, out of service a slash, no data a hollow cell.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.health = np.zeros((0, 8), np.int8)
        self.rack_of_row = np.zeros(0, np.int32)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_data(self, health: np.ndarray, rack_of_row: np.ndarray) -> None:
        self.health = health
        self.rack_of_row = rack_of_row
        self.update()

    def plan(self, width: float, height: float) -> tuple[float, int, list[np.ndarray]]:
        """Cell size, racks per band and each rack's rows: the largest cells that fit."""
        racks = [np.flatnonzero(self.rack_of_row == r) for r in np.unique(self.rack_of_row)]
        if not racks or self.health.size == 0:
            return 0.0, 1, racks
        gpn = self.health.shape[1]
        tallest = max(len(r) for r in racks)
        best = (0.0, 1)
        for bands in range(1, len(racks) + 1):
            cols = math.ceil(len(racks) / bands)
            gap = 0.6  # a rack gap in cells
            cell = min(width / (cols * (gpn + gap)), height / (bands * (tallest + gap)))
            if cell > best[0]:
                best = (cell, cols)
        return best[0], best[1], racks

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        th = _theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        cell, cols, racks = self.plan(self.width(), self.height())
        if cell <= 0:
            p.end()
            return
        gpn = self.health.shape[1]
        tallest = max(len(r) for r in racks)
        block_w = (gpn + 0.6) * cell
        block_h = (tallest + 0.6) * cell
        left = max(0.0, (self.width() - min(cols, len(racks)) * block_w) / 2)  # centred
        inset = max(0.5, cell * 0.08)
        colours = {h: QColor(th.health[h]) for h in Health}
        mark_pen = QPen(QColor("#ffffff"), max(1.0, cell * 0.14))
        for b, rows in enumerate(racks):
            x0 = left + (b % cols) * block_w
            y0 = (b // cols) * block_h
            for i, row in enumerate(rows):
                for g in range(gpn):
                    code = int(self.health[row, g])
                    if code < 0:
                        continue
                    h = Health(code) if code in Health._value2member_map_ else Health.NO_DATA
                    r = QRectF(x0 + g * cell + inset, y0 + i * cell + inset,
                               cell - 2 * inset, cell - 2 * inset)
                    self._cell(p, r, h, colours[h], mark_pen)
        p.end()

    @staticmethod
    def _cell(p: QPainter, r: QRectF, h: Health, colour: QColor, mark_pen: QPen) -> None:
        if h == Health.NO_DATA:
            p.setPen(QPen(colour.lighter(160), max(1.0, r.width() * 0.12)))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
            return
        p.fillRect(r, colour)
        if r.width() < 5 or h == Health.OK:
            return
        p.setPen(mark_pen)
        m = r.adjusted(r.width() * 0.22, r.height() * 0.22, -r.width() * 0.22, -r.height() * 0.22)
        if h == Health.FAILED:
            p.drawLine(m.topLeft(), m.bottomRight())
            p.drawLine(m.bottomLeft(), m.topRight())
        elif h == Health.DEGRADED:
            p.setBrush(QColor("#121418"))
            p.setPen(Qt.PenStyle.NoPen)
            p.drawPolygon(QPolygonF([QPointF(m.center().x(), m.top()), m.bottomRight(), m.bottomLeft()]))
        else:  # out of service
            p.drawLine(m.bottomLeft(), m.topRight())


class HealthScene(Scene):
    """The live health map and its legend with counts."""

    name = "health"
    heading = "Every GPU, live"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.map = HealthMap(self)
        self.outer.addWidget(self.map, 1)
        self.legend = QHBoxLayout()
        self.outer.addLayout(self.legend)
        self.legend_labels: dict[Health, QLabel] = {}
        for h in HEALTH_ORDER:
            label = make_label("", "legend", self)
            self.legend_labels[h] = label
            self.legend.addWidget(label)
        self.legend.addStretch(1)

    def apply_sizes(self, s: Sizes) -> None:
        super().apply_sizes(s)
        self.legend.setSpacing(s.margin)

    def show_view(self, view: PublicView) -> None:
        super().show_view(view)
        self.map.set_data(view.health, view.rack_of_row)
        counts = view.gpus_by_health
        th = _theme.current()
        for h, label in self.legend_labels.items():
            n = None if counts is None else counts.get(h.name.lower())
            set_text(label, f"{HEALTH_MARKS[h]} {HEALTH_WORDS[h]} {NO_DATA if n is None else fmt_int(n)}")
            colour = th.health[h] if h != Health.NO_DATA else th.text_dim
            label.setStyleSheet(f"color: {colour};" if h != Health.OK else f"color: {th.ok_text};")


class DeliveredScene(Scene):
    """Delivered PF over the last 24 hours, with installed capacity and the milestones."""

    name = "delivered"
    heading = "Delivered compute, last 24 hours"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        th = _theme.current()
        self.now_label = make_label("", "body", self)
        self.outer.addWidget(self.now_label)
        self.axis = pg.DateAxisItem(orientation="bottom")
        self.plot = pg.PlotWidget(self, axisItems={"bottom": self.axis}, background=th.surface)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.outer.addWidget(self.plot, 1)
        dashed = pg.mkPen(th.text_dim, width=3, style=Qt.PenStyle.DashLine)
        self.installed = self.plot.plot([], [], pen=dashed, connect="finite")
        self.delivered = self.plot.plot([], [], pen=pg.mkPen(th.accent, width=5), connect="finite",
                                        fillLevel=0, brush=pg.mkBrush(79, 163, 255, 50))
        self.milestone_lines: list[tuple[pg.InfiniteLine, pg.TextItem]] = []
        self.legend_label = make_label("", "small", self)
        self.outer.addWidget(self.legend_label)
        self._sizes: Sizes | None = None

    def apply_sizes(self, s: Sizes) -> None:
        super().apply_sizes(s)
        self._sizes = s
        font = QFont(_theme.current().font_family)
        font.setPixelSize(s.small)
        th = _theme.current()
        for name in ("bottom", "left"):
            ax = self.plot.getAxis(name)
            ax.setStyle(tickFont=font, tickTextOffset=s.gap // 2)
            ax.setTextPen(pg.mkPen(th.text))
            ax.setPen(pg.mkPen(th.text_dim))
        self.plot.getAxis("left").setLabel("PF", **{"font-size": f"{s.small}px", "color": th.text_dim})
        self.plot.getAxis("left").setWidth(int(s.small * 4.5))
        self.plot.getAxis("bottom").setHeight(int(s.small * 1.8))
        self.delivered.setPen(pg.mkPen(th.accent, width=max(3, s.gap // 4)))
        self.installed.setPen(pg.mkPen(th.text_dim, width=max(2, s.gap // 8), style=Qt.PenStyle.DashLine))
        for line, text in self.milestone_lines:
            line.setPen(self._milestone_pen())
            text.setFont(font)

    def _milestone_pen(self) -> QPen:
        """Dotted amber, as thick as the screen needs (3 px at 1080 lines, 6 px at 2160)."""
        width = 2 if self._sizes is None else max(2, self._sizes.gap // 8)
        return pg.mkPen(_theme.current().severity[list(_theme.current().severity)[1]], width=width,
                        style=Qt.PenStyle.DotLine)

    def show_view(self, view: PublicView) -> None:
        super().show_view(view)
        t, d, inst = view.history_t, view.history_delivered, view.history_installed
        self.delivered.setData(t, d)
        self.installed.setData(t, inst)
        set_text(self.now_label, f"now {pf_or_no_data(view.delivered_pf)} at {view.precision}")
        th = _theme.current()
        font = QFont(th.font_family)
        if self._sizes is not None:
            font.setPixelSize(self._sizes.small)
        while len(self.milestone_lines) < len(view.milestones):
            line = pg.InfiniteLine(angle=0, pen=self._milestone_pen())
            text = pg.TextItem("", color=th.text, anchor=(0, 1))
            text.setFont(font)
            self.plot.addItem(line)
            self.plot.addItem(text)
            self.milestone_lines.append((line, text))
        end = float(t[-1]) if len(t) else view.time
        span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
        # Always at least an hour wide, so a console that just started shows a short line at
        # the right-hand end, on a readable time axis, rather than seconds stretched wide.
        x0 = end - max(span, 3600.0)
        set_text(self.heading_label, self.heading if span >= WINDOW_S - 1800 else
                 f"Delivered compute since {clock_text(float(t[0]) if len(t) else view.time)}")
        for (line, text), m in zip(self.milestone_lines, view.milestones):
            line.setPos(m.pf)
            text.setText(f"{fmt_pf(m.pf)} {m.label}")
            text.setPos(x0, m.pf)
        top = max([m.pf for m in view.milestones] + [view.installed_pf or 0.0]
                  + [float(np.nanmax(d)) if len(d) and np.isfinite(d).any() else 0.0])
        self.plot.setYRange(0, max(1.0, top) * 1.15, padding=0)  # room for the top label
        self.plot.setXRange(x0, end, padding=0.01)
        set_text(self.legend_label, f"\u2501 delivered   \u254d installed   \u2505 milestones   "
                                    f"\u00b7 {local_zone_label(view.time)}")


class TenantsScene(Scene):
    """How many organisations computed here, by kind: counts, never names."""

    name = "tenants"
    heading = "Who computes here"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.total = make_label("", "hero", self)
        self.total_words = make_label("", "body", self)
        self.outer.addWidget(self.total)
        self.outer.addWidget(self.total_words)
        self.tiles = QHBoxLayout()
        self.outer.addLayout(self.tiles)
        self.kind_labels: dict[str, tuple[QLabel, QLabel]] = {}
        for kind in KIND_PLURALS:
            box = QVBoxLayout()
            box.setSpacing(0)
            number = make_label("", "big", self)
            words = make_label("", "body", self)
            box.addWidget(number)
            box.addWidget(words)
            box.addStretch(1)
            self.tiles.addLayout(box)
            self.kind_labels[kind] = (number, words)
        self.tiles.addStretch(1)
        self.outer.addStretch(1)
        self.note = make_label("Organisations with GPUs in use now or in the last 24 hours. "
                               "Their names stay private.", "small", self, wrap=True)
        self.outer.addWidget(self.note)

    def apply_sizes(self, s: Sizes) -> None:
        super().apply_sizes(s)
        self.tiles.setSpacing(s.margin * 2)

    def show_view(self, view: PublicView) -> None:
        super().show_view(view)
        served = view.tenants_served
        set_text(self.total, NO_DATA if served is None else fmt_int(served))
        set_text(self.total_words, "organisations served in the last 24 hours"
                 if served != 1 else "organisation served in the last 24 hours")
        counts = dict(view.tenants_by_kind or ())
        for kind, (number, words) in self.kind_labels.items():
            n = counts.get(kind)
            shown = n is not None or (view.tenants_by_kind is None and kind != "other")
            number.setVisible(shown)
            words.setVisible(shown)
            set_text(number, NO_DATA if n is None else fmt_int(n))
            set_text(words, KIND_SINGULARS[kind] if n == 1 else KIND_PLURALS[kind])


class JobsScene(Scene):
    """Jobs running now, the GPUs they hold, and the queue."""

    name = "jobs"
    heading = "Jobs running now"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = make_label("", "hero", self)
        self.gpus = make_label("", "body", self)
        self.bar = MilestoneBar(self)  # the share of GPUs held by running jobs
        self.pending = make_label("", "body", self)
        for w in (self.running, self.gpus, self.bar, self.pending):
            self.outer.addWidget(w)
        self.outer.addStretch(1)

    def apply_sizes(self, s: Sizes) -> None:
        super().apply_sizes(s)
        self.bar.setFixedHeight(max(16, s.body))

    def show_view(self, view: PublicView) -> None:
        super().show_view(view)
        set_text(self.running, NO_DATA if view.jobs_running is None else fmt_int(view.jobs_running))
        if view.gpus_allocated is None or view.gpus_total is None:
            set_text(self.gpus, "GPUs in use: no data")
        else:
            set_text(self.gpus, f"on {fmt_int(view.gpus_allocated)} of {fmt_int(view.gpus_total)} GPUs")
        self.bar.set_share(None if not view.gpus_total or view.gpus_allocated is None
                           else view.gpus_allocated / view.gpus_total)
        set_text(self.pending, "queue: no data" if view.jobs_pending is None else
                 f"{fmt_int(view.jobs_pending)} more waiting in the queue")


SCENE_CLASSES: dict[str, type[Scene]] = {
    cls.name: cls for cls in (HeadlineScene, HealthScene, DeliveredScene, TenantsScene, JobsScene)}


def clock_text(now: float) -> str:
    return time.strftime("%H:%M", time.localtime(now))

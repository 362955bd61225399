"""Delivered petaflops over time against installed, available, allocated and busy capacity.

One plot, five curves created once and updated with `setData` (pyqtgraph's scrolling-plot
pattern): peak downsampling and clip-to-view keep a week of history cheap, NaN gaps are drawn as
gaps (a missed scrape is not a drop to zero), and the y range only changes when the installed
capacity does, so the plot never breathes with the data. Time is local time, the zone named
once in the axis label.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from console.model import Frame
from widgets import theme as _theme
from widgets.formatting import fmt_pf, utc_offset_label
from widgets.panel import Panel, PanelContext
from widgets.theme import PanelHeader

#: (series key, legend name, colour, width, line style), drawn bottom-up in this order.
CURVES: tuple[tuple[str, str, str, int, Qt.PenStyle], ...] = (
    ("installed_pf", "installed", "#8a919e", 2, Qt.PenStyle.DashLine),
    ("available_pf", "available", "#b8c0cc", 2, Qt.PenStyle.DotLine),
    ("allocated_pf", "allocated", "#d8dce3", 2, Qt.PenStyle.SolidLine),
    ("busy_pf", "busy", "#6f8fa8", 1, Qt.PenStyle.DashDotLine),
    ("delivered_pf", "delivered", "#4fa3ff", 3, Qt.PenStyle.SolidLine),
)


#: How each line style is drawn in the text legend.
LINE_GLYPHS = {
    Qt.PenStyle.SolidLine: "\u2501\u2501",
    Qt.PenStyle.DashLine: "\u254d\u254d",
    Qt.PenStyle.DotLine: "\u2505\u2505",
    Qt.PenStyle.DashDotLine: "\u2500\u00b7\u2500",
}


def local_zone_label(now: float | None = None) -> str:
    """ "local time (HKT, UTC+08:00)": the one place the time zone is written."""
    lt = time.localtime(now)
    name = time.strftime("%Z", lt)
    offset = utc_offset_label(lt.tm_gmtoff or 0)
    return f"local time ({name}, {offset})" if name and name not in offset else f"local time ({offset})"


def nice_step(span: float, lines: int = 6) -> float:
    """A 1-2-5 step that puts about ``lines`` reference lines across ``span``."""
    if not np.isfinite(span) or span <= 0:
        return 1.0
    raw = span / lines
    mag = 10.0 ** np.floor(np.log10(raw))
    return float(mag * min((m for m in (1, 2, 5, 10) if m * mag >= raw), default=10))


def gridline_data(x0: float, x1: float, ymax: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal lines at every step below ``ymax``, as one NaN-separated polyline."""
    step = nice_step(ymax)
    ys = np.arange(step, ymax, step) if ymax > 0 else np.zeros(0)
    x = np.tile(np.array([x0, x1, np.nan]), len(ys))
    y = np.repeat(ys, 3)
    y[2::3] = np.nan
    return x, y


class ClockAxis(pg.DateAxisItem):
    """A local-time axis that never shows fractions of a second.

    pyqtgraph's date axis switches to "SS.mmm" labels when the span is under a minute, which
    reads as a number, not a time; a console's history at start-up is exactly that short.
    """

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if spacing < 60:
            out, last = [], None
            for v in values:  # under a second apart, say each second once
                text = time.strftime("%H:%M:%S", time.localtime(v))
                out.append("" if text == last else text)
                last = text
            return out
        return super().tickStrings(values, scale, spacing)


class CapacityPanel(Panel):
    """Capacity over time (GUI thread)."""

    title = "Delivered compute over time"
    redraw_ms = 1000

    def __init__(self, context: PanelContext | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context or PanelContext()
        th = _theme.current()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 4)
        lay.setSpacing(2)
        self.header = PanelHeader(self.title, self)
        lay.addWidget(self.header)

        self.date_axis = ClockAxis(orientation="bottom")
        self.plot_widget = pg.PlotWidget(self, axisItems={"bottom": self.date_axis})
        self.plot_widget.setBackground(th.background)
        lay.addWidget(self.plot_widget, 1)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        # Horizontal reference lines as one plain curve: pyqtgraph's axis grid repaints the whole
        # view with alpha blending and cost ~10 ms of this panel's ~12 ms paint (measured).
        self.gridlines = self.plot.plot([], [], pen=pg.mkPen(th.border, width=1), connect="finite")
        self.gridlines.setZValue(-10)
        # The legend is a text row under the plot (wraps, never clipped, carries the values).
        self.legend = QLabel(self)
        self.legend.setObjectName("CapacityLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        lay.addWidget(self.legend)
        self._precision = ""
        self._installed = -1.0
        self.curves: dict[str, pg.PlotDataItem] = {}
        for key, name, colour, width, style in CURVES:
            pen = pg.mkPen(th.series.get(key, colour), width=width, style=style)  # per theme
            curve = self.plot.plot([], [], pen=pen, connect="finite")
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.curves[key] = curve
        fill_colour = pg.mkColor(th.series.get(CURVES[-1][0], CURVES[-1][2]))
        fill_colour.setAlpha(50)
        self.curves["delivered_pf"].setFillLevel(0.0)
        self.curves["delivered_pf"].setFillBrush(pg.mkBrush(fill_colour))
        self._style_axes()

    def _style_axes(self) -> None:
        th = _theme.current()
        font = pg.QtGui.QFont(th.font_family)
        font.setPixelSize(th.px(13))
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setTickFont(font)
            ax.setTextPen(pg.mkPen(th.text_dim))
            ax.setPen(pg.mkPen(th.border))
        self.plot.getAxis("left").setWidth(th.px(78))  # room for "30000" beside the axis label
        # Tick labels and the axis label one above the other, at any font scale (pyqtgraph's own
        # height does not follow a large label font, and the two overlap on a wall).
        self.plot.getAxis("bottom").setHeight(round(th.px(13) * 2.9) + 6)
        label_style = {"color": th.text_dim, "font-size": f"{th.px(13)}px"}
        self.plot.setLabel("bottom", local_zone_label(), **label_style)
        self.plot.setLabel("left", "petaflops", **label_style)

    def legend_entries(self, series) -> list[str]:
        """Plain legend entries with the newest value and unit: "delivered 2,412 PF"."""
        out = []
        for key, name, *_ in reversed(CURVES):
            y = series.get(key)
            last = np.asarray(y)[np.isfinite(y)] if y is not None and len(y) else np.zeros(0)
            out.append(f"{name} {fmt_pf(float(last[-1]))}" if len(last) else f"{name} (no data)")
        return out

    def _update_legend(self, series) -> None:
        parts = []
        for (key, _name, colour, width, style), text in zip(reversed(CURVES), self.legend_entries(series)):
            glyph = LINE_GLYPHS.get(style, "\u2501")
            weight = "bold" if width >= 3 else "normal"
            text = text.replace(" ", "&nbsp;")  # an entry wraps as a whole, never inside
            colour = _theme.current().series.get(key, colour)
            parts.append(f'<span style="color:{colour}; font-weight:{weight}">{glyph}</span>&nbsp;{text}')
        html = " &nbsp;&nbsp; ".join(parts)
        if self.legend.text() != html:
            self.legend.setText(html)

    def render(self, frame: Frame) -> None:
        h = frame.history
        t = np.asarray(h.t, np.float64)
        for key, curve in self.curves.items():
            y = h.series.get(key)
            if y is None or len(y) != len(t):
                curve.setData([], [])
            else:
                curve.setData(t, np.asarray(y, np.float64), connect="finite")
        k = frame.kpis
        if k.precision != self._precision:
            self._precision = k.precision
            th = _theme.current()
            self.plot.setLabel("left", f"petaflops ({k.precision})",
                               color=th.text_dim, **{"font-size": f"{th.px(13)}px"})
        top = max(k.installed_pf or 0.0, float(np.nanmax(h.series["installed_pf"])) if "installed_pf" in h.series
                  and len(t) and np.isfinite(h.series["installed_pf"]).any() else 0.0)
        if abs(top - self._installed) > 1e-6:
            self._installed = top
            self.plot.setYRange(0.0, max(top, 1e-3) * 1.08, padding=0)
        if len(t):
            self.plot.setXRange(float(t[0]), float(t[-1]), padding=0.01)
            self.gridlines.setData(*gridline_data(float(t[0]), float(t[-1]), self._installed * 1.08),
                                   connect="finite")
        self._update_legend(h.series)
        stale = self.header.set_age(frame, "telemetry")
        for curve in self.curves.values():
            curve.setOpacity(0.35 if stale else 1.0)

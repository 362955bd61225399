"""The incident timeline as files: CSV, JSON, and a PDF report with its plots (QPdfWriter).

Separate from the dialog so a report can be written without showing anything (tests, a
future headless command). The PDF is what a post-incident review needs on paper: the window or
incident, the figures over that window (delivered and installed PF; jobs pending and alerts
firing), and every event in order. Unknown minutes are gaps in the plots, never zeros.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from console.journal_cli import events_csv, events_json
from console.journal_store import Event

#: The plots of the report: (title, [(figure, colour)]).
PLOTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Delivered and installed compute (PF)", (("installed_pf", "#7f8c8d"),
                                               ("delivered_pf", "#2e86de"))),
    ("Jobs pending and alerts firing", (("jobs_pending", "#e67e22"), ("alerts_firing", "#c0392b"))),
)


def write_csv(events: Sequence[Event], path: str | Path) -> Path:
    p = Path(path)
    p.write_text(events_csv(events), encoding="utf-8")
    return p


def write_json(events: Sequence[Event], path: str | Path) -> Path:
    """A list of events, each with its ``kind`` (as ``timeline --format json`` prints)."""
    p = Path(path)
    p.write_text(json.dumps(events_json(events), indent=1, ensure_ascii=False, default=str),
                 encoding="utf-8")
    return p


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _plot(p: QPainter, rect: QRectF, title: str, t: np.ndarray,
          series: Mapping[str, np.ndarray], lines: Sequence[tuple[str, str]],
          since: float, until: float) -> None:
    """One plot in ``rect``: title and legend above, the box, y from 0 to the maximum, the
    window's times below. A line breaks where a minute was unknown."""
    p.save()
    p.setPen(QPen(QColor("#000000")))
    p.drawText(QRectF(rect.left(), rect.top(), rect.width() / 2, 280), title)
    box = QRectF(rect.left(), rect.top() + 320, rect.width(), rect.height() - 640)
    left = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    legend_x = rect.left() + rect.width() * 0.45
    for key, colour in lines:
        p.setPen(QPen(QColor(colour), 24))
        p.drawLine(QPointF(legend_x, rect.top() + 140), QPointF(legend_x + 300, rect.top() + 140))
        p.setPen(QPen(QColor("#000000")))
        p.drawText(QRectF(legend_x + 360, rect.top(), 2400, 280), left, key.replace("_", " "))
        legend_x += 2000
    p.setPen(QPen(QColor("#999999"), 8))
    p.drawRect(box)
    p.setPen(QPen(QColor("#000000")))
    p.drawText(QRectF(box.left(), box.bottom() + 20, 4000, 280), left, _stamp(since))
    p.drawText(QRectF(box.right() - 4000, box.bottom() + 20, 4000, 280), right, _stamp(until))
    values = [series[k] for k, _ in lines if k in series]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
    if not len(t) or not finite.size:
        p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), "no figures in the journal for this window")
        p.restore()
        return
    lo, hi = 0.0, float(finite.max()) or 1.0
    span = max(until - since, 1.0)
    p.drawText(QRectF(box.left() - 420, box.top() - 140, 380, 280), right, f"{hi:,.0f}")
    p.drawText(QRectF(box.left() - 420, box.bottom() - 140, 380, 280), right, "0")

    def pt(x: float, y: float) -> QPointF:
        return QPointF(box.left() + (x - since) / span * box.width(),
                       box.bottom() - (y - lo) / (hi - lo) * box.height())

    for key, colour in lines:
        v = series.get(key)
        if v is None:
            continue
        p.setPen(QPen(QColor(colour), 14))
        prev: QPointF | None = None
        for x, y in zip(t, v):
            if not math.isfinite(float(y)):
                prev = None  # unknown: a gap, not a zero
                continue
            q = pt(float(x), float(y))
            if prev is not None:
                p.drawLine(prev, q)
            prev = q
    p.restore()


def write_pdf(events: Sequence[Event], path: str | Path, *, title: str, since: float,
              until: float, series_t: np.ndarray, series: Mapping[str, np.ndarray],
              scope_words: str = "") -> Path:
    """The post-incident report: a header and the plots, then every event (paginated)."""
    p = Path(path)
    writer = QPdfWriter(str(p))
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Landscape, QMarginsF(12, 12, 12, 12)))
    writer.setResolution(600)
    writer.setTitle(title)
    writer.setCreator("AISC Console")
    painter = QPainter(writer)
    try:
        paint_report(painter, float(writer.width()), float(writer.height()), writer.newPage,
                     events, title=title, since=since, until=until, series_t=series_t,
                     series=series, scope_words=scope_words)
    finally:
        painter.end()
    return p


def paint_report(painter: QPainter, width: float, height: float, new_page: Callable[[], bool],
                 events: Sequence[Event], *, title: str, since: float, until: float,
                 series_t: np.ndarray, series: Mapping[str, np.ndarray],
                 scope_words: str = "") -> None:
    """Paint the report on any paint device of ``width`` x ``height`` device pixels at 600
    dpi; ``new_page`` starts the next page (False: stop, e.g. a one-page preview)."""
    page = QRectF(0, 0, width, height)
    big, body = QFont("Sans Serif", 14), QFont("Sans Serif", 8)
    big.setBold(True)
    painter.setFont(big)
    painter.drawText(QRectF(0, 0, page.width(), 400), title)
    painter.setFont(body)
    head = f"From {_stamp(since)} to {_stamp(until)} \u00b7 {len(events):,} events"
    if scope_words:
        head += f" \u00b7 {scope_words}"
    painter.drawText(QRectF(0, 420, page.width(), 300), head)
    top = 900.0
    plot_h = (page.height() - top - 400) / len(PLOTS)
    for i, (ptitle, lines) in enumerate(PLOTS):
        _plot(painter, QRectF(400, top + i * plot_h, page.width() - 800, plot_h - 500),
              ptitle, series_t, series, lines, since, until)
    line_h = 110.0
    y = page.height()  # the events start on a page of their own
    for e in events:
        if y + line_h > page.height():
            if not new_page():
                return
            painter.setFont(big)
            painter.drawText(QRectF(0, 0, page.width(), 400), "Events")
            painter.setFont(body)
            y = 500.0
        painter.drawText(QRectF(0, y, page.width(), line_h),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         f"{_stamp(e.time)}   {e.kind:<20}   {e.summary}")
        y += line_h


__all__ = ["PLOTS", "paint_report", "write_csv", "write_json", "write_pdf"]

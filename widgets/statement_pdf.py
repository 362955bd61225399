"""A tenant's statement as a PDF, drawn with Qt's own PDF writer (no extra library).

Pages are A4 portrait: the first carries the header (tenant, period, the span the data covers),
the totals (GPU-hours, PF-hours, efficiency, idle GPUs and their cost, list cost, subsidy, net
payable) and the gaps and caveats, then the jobs table continues over as many pages as it
needs, its header repeated on each, the total on the last; every page has a footer naming the
tenant, the period and "page i of n". Print colours (black on white) whatever the screen theme.

The same painting code draws onto an image (`render_statement_page`), so what the PDF shows
can be looked at, and tested, without a PDF renderer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import (
    QColor, QFont, QFontMetricsF, QGuiApplication, QImage, QPageLayout, QPageSize, QPainter,
    QPaintDevice, QPdfWriter, QPen,
)
from PySide6.QtWidgets import QApplication

from console.accounting.statement import Statement, job_row, statement_summary

DPI = 150
MARGIN_MM = 14.0
#: The jobs table's header on paper (JOB_COLUMNS order; the CSV keeps the long names).
PDF_HEADERS = ("Job", "User", "Partition", "State", "Start", "End", "GPUs", "GPU-h", "PF-h",
               "Eff. %", "Price", "Cost")
#: Sample cells that size each column (the widest a real value gets); the user column takes
#: what is left and elides first.
_SAMPLES = ("1234567", "", "inference", "COMPLETED", "12-31 23:59", "12-31 23:59",
            "1,024", "12,345.67", "1,234.56", "100.0", "12.34", "123,456.78")
_FREE = 1
_LEFT = frozenset({0, 1, 2, 3, 4, 5})
_INK, _GREY, _RULE, _SHADE, _NOTE = "#111111", "#555555", "#999999", "#eef1f5", "#8a5a00"
_HEADLINES = ("GPU-hours", "PF-hours delivered", "Efficiency", "List cost", "Subsidy",
              "Net payable")


def _font(pt: float, bold: bool = False) -> QFont:
    f = QFont("DejaVu Sans")
    f.setStyleHint(QFont.StyleHint.SansSerif)
    f.setPointSizeF(pt)
    f.setBold(bold)
    return f


@dataclass(frozen=True)
class _Layout:
    width: float
    height: float
    margin: float
    row_h: float
    rows_first: int
    rows_other: int
    pages: int
    top_first: float
    columns: tuple[tuple[float, float], ...]


def _layout(stmt: Statement, device: QPaintDevice) -> _Layout:
    dpi = device.logicalDpiY()
    page = QPageSize(QPageSize.PageSizeId.A4).rect(QPageSize.Unit.Inch)
    width, height = page.width() * dpi, page.height() * dpi
    margin = MARGIN_MM / 25.4 * dpi
    fm = QFontMetricsF(_font(7.5), device)
    row_h = fm.height() * 1.35
    top_first = _first_page_table_top(stmt, device, width, margin)
    bottom = height - margin - 2 * row_h  # the footer's room
    rows_first = max(0, int((bottom - top_first) / row_h) - 2)  # header row and total
    rows_other = max(1, int((bottom - margin) / row_h) - 2)
    rest = max(0, len(stmt.jobs) - rows_first)
    pages = 1 + math.ceil(rest / rows_other)
    cols = _columns(width - 2 * margin, margin, _total_cells(stmt), device)
    return _Layout(width, height, margin, row_h, rows_first, rows_other, pages, top_first, cols)


def _summary_rows(stmt: Statement) -> list[tuple[str, str]]:
    skip = {"Tenant", "Period", "Data covers", "Time zone", "Source", "Currency", "Gaps and caveats",
            "Jobs by end state"}
    rows = [(k, v) for k, v in statement_summary(stmt) if k not in skip]
    money = {"Cost of idle allocated GPUs", "List cost", "Subsidy", "Net payable"}
    out = []
    for k, v in rows:
        if not v:
            v = "not known"
        elif k in money:
            v = f"{stmt.currency} {float(v):,.2f}"
        elif k in ("GPU-hours", "PF-hours delivered", "Idle allocated GPU-hours"):
            v = f"{float(v):,.2f}"
        elif k == "Jobs":
            v = f"{int(v):,}"
        out.append((k, v))
    return out


def _states_text(stmt: Statement) -> str:
    states = stmt.charges.usage.jobs_by_state
    return "Jobs by end state: " + (", ".join(f"{k.lower().replace('_', ' ')} {v:,}"
                                               for k, v in states.items()) or "none")


def _first_page_table_top(stmt: Statement, device: QPaintDevice, width: float,
                          margin: float) -> float:
    """Where the jobs table starts on page 1: below the header, totals and caveats."""
    y = margin
    y += QFontMetricsF(_font(16, True), device).height() * 1.2
    y += QFontMetricsF(_font(11, True), device).height() * 1.3
    y += QFontMetricsF(_font(8.5), device).height() * 1.3 * 3
    y += QFontMetricsF(_font(9), device).height() * 1.45 * math.ceil(len(_summary_rows(stmt)) / 2)
    y += QFontMetricsF(_font(8.5), device).height() * 1.5  # jobs by end state
    y += _gaps_height(stmt, device, width - 2 * margin) + QFontMetricsF(_font(9), device).height() * 2
    return y


def _gaps_text(stmt: Statement) -> str:
    return "Gaps and caveats: " + ("; ".join(stmt.gaps) if stmt.gaps else "none")


def _gaps_height(stmt: Statement, device: QPaintDevice, width: float) -> float:
    fm = QFontMetricsF(_font(8), device)
    r = fm.boundingRect(QRectF(0, 0, width - 16, 10_000), int(Qt.TextFlag.TextWordWrap),
                        _gaps_text(stmt))
    return r.height() + 12


def _paint_header(p: QPainter, stmt: Statement, lay: _Layout) -> None:
    m, w = lay.margin, lay.width - 2 * lay.margin
    y = m
    p.setPen(QColor(_INK))
    p.setFont(_font(16, True))
    h = QFontMetricsF(p.font()).height()
    p.drawText(QRectF(m, y, w, h), int(Qt.AlignmentFlag.AlignLeft), "GPU usage statement")
    p.setFont(_font(8.5))
    p.setPen(QColor(_GREY))
    p.drawText(QRectF(m, y, w, h), int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom),
               f"issued {stmt.when(stmt.generated_at)} \u00b7 amounts in {stmt.currency}")
    y += h * 1.2
    p.setPen(QColor(_INK))
    p.setFont(_font(11, True))
    h = QFontMetricsF(p.font()).height()
    p.drawText(QRectF(m, y, w, h), int(Qt.AlignmentFlag.AlignLeft),
               f"{stmt.display} (Slurm account {stmt.account})")
    y += h * 1.3
    p.setFont(_font(8.5))
    h = QFontMetricsF(p.font()).height() * 1.3
    tz = stmt.tz.tzname(None) or ""
    for line in (f"Period: {stmt.period.label}, {stmt.when(stmt.period.since)} to "
                 f"{stmt.when(stmt.period.until)} {tz}".rstrip(),
                 f"Data covers: {stmt.when(stmt.covered[0])} to {stmt.when(stmt.covered[1])} {tz}".rstrip(),
                 f"Source: {stmt.source} accounting; list price per GPU-hour by tenant, else partition"):
        p.drawText(QRectF(m, y, w, h), int(Qt.AlignmentFlag.AlignLeft), line)
        y += h
    # Totals: two columns of (field, value), the headline figures in bold.
    rows = _summary_rows(stmt)
    p.setFont(_font(9))
    h = QFontMetricsF(p.font()).height() * 1.45
    half = math.ceil(len(rows) / 2)
    col_w = w / 2
    p.setPen(QPen(QColor(_RULE), 1))
    p.drawLine(int(m), int(y), int(m + w), int(y))
    for i, (k, v) in enumerate(rows):
        x = m + (i // half) * col_w
        yy = y + (i % half) * h
        p.setPen(QColor(_GREY))
        p.setFont(_font(9))
        p.drawText(QRectF(x + 4, yy, col_w * 0.5, h), int(Qt.AlignmentFlag.AlignVCenter), k)
        p.setPen(QColor(_INK))
        p.setFont(_font(9, k in _HEADLINES))
        p.drawText(QRectF(x + col_w * 0.5, yy, col_w * 0.5 - 12, h),
                   int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight), v)
    y += half * h
    p.setPen(QPen(QColor(_RULE), 1))
    p.drawLine(int(m), int(y), int(m + w), int(y))
    p.setFont(_font(8.5))
    p.setPen(QColor(_INK))
    h = QFontMetricsF(p.font()).height() * 1.5
    p.drawText(QRectF(m + 4, y, w - 8, h), int(Qt.AlignmentFlag.AlignVCenter), _states_text(stmt))
    y += h + 8
    gh = _gaps_height(stmt, p.device(), w)
    p.setPen(QPen(QColor(_NOTE), 1.5))
    p.drawRect(QRectF(m, y, w, gh))
    p.setFont(_font(8))
    p.drawText(QRectF(m + 8, y + 6, w - 16, gh - 12), int(Qt.TextFlag.TextWordWrap), _gaps_text(stmt))


def _total_cells(stmt: Statement) -> list[str]:
    u = stmt.charges.usage
    return ["Total", "", "", "", "", "", "", f"{u.gpu_hours:,.2f}",
            "" if u.pf_hours is None else f"{u.pf_hours:,.2f}",
            "" if u.efficiency is None else f"{u.efficiency * 100:.1f}", "",
            "" if stmt.charges.cost is None else f"{stmt.charges.cost:,.2f}"]


def _columns(width: float, x0: float, total: list[str],
             device: QPaintDevice) -> tuple[tuple[float, float], ...]:
    """(x, width) of each column: numbers (the bold total too) never cut, the user name takes
    the rest and elides."""
    body, bold = QFontMetricsF(_font(7.5), device), QFontMetricsF(_font(7.5, True), device)
    need = [max(body.horizontalAdvance(s), bold.horizontalAdvance(h), bold.horizontalAdvance(t)) + 8
            for s, h, t in zip(_SAMPLES, PDF_HEADERS, total)]
    need[_FREE] = max(0.0, width - (sum(need) - need[_FREE]))
    out, x = [], x0
    for cw in need:
        out.append((x, cw))
        x += cw
    return tuple(out)


def _paint_row(p: QPainter, cells: list[str], y: float, lay: _Layout, *, bold: bool = False,
               shade: str | None = None) -> None:
    if shade:
        p.fillRect(QRectF(lay.margin, y, lay.width - 2 * lay.margin, lay.row_h), QColor(shade))
    p.setFont(_font(7.5, bold))
    p.setPen(QColor(_INK))
    for i, ((x, cw), text) in enumerate(zip(lay.columns, cells)):
        align = Qt.AlignmentFlag.AlignLeft if i in _LEFT else Qt.AlignmentFlag.AlignRight
        fm = QFontMetricsF(p.font())
        shown = fm.elidedText(text, Qt.TextElideMode.ElideRight, cw - 6)
        p.drawText(QRectF(x + 3, y, cw - 6, lay.row_h), int(align | Qt.AlignmentFlag.AlignVCenter), shown)


def _paint_page(p: QPainter, stmt: Statement, lay: _Layout, page: int) -> None:
    p.fillRect(QRectF(0, 0, lay.width, lay.height), QColor("white"))
    if page == 0:
        _paint_header(p, stmt, lay)
        y = lay.top_first
        first, count = 0, lay.rows_first
    else:
        y = lay.margin
        first = lay.rows_first + (page - 1) * lay.rows_other
        count = lay.rows_other
    jobs = stmt.jobs[first:first + count]
    p.setFont(_font(9, True))
    if page == 0 or jobs:
        title = f"Jobs ({len(stmt.jobs):,})" if page == 0 else f"Jobs (continued, from row {first + 1:,})"
        p.setPen(QColor(_INK))
        p.drawText(QRectF(lay.margin, y - lay.row_h * 1.2, lay.width, lay.row_h),
                   int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), title)
        _paint_row(p, list(PDF_HEADERS), y, lay, bold=True, shade="#dde3ea")
        y += lay.row_h
    for k, j in enumerate(jobs):
        cells = job_row(stmt, j)
        cells[4:6] = [c[5:] if c[:4].isdigit() else c for c in cells[4:6]]  # the year is the period's
        for i in (7, 8, 10, 11):  # amounts with thousands separators (efficiency is a %)
            cells[i] = _thousands(cells[i])
        _paint_row(p, cells, y, lay, shade=_SHADE if k % 2 else None)
        y += lay.row_h
    if page == lay.pages - 1:
        total = _total_cells(stmt)
        p.setPen(QPen(QColor(_INK), 1))
        p.drawLine(int(lay.margin), int(y), int(lay.width - lay.margin), int(y))
        _paint_row(p, total, y, lay, bold=True)
    p.setFont(_font(7))
    p.setPen(QColor(_GREY))
    p.drawText(QRectF(lay.margin, lay.height - lay.margin - lay.row_h, lay.width - 2 * lay.margin,
                      lay.row_h), int(Qt.AlignmentFlag.AlignVCenter),
               f"{stmt.display} ({stmt.account}) \u00b7 {stmt.period.label} \u00b7 aisc-console")
    p.drawText(QRectF(lay.margin, lay.height - lay.margin - lay.row_h, lay.width - 2 * lay.margin,
                      lay.row_h), int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
               f"page {page + 1} of {lay.pages}")


def _thousands(cell: str) -> str:
    try:
        return f"{float(cell):,.2f}" if "." in cell else cell
    except ValueError:
        return cell


def _ensure_app() -> None:
    """QPdfWriter and fonts need an application object (the command line has none; the GUI
    already has one). A full QApplication, so that widgets can still be made in this process
    afterwards (a QGuiApplication cannot be upgraded)."""
    if QGuiApplication.instance() is None:
        _ensure_app.app = QApplication([])  # type: ignore[attr-defined]


def write_statement_pdf(stmt: Statement, path: str | Path) -> int:
    """Write the statement as a PDF at ``path``; returns the number of pages."""
    _ensure_app()
    writer = QPdfWriter(str(path))
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    writer.setTitle(f"GPU usage statement {stmt.account} {stmt.period.label}")
    writer.setCreator("aisc-console")
    lay = _layout(stmt, writer)
    p = QPainter(writer)
    try:
        for page in range(lay.pages):
            if page:
                writer.newPage()
            _paint_page(p, stmt, lay, page)
    finally:
        p.end()
    return lay.pages


def render_statement_page(stmt: Statement, page: int = 0) -> QImage:
    """One page of the statement as an image at the PDF's resolution (previews and tests)."""
    _ensure_app()
    probe = QImage(8, 8, QImage.Format.Format_RGB32)
    probe.setDotsPerMeterX(round(DPI / 0.0254))
    probe.setDotsPerMeterY(round(DPI / 0.0254))
    lay = _layout(stmt, probe)
    img = QImage(int(lay.width), int(lay.height), QImage.Format.Format_RGB32)
    img.setDotsPerMeterX(probe.dotsPerMeterX())
    img.setDotsPerMeterY(probe.dotsPerMeterY())
    p = QPainter(img)
    try:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        _paint_page(p, stmt, lay, max(0, min(page, lay.pages - 1)))
    finally:
        p.end()
    return img

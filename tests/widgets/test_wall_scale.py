"""Tables on a wall screen: at font scale 2 no header or number may be cut.

At 4K the text doubles (`widgets.app.screen_font_scale`); columns left at their 1080 pixel widths
cut "GPUs" to "GPI" and "2 h 35 min" to "2 h 3...". Every table panel is built here under a
larger theme and each column that is not free text (names, reasons: those elide by design) must
hold its bold header and every value it shows.
"""

from __future__ import annotations

import gc

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import QEvent, QModelIndex, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QTableView, QTreeView

from frames import NOW, make_test_frame, silences
from widgets import theme
from widgets.alerts_model import FREE_TEXT_COLUMNS as ALERT_FREE
from widgets.alerts_panel import AlertsPanel
from widgets.fleet_panel import COL_CLUSTER, FleetPanel
from widgets.incidents_panel import COLUMN_WIDTHS as INCIDENT_WIDTHS
from widgets.incidents_panel import IncidentsPanel
from widgets.jobs_model import COLUMN_WIDTHS as JOB_WIDTHS
from widgets.jobs_model import FREE_TEXT_COLUMNS as JOB_FREE
from widgets.jobs_panel import JobsPanel
from widgets.panel import Panel, PanelContext
from widgets.sources_panel import SourcesPanel
from widgets.tenants_panel import COL_KIND, COL_NAME, TenantsPanel
from widgets.tenants_panel import COLUMN_WIDTHS as TENANT_WIDTHS

#: The header's QSS padding (6 px a side) and border; cells get the item view's margins.
HEADER_PAD = 2 * 6 + 1
CELL_PAD = 8


@pytest.fixture
def scaled(qapp) -> Iterator[Callable[[float], None]]:
    """Apply a font scale the way `widgets.app` does; 1.0 again afterwards for other tests."""

    def use(scale: float) -> None:
        theme.apply(qapp, theme.Theme(font_scale=scale))
        QApplication.sendPostedEvents()

    # A new application style sheet re-polishes every widget alive: let the earlier tests'
    # closed widgets go first, which halves what the scale changes cost in a full run.
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    yield use
    theme.apply(qapp, theme.Theme())


def _header(view: QAbstractItemView) -> QHeaderView:
    if isinstance(view, QTableView):
        return view.horizontalHeader()
    return view.header()  # type: ignore[attr-defined]  # a QTreeView


def _rows(view: QAbstractItemView) -> Iterator[tuple[QModelIndex, int]]:
    """(index of column 0, depth) of every row, children of a tree included."""
    model = view.model()
    stack = [(QModelIndex(), -1)]
    while stack:
        parent, depth = stack.pop()
        for r in range(model.rowCount(parent)):
            idx = model.index(r, 0, parent)
            yield idx, depth + 1
            if isinstance(view, QTreeView):
                stack.append((idx, depth + 1))


def clipped(view: QAbstractItemView, free_text: frozenset[int] | set[int]) -> list[str]:
    """Every header or cell text of a non-free-text column wider than its section."""
    header = _header(view)
    model = view.model()
    bold = QFont(header.font())
    bold.setBold(True)
    head_fm, cell_fm = QFontMetrics(bold), QFontMetrics(view.font())
    last = header.logicalIndex(header.count() - 1) if header.stretchLastSection() else -1
    indent = view.indentation() if isinstance(view, QTreeView) and view.rootIsDecorated() else 0
    out: list[str] = []
    for col in range(header.count()):
        if col in free_text or col == last or header.isSectionHidden(col):
            continue
        width = header.sectionSize(col)
        text = str(model.headerData(col, Qt.Orientation.Horizontal) or "")
        if head_fm.horizontalAdvance(text) + HEADER_PAD > width:
            out.append(f"header {text!r}: {head_fm.horizontalAdvance(text) + HEADER_PAD} > {width}")
        for idx, depth in _rows(view):
            cell = model.index(idx.row(), col, idx.parent())
            value = model.data(cell, Qt.ItemDataRole.DisplayRole)
            if not value:
                continue
            branch = indent * (depth + 1) if col == 0 else 0
            need = cell_fm.horizontalAdvance(str(value)) + CELL_PAD + branch
            if need > width:
                out.append(f"{text!r} cell {value!r}: {need} > {width}")
    return out


def _fed(qtbot, panel: Panel) -> Panel:
    qtbot.addWidget(panel)
    panel.resize(1920, 1080)
    panel.show()
    panel.show_frame(make_test_frame(now=NOW))
    panel.render_now()
    return panel


def _jobs(qtbot):
    p = _fed(qtbot, JobsPanel(PanelContext()))
    return p, [(p.table, JOB_FREE)]


def _tenants(qtbot):
    p = _fed(qtbot, TenantsPanel(PanelContext()))
    return p, [(p.table, {COL_NAME, COL_KIND})]


def _alerts(qtbot):
    p = _fed(qtbot, AlertsPanel(PanelContext()))  # the frame carries silences too
    assert p.silences_table.rowCount() == len(silences())
    return p, [(p.tree, ALERT_FREE), (p.silences_table, {1, 2, 3})]


def _incidents(qtbot):
    p = _fed(qtbot, IncidentsPanel(PanelContext()))
    return p, [(p.list, {2, 3})]


def _sources(qtbot):
    p = _fed(qtbot, SourcesPanel(PanelContext()))
    return p, [(p.table, {0})]


def _fleet(qtbot):
    panel = FleetPanel(PanelContext())
    qtbot.addWidget(panel)
    frame = make_test_frame(now=NOW)
    panel.set_clusters(["hk-main"], {"hk-main": True})
    panel.show_fleet({"hk-main": frame})
    panel.render_at(NOW)
    return panel, [(panel.table, {COL_CLUSTER})]


PANELS = {"jobs": _jobs, "tenants": _tenants, "alerts": _alerts, "incidents": _incidents,
          "sources": _sources, "fleet": _fleet}


@pytest.mark.parametrize("scale", [1.4, 2.0])
@pytest.mark.parametrize("name", sorted(PANELS))
def test_numbers_and_headers_fit_on_a_wall(qtbot, scaled, name: str, scale: float) -> None:
    scaled(scale)
    _panel, views = PANELS[name](qtbot)  # the panel stays referenced while its views are read
    for view, free in views:
        assert view.model().rowCount() > 0
        assert clipped(view, free) == []


@pytest.mark.parametrize("name", sorted(PANELS))
def test_numbers_fit_after_ctrl_plus(qtbot, scaled, name: str) -> None:
    """Built at 1.0, then the text grows while the panel is open (Ctrl+= on a wall)."""
    _panel, views = PANELS[name](qtbot)
    scaled(2.0)
    for view, free in views:
        assert clipped(view, free) == []


def test_design_widths_unchanged_at_1080() -> None:
    """At scale 1 on a desk screen every table keeps the widths it was designed with."""
    p = JobsPanel(PanelContext())
    t = TenantsPanel(PanelContext())
    i = IncidentsPanel(PanelContext())
    a = AlertsPanel(PanelContext())
    try:
        for view, widths in ((p.table, JOB_WIDTHS), (t.table, TENANT_WIDTHS),
                             (i.list, INCIDENT_WIDTHS)):
            header = _header(view)
            assert [header.sectionSize(c) for c in range(len(widths))] == list(widths)
    finally:
        for w in (p, t, i, a):
            w.deleteLater()


def test_free_text_grows_with_the_room_numbers_with_the_text(qtbot, scaled) -> None:
    """A 4K wall at scale 2 looks like 1080 at scale 1; scale 1.4 on a 1080 window widens the
    numbers but leaves the tenant names at their design width (they elide, numbers stay)."""
    from widgets.jobs_model import COL_GPUS, COL_REASON, COL_TENANT

    scaled(2.0)
    wall = JobsPanel(PanelContext())
    qtbot.addWidget(wall)
    wall.resize(3840, 2160)
    wall.show()
    QApplication.sendPostedEvents()
    hh = wall.table.horizontalHeader()
    assert hh.sectionSize(COL_TENANT) == 2 * JOB_WIDTHS[COL_TENANT]
    assert hh.sectionSize(COL_REASON) == 2 * JOB_WIDTHS[COL_REASON]
    assert hh.sectionSize(COL_GPUS) >= 2 * JOB_WIDTHS[COL_GPUS]

    scaled(1.4)
    desk = JobsPanel(PanelContext())
    qtbot.addWidget(desk)
    desk.resize(1920, 1080)
    desk.show()
    QApplication.sendPostedEvents()
    hh = desk.table.horizontalHeader()
    assert hh.sectionSize(COL_TENANT) == JOB_WIDTHS[COL_TENANT]
    assert hh.sectionSize(COL_REASON) == JOB_WIDTHS[COL_REASON]
    assert hh.sectionSize(COL_GPUS) >= round(1.4 * JOB_WIDTHS[COL_GPUS])


def test_operator_column_drag_survives_a_small_resize(qtbot) -> None:
    from widgets.jobs_model import COL_GPUS

    p = JobsPanel(PanelContext())
    qtbot.addWidget(p)
    p.resize(1000, 600)
    p.show()
    QApplication.sendPostedEvents()
    p.table.horizontalHeader().resizeSection(COL_GPUS, 150)
    p.resize(1010, 610)
    QApplication.sendPostedEvents()
    assert p.table.horizontalHeader().sectionSize(COL_GPUS) == 150


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_alert_link_buttons_wrap_instead_of_cutting_words(qtbot, scaled, scale: float) -> None:
    scaled(scale)
    p = AlertsPanel(PanelContext())
    qtbot.addWidget(p)
    p.resize(round(835 * scale), round(420 * scale))  # the alerts dock of a 1080 (or 4K) window
    p.show()
    p.show_frame(make_test_frame(now=NOW))
    p.render_now()
    QApplication.sendPostedEvents()
    assert p.split_mode == "list"  # this small a dock shows the list alone at first...
    p.split.setSizes([round(500 * scale), round(335 * scale)])  # ...until the pane is dragged open
    model = p.tree.model()
    p.tree.setCurrentIndex(model.index(0, 0, model.index(0, 0)))
    QApplication.sendPostedEvents()
    shown = [b for b in p.link_buttons.values() if b.isVisible()]
    assert len(shown) == 5
    assert [b.text() for b in shown if b.width() < b.sizeHint().width()] == []
    assert len({b.y() for b in shown}) == 2  # five links do not fit one row of this pane

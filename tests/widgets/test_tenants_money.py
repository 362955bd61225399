"""Money in the window: the Tenants panel's accounting columns, the drill-down's usage tab,
statements (CSV parsed back and summed, PDF pages and text read back) and the exports."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timezone
from pathlib import Path

import pypdf
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent, QImage
from PySide6.QtWidgets import QMenu

from console.accounting.money import PriceBook, TenantTerms
from console.accounting.records import AccountingSnapshot, GpuLimit, JobUsage
from console.accounting.table import JobObservation
from console.accounting.view import build_view
from frames import NOW, make_test_frame
from widgets.export import (
    PLOT_ACTION, TABLE_ACTION, ExportMenus, export_plot_png, export_table_csv, install_exports,
    table_menu,
)
from widgets.panel import PanelContext
from widgets.statement_pdf import render_statement_page
from widgets.tenant_drilldown import TenantDrilldownWindow
from widgets.tenants_panel import (
    COL_COST, COL_GPUH_MONTH, COL_GPUH_TODAY, COL_NET, COL_SUBSIDY, HEADERS, TenantsPanel,
    TenantsTableModel,
)

H = 3600.0
DAY0 = NOW - 8 * H  # 2027-01-15 00:00 UTC (NOW is 08:00)
MONTH0 = 1_798_761_600.0  # 2027-01-01 00:00 UTC


def _view():
    jobs = [
        # hku: 8 GPUs for 10 h ending 2 h ago (48 GPU-h of them today), 16 GPUs running 4 h
        JobUsage("1", "hku", "alice", "training", "COMPLETED", DAY0 - 5 * H, DAY0 - 4 * H,
                 NOW - 2 * H, 8),
        JobUsage("2", "hku", "alice", "training", "RUNNING", NOW - 5 * H, NOW - 4 * H, None, 16),
        # hku earlier this month: 100 GPU-h, failed
        JobUsage("3", "hku", "bob", "inference", "FAILED", MONTH0, MONTH0 + H, MONTH0 + 26 * H, 4),
        # cuhk: 10 GPU-h yesterday only
        JobUsage("4", "cuhk", "carol", "debug", "COMPLETED", DAY0 - 12 * H, DAY0 - 11 * H,
                 DAY0 - 1 * H, 1),
        # acme: last month only; crosses into this month by 2 h (2 x 8 = 16 GPU-h)
        JobUsage("5", "acme", "dave", "training", "TIMEOUT", MONTH0 - 30 * H, MONTH0 - 22 * H,
                 MONTH0 + 2 * H, 8),
    ]
    obs = {"1": JobObservation("1", DAY0 - 4 * H, NOW - 2 * H, 495.0, 990.0, 0.1)}
    snap = AccountingSnapshot(jobs, [GpuLimit("account", "hku", gpus=64, gpu_minutes=60_000,
                                              used_gpu_minutes=30_000)], [],
                              since=MONTH0 - 31 * 24 * H, until=NOW, taken_at=NOW)
    book = PriceBook.of([TenantTerms("hku", "HKU AI Lab", 0.7, 2.0),
                         TenantTerms("cuhk", "CUHK Vision", 0.35, 2.0),
                         TenantTerms("acme", "Acme Robotics", 0.0, 3.0)], currency="HKD")
    return build_view(snap, book, timezone.utc, "simulator", obs)


def frame_with_money():
    return replace(make_test_frame(), accounting=_view())


def texts(m: TenantsTableModel, account: str) -> dict[str, str]:
    row = m.visible_accounts().index(account)
    return {m.headerData(c, Qt.Orientation.Horizontal): m.data(m.index(row, c))
            for c in range(len(HEADERS))}


def test_tenant_columns_show_accounting_figures_with_the_currency_in_the_header() -> None:
    m = TenantsTableModel()
    f = frame_with_money()
    m.set_tenants(f.tenants, f.accounting)
    hku = texts(m, "hku")
    # today: 8 x 6 h (00:00-06:00) + 16 x 4 h = 112; the month: 8 x 10 h + 64 + job 3's 4 x 25 h
    assert hku["GPU-h today"] == "112" and hku["GPU-h month"] == "244"
    assert hku["Cost (HKD)"] == "488" and hku["Subsidy (HKD)"] == "342" and hku["Net (HKD)"] == "146"
    assert texts(m, "acme")["GPU-h month"] == "16" and texts(m, "acme")["Net (HKD)"] == "48"
    assert texts(m, "cuhk")["GPU-h today"] == "0" and texts(m, "cuhk")["GPU-h month"] == "10"
    tip = m.data(m.index(m.visible_accounts().index("hku"), COL_NET), Qt.ItemDataRole.ToolTipRole)
    assert "subsidy rate 70 % of list" in tip and "2027-01" in tip
    m.sort(COL_NET, Qt.SortOrder.DescendingOrder)
    assert m.visible_accounts() == ["hku", "acme", "cuhk"]
    m.sort(COL_GPUH_TODAY, Qt.SortOrder.AscendingOrder)
    assert m.visible_accounts()[-1] == "hku"


def test_without_accounting_the_columns_say_no_data_not_zero() -> None:
    m = TenantsTableModel()
    m.set_tenants(make_test_frame().tenants, None)
    row = texts(m, "hku")
    for col in (COL_GPUH_TODAY, COL_GPUH_MONTH, COL_COST, COL_SUBSIDY, COL_NET):
        assert row[HEADERS[col]] == "no data"
    assert "not been read yet" in m.data(m.index(0, COL_COST), Qt.ItemDataRole.ToolTipRole)


def test_tenants_table_exports_to_csv_as_shown(qtbot, tmp_path: Path) -> None:
    panel = TenantsPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.show_frame(frame_with_money())
    panel.render_now()
    out = tmp_path / "tenants.csv"
    assert export_table_csv(panel.table, out) == 3
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["Tenant"] for r in rows] == ["HKU AI Lab", "CUHK Vision", "Acme Robotics"]
    assert sum(float(r["GPU-h month"].replace(",", "")) for r in rows) == 244 + 10 + 16
    assert sum(float(r["Net (HKD)"].replace(",", "")) for r in rows) == 146 + 13 + 48
    menu = table_menu(panel.table)
    assert [a.text() for a in menu.actions()] == [TABLE_ACTION]


def test_right_click_on_any_table_offers_the_export(qtbot) -> None:
    panel = TenantsPanel(PanelContext())
    qtbot.addWidget(panel)
    filt = ExportMenus()
    vp = panel.table.viewport()
    ev = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(5, 5), vp.mapToGlobal(QPoint(5, 5)))
    assert filt.eventFilter(vp, ev) is True
    menus = [m for m in panel.table.findChildren(QMenu) if m.isVisible()]
    assert [a.text() for a in menus[0].actions()] == [TABLE_ACTION]
    menus[0].close()
    assert filt.eventFilter(panel.table, ev) is False  # only the viewport's own right click


def test_drilldown_usage_tab_periods_quota_and_wait(qtbot) -> None:
    win = TenantDrilldownWindow("hku", PanelContext())
    qtbot.addWidget(win)
    win.show_frame(frame_with_money())
    win.render_now()
    pane = win.money
    keys = [pane.period_box.itemData(i) for i in range(pane.period_box.count())]
    assert keys == ["24h", "7d", "30d", "2027-01", "2026-12"]
    pane.set_period("24h")
    f = pane.figure_labels
    # last 24 h: job 1 8 x 10 h (80), job 2 16 x 4 h (64)
    assert f["gpuh"].text() == "144" and f["cost"].text() == "HKD 288"
    assert f["subsidy"].text() == "HKD 202 (70 %)" and f["net"].text() == "HKD 86"
    assert f["eff"].text() == "50 %"  # job 1 watched: 495 of 990 TFLOPS per GPU
    assert f["idle"].text() == "8"  # 10 % of the 80 GPU-hours the console watched
    assert len(pane.bar_heights()) == 24 and sum(pane.bar_heights()) == pytest.approx(144)
    pane.set_period("2027-01")
    assert f["gpuh"].text() == "244"
    assert "failed 1" in pane.states_label.text()
    assert "16 of 64 GPUs in use" in pane.quota_label.text()
    assert "50 % of 1,000 GPU-hours used" in pane.quota_label.text()
    assert "runs out" in pane.quota_label.text()
    assert pane.wait_label.text().startswith("42 GPUs pending: ")
    pane.set_period("2026-12")
    assert f["gpuh"].text() == "0"


def test_drilldown_statement_pdf_pages_and_text(qtbot, tmp_path: Path) -> None:
    win = TenantDrilldownWindow("hku", PanelContext())
    qtbot.addWidget(win)
    win.show_frame(frame_with_money())
    win.render_now()
    win.money.set_period("2027-01")
    pdf = tmp_path / "hku.pdf"
    pages = win.money.write_statement(str(pdf), "pdf")
    reader = pypdf.PdfReader(str(pdf))
    assert len(reader.pages) == pages == 1
    text = " ".join(reader.pages[0].extract_text().split())
    for words in ("GPU usage statement", "HKU AI Lab (Slurm account hku)",
                  "Period: 2027-01, 2027-01-01 00:00 to 2027-02-01 00:00", "Net payable",
                  "HKD 146.40", "List cost", "HKD 488.00", "Subsidy HKD 341.60", "244.00",
                  "period not over", "page 1 of 1"):
        assert words in text, words
    img = render_statement_page(win.money.statement(), 0)
    assert img.width() > 1000 and img.height() > img.width()


def test_statement_csv_parsed_back_sums_to_its_total(qtbot, tmp_path: Path) -> None:
    win = TenantDrilldownWindow("hku", PanelContext())
    qtbot.addWidget(win)
    win.show_frame(frame_with_money())
    win.render_now()
    win.money.set_period("2027-01")
    out = tmp_path / "hku.csv"
    assert win.money.write_statement(str(out), "csv") == 3
    head, table = out.read_text(encoding="utf-8").split("\n\n")
    fields = dict(csv.reader(io.StringIO(head)))
    rows = list(csv.DictReader(io.StringIO(table)))
    jobs, total = rows[:-1], rows[-1]
    assert [r["Job"] for r in jobs] == ["3", "1", "2"] and total["Job"] == "Total"
    assert sum(float(r["List cost"]) for r in jobs) == pytest.approx(float(total["List cost"]))
    assert sum(float(r["GPU-hours"]) for r in jobs) == pytest.approx(244.0)
    assert float(fields["Net payable"]) == pytest.approx(float(fields["List cost"]) * 0.3)
    assert fields["Currency"] == "HKD" and jobs[-1]["End"] == "running"
    assert jobs[0]["PF-hours"] == ""  # job 3 was never observed: empty, not 0


def test_every_plot_gets_png_export_in_its_menu(qtbot, tmp_path: Path) -> None:
    install_exports()
    win = TenantDrilldownWindow("hku", PanelContext())
    qtbot.addWidget(win)
    win.show_frame(frame_with_money())
    win.render_now()
    win.show()
    qtbot.waitUntil(lambda: win.usage_plot.isVisible())
    actions = [a.text() for a in win.usage_plot.scene().contextMenu]
    assert PLOT_ACTION in actions
    out = tmp_path / "bars.png"
    export_plot_png(win.money.bars_plot, out)
    img = QImage(str(out))
    assert img.width() == 2 * win.money.bars_plot.width() and not img.isNull()


def test_the_ledger_keeps_what_the_console_saw_of_each_job() -> None:
    """Observations behind PF-hours and efficiency on a live site (console/accounting/observed.py):
    each frame's allocated GPUs count for the time since the previous frame."""
    from console.accounting.observed import MAX_STEP_S, ObservationLedger

    ledger = ObservationLedger(busy_threshold_pct=5.0)
    f0 = make_test_frame(now=NOW)
    ledger.observe(f0)
    assert ledger.observations() == {}  # one frame is an instant, not a duration
    ledger.observe(make_test_frame(now=NOW + 10))
    f2 = make_test_frame(now=NOW + 20)
    idle = replace(f2, gpu=replace(f2.gpu, util=f2.gpu.util * 0 + 1.0))  # everything idle
    ledger.observe(idle)
    ledger.observe(make_test_frame(now=NOW + 20 + MAX_STEP_S + 1))  # a gap: not attributed
    obs = ledger.observations()
    assert set(obs) == {"101", "102", "103", "104"}  # the running jobs
    o = obs["101"]
    peak = float(f0.topology.gpu_peak_tflops[0])
    assert (o.seen_from, o.seen_to) == (NOW, NOW + 20)  # the gap extended nothing
    assert o.delivered_tflops == pytest.approx(300.0) and o.peak_tflops == pytest.approx(peak)
    assert o.idle_share == pytest.approx(0.5)  # idle for 10 of the 20 watched seconds


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    """A live site's statements are written later, by the command line: what the console saw
    is kept on disk, written atomically, and merged back in."""
    from console.accounting.observed import ObservationLedger

    ledger = ObservationLedger()
    ledger.observe(make_test_frame(now=NOW))
    ledger.observe(make_test_frame(now=NOW + 30))
    path = tmp_path / "obs" / "observations-lab.npz"
    ledger.save(path)
    again = ObservationLedger()
    assert again.load(path) == 4 and again.observations() == ledger.observations()
    assert again.load(path) == 0  # jobs already known keep their own totals
    assert ObservationLedger().load(tmp_path / "missing.npz") == 0
    (tmp_path / "bad.npz").write_bytes(b"not a numpy file")
    assert ObservationLedger().load(tmp_path / "bad.npz") == 0
    assert not list(path.parent.glob("*.tmp"))


def test_the_scheme_summary_from_the_tenants_panel(qtbot, tmp_path: Path) -> None:
    from widgets.tenant_money import month_keys, write_statements

    panel = TenantsPanel(PanelContext())
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    assert not panel.statements_button.isEnabled()  # nothing read yet: nothing to write
    panel.show_frame(frame_with_money())
    panel.render_now()
    assert panel.statements_button.isEnabled()
    view = panel.model.accounting
    assert view is not None and month_keys(view) == ["2027-01", "2026-12"]
    out = tmp_path / "scheme.csv"
    assert write_statements(view, "2027-01", str(out)) == 3
    rows = {r["Account"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert (rows["hku"]["GPU-hours"], rows["hku"]["Net payable"]) == ("244.00", "146.40")
    assert rows["cuhk"]["Subsidy rate %"] == "35" and rows["acme"]["List cost"] == "48.00"


def test_the_money_columns_follow_efficiency_on_screen(qtbot) -> None:
    """Visual order only: GPU-hours, cost, subsidy and net come right after Efficiency, where a
    wide dock shows them without sideways scrolling; the model's columns stay as they are."""
    from widgets.panel import PanelContext
    from widgets.tenants_panel import COL_EFF, COL_RUN, HEADERS, MONEY_COLS, TenantsPanel

    panel = TenantsPanel(PanelContext())
    qtbot.addWidget(panel)
    hh = panel.table.horizontalHeader()
    shown = [HEADERS[hh.logicalIndex(v)] for v in range(len(HEADERS))]
    eff = shown.index(HEADERS[COL_EFF])
    assert shown[eff + 1: eff + 1 + len(MONEY_COLS)] == [HEADERS[c] for c in MONEY_COLS]
    assert shown[eff + 1 + len(MONEY_COLS)] == HEADERS[COL_RUN]
    assert panel.model.headerData(COL_RUN, Qt.Orientation.Horizontal) == HEADERS[COL_RUN]

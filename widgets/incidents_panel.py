"""Incidents: the ranked cause hypotheses, the evidence behind each, and what to do.

The analytics rank causes (frame.causes, best first); this panel shows the top ones with their
confidence and blast radius, and for the selected one the evidence, the suggested action and
links to every node, job, tenant and rack it touches (through the navigator). The list is only
rebuilt when the set of causes changes, so the selection and scroll position hold while the
figures update. Lives in the GUI thread.
"""

from __future__ import annotations

import html
import time

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QHeaderView, QLabel, QSplitter, QTextBrowser, QTreeWidget,
    QTreeWidgetItem, QVBoxLayout, QWidget,
)

from console.model import Cause, Frame
from widgets import theme as theme_mod
from widgets.formatting import fmt_duration, fmt_int, plural
from widgets.panel import Panel, PanelContext
from widgets.tables import ColumnSizer
from widgets.theme import SEVERITY_WORDS, PanelHeader

MAX_CAUSES = 20
HEADERS = ("Confidence", "Severity", "Probable cause", "Blast radius")
#: Widths at 14 px text on 1920x1080; `ColumnSizer` scales them (the cause's words give way).
COLUMN_WIDTHS = (100, 100, 520, 260)
COLUMN_SAMPLES = {0: "100 %", 1: "critical"}


def blast_radius(c: Cause) -> str:
    """ "8 GPUs, 1 node, 1 job, 1 tenant, 16 GPU-hours at risk" (zero parts left out)."""
    parts = [plural(c.gpus, "GPU") if c.gpus else "",
             plural(len(c.nodes), "node") if c.nodes else "",
             plural(len(c.jobs), "job") if c.jobs else "",
             plural(len(c.tenants), "tenant") if c.tenants else ""]
    text = ", ".join(p for p in parts if p)
    if c.gpu_hours_at_risk > 0:
        risk = f"{fmt_int(c.gpu_hours_at_risk)} GPU-hours at risk"
        text = f"{text}; {risk}" if text else risk
    return text or "nothing allocated affected"


def subject_link(c: Cause) -> tuple[str, str] | None:
    """(href, words) for the cause's own subject, or None for levels with no drill-down."""
    s = c.subject
    if s.level == "gpu" and "/" in s.key:
        node, gpu = s.key.rsplit("/", 1)
        return f"gpu:{node}/{gpu}", f"GPU {gpu} of {node}"
    if s.level in ("node", "rack", "job", "tenant"):
        return f"{s.level}:{s.key}", f"{s.level} {s.key}"
    if s.level in GROUP_WORDS and c.nodes:
        # No window of its own: the link outlines the group's nodes on the health map.
        return f"group:{c.id}", f"{GROUP_WORDS[s.level]} {s.key} on the map"
    return None


#: Cause subjects that are groups of nodes named by the site's topology.
GROUP_WORDS = {"pdu": "PDU", "switch": "switch", "row": "row"}


class IncidentsPanel(Panel):
    """Top cause hypotheses (frame.causes) with evidence, action and drill-down links."""

    title = "Incidents"
    #: The operator asked for the timeline of this incident (a `Cause`): the journal's
    #: timeline dialog answers it where a journal is kept (widgets/timeline_install.py).
    timeline_requested = Signal(object)

    def __init__(self, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._causes: tuple[Cause, ...] = ()
        #: Set where a journal answers `timeline_requested` (then each incident links to it).
        self.timeline_available = False
        self.header = PanelHeader(self.title, self)
        self.list = QTreeWidget(self)
        self.list.setObjectName("IncidentsList")
        self.list.setColumnCount(len(HEADERS))
        self.list.setHeaderLabels(list(HEADERS))
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAlternatingRowColors(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.list.header().setStretchLastSection(True)
        self.column_sizer = ColumnSizer(self.list, COLUMN_WIDTHS, free_text={2, 3},
                                        samples=COLUMN_SAMPLES)
        self.empty_label = QLabel("No incident hypotheses: nothing unusual detected.", self)
        self.empty_label.setObjectName("KpiCaption")
        self.details = QTextBrowser(self)
        self.details.setObjectName("IncidentDetails")
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(self._on_link)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(self.details)
        split.setSizes([260, 320])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.empty_label)
        layout.addWidget(split, 1)
        self.list.currentItemChanged.connect(lambda cur, _prev: self._show(self.selected_cause()))

    # --- frames ---------------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        self.header.set_age(frame, "telemetry")
        causes = tuple(frame.causes[:MAX_CAUSES])
        th = theme_mod.current()
        if [c.id for c in causes] != [c.id for c in self._causes]:
            selected = self.selected_cause()
            self.list.clear()
            for c in causes:
                item = QTreeWidgetItem(self.list)
                item.setData(0, Qt.ItemDataRole.UserRole, c.id)
                item.setTextAlignment(0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._causes = causes
            if selected is not None:
                self.select_cause(selected.id)
        self._causes = causes
        for i, c in enumerate(causes):
            item = self.list.topLevelItem(i)
            texts = (f"{c.confidence * 100:.0f} %", SEVERITY_WORDS[c.severity], c.title,
                     blast_radius(c))
            for col, text in enumerate(texts):
                if item.text(col) != text:
                    item.setText(col, text)
            item.setForeground(1, QColor(th.severity[c.severity]))
            item.setToolTip(2, c.title)
            item.setToolTip(3, texts[3])
        self.empty_label.setVisible(not causes)
        if causes and self.list.currentItem() is None:
            self.list.setCurrentItem(self.list.topLevelItem(0))
        self._show(self.selected_cause())

    # --- queries and navigation -----------------------------------------------------------------

    def causes(self) -> tuple[Cause, ...]:
        return self._causes

    def selected_cause(self) -> Cause | None:
        item = self.list.currentItem()
        if item is None:
            return None
        cid = item.data(0, Qt.ItemDataRole.UserRole)
        return next((c for c in self._causes if c.id == cid), None)

    def select_cause(self, cause_id: str) -> bool:
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == cause_id:
                self.list.setCurrentItem(item)
                return True
        return False

    def open_link(self, href: str) -> None:
        """Follow a drill-down link of the form "node:n0001", "gpu:n0001/2", "job:4812"..."""
        kind, _, key = href.partition(":")
        nav = self.context.navigator
        if kind == "node":
            nav.node_requested.emit(key)
        elif kind == "gpu":
            node, _, gpu = key.rpartition("/")
            if gpu.isdigit():
                nav.gpu_requested.emit(node, int(gpu))
        elif kind == "job" and key.isdigit():
            nav.job_requested.emit(int(key))
        elif kind == "tenant":
            nav.tenant_requested.emit(key)
        elif kind == "rack":
            nav.rack_requested.emit(key)
        elif kind == "timeline":
            c = next((c for c in self._causes if c.id == key), None)
            if c is not None:
                self.timeline_requested.emit(c)
        elif kind == "group":
            c = next((c for c in self._causes if c.id == key), None)
            if c is not None:
                nav.nodes_requested.emit(f"{GROUP_WORDS.get(c.subject.level, c.subject.level)} "
                                         f"{c.subject.key}", tuple(c.nodes))

    @Slot(QUrl)
    def _on_link(self, url: QUrl) -> None:
        self.open_link(url.toString())

    def _show(self, c: Cause | None) -> None:
        if c is None:
            self.details.setHtml("")
            return
        th = theme_mod.current()
        e = html.escape

        def link(href: str, words: str) -> str:
            return f"<a href='{e(href)}' style='color:{th.accent}'>{e(words)}</a>"

        now = (self.frame.data_now or self.frame.time) if self.frame is not None else time.time()
        started = time.strftime("%H:%M:%S", time.localtime(c.started_at))
        parts = [f"<h3 style='margin:0'>{e(c.title)}</h3>",
                 f"<p><b style='color:{th.severity[c.severity]}'>{e(SEVERITY_WORDS[c.severity])}"
                 f"</b> \u00b7 confidence {c.confidence * 100:.0f} % \u00b7 since {e(started)} "
                 f"({e(fmt_duration(now - c.started_at))})</p>",
                 f"<p><b>Blast radius:</b> {e(blast_radius(c))}</p>"]
        if c.action:
            parts.append(f"<p><b>What to do:</b> {e(c.action)}</p>")
        if c.evidence:
            parts.append("<p><b>Evidence</b></p><ul>"
                         + "".join(f"<li>{e(x)}</li>" for x in c.evidence) + "</ul>")
        links: list[str] = []
        own = subject_link(c)
        if own is not None:
            links.append(link(*own))
        links += [link(f"node:{n}", n) for n in c.nodes[:40]]
        links += [link(f"job:{j}", f"job {j}") for j in c.jobs[:40]]
        links += [link(f"tenant:{t}", f"tenant {t}") for t in c.tenants[:40]]
        if links:
            parts.append("<p><b>Open:</b> " + " \u00b7 ".join(links) + "</p>")
        if self.timeline_available:  # only where a journal is kept
            parts.append("<p>" + link(f"timeline:{c.id}", "Timeline of this incident") + "</p>")
        self.details.setHtml("".join(parts))


"""A window for one node: its Slurm state, every GPU with the evidence behind its health,
what is known to be wrong there, and Drain / Resume.

The step after an alert: "XID 79 on n0123 GPU 2" opens this, the GPU's row is selected and
says why it is red in words, the likely cause says what to do, and the Drain button does it
(after asking for a reason, since Slurm records one and the next shift reads it). Links go on
to the jobs and tenants running here. Live like a panel: the main window keeps calling
`show_frame`. Lives in the GUI thread.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QPushButton, QSplitter, QTableView, QTextBrowser, QVBoxLayout, QWidget,
)

from console.analytics.xid import describe as xid_describe
from console.analytics.xid import info as xid_info
from console.health import explain
from console.model import Frame, Health, NodeState, Severity
from widgets import theme as theme_mod
from widgets.alerts_panel import ActionRelay
from widgets.drilldown_common import (
    DrilldownWindow, EventItem, FieldGrid, MapSubject, RowsModel, events_for, events_html, link,
    set_availability,
)
from widgets.formatting import fmt_metric
from widgets.panel import PanelContext
from widgets.tables import setup_row_table
from widgets.theme import HEALTH_WORDS, PanelHeader

#: Why a GPU is not OK comes right after its health: it is what the reader came for.
GPU_HEADERS = ("GPU", "Health", "Evidence", "XID", "Util", "Tensor", "SM clock", "Temp", "Power",
               "Memory", "ECC DBE", "NVLink CRC", "Job", "Tenant")
COL_HEALTH, COL_EVIDENCE, COL_XID, COL_JOB, COL_TENANT = 1, 2, 3, 12, 13
_WIDTHS = (40, 84, 330, 210, 56, 68, 100, 60, 68, 84, 82, 106, 72)

#: Slurm node states in words an on-call engineer acts on.
NODE_STATE_WORDS: dict[NodeState, str] = {
    NodeState.IDLE: "IDLE \u2014 no jobs",
    NodeState.MIXED: "MIXED \u2014 some GPUs allocated",
    NodeState.ALLOCATED: "ALLOCATED \u2014 fully in use",
    NodeState.COMPLETING: "COMPLETING \u2014 jobs finishing",
    NodeState.DRAINING: "DRAINING \u2014 jobs run on, no new ones start",
    NodeState.DRAINED: "DRAINED \u2014 out of service, no jobs",
    NodeState.DOWN: "DOWN \u2014 unusable",
    NodeState.FAIL: "FAIL \u2014 failed",
    NodeState.MAINT: "MAINT \u2014 in maintenance",
    NodeState.RESERVED: "RESERVED",
    NodeState.UNKNOWN: "UNKNOWN",
    NodeState.FUTURE: "FUTURE \u2014 not yet in service",
    NodeState.INVAL: "INVAL \u2014 invalid configuration",
    NodeState.POWERED_DOWN: "POWERED DOWN",
}
#: States from which `resume` makes sense (Slurm refuses to "resume" an idle node).
RESUMABLE = frozenset({NodeState.DRAINING, NodeState.DRAINED, NodeState.DOWN, NodeState.FAIL})
ALREADY_DRAINED = frozenset({NodeState.DRAINING, NodeState.DRAINED})

_FIELDS = (("state", "Slurm state"), ("health", "Node health"), ("rack", "Rack"),
           ("responding", "Responding to Slurm"), ("model", "GPU model"),
           ("gpus", "GPUs allocated"), ("partitions", "Partitions"), ("jobs", "Jobs here"))


def gpu_rows(frame: Frame, node_i: int) -> tuple[list[tuple[str, ...]], list[int],
                                                 list[dict[int, str]], list[dict[int, str]]]:
    """(rows, flat GPU indices, colours, tooltips) for one node's real GPUs."""
    th = theme_mod.current()
    topo = frame.topology
    gpn = topo.gpus_per_node
    gf = frame.gpu
    rows: list[tuple[str, ...]] = []
    keys: list[int] = []
    colours: list[dict[int, str]] = []
    tips: list[dict[int, str]] = []
    for local in range(int(topo.node_gpu_count[node_i])):
        g = node_i * gpn + local
        h = int(gf.health[g])
        health = Health(h) if 0 <= h <= 4 else Health.NO_DATA
        xid = float(gf.xid[g])
        tip: dict[int, str] = {}
        if math.isfinite(xid) and xid > 0:
            xid_text = xid_describe(int(xid))
            tip[COL_XID] = f"{xid_text}\nWhat to do: {xid_info(int(xid)).action}"
        else:
            xid_text = "none" if math.isfinite(xid) else "no data"
        ecc = float(gf.ecc_dbe[g])
        ecc_text = f"{int(ecc):,}" if math.isfinite(ecc) else "no data"
        job_text = tenant_text = ""
        row = int(gf.job_row[g])
        if 0 <= row < len(frame.jobs):
            job_text = str(int(frame.jobs.job_id[row]))
            t = int(gf.tenant[g])
            if 0 <= t < len(frame.tenants):
                tenant_text = frame.tenants.display[t] or frame.tenants.account[t]
            else:
                tenant_text = frame.jobs.accounts[int(frame.jobs.account[row])]
        # Node-level words (DRAINING: reason) are in the header; per GPU they would repeat.
        all_words = explain(frame, g)
        words = [w for w in all_words if not w.startswith("node ")] or all_words
        if words:
            evidence = "; ".join(words)
        elif health == Health.OK:
            evidence = "nothing abnormal"
        else:
            evidence = f"marked {HEALTH_WORDS[health]}; no further detail in this data"
        crc = float(gf.nvlink_crc[g])
        crc_text = f"{crc:,.0f}/s" if math.isfinite(crc) else "no data"
        rows.append((str(local), HEALTH_WORDS[health], evidence, xid_text,
                     fmt_metric("util", gf.util[g]), fmt_metric("tensor", gf.tensor[g]),
                     fmt_metric("sm_clock", gf.sm_clock[g]), fmt_metric("temp", gf.temp[g]),
                     fmt_metric("power", gf.power[g]), fmt_metric("fb_used", gf.fb_used[g]),
                     ecc_text, crc_text, job_text, tenant_text))
        keys.append(g)
        colour = {COL_HEALTH: th.health[health]}
        if health != Health.OK and evidence:
            colour[COL_EVIDENCE] = th.health[health] if health != Health.NO_DATA else th.text_dim
        colours.append(colour)
        tips.append(tip)
    return rows, keys, colours, tips


class NodeDrilldownWindow(DrilldownWindow):
    """Everything about one node, live. Top-level window; one per node per cluster.

    `ask_text(title, text, default)` (the drain reason) and `confirm(title, text)` are the
    confirmation steps; tests replace them with functions that answer at once.
    """

    title = "Node"
    #: The selected GPU changed (local index, -1 none): the main window moves the map outline.
    gpu_selected = Signal(int)

    def __init__(self, node: str, context: PanelContext, parent: QWidget | None = None,
                 gpu: int | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.context = context
        self.selected_gpu: int | None = gpu
        self.events: list[EventItem] = []
        self._node_i = -1
        self.setWindowTitle(f"Node {node}")
        self.resize(1560, 860)
        th = theme_mod.current()

        self.header = PanelHeader(f"Node {node}", self)
        self.health_badge = QLabel("", self)
        self.health_badge.setObjectName("DrilldownHealth")
        self.header.add_widget(self.health_badge)
        self.missing_label = QLabel("", self)
        self.missing_label.setWordWrap(True)
        self.missing_label.setStyleSheet(f"color: {th.severity[Severity.CRITICAL]}; font-weight: bold;")
        self.missing_label.hide()

        self.fields = FieldGrid(_FIELDS, 4, self)
        self.fields.link_activated.connect(self._on_link)

        self.drain_button = QPushButton("Drain\u2026", self)
        self.resume_button = QPushButton("Resume", self)
        self.drain_button.clicked.connect(self.drain)
        self.resume_button.clicked.connect(self.resume)
        self.relay = ActionRelay(self)
        self.relay.finished.connect(self.on_action_finished)

        self.gpu_model = RowsModel(GPU_HEADERS, self)
        self.gpu_table = QTableView(self)
        self.gpu_table.setModel(self.gpu_model)
        setup_row_table(self.gpu_table, "NodeGpuTable")
        hh = self.gpu_table.horizontalHeader()
        hh.setStretchLastSection(True)
        for c, w in enumerate(_WIDTHS):
            self.gpu_table.setColumnWidth(c, round(w * th.font_scale))
        self.gpu_table.activated.connect(self._on_gpu_activated)
        self.gpu_table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.gpu_caption = QLabel("GPUs \u2014 double-click or Enter opens the job; "
                                  "on the Tenant column, the tenant", self)
        self.gpu_caption.setObjectName("KpiCaption")
        self.gpu_detail = QLabel("", self)
        self.gpu_detail.setWordWrap(True)
        self.gpu_detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.gpu_detail.setStyleSheet(f"font-size: {th.px(15)}px;")

        self.events_view = QTextBrowser(self)
        self.events_view.setOpenLinks(False)
        self.events_caption = QLabel("Likely causes, alerts and anomalies on this node", self)
        self.events_caption.setObjectName("PanelTitle")

        actions_row = QHBoxLayout()
        actions_row.addWidget(self.drain_button)
        actions_row.addWidget(self.resume_button)
        actions_row.addWidget(self.note_label, 1)
        gpu_box = QWidget(self)
        gb = QVBoxLayout(gpu_box)
        gb.setContentsMargins(0, 0, 0, 0)
        gb.addWidget(self.gpu_caption)
        gb.addWidget(self.gpu_table, 1)
        gb.addWidget(self.gpu_detail)
        ev_box = QWidget(self)
        eb = QVBoxLayout(ev_box)
        eb.setContentsMargins(0, 0, 0, 0)
        eb.addWidget(self.events_caption)
        eb.addWidget(self.events_view, 1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(gpu_box)
        split.addWidget(ev_box)
        split.setSizes([380, 260])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.missing_label)
        layout.addWidget(self.fields)
        layout.addLayout(actions_row)
        layout.addWidget(self.status_label)
        layout.addWidget(split, 1)
        self._update_buttons(None)

    # --- frames ---------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        th = theme_mod.current()
        self.header.set_age(frame, "telemetry")
        topo = frame.topology
        idx = topo.node_index().get(self.node, -1)
        self._node_i = idx
        if idx < 0:
            self.missing_label.setText(f"node {self.node} is not in the current data "
                                       "(removed from the topology, or another cluster)")
            self.missing_label.show()
            self.gpu_model.set_rows([], [])
            self.health_badge.setText("")
            self._update_buttons(None)
            return
        self.missing_label.hide()
        nodes = frame.nodes
        state = NodeState(int(nodes.state[idx])) if idx < len(nodes) else NodeState.UNKNOWN
        reason = nodes.reason[idx] if idx < len(nodes) else ""
        responding = bool(nodes.responding[idx]) if idx < len(nodes) else False
        h = int(frame.node_health[idx]) if idx < len(frame.node_health) else int(Health.NO_DATA)
        health = Health(h) if 0 <= h <= 4 else Health.NO_DATA
        colour = th.health[health]
        self.health_badge.setText(f"\u25a0 {HEALTH_WORDS[health]}")
        self.health_badge.setStyleSheet(f"color: {colour}; font-weight: bold; "
                                        f"font-size: {th.px(15)}px;")
        rack_i = int(topo.node_rack[idx])
        rack = topo.rack_names[rack_i] if 0 <= rack_i < len(topo.rack_names) else "?"
        self.header.title_label.setText(f"Node {self.node} \u00b7 rack {rack}")
        f = self.fields
        state_words = NODE_STATE_WORDS.get(state, state.name)
        bad_state = state in RESUMABLE or state == NodeState.MAINT
        f.set("state", state_words + (f" \u2014 reason: {reason}" if reason else ""),
              colour=th.severity[Severity.WARNING if state in ALREADY_DRAINED
                                 or state == NodeState.MAINT else Severity.CRITICAL]
              if bad_state else None)
        f.set("health", HEALTH_WORDS[health], colour=colour)
        f.set("rack", link(f"rack:{rack}", rack), rich=True)
        f.set("responding", "yes" if responding else "NO \u2014 Slurm cannot reach slurmd",
              colour=None if responding else th.health[Health.FAILED])
        f.set("model", topo.node_model[idx] if idx < len(topo.node_model) and topo.node_model[idx]
              else "unknown")
        if idx < len(nodes):
            f.set("gpus", f"{int(nodes.gpus_alloc[idx])} of {int(nodes.gpus[idx])}")
            f.set("partitions", ", ".join(nodes.partitions[idx]) or "none")
        f.set("jobs", self._jobs_links(frame, idx), rich=True)

        rows, keys, colours, tips = gpu_rows(frame, idx)
        bold = -1
        if self.selected_gpu is not None and 0 <= self.selected_gpu < len(rows):
            bold = self.selected_gpu
        self.gpu_model.set_rows(rows, keys, colours, tips, bold)
        if bold >= 0 and self.gpu_table.currentIndex().row() != bold:
            self.gpu_table.selectRow(bold)
        self._render_detail(frame, keys, rows)
        bad = sum(1 for r in rows if r[COL_HEALTH] != HEALTH_WORDS[Health.OK])
        self.gpu_caption.setText(f"GPUs ({len(rows)}; {bad} not OK) \u2014 double-click or Enter "
                                 "opens the job; on the Tenant column, the tenant")

        self.events = events_for(frame, node=self.node)
        text = events_html(self.events, "Nothing known to be wrong on this node: no alerts, "
                                        "anomalies or causes name it.")
        if getattr(self, "_events_html", None) != text:
            self._events_html = text
            bar = self.events_view.verticalScrollBar()
            pos = bar.value()
            self.events_view.setHtml(text)
            bar.setValue(pos)
        self.events_caption.setText(f"Likely causes, alerts and anomalies on this node "
                                    f"({len(self.events)})")
        self._update_buttons(state)

    def _render_detail(self, frame: Frame, keys: list[int], rows: list[tuple[str, ...]]) -> None:
        """The selected GPU's evidence in full, wrapped: the table cell may be clipped."""
        sel = self.selected_gpu
        if sel is None or not 0 <= sel < len(rows):
            text = "Select a GPU to read its evidence in full."
        else:
            g = keys[sel]
            words = explain(frame, g)
            text = f"GPU {sel} \u00b7 {rows[sel][COL_HEALTH]}: " + ("; ".join(words) or rows[sel][COL_EVIDENCE])
            xid = float(frame.gpu.xid[g])
            if math.isfinite(xid) and xid > 0:
                text += f". {xid_describe(int(xid))} \u2014 what to do: {xid_info(int(xid)).action}"
        if self.gpu_detail.text() != text:
            self.gpu_detail.setText(text)

    def _jobs_links(self, frame: Frame, idx: int) -> str:
        gpn = frame.topology.gpus_per_node
        ids = frame.gpu.job_id[idx * gpn:(idx + 1) * gpn]
        rows = frame.gpu.job_row[idx * gpn:(idx + 1) * gpn]
        tenants = frame.gpu.tenant[idx * gpn:(idx + 1) * gpn]
        seen: dict[int, tuple[int, int]] = {}
        for jid, row, t in zip(ids.tolist(), rows.tolist(), tenants.tolist()):
            if jid and jid not in seen:
                seen[jid] = (row, t)
        if not seen:
            return "none"
        parts = []
        for jid, (row, t) in seen.items():
            part = link(f"job:{jid}", str(jid))
            if 0 <= t < len(frame.tenants):
                name = frame.tenants.display[t] or frame.tenants.account[t]
                part += " (" + link(f"tenant:{frame.tenants.account[t]}", name) + ")"
            parts.append(part)
        return ", ".join(parts)

    # --- actions ---------------------------------------------------------------------------

    def _node_state(self) -> NodeState | None:
        frame = self.frame
        if frame is None or self._node_i < 0 or self._node_i >= len(frame.nodes):
            return None
        return NodeState(int(frame.nodes.state[self._node_i]))

    def drain_reason(self) -> str | None:
        """Why Drain cannot be offered now, or None."""
        caps = self.capabilities(self.context)
        state = self._node_state()
        if caps.get("drain_node"):
            return caps["drain_node"]
        if state is None:
            return "the node is not in the scheduler's current data"
        if state in ALREADY_DRAINED:
            return f"the node is already {state.name}"
        return None

    def resume_reason(self) -> str | None:
        caps = self.capabilities(self.context)
        state = self._node_state()
        if caps.get("resume_node"):
            return caps["resume_node"]
        if state is None:
            return "the node is not in the scheduler's current data"
        if state not in RESUMABLE:
            return f"the node is {state.name}, not drained or down"
        return None

    def _update_buttons(self, _state: NodeState | None) -> None:
        drain, resume = self.drain_reason(), self.resume_reason()
        set_availability(self.drain_button, drain,
                         "Drain: running jobs finish, no new ones start (asks for a reason)")
        set_availability(self.resume_button, resume, "Resume: return the node to service")
        caps = self.capabilities(self.context)
        unavailable = caps.get("drain_node")
        note = f"Drain and Resume are not available: {unavailable}" if unavailable else ""
        if self.note_label.text() != note:
            self.note_label.setText(note)
        self.note_label.setVisible(bool(note))

    def drain(self) -> bool:
        """Ask for a reason, then drain; False when not offered or the operator backed out."""
        if self.drain_reason() is not None:
            return False
        gpu_words = ""
        if self.selected_gpu is not None:
            gpu_words = f"GPU {self.selected_gpu}: "
        default = gpu_words + (self.events[0].title if self.events else "")
        reason = self.ask_text(f"Drain {self.node}",
                               f"Drain node {self.node}? Running jobs finish; no new job "
                               "starts here until it is resumed.\nReason (recorded in Slurm):",
                               default[:120])
        if reason is None or not reason.strip():
            if reason is not None:
                self.set_status("Not drained: Slurm needs a reason.", False)
            return False
        self.set_status(f"Draining {self.node}\u2026", None)
        self.relay.watch(self.context.actions.drain_node(
            self.node, reason.strip(), author=self.context.operator))
        return True

    def resume(self) -> bool:
        if self.resume_reason() is not None:
            return False
        if not self.confirm(f"Resume {self.node}",
                            f"Return node {self.node} to service? Jobs will be scheduled on it "
                            "again."):
            return False
        self.set_status(f"Resuming {self.node}\u2026", None)
        self.relay.watch(self.context.actions.resume_node(self.node, author=self.context.operator))
        return True

    # --- selection and links ---------------------------------------------------------------

    def map_subject(self) -> MapSubject:
        """The node, or its selected GPU, for the health map's outline."""
        return MapSubject(node=self.node, gpu=self.selected_gpu, cluster=self.data_cluster())

    def select_gpu(self, local: int | None) -> None:
        """Select (and embolden) one GPU's row; the main window calls this for a GPU request."""
        self.selected_gpu = local
        if local is not None and 0 <= local < self.gpu_model.rowCount():
            self.gpu_table.selectRow(local)
        if self.frame is not None:
            self.render(self.frame)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and current.row() != self.selected_gpu:
            self.selected_gpu = current.row()
            self.gpu_model.set_rows(self.gpu_model.rows, self.gpu_model.keys,
                                    self.gpu_model.colours, self.gpu_model.tips, current.row())
            self.gpu_selected.emit(current.row())

    @Slot(QModelIndex)
    def _on_gpu_activated(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        row = self.gpu_model.rows[index.row()]
        nav = self.context.navigator
        if index.column() == COL_TENANT and row[COL_TENANT] and self.frame is not None:
            t = int(self.frame.gpu.tenant[self.gpu_model.keys[index.row()]])
            if 0 <= t < len(self.frame.tenants):
                nav.tenant_requested.emit(self.frame.tenants.account[t])
                return
        if row[COL_JOB]:
            nav.job_requested.emit(int(row[COL_JOB]))

    @Slot(str)
    def _on_link(self, href: str) -> None:
        kind, _, value = href.partition(":")
        nav = self.context.navigator
        if kind == "job":
            nav.job_requested.emit(int(value))
        elif kind == "tenant":
            nav.tenant_requested.emit(value)
        elif kind == "rack":
            nav.rack_requested.emit(value)

    def gpu_index(self) -> int | None:
        """Flat GPU index of the selected GPU on the current topology, or None."""
        if self._node_i < 0 or self.selected_gpu is None or self.frame is None:
            return None
        return self._node_i * self.frame.topology.gpus_per_node + self.selected_gpu


__all__ = ["GPU_HEADERS", "NODE_STATE_WORDS", "NodeDrilldownWindow", "gpu_rows"]

"""A window for one job: who, where, since when, why it waits, how its GPUs are doing, and
Cancel.

"Job 4812 hung" needs the owner and tenant (who to call), its nodes (where to look), its GPUs
side by side (which one is the straggler) and the cause's suggested action, in one place. When
the scheduler stops listing the job (it ended and aged out), the window says so and keeps the
last known details greyed rather than going blank, so a note being written about it still has
its facts. Lives in the GUI thread; live through `show_frame`.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, Slot
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QPushButton, QSplitter, QTableView, QTextBrowser, QVBoxLayout, QWidget,
)

from console import slurm_reasons
from console.health import explain
from console.model import ACTIVE_JOB_STATES, Frame, Health, JobState, Severity
from widgets import theme as theme_mod
from widgets.alerts_panel import ActionRelay
from widgets.drilldown_common import (
    DrilldownWindow, EventItem, FieldGrid, MapSubject, RowsModel, events_for, events_html, link,
    local_time, set_availability,
)
from widgets.formatting import fmt_duration, fmt_int, fmt_metric, fmt_pct
from widgets.panel import PanelContext
from widgets.tables import setup_row_table
from widgets.theme import HEALTH_WORDS, PanelHeader

#: Why a GPU is not OK sits next to its health: it is what the reader came for.
GPU_HEADERS = ("Node", "GPU", "Health", "Why not OK", "Util", "Tensor", "Temp", "Power",
               "SM clock", "Delivering")
#: Node names listed as links in the header; the rest are reached from the GPU list.
MAX_NODE_LINKS = 16
#: The lowest GPU counts as a straggler below this share of the job's median activity.
STRAGGLER_FRACTION = 0.8
CANCELLABLE = ACTIVE_JOB_STATES | {JobState.PENDING}

_FIELDS = (("job", "Job"), ("name", "Name"), ("user", "User"), ("tenant", "Tenant"),
           ("partition", "Partition"), ("state", "State"), ("gpus", "GPUs"),
           ("nodes", "Nodes"), ("submit", "Submitted"), ("start", "Started"),
           ("end", "Ends / ended"), ("time", "Waiting / running"), ("reason", "Pending reason"))


def job_gpu_summary(frame: Frame, gpus: np.ndarray) -> dict[str, float | int]:
    """Mean utilisation and tensor activity, delivered TFLOPS, and the straggler (the GPU with
    the lowest tensor activity, or utilisation when tensor activity is not reported)."""
    gf = frame.gpu
    out: dict[str, float | int] = {"n": int(len(gpus)), "straggler": -1}
    if not len(gpus):
        return out
    with np.errstate(invalid="ignore"), _quiet():
        util = gf.util[gpus].astype(np.float64)
        tensor = gf.tensor[gpus].astype(np.float64)
        out["util"] = float(np.nanmean(util)) if np.isfinite(util).any() else math.nan
        out["tensor"] = float(np.nanmean(tensor)) if np.isfinite(tensor).any() else math.nan
        out["tflops"] = float(np.nansum(gf.delivered_tflops[gpus].astype(np.float64)))
    basis = tensor if np.isfinite(tensor).any() else util
    out["straggling"] = False
    if np.isfinite(basis).any() and len(gpus) > 1 and np.nanmax(basis) > np.nanmin(basis):
        low = int(np.nanargmin(basis))
        out["straggler"] = int(gpus[low])
        # A straggler holds the others back; a point or two below the rest is just noise.
        out["straggling"] = bool(basis[low] < STRAGGLER_FRACTION * np.nanmedian(basis))
    return out


class _quiet:
    """Silence numpy's "mean of empty slice" warnings (NaN is the answer we want)."""

    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._w.__exit__(*exc)


class JobDrilldownWindow(DrilldownWindow):
    """Everything about one job, live. Top-level window; one per job per cluster.

    `confirm(title, text)` is the confirmation before cancelling; tests replace it.
    """

    title = "Job"

    def __init__(self, job_id: int, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = int(job_id)
        self.context = context
        self.events: list[EventItem] = []
        self.present = False
        self.last_seen: float | None = None
        self._state: JobState | None = None
        self._desc = ""
        self.setWindowTitle(f"Job {self.job_id}")
        self.resize(1280, 820)
        th = theme_mod.current()

        self.header = PanelHeader(f"Job {self.job_id}", self)
        self.gone_label = QLabel("", self)
        self.gone_label.setWordWrap(True)
        self.gone_label.setStyleSheet(f"color: {th.severity[Severity.WARNING]}; font-weight: bold;")
        self.gone_label.hide()
        self.fields = FieldGrid(_FIELDS, 5, self)
        self.fields.link_activated.connect(self._on_link)

        self.cancel_button = QPushButton("Cancel job\u2026", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.relay = ActionRelay(self)
        self.relay.finished.connect(self.on_action_finished)

        self.summary_label = QLabel("", self)
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet(f"font-size: {th.px(15)}px;")
        self.gpu_model = RowsModel(GPU_HEADERS, self)
        self.gpu_table = QTableView(self)
        self.gpu_table.setModel(self.gpu_model)
        setup_row_table(self.gpu_table, "JobGpuTable")
        self.gpu_table.horizontalHeader().setStretchLastSection(True)
        for c, w in enumerate((100, 40, 90, 200, 56, 64, 60, 64, 90)):
            self.gpu_table.setColumnWidth(c, w)
        self.gpu_table.activated.connect(self._on_gpu_activated)
        self.gpu_caption = QLabel("Its GPUs", self)
        self.gpu_caption.setObjectName("PanelTitle")

        self.events_view = QTextBrowser(self)
        self.events_view.setOpenLinks(False)
        self.events_caption = QLabel("Likely causes, alerts and anomalies naming this job", self)
        self.events_caption.setObjectName("PanelTitle")

        actions_row = QHBoxLayout()
        actions_row.addWidget(self.cancel_button)
        actions_row.addWidget(self.note_label, 1)
        gpu_box = QWidget(self)
        gb = QVBoxLayout(gpu_box)
        gb.setContentsMargins(0, 0, 0, 0)
        gb.addWidget(self.gpu_caption)
        gb.addWidget(self.summary_label)
        gb.addWidget(self.gpu_table, 1)
        ev_box = QWidget(self)
        eb = QVBoxLayout(ev_box)
        eb.setContentsMargins(0, 0, 0, 0)
        eb.addWidget(self.events_caption)
        eb.addWidget(self.events_view, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(gpu_box)
        split.addWidget(ev_box)
        split.setSizes([860, 400])
        self.details = QWidget(self)  # greyed as a whole when the job has gone
        dl = QVBoxLayout(self.details)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.fields)
        dl.addWidget(split, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.gone_label)
        layout.addLayout(actions_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.details, 1)
        self._update_buttons()

    def map_subject(self) -> MapSubject:
        """Every GPU the job holds, followed frame by frame by the health map."""
        return MapSubject(job_id=self.job_id, cluster=self.data_cluster())

    # --- frames ---------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        self.header.set_age(frame, "scheduler")
        rows = np.flatnonzero(frame.jobs.job_id == self.job_id) if len(frame.jobs) else []
        if len(rows) == 0:
            self._render_gone(frame)
            return
        self.present = True
        self.last_seen = frame.data_now or frame.time
        self.gone_label.hide()
        self.details.setEnabled(True)
        self._render_job(frame, int(rows[0]))
        self._update_buttons()

    def _render_gone(self, frame: Frame) -> None:
        if self.last_seen is None:
            text = f"job {self.job_id} is not in the scheduler's list (it may have ended long ago)"
        else:
            when = time.strftime("%H:%M:%S", time.localtime(self.last_seen))
            text = (f"job {self.job_id} is no longer in the scheduler's list \u2014 last seen "
                    f"{when}; the details below are from then")
        self.present = False
        self.gone_label.setText(text)
        self.gone_label.show()
        self.details.setEnabled(False)
        self._update_buttons()

    def _render_job(self, frame: Frame, r: int) -> None:
        th = theme_mod.current()
        jobs = frame.jobs
        now = frame.data_now or frame.time
        f = self.fields
        state = JobState(int(jobs.state[r])) if 0 <= int(jobs.state[r]) <= 15 else JobState.OTHER
        self._state = state
        name = str(jobs.name[r])
        user = str(jobs.user[r])
        aj, task = int(jobs.array_job_id[r]), int(jobs.array_task_id[r])
        job_text = f"{self.job_id}" + (f" (array {aj}_{task})" if aj and task >= 0 else "")
        f.set("job", job_text)
        f.set("name", name or "\u2014")
        f.set("user", user or "\u2014")
        account = jobs.accounts[int(jobs.account[r])] if len(jobs.accounts) else ""
        tenants = frame.tenants
        display = account
        if account in tenants.account:
            display = tenants.display[tenants.index(account)] or account
        f.set("tenant", link(f"tenant:{account}", display) + (
            f" ({account})" if display != account else "") if account else "\u2014", rich=True)
        f.set("partition", jobs.partitions[int(jobs.partition[r])] if len(jobs.partitions) else "\u2014")
        colour = {JobState.RUNNING: th.ok_text, JobState.PENDING: th.text}.get(
            state, th.severity[Severity.WARNING])
        f.set("state", state.name, colour=colour)
        f.set("gpus", fmt_int(int(jobs.gpus[r])))
        f.set("nodes", self._nodes_text(frame, r), rich=True)
        submit, start, end = (float(jobs.submit_time[r]), float(jobs.start_time[r]),
                              float(jobs.end_time[r]))
        f.set("submit", local_time(submit))
        f.set("start", local_time(start) if math.isfinite(start) else "not started")
        limit = float(jobs.time_limit_s[r])
        end_tip = "" if not math.isfinite(limit) else f"time limit {fmt_duration(limit)}"
        f.set("end", local_time(end) if math.isfinite(end) else "\u2014", tooltip=end_tip)
        if state == JobState.PENDING:
            timing = f"waiting {fmt_duration(now - submit)}" if math.isfinite(submit) else "\u2014"
        elif math.isfinite(start):
            stop = end if state not in ACTIVE_JOB_STATES and math.isfinite(end) else now
            verb = "running" if state in ACTIVE_JOB_STATES else "ran"
            timing = f"{verb} {fmt_duration(stop - start)}"
            if math.isfinite(submit):
                timing += f" (waited {fmt_duration(start - submit)})"
        else:
            timing = "\u2014"
        f.set("time", timing)
        raw = jobs.reasons[int(jobs.reason[r])] if len(jobs.reasons) else ""
        group, words = slurm_reasons.explain(raw)
        if state == JobState.PENDING and raw and raw != "None":
            f.set("reason", f"{words} ({group}: {raw})" if words != raw else raw,
                  colour=th.severity[Severity.WARNING] if group == slurm_reasons.INFRASTRUCTURE
                  else None)
        else:
            f.set("reason", "\u2014")
        self._desc = (f"job {self.job_id} \u201c{name}\u201d of {user} ({display}), "
                      f"{fmt_int(int(jobs.gpus[r]))} GPUs, {state.name}")
        self.setWindowTitle(f"Job {self.job_id} \u2014 {name}" if name else f"Job {self.job_id}")
        self.header.title_label.setText(f"Job {self.job_id} \u00b7 {name} \u00b7 {user}"
                                        if name else f"Job {self.job_id}")
        self._render_gpus(frame)
        self.events = events_for(frame, job_id=self.job_id)
        text = events_html(self.events, "Nothing known to be wrong with this job: no alerts, "
                                        "anomalies or causes name it.")
        if getattr(self, "_events_html", None) != text:
            self._events_html = text
            self.events_view.setHtml(text)
        self.events_caption.setText(f"Likely causes, alerts and anomalies naming this job "
                                    f"({len(self.events)})")

    def _nodes_text(self, frame: Frame, r: int) -> str:
        count = int(frame.jobs.nodes[r])
        gpn = frame.topology.gpus_per_node
        gpus = np.flatnonzero(frame.gpu.job_id == self.job_id)
        names = [frame.topology.node_names[i] for i in np.unique(gpus // gpn)] if gpn else []
        expr = str(frame.jobs.node_list[r])
        if not names:
            return f"{fmt_int(count)}" + (f": {expr}" if expr else " (none allocated)")
        links = ", ".join(link(f"node:{n}", n) for n in names[:MAX_NODE_LINKS])
        more = f" and {len(names) - MAX_NODE_LINKS} more" if len(names) > MAX_NODE_LINKS else ""
        return f"{fmt_int(count)}: {links}{more}"

    def _render_gpus(self, frame: Frame) -> None:
        th = theme_mod.current()
        gf = frame.gpu
        topo = frame.topology
        gpus = np.flatnonzero(gf.job_id == self.job_id)
        s = job_gpu_summary(frame, gpus)
        rows: list[tuple[str, ...]] = []
        colours: list[dict[int, str]] = []
        gpn = topo.gpus_per_node
        straggler = int(s["straggler"])
        for g in gpus.tolist():
            node_i, local = divmod(g, gpn)
            h = int(gf.health[g])
            health = Health(h) if 0 <= h <= 4 else Health.NO_DATA
            why = "" if health == Health.OK else "; ".join(explain(frame, g))
            rows.append((topo.node_names[node_i], str(local), HEALTH_WORDS[health], why,
                         fmt_metric("util", gf.util[g]), fmt_metric("tensor", gf.tensor[g]),
                         fmt_metric("temp", gf.temp[g]), fmt_metric("power", gf.power[g]),
                         fmt_metric("sm_clock", gf.sm_clock[g]),
                         fmt_metric("delivered_tflops", gf.delivered_tflops[g])))
            colours.append({2: th.health[health]})
        bold = gpus.tolist().index(straggler) if straggler >= 0 and s["straggling"] else -1
        self.gpu_model.set_rows(rows, gpus.tolist(), colours, None, bold)
        self.gpu_caption.setText(f"Its GPUs ({fmt_int(len(gpus))})")
        if not len(gpus):
            self.summary_label.setText("No GPUs allocated to it now.")
            return
        text = (f"mean utilisation {fmt_metric('util', s['util'])} \u00b7 mean tensor activity "
                f"{fmt_pct(s['tensor'])} \u00b7 delivering {fmt_int(s['tflops'])} TFLOPS")
        if straggler >= 0:
            node_i, local = divmod(straggler, gpn)
            where = (f"{topo.node_names[node_i]} GPU {local}, tensor "
                     f"{fmt_metric('tensor', gf.tensor[straggler])}, utilisation "
                     f"{fmt_metric('util', gf.util[straggler])}")
            text += (f" \u00b7 STRAGGLER, in bold: {where}" if s["straggling"] else
                     f" \u00b7 lowest: {where} (within 20 % of the others: no straggler)")
        elif len(gpus) > 1:
            text += " \u00b7 no straggler: its GPUs all show the same activity"
        self.summary_label.setText(text)

    # --- actions ---------------------------------------------------------------------------

    def cancel_reason(self) -> str | None:
        """Why Cancel cannot be offered now, or None."""
        caps = self.capabilities(self.context)
        if caps.get("cancel_job"):
            return caps["cancel_job"]
        if not self.present:
            return "the job is no longer in the scheduler's list"
        if self._state is not None and self._state not in CANCELLABLE:
            return f"the job is {self._state.name}; nothing to cancel"
        return None

    def _update_buttons(self) -> None:
        reason = self.cancel_reason()
        set_availability(self.cancel_button, reason, "Cancel the job in Slurm (asks first)")
        unavailable = self.capabilities(self.context).get("cancel_job")
        note = (f"Cancel is not available: {unavailable}" if unavailable
                else (f"Cancel is not available: {reason}" if reason and self.present else ""))
        if self.note_label.text() != note:
            self.note_label.setText(note)
        self.note_label.setVisible(bool(note))

    def cancel(self) -> bool:
        """Ask, then cancel; False when not offered or the operator backed out."""
        if self.cancel_reason() is not None:
            return False
        if not self.confirm(f"Cancel job {self.job_id}",
                            f"Cancel {self._desc}?\n\nThe job stops now; its owner loses work "
                            "since the last checkpoint. This cannot be undone."):
            return False
        self.set_status(f"Cancelling job {self.job_id}\u2026", None)
        self.relay.watch(self.context.actions.cancel_job(self.job_id, author=self.context.operator))
        return True

    # --- links -----------------------------------------------------------------------------

    @Slot(QModelIndex)
    def _on_gpu_activated(self, index: QModelIndex) -> None:
        if not index.isValid() or self.frame is None:
            return
        g = self.gpu_model.keys[index.row()]
        node_i, local = divmod(g, self.frame.topology.gpus_per_node)
        self.context.navigator.gpu_requested.emit(self.frame.topology.node_names[node_i], local)

    @Slot(str)
    def _on_link(self, href: str) -> None:
        kind, _, value = href.partition(":")
        if kind == "node":
            self.context.navigator.node_requested.emit(value)
        elif kind == "tenant":
            self.context.navigator.tenant_requested.emit(value)


__all__ = ["GPU_HEADERS", "JobDrilldownWindow", "job_gpu_summary"]

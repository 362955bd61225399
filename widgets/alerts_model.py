"""Alerts and the console's own anomalies as one grouped, severity-sorted tree model.

Why one list: at 3 a.m. the on-call engineer should not have to compare two screens to see that
Alertmanager's "GPU hot" and the console's "rack R07 cooling" are the same event. Anomalies are
turned into rows that look like alerts and are marked "detected by console".

Order is the same everywhere in the console: critical, warning, info; within a severity, firing
before pending before inhibited before silenced, newest first. Groups sort by their worst
member. Several Alertmanagers reporting the same alert (an HA pair) show it once, by fingerprint.
Lives in the GUI thread; while the pointer is over the tree a new alert set is held back (the
ages and states still update) so rows do not move under the cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from console.model import Alert, Anomaly, Frame, Severity
from widgets import theme as theme_mod
from widgets.formatting import fmt_duration
from widgets.theme import SEVERITY_WORDS

GROUP_MODES = ("alertname", "rack", "node", "job", "tenant", "none")
GROUP_MODE_LABELS = {"alertname": "alert name", "rack": "rack", "node": "node", "job": "job",
                     "tenant": "tenant", "none": "nothing (flat list)"}
STATE_ORDER = {"firing": 0, "active": 0, "pending": 1, "inhibited": 2, "silenced": 3,
               "resolved": 4}
SEVERITY_MARKS = {Severity.CRITICAL: "\u25b2", Severity.WARNING: "\u25c6", Severity.INFO: "\u25cf"}
CONSOLE_SOURCE = "console"

#: Detector names in words (analytics may add more; unknown ones are spelled from their name).
ANOMALY_WORDS = {
    "gpu_outlier": "GPU unlike its peers",
    "straggler": "Straggler GPU in a job",
    "job_stall": "Job stalled",
    "thermal_trend": "Temperature heading for the limit",
    "xid": "XID errors",
    "xid_burst": "XID burst",
    "flapping": "Node flapping",
    "node_flap": "Node flapping",
    "exporter_silent": "Exporter silent, node up in Slurm",
    "queue_surge": "Queue surge",
    "series_change": "Sudden change in a series",
    "change": "Sudden change in a series",
}

COL_SEVERITY, COL_ALERT, COL_WHERE, COL_STATE, COL_AGE, COL_SOURCE = range(6)
HEADERS = ("Severity", "Alert", "Where", "State", "Age", "Source")
#: Widths at 14 px text on 1920x1080; `widgets.tables.ColumnSizer` scales them.
COLUMN_WIDTHS = (130, 300, 210, 90, 80, 170)
#: The alert's name and summary elide first; where, state and age always show whole.
FREE_TEXT_COLUMNS = frozenset({COL_ALERT})
#: Read at every glance: severity, what, where, state and how long, never scrolled to.
KEEP_VISIBLE = frozenset({COL_SEVERITY, COL_ALERT, COL_WHERE, COL_STATE, COL_AGE})
COLUMN_SAMPLES = {COL_SEVERITY: "\u25b2 critical", COL_WHERE: "n0017 GPU 0",
                  COL_STATE: "inhibited", COL_AGE: "23 h 59 min", COL_SOURCE: "detected by console"}
KEY_ROLE = int(Qt.ItemDataRole.UserRole) + 1


@dataclass(frozen=True)
class AlertRow:
    """One line of the alerts list: an Alertmanager alert or a console anomaly."""

    key: str
    name: str
    severity: Severity
    state: str
    starts_at: float
    summary: str
    source: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    silenced_by: tuple[str, ...] = ()
    node: str | None = None
    gpu: int | None = None
    job_id: int | None = None
    rack: str | None = None
    tenant: str | None = None
    alert: Alert | None = None
    anomaly: Anomaly | None = None

    @property
    def detected_by_console(self) -> bool:
        return self.source == CONSOLE_SOURCE

    @property
    def where(self) -> str:
        """Where it is, most specific first: "n0001 GPU 2 · job 101"."""
        parts: list[str] = []
        if self.node:
            parts.append(self.node + (f" GPU {self.gpu}" if self.gpu is not None else ""))
        elif self.rack:
            parts.append(f"rack {self.rack}")
        if self.job_id is not None:
            parts.append(f"job {self.job_id}")
        if not parts and self.tenant:
            parts.append(f"tenant {self.tenant}")
        if not parts:
            for k in ("partition", "instance", "cluster"):
                if self.labels.get(k):
                    parts.append(self.labels[k])
                    break
        return " \u00b7 ".join(parts)

    def sort_key(self) -> tuple[Any, ...]:
        return (int(self.severity), STATE_ORDER.get(self.state, 5), -self.starts_at, self.name,
                self.key)


def anomaly_name(kind: str) -> str:
    return ANOMALY_WORDS.get(kind) or kind.replace("_", " ").capitalize()


def row_from_alert(a: Alert) -> AlertRow:
    return AlertRow(
        key=f"am:{a.fingerprint}", name=a.name, severity=a.severity, state=a.state,
        starts_at=a.starts_at, summary=a.summary, source=a.source, labels=dict(a.labels),
        annotations=dict(a.annotations), silenced_by=tuple(a.silenced_by), node=a.node,
        gpu=a.gpu, job_id=a.job_id, rack=a.rack, tenant=a.tenant, alert=a)


def row_from_anomaly(an: Anomaly) -> AlertRow:
    labels = {"detector": an.kind, "subject": f"{an.subject.level} {an.subject.key}",
              "score": f"{an.score:.1f}"}
    for k, v in (("node", an.node), ("gpu", an.gpu), ("job", an.job_id), ("rack", an.rack),
                 ("tenant", an.tenant)):
        if v is not None:
            labels[k] = str(v)
    return AlertRow(
        key=f"console:{an.id}", name=anomaly_name(an.kind), severity=an.severity,
        state="resolved" if an.ended_at is not None else "firing", starts_at=an.started_at,
        summary=an.evidence, source=CONSOLE_SOURCE, labels=labels,
        annotations={"evidence": an.evidence}, node=an.node, gpu=an.gpu, job_id=an.job_id,
        rack=an.rack, tenant=an.tenant, anomaly=an)


def rows_from_frame(alerts: Iterable[Alert], anomalies: Iterable[Anomaly]) -> list[AlertRow]:
    """Alerts (de-duplicated by fingerprint) and open anomalies, in display order."""
    seen: set[str] = set()
    rows: list[AlertRow] = []
    for a in alerts:
        if a.fingerprint in seen or a.state == "resolved":
            continue
        seen.add(a.fingerprint)
        rows.append(row_from_alert(a))
    rows += [row_from_anomaly(an) for an in anomalies if an.ended_at is None]
    rows.sort(key=AlertRow.sort_key)
    return rows


def group_key(row: AlertRow, mode: str) -> str:
    if mode == "alertname":
        return row.name
    if mode == "rack":
        return f"rack {row.rack}" if row.rack else "no rack"
    if mode == "node":
        return row.node or "no node"
    if mode == "job":
        return f"job {row.job_id}" if row.job_id is not None else "no job"
    if mode == "tenant":
        return f"tenant {row.tenant}" if row.tenant else "no tenant"
    return ""


@dataclass
class AlertGroup:
    key: str
    rows: list[AlertRow]

    @property
    def worst(self) -> AlertRow:
        return self.rows[0]

    def state_text(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.state] = counts.get(r.state, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(),
                                                        key=lambda kv: STATE_ORDER.get(kv[0], 5)))


def g_len(g: AlertGroup) -> str:
    return f"{len(g.rows)} alert" + ("" if len(g.rows) == 1 else "s")


def build_groups(rows: Sequence[AlertRow], mode: str) -> list[AlertGroup]:
    groups: dict[str, AlertGroup] = {}
    for r in rows:  # rows arrive sorted, so each group's first row is its worst
        k = group_key(r, mode)
        groups.setdefault(k, AlertGroup(k, [])).rows.append(r)
    return sorted(groups.values(), key=lambda g: (g.worst.sort_key(), g.key))


def row_matches(row: AlertRow, text: str) -> bool:
    if not text:
        return True
    hay = " ".join([row.name, row.summary, row.where, row.state, row.source,
                    SEVERITY_WORDS[row.severity], *row.labels.values()]).lower()
    return all(word in hay for word in text.split())


class AlertsTreeModel(QAbstractItemModel):
    """Groups (top level) holding alert rows; in "none" mode a flat list of rows."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[AlertRow] = []
        self._groups: list[AlertGroup] = []
        self._flat: list[AlertRow] = []
        self._mode = "alertname"
        self._text = ""
        self._hide_muted = False
        self._now = 0.0
        self._frozen = False
        self._held: tuple[list[AlertRow], float] | None = None

    # --- inputs -------------------------------------------------------------------------------

    def set_frame(self, frame: Frame) -> None:
        self.set_rows(rows_from_frame(frame.alerts, frame.anomalies), frame.data_now or frame.time)

    def set_rows(self, rows: list[AlertRow], now: float) -> None:
        self._now = float(now)
        if self._frozen and self._structure(self._visible(rows)) != self._structure_now():
            self._held = (rows, now)
            self._refresh_in_place(rows)
            return
        self._held = None
        self._all = rows
        self._rebuild()

    def set_group_mode(self, mode: str) -> None:
        if mode not in GROUP_MODES:
            raise ValueError(f"group mode must be one of {GROUP_MODES}")
        if mode != self._mode:
            self._mode = mode
            self._rebuild(force_reset=True)

    def set_filter_text(self, text: str) -> None:
        text = text.strip().lower()
        if text != self._text:
            self._text = text
            self._rebuild()

    def set_hide_muted(self, hide: bool) -> None:
        if hide != self._hide_muted:
            self._hide_muted = hide
            self._rebuild()

    def set_order_frozen(self, frozen: bool) -> None:
        if frozen == self._frozen:
            return
        self._frozen = frozen
        if not frozen and self._held is not None:
            rows, now = self._held
            self.set_rows(rows, now)

    # --- queries -------------------------------------------------------------------------------

    @property
    def group_mode(self) -> str:
        return self._mode

    @property
    def grouped(self) -> bool:
        return self._mode != "none"

    @property
    def has_held_changes(self) -> bool:
        return self._held is not None

    def groups(self) -> list[AlertGroup]:
        return list(self._groups)

    def visible_rows(self) -> list[AlertRow]:
        """Rows in display order (group by group)."""
        if not self.grouped:
            return list(self._flat)
        return [r for g in self._groups for r in g.rows]

    def row_at(self, index: QModelIndex | QPersistentModelIndex) -> AlertRow | None:
        if not index.isValid():
            return None
        gid = int(index.internalId())
        if not self.grouped:
            return self._flat[index.row()] if index.row() < len(self._flat) else None
        if gid == 0:
            return None
        g = self._groups[gid - 1]
        return g.rows[index.row()] if index.row() < len(g.rows) else None

    def group_at(self, index: QModelIndex | QPersistentModelIndex) -> AlertGroup | None:
        if not index.isValid() or not self.grouped or int(index.internalId()) != 0:
            return None
        return self._groups[index.row()]

    def index_of_key(self, key: str) -> QModelIndex:
        if not self.grouped:
            for i, r in enumerate(self._flat):
                if r.key == key:
                    return self.index(i, 0)
            return QModelIndex()
        for gi, g in enumerate(self._groups):
            for ri, r in enumerate(g.rows):
                if r.key == key:
                    return self.createIndex(ri, 0, gi + 1)
        return QModelIndex()

    def index_of_group(self, key: str) -> QModelIndex:
        for gi, g in enumerate(self._groups):
            if g.key == key:
                return self.index(gi, 0)
        return QModelIndex()

    # --- Qt model API ---------------------------------------------------------------------------

    def index(self, row: int, column: int,
              parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        if self.grouped and int(parent.internalId()) == 0:
            return self.createIndex(row, column, parent.row() + 1)
        return QModelIndex()

    def parent(self, index: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or not self.grouped:
            return QModelIndex()
        gid = int(index.internalId())
        return QModelIndex() if gid == 0 else self.createIndex(gid - 1, 0, 0)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._groups) if self.grouped else len(self._flat)
        if parent.column() != 0 or not self.grouped or int(parent.internalId()) != 0:
            return 0
        return len(self._groups[parent.row()].rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(HEADERS)):
            return HEADERS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self.row_at(index) is not None:
            f |= Qt.ItemFlag.ItemNeverHasChildren
        return f

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        group = self.group_at(index)
        row = None if group is not None else self.row_at(index)
        if group is None and row is None:
            return None
        col = index.column()
        th = theme_mod.current()
        lead = group.worst if group is not None else row
        assert lead is not None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._group_text(group, col) if group is not None else self._row_text(row, col)  # type: ignore[arg-type]
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_SEVERITY:
                return QColor(th.severity[lead.severity])
            if row is not None and row.state in ("silenced", "inhibited"):
                return QColor(th.text_dim)
            if col == COL_SOURCE and row is not None and row.detected_by_console:
                return QColor(th.accent)
            return None
        if role == Qt.ItemDataRole.FontRole and group is not None:
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.ToolTipRole:
            if row is not None and col == COL_ALERT:
                return row.summary
            if group is not None and col in (COL_ALERT, COL_STATE):
                return f"{g_len(group)}: {group.state_text()}"
            return None
        if role == KEY_ROLE:
            return row.key if row is not None else f"group:{group.key}"  # type: ignore[union-attr]
        return None

    # --- internals ------------------------------------------------------------------------------

    def _row_text(self, row: AlertRow, col: int) -> str:
        if col == COL_SEVERITY:
            return f"{SEVERITY_MARKS[row.severity]} {SEVERITY_WORDS[row.severity]}"
        if col == COL_ALERT:
            if self._mode == "alertname":
                return row.summary
            return f"{row.name}: {row.summary}" if row.summary != row.name else row.name
        if col == COL_WHERE:
            return row.where
        if col == COL_STATE:
            return row.state
        if col == COL_AGE:
            return fmt_duration(self._now - row.starts_at)
        return "detected by console" if row.detected_by_console else (
            "Alertmanager" if row.source in ("alertmanager", "") else row.source)

    def _group_text(self, g: AlertGroup, col: int) -> str:
        lead = g.worst
        if col == COL_SEVERITY:
            return f"{SEVERITY_MARKS[lead.severity]} {SEVERITY_WORDS[lead.severity]}"
        if col == COL_ALERT:
            return f"{g.key}  ({len(g.rows)})"
        if col == COL_STATE:
            return lead.state
        if col == COL_AGE:
            return fmt_duration(self._now - min(r.starts_at for r in g.rows))
        if col == COL_SOURCE:
            words = list(dict.fromkeys(self._row_text(r, COL_SOURCE) for r in g.rows))
            return words[0] if len(words) == 1 else " + ".join(words)
        return ""

    def _visible(self, rows: list[AlertRow]) -> list[AlertRow]:
        out = [r for r in rows if row_matches(r, self._text)]
        if self._hide_muted:
            out = [r for r in out if r.state not in ("silenced", "inhibited")]
        return out

    def _structure(self, rows: list[AlertRow]) -> tuple[Any, ...]:
        if self._mode == "none":
            return tuple(r.key for r in rows)
        return tuple((g.key, tuple(r.key for r in g.rows)) for g in build_groups(rows, self._mode))

    def _structure_now(self) -> tuple[Any, ...]:
        if self._mode == "none":
            return tuple(r.key for r in self._flat)
        return tuple((g.key, tuple(r.key for r in g.rows)) for g in self._groups)

    def _rebuild(self, force_reset: bool = False) -> None:
        visible = self._visible(self._all)
        if not force_reset and self._structure(visible) == self._structure_now():
            self._refresh_in_place(self._all)
            return
        self.beginResetModel()
        self._flat = visible if self._mode == "none" else []
        self._groups = build_groups(visible, self._mode) if self._mode != "none" else []
        self.endResetModel()

    def _refresh_in_place(self, rows: list[AlertRow]) -> None:
        """Same rows in the same places: swap in new data (ages, states) and emit dataChanged."""
        by_key = {r.key: r for r in rows}
        last = len(HEADERS) - 1
        if self._mode == "none":
            self._flat = [by_key.get(r.key, r) for r in self._flat]
            if self._flat:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self._flat) - 1, last))
            return
        for gi, g in enumerate(self._groups):
            g.rows = [by_key.get(r.key, r) for r in g.rows]
            parent = self.index(gi, 0)
            self.dataChanged.emit(self.index(0, 0, parent),
                                  self.index(len(g.rows) - 1, last, parent))
        if self._groups:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._groups) - 1, last))

"""The job-queue table model: sort and filter done inside the model on the columnar JobTable.

Why not a QSortFilterProxyModel: on 50,000 rows it took about 4 s to sort and 1.1 s to re-apply
after new data here, against tens of milliseconds for a numpy argsort over one column (STYLE.md,
PERF.md). So the model keeps a `view` (int array of JobTable rows, filtered then sorted) and
formats only the cells the view asks for. Lives in the GUI thread.

Updates keep the screen calm: when a new frame holds the same rows in the same order, only
`dataChanged` is emitted (times tick, states change) and selection and scroll stay put; while
the order is frozen (the pointer is over the table) surviving rows keep their place and new jobs
are appended at the bottom, so nothing jumps under the operator's cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from widgets.tables import ReadOnlyTableModel
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from console.model import ACTIVE_JOB_STATES, JobState, JobTable, Severity, TenantTable
from widgets import theme as theme_mod
from widgets.formatting import DASH, fmt_duration, fmt_int

try:  # the reasons module names its entry point `describe` or `explain`
    from console import slurm_reasons as _reasons

    _describe: Callable[[str], tuple[str, str]] | None = getattr(
        _reasons, "describe", None) or getattr(_reasons, "explain", None)
except ImportError:  # pragma: no cover - the module is part of the product
    _describe = None

JOB_ID_ROLE = int(Qt.ItemDataRole.UserRole) + 1
ACCOUNT_ROLE = int(Qt.ItemDataRole.UserRole) + 2

COL_ID, COL_NAME, COL_USER, COL_TENANT, COL_PARTITION, COL_STATE, COL_GPUS, COL_NODES, \
    COL_TIME, COL_REASON = range(10)
HEADERS = ("Job", "Name", "User", "Tenant", "Partition", "State", "GPUs", "Nodes",
           "Wait / run", "Pending reason")
#: Fixed widths in pixels at 14 px text (resizeColumnsToContents costs 173 ms at 50k rows);
#: `widgets.tables.ColumnSizer` scales them with the font.
COLUMN_WIDTHS = (96, 170, 100, 210, 104, 92, 64, 170, 110, 290)
#: Names, reasons and node lists: these elide first when a larger font meets a narrow dock
#: (the node count leads the Nodes cell, so eliding it cuts only the host list).
FREE_TEXT_COLUMNS = frozenset({COL_NAME, COL_USER, COL_TENANT, COL_REASON, COL_NODES})
#: What a queue reader needs every minute, fully on screen without scrolling sideways.
KEEP_VISIBLE = frozenset({COL_ID, COL_TENANT, COL_STATE, COL_GPUS, COL_TIME, COL_NODES,
                          COL_REASON})
#: Typical widest values of the other columns (sized so these show whole at any font scale).
COLUMN_SAMPLES = {COL_ID: "1000000", COL_GPUS: "1,024", COL_TIME: "23 h 59 min",
                  COL_STATE: "pending"}
_NUMERIC = frozenset({COL_ID, COL_GPUS, COL_TIME})

STATE_FILTERS = ("all", "running", "pending")

# Roles and flags as plain ints/constants: data() runs for every visible cell on every paint,
# and comparing against PySide enum members (or OR-ing them) costs microseconds each.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_LEFT = int(Qt.AlignmentFlag.AlignLeft) | int(Qt.AlignmentFlag.AlignVCenter)
_RIGHT = int(Qt.AlignmentFlag.AlignRight) | int(Qt.AlignmentFlag.AlignVCenter)
_ROLES = frozenset({_DISPLAY, _ALIGN, _FOREGROUND, _TOOLTIP, JOB_ID_ROLE, ACCOUNT_ROLE})
_RUNNING = int(JobState.RUNNING)
_QUEUE_ORDER = (JobState.PENDING, JobState.CONFIGURING, JobState.RUNNING, JobState.COMPLETING,
                JobState.SUSPENDED, JobState.REQUEUED, JobState.FAILED, JobState.NODE_FAIL,
                JobState.BOOT_FAIL, JobState.OUT_OF_MEMORY, JobState.TIMEOUT, JobState.DEADLINE,
                JobState.PREEMPTED, JobState.CANCELLED, JobState.COMPLETED, JobState.OTHER)
_STATE_RANK = np.zeros(int(max(JobState)) + 1, np.int64)
_STATE_RANK[[int(s) for s in _QUEUE_ORDER]] = np.arange(len(_QUEUE_ORDER))
_PENDING = int(JobState.PENDING)
_ACTIVE_CODES = np.array(sorted(int(s) for s in ACTIVE_JOB_STATES), np.int8)


def reason_words(reason: str) -> tuple[str, str]:
    """(group, words) for a Slurm pending reason; the raw reason when nothing better is known."""
    if not reason or reason == "None":
        return "", ""
    if _describe is not None:
        try:
            group, words = _describe(reason)
            return group, words or reason
        except Exception:  # noqa: BLE001 - a wording bug must not break the table
            pass
    return "", reason


def state_word(code: int) -> str:
    try:
        return JobState(code).name.lower().replace("_", " ")
    except ValueError:
        return "unknown"


class JobsTableModel(ReadOnlyTableModel):
    """Jobs of one frame, filtered (text, state, tenant) and sorted by any column."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._jobs: JobTable = JobTable.empty()
        self._now = 0.0
        self._display: dict[str, str] = {}  # account -> tenant display name
        self._view = np.zeros(0, np.int64)
        self._shown_key: np.ndarray | None = None  # what each visible row shows, for change checks
        self._sort_col = COL_TIME
        self._sort_desc = True
        self._text = ""
        self._state_filter = "all"
        self._tenant: str | None = None
        self._node: str | None = None
        self._frozen = False
        self._cache: dict[str, Any] = {}
        self._sort_memo: tuple[Any, ...] | None = None
        self._colours: tuple[Any, dict[str, QColor]] | None = None
        self._lower_memo: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # --- inputs -----------------------------------------------------------------------------

    def set_jobs(self, jobs: JobTable, now: float, tenants: TenantTable | None = None) -> None:
        """Take a new job table (a new frame); emits dataChanged or a reset, never both."""
        display = dict(zip(tenants.account, tenants.display)) if tenants is not None else {}
        old_ids = self._jobs.job_id[self._view] if len(self._view) else np.zeros(0, np.int64)
        old_jobs, old_display, old_key = self._jobs, self._display, self._shown_key
        self._jobs, self._now, self._cache = jobs, float(now), {}
        self._display = display
        view = self._compute_view(keep_order_of=old_ids if self._frozen else None)
        new_ids = jobs.job_id[view]
        if len(new_ids) == len(old_ids) and np.array_equal(new_ids, old_ids):
            self._view = view
            self._shown_key = key = self._display_key(jobs, view)
            if not len(view):
                return
            same_tables = (display == old_display and jobs.accounts == old_jobs.accounts
                           and jobs.partitions == old_jobs.partitions
                           and jobs.reasons == old_jobs.reasons)
            if same_tables and old_key is not None and old_key.shape == key.shape:
                # Repaint only the rows whose shown text can have changed: a table whose cells
                # all say the same as before costs no paint at all.
                changed = np.flatnonzero((old_key != key).any(axis=0) & ~(
                    np.isnan(old_key) & np.isnan(key)).all(axis=0))
                if not len(changed):
                    return
                first, last = int(changed[0]), int(changed[-1])
            else:
                first, last = 0, len(view) - 1
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(HEADERS) - 1))
            return
        self._shown_key = self._display_key(jobs, view)
        self.beginResetModel()
        self._view = view
        self.endResetModel()

    def _display_key(self, jobs: JobTable, view: np.ndarray) -> np.ndarray:
        """float64[7, rows]: everything a row's cells are made of that can change between frames
        (times only at the resolution they are shown: seconds under a minute, then minutes)."""
        since = np.where(jobs.state[view] == _PENDING, jobs.submit_time[view], jobs.start_time[view])
        elapsed = self._now - since
        with np.errstate(invalid="ignore"):
            shown = np.where(elapsed < 60, np.floor(elapsed), 60 + np.floor(elapsed / 60))
        return np.stack([jobs.state[view], jobs.reason[view], jobs.gpus[view], jobs.nodes[view],
                         jobs.account[view], jobs.partition[view], shown]).astype(np.float64)

    def set_filter_text(self, text: str) -> None:
        text = text.strip().lower()
        if text != self._text:
            self._text = text
            self._refilter()

    def set_state_filter(self, which: str) -> None:
        if which not in STATE_FILTERS:
            raise ValueError(f"state filter must be one of {STATE_FILTERS}")
        if which != self._state_filter:
            self._state_filter = which
            self._refilter()

    def set_tenant_filter(self, account: str | None) -> None:
        if account != self._tenant:
            self._tenant = account
            self._refilter()

    def set_node_filter(self, node: str | None) -> None:
        """Only jobs holding GPUs on `node` (from the allocation list, not the hostlist text)."""
        if node != self._node:
            self._node = node
            self._refilter()

    @property
    def node_filter(self) -> str | None:
        return self._node

    def set_order_frozen(self, frozen: bool) -> None:
        """Freeze the row order (pointer over the table); unfreezing re-sorts at once."""
        if frozen == self._frozen:
            return
        self._frozen = frozen
        if not frozen:
            self._resort_in_place()

    @property
    def order_frozen(self) -> bool:
        return self._frozen

    # --- queries ----------------------------------------------------------------------------

    @property
    def jobs(self) -> JobTable:
        return self._jobs

    @property
    def sort_column(self) -> int:
        return self._sort_col

    @property
    def sort_descending(self) -> bool:
        return self._sort_desc

    def visible_job_ids(self) -> np.ndarray:
        return self._jobs.job_id[self._view]

    def table_row(self, row: int) -> int:
        """The JobTable row shown at model row `row`."""
        return int(self._view[row])

    def job_id_at(self, row: int) -> int:
        return int(self._jobs.job_id[self._view[row]])

    def account_at(self, row: int) -> str:
        j = self._jobs
        return j.accounts[int(j.account[self._view[row]])]

    def row_of_job(self, job_id: int) -> int | None:
        hits = np.flatnonzero(self._jobs.job_id[self._view] == job_id)
        return int(hits[0]) if len(hits) else None

    # --- Qt model API -------------------------------------------------------------------------

    headers = HEADERS

    def _row_count(self) -> int:
        return int(len(self._view))

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        role = int(role)
        if role not in _ROLES:
            return None
        row = index.row()
        if not 0 <= row < len(self._view) or not index.isValid():
            return None
        r = int(self._view[row])
        col = index.column()
        j = self._jobs
        if role == _DISPLAY:
            return self._text_of(r, col)
        if role == _ALIGN:
            return _RIGHT if col in _NUMERIC else _LEFT
        if role == _FOREGROUND:
            return self._colour_of(r, col)
        if role == _TOOLTIP:
            return self._tooltip_of(r, col)
        if role == JOB_ID_ROLE:
            return int(j.job_id[r])
        if role == ACCOUNT_ROLE:
            return j.accounts[int(j.account[r])]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by `column` (header click); a layout change, so selection survives."""
        if not 0 <= column < len(HEADERS):
            return
        self._sort_col = column
        self._sort_desc = order == Qt.SortOrder.DescendingOrder
        self._resort_in_place()

    # --- internals ----------------------------------------------------------------------------

    def _resort_in_place(self) -> None:
        self.layoutAboutToBeChanged.emit()
        old_view = self._view
        persistent = self.persistentIndexList()
        new_view = self._sorted(self._view)
        pos = {int(t): i for i, t in enumerate(new_view)} if persistent else {}
        self._view = new_view
        self._shown_key = None  # rows moved: the next frame repaints them all
        if persistent:
            self.changePersistentIndexList(
                persistent,
                [self.index(pos[int(old_view[p.row()])], p.column()) if p.row() < len(old_view)
                 else QModelIndex() for p in persistent])
        self.layoutChanged.emit()

    def _refilter(self) -> None:
        self.beginResetModel()
        self._view = self._compute_view(None)
        self._shown_key = None
        self.endResetModel()

    def _compute_view(self, keep_order_of: np.ndarray | None) -> np.ndarray:
        rows = np.flatnonzero(self._mask())
        if keep_order_of is None or not len(keep_order_of):
            return self._sorted(rows)
        # Frozen: surviving jobs keep their old place; new ones follow in sorted order.
        ids = self._jobs.job_id[rows]
        old_pos = {int(v): i for i, v in enumerate(keep_order_of)}
        pos = np.fromiter((old_pos.get(int(v), -1) for v in ids), np.int64, len(ids))
        kept = rows[pos >= 0][np.argsort(pos[pos >= 0], kind="stable")]
        return np.concatenate([kept, self._sorted(rows[pos < 0])]).astype(np.int64)

    def _mask(self) -> np.ndarray:
        j = self._jobs
        n = len(j)
        mask = np.ones(n, bool)
        if self._state_filter == "running":
            mask &= np.isin(j.state, _ACTIVE_CODES)
        elif self._state_filter == "pending":
            mask &= j.state == int(JobState.PENDING)
        if self._tenant is not None:
            code = j.accounts.index(self._tenant) if self._tenant in j.accounts else -1
            mask &= j.account == code
        if self._node is not None:
            on_node = np.zeros(n, bool)
            if self._node in j.alloc_node_names:
                code = j.alloc_node_names.index(self._node)
                on_node[j.alloc_job[j.alloc_node == code]] = True
            mask &= on_node
        if self._text and n:
            t = self._text
            hit = np.zeros(n, bool)
            for key, arr in (("name", j.name), ("user", j.user)):
                hit |= np.char.find(self._lowered(key, arr), t) >= 0
            hit |= np.char.find(self._id_text(), t) >= 0
            acct_hit = np.array([t in a.lower() or t in self._display.get(a, "").lower()
                                 for a in j.accounts], bool)
            part_hit = np.array([t in p.lower() for p in j.partitions], bool)
            reason_hit = np.array([t in r.lower() or t in reason_words(r)[1].lower()
                                   for r in j.reasons], bool)
            if len(acct_hit):
                hit |= acct_hit[j.account]
            if len(part_hit):
                hit |= part_hit[j.partition]
            if len(reason_hit):
                hit |= reason_hit[j.reason]
            mask &= hit
        return mask

    def _lowered(self, key: str, arr: np.ndarray) -> np.ndarray:
        """Lower-cased column, reused while the column is unchanged between frames."""
        memo = self._lower_memo.get(key)
        if memo is not None and memo[0].shape == arr.shape and np.array_equal(memo[0], arr):
            return memo[1]
        low = np.char.lower(arr)
        self._lower_memo[key] = (arr, low)
        return low

    def _id_text(self) -> np.ndarray:
        cached = self._cache.get("id_text")
        if cached is None:
            j = self._jobs
            ids = j.job_id.astype("U32")
            arr = (j.array_task_id >= 0) & (j.array_job_id > 0)
            if arr.any():  # array tasks read as Slurm prints them: 4812_7
                ids[arr] = np.char.add(np.char.add(j.array_job_id[arr].astype("U20"), "_"),
                                       j.array_task_id[arr].astype("U11"))
            cached = self._cache["id_text"] = ids
        return cached

    def _elapsed(self) -> np.ndarray:
        """Seconds waited (pending) or run (otherwise), NaN where the time is unknown."""
        j = self._jobs
        since = np.where(j.state == int(JobState.PENDING), j.submit_time, j.start_time)
        return self._now - since

    def _sort_key(self, col: int) -> np.ndarray:
        j = self._jobs
        if col == COL_ID:
            return j.job_id
        if col in (COL_NAME, COL_USER):  # string sorts are the dear ones: reuse while unchanged
            arr = j.name if col == COL_NAME else j.user
            memo = self._lower_memo.get(f"rank{col}")
            if memo is not None and memo[0].shape == arr.shape and np.array_equal(memo[0], arr):
                return memo[1]
            rank = np.unique(self._lowered("name" if col == COL_NAME else "user", arr),
                             return_inverse=True)[1].reshape(-1)
            self._lower_memo[f"rank{col}"] = (arr, rank)
            return rank
        if col == COL_TENANT:
            return _rank([self._display.get(a, a).lower() for a in j.accounts])[j.account]
        if col == COL_PARTITION:
            return _rank(list(j.partitions))[j.partition]
        if col == COL_STATE:
            # queue order, not alphabetical: waiting, then holding GPUs, then finished
            return _STATE_RANK[np.clip(j.state.astype(np.int64), 0, len(_STATE_RANK) - 1)]
        if col == COL_GPUS:
            return j.gpus
        if col == COL_NODES:
            return j.nodes
        if col == COL_TIME:
            # -since rather than now - since: the same order, but it does not change every
            # frame, so an unchanged queue is recognised and not sorted again
            since = np.where(j.state == int(JobState.PENDING), j.submit_time, j.start_time)
            return np.where(np.isnan(since), -np.inf, -since)
        return _rank([reason_words(r)[1].lower() for r in j.reasons])[j.reason]

    def _sorted(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) < 2:
            return rows.astype(np.int64)
        full_key = self._sort_key(self._sort_col)
        ids = self._jobs.job_id
        memo = self._sort_memo
        if (memo is not None and memo[0] == (self._sort_col, self._sort_desc)
                and np.array_equal(memo[1], rows) and np.array_equal(memo[2], ids)
                and np.array_equal(memo[3], full_key)):
            return memo[4]  # same jobs, same keys: the order cannot have changed
        out = self._sort_rows(rows, full_key)
        self._sort_memo = ((self._sort_col, self._sort_desc), rows, ids, full_key, out)
        return out

    def _sort_rows(self, rows: np.ndarray, full_key: np.ndarray) -> np.ndarray:
        key = full_key[rows]
        if self._sort_desc:  # negate rather than reverse, so ties stay in job-id order
            key = -key.astype(np.float64)
        order = np.lexsort((self._jobs.job_id[rows], key))
        return rows[order].astype(np.int64)

    def _text_of(self, r: int, col: int) -> str:
        j = self._jobs
        if col == COL_ID:
            task = int(j.array_task_id[r])
            if task >= 0 and j.array_job_id[r] > 0:
                return f"{int(j.array_job_id[r])}_{task}"
            return str(int(j.job_id[r]))
        if col == COL_NAME:
            return str(j.name[r])
        if col == COL_USER:
            return str(j.user[r])
        if col == COL_TENANT:
            acct = j.accounts[int(j.account[r])]
            return self._display.get(acct, acct)
        if col == COL_PARTITION:
            return j.partitions[int(j.partition[r])]
        if col == COL_STATE:
            return state_word(int(j.state[r]))
        if col == COL_GPUS:
            return fmt_int(int(j.gpus[r]))
        if col == COL_NODES:
            nl = str(j.node_list[r])
            count = int(j.nodes[r])
            return f"{count} \u00b7 {nl}" if nl else (str(count) if count else DASH)
        if col == COL_TIME:
            return fmt_duration(float(self._elapsed_one(r)))
        return reason_words(j.reasons[int(j.reason[r])])[1]

    def _elapsed_one(self, r: int) -> float:
        j = self._jobs
        since = j.submit_time[r] if j.state[r] == int(JobState.PENDING) else j.start_time[r]
        return self._now - float(since)

    def _colour_of(self, r: int, col: int) -> QColor | None:
        if col not in (COL_STATE, COL_REASON, COL_TENANT):
            return None
        th = theme_mod.current()
        colours = self._colours
        if colours is None or colours[0] is not th:  # QColors built once per theme
            colours = self._colours = (th, {
                "running": QColor(th.ok_text), "pending": QColor(th.text_dim),
                "other": QColor(th.text), "infrastructure": QColor(th.severity[Severity.CRITICAL]),
                "quota": QColor(th.severity[Severity.WARNING]), "tenant": QColor(th.accent)})
        c = colours[1]
        j = self._jobs
        if col == COL_STATE:
            st = int(j.state[r])
            return c["running"] if st == _RUNNING else c["pending"] if st == _PENDING else c["other"]
        if col == COL_REASON:
            return c.get(reason_words(j.reasons[int(j.reason[r])])[0])
        return c["tenant"]

    def _tooltip_of(self, r: int, col: int) -> str | None:
        j = self._jobs
        if col == COL_REASON:
            raw = j.reasons[int(j.reason[r])]
            group, words = reason_words(raw)
            if not words:
                return None
            return f"{group + ': ' if group else ''}{words} (Slurm reason {raw})"
        if col == COL_NODES:
            return str(j.node_list[r]) or None
        if col == COL_TENANT:
            acct = j.accounts[int(j.account[r])]
            return f"{self._display.get(acct, acct)} (account {acct}): double-click for the tenant"
        if col == COL_NAME:
            return str(j.name[r])
        return None


def _rank(values: list[str]) -> np.ndarray:
    """Rank of each category value in sorted order (so codes sort by their words)."""
    if not values:
        return np.zeros(0, np.int64)
    order = np.argsort(np.array(values, dtype=np.str_), kind="stable")
    rank = np.empty(len(values), np.int64)
    rank[order] = np.arange(len(values))
    return rank

"""slurmrestd JSON (v0.0.38 .. v0.0.45) to columnar `NodeTable` / `JobTable`.

Every version difference of FACTS 5.5 is absorbed here, so nothing downstream knows which API
answered: string vs list states, ``{set, infinite, number}`` numbers and timestamps, exit codes
(raw wait status, no-val struct, or the verbose object of v0.0.40+), node ``state`` +
``state_flags`` (v0.0.38) vs a state array (v0.0.39+), DRAINING vs DRAINED derived from the
base state and the DRAIN flag, and GPU counts from GRES strings (never from TRES strings alone:
without slurmdbd they do not mention GPUs, STACK.md).

Jobs are built straight into columns (one pass, no per-row dicts) because a queue of 50,000
jobs is a design target (DESIGN.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import chain, compress
from operator import itemgetter
from types import GenericAlias
from typing import Any, TypedDict

import msgspec
import numpy as np

from console import hostlist
from console.categories import category_codes
from console.model import JobState, JobTable, NodeState, NodeTable
from console.sources.http import typed_decoder
from console.sources.stream_json import ListStream, StreamFactory

#: No node or job holds more GPUs than this, and no GPU index is larger: a GRES or TRES string
#: that says otherwise is corrupt (and would overflow the int16/int32 columns, or expand an
#: index range into billions of entries).
MAX_GPU_COUNT = 1_000_000
MAX_GPU_INDEX = 4095
#: Integers beyond 64 bits are no Slurm number (its unset markers are 32/64-bit NO_VAL values).
_INT_LIMIT = 2**63


class GresError(ValueError):
    """A GRES or TRES string with an impossible GPU count or index (the words say which)."""


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def _uint(text: str) -> int | None:
    """ASCII digits as an int, else None: str.isdigit() also accepts "²", which int() refuses,
    and int() refuses more than 4,300 digits."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None


def nv(x: Any) -> float | int | None:
    """A plain number, or a ``{set, infinite, number}`` struct: inf if infinite, None if unset."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x if -_INT_LIMIT <= x < _INT_LIMIT else None
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, Mapping):
        if x.get("infinite"):
            return math.inf
        if x.get("set"):
            return nv(x.get("number")) if not isinstance(x.get("number"), (Mapping, str)) else None
        return None
    if isinstance(x, str):
        v = _uint(x.strip().removeprefix("-"))
        if v is not None:
            return nv(-v if x.strip().startswith("-") else v)
    return None


def timestamp(x: Any) -> float:
    """Epoch seconds; 0, negative, unset and infinite (never) become NaN."""
    v = nv(x)
    if v is None or v <= 0 or v == math.inf:
        return math.nan
    return float(v)


def time_limit_s(x: Any) -> float:
    """Slurm time limits are minutes; unset (partition default) and INFINITE become inf."""
    v = nv(x)
    if v is None or v == math.inf:
        return math.inf
    return float(v) * 60.0


def _decode_wait_status(raw: int) -> int:
    """Raw wait status -> shell-style code: 768 -> 3, signal 15 -> 143."""
    sig = raw & 0x7F
    return 128 + sig if sig else (raw >> 8) & 0xFF


def exit_code(x: Any) -> int:
    """Exit code of a job as a shell would report it; -1 when unknown.

    v0.0.38 sends the raw wait status, v0.0.39 the same in a no-val struct, v0.0.40+ a
    verbose object ``{status: [...], return_code: {...}, signal: {id: {...}, name}}``.
    """
    if isinstance(x, Mapping) and ("status" in x or "return_code" in x or "signal" in x):
        status = x.get("status")
        status = [status] if isinstance(status, str) else list(status or ())
        if "SIGNALED" in status or "CORE_DUMPED" in status:
            sig = nv((x.get("signal") or {}).get("id"))
            if isinstance(sig, int) and 0 < sig < 128:
                return 128 + sig
        if "PENDING" in status or "INVALID" in status:
            return -1
        rc = nv(x.get("return_code"))
        return rc if isinstance(rc, int) and 0 <= rc <= 255 else -1
    v = nv(x)
    if v is None or v == math.inf:
        return -1
    return _decode_wait_status(int(v))


def states(x: Any) -> list[str]:
    """A state field as an upper-case list (v0.0.38 strings become one-element lists)."""
    if x is None:
        return []
    if isinstance(x, str):
        return [s.strip().upper() for s in x.replace("+", ",").split(",") if s.strip()]
    return [str(s).upper() for s in x]


def csv_list(x: Any) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        return tuple(p.strip() for p in x.split(",") if p.strip())
    return tuple(str(p) for p in x)


# ---------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------

_JOB_BASE = {s.name: s for s in JobState}
_JOB_BASE.update({"REQUEUE_HOLD": JobState.PENDING, "REQUEUE_FED": JobState.PENDING,
                  "RESV_DEL_HOLD": JobState.PENDING, "SPECIAL_EXIT": JobState.PENDING,
                  "LAUNCH_FAILED": JobState.FAILED, "RECONFIG_FAIL": JobState.FAILED,
                  "STOPPED": JobState.SUSPENDED, "PREEMPTED": JobState.PREEMPTED})
_JOB_BASE_ORDER = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED",
                   "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY")


def job_state(x: Any) -> JobState:
    """The job's base state, with the COMPLETING and CONFIGURING flags folded in."""
    st = states(x)
    if not st:
        return JobState.OTHER
    base = next((s for s in st if s in _JOB_BASE_ORDER), None)
    if "COMPLETING" in st and base in (None, "RUNNING", "COMPLETED", "CANCELLED", "FAILED",
                                       "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"):
        return JobState.COMPLETING
    if "CONFIGURING" in st and base in (None, "RUNNING"):
        return JobState.CONFIGURING
    if base is not None:
        return JobState[base]
    for s in st:
        if s in _JOB_BASE:
            return _JOB_BASE[s]
    return JobState.OTHER


_NODE_BASE = {"IDLE": NodeState.IDLE, "MIXED": NodeState.MIXED, "ALLOCATED": NodeState.ALLOCATED,
              "ALLOC": NodeState.ALLOCATED, "DOWN": NodeState.DOWN, "ERROR": NodeState.FAIL,
              "FUTURE": NodeState.FUTURE, "UNKNOWN": NodeState.UNKNOWN,
              "INVALID": NodeState.INVAL, "INVAL": NodeState.INVAL}


def node_state(state: Any, flags: Any = None) -> tuple[NodeState, bool]:
    """(NodeState, responding) from ``state`` (string or array) and v0.0.38's ``state_flags``.

    DRAIN is a flag: with it, ALLOCATED/MIXED or COMPLETING means DRAINING, anything else
    DRAINED (Slurm's own ``node_state_string`` rule, FACTS 5.1).
    """
    st = states(state) + states(flags)
    s = set(st)
    base = next((_NODE_BASE[x] for x in st if x in _NODE_BASE), NodeState.UNKNOWN)
    responding = "NOT_RESPONDING" not in s
    if "DRAIN" in s:
        busy = base in (NodeState.ALLOCATED, NodeState.MIXED) or "COMPLETING" in s
        return (NodeState.DRAINING if busy else NodeState.DRAINED), responding
    if "FAIL" in s:
        return NodeState.FAIL, responding
    if base == NodeState.DOWN:
        return NodeState.DOWN, responding
    if "MAINTENANCE" in s or "MAINT" in s:
        return NodeState.MAINT, responding
    if "POWERED_DOWN" in s:
        return NodeState.POWERED_DOWN, responding
    if "INVALID_REG" in s or base == NodeState.INVAL:
        return NodeState.INVAL, responding
    if "COMPLETING" in s:
        return NodeState.COMPLETING, responding
    if "RESERVED" in s and base == NodeState.IDLE:
        return NodeState.RESERVED, responding
    return base, responding


# ---------------------------------------------------------------------------------------------
# GRES
# ---------------------------------------------------------------------------------------------

_IDX = re.compile(r"IDX:([^)]*)")


def _split_outside_parens(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [p.strip() for p in out if p.strip()]


def _gres_entry(entry: str, gres: str = "gpu") -> tuple[int, list[int]] | None:
    """(count, indices) of one GRES entry if it is of kind ``gres``, else None.

    Accepts "gpu:8", "gpu:h100:8(S:0-1)", "gpu:h800:4(IDX:0-3)", "gres:gpu:8", "gres/gpu:4",
    "gres/gpu=4", "gpu:h100:0(IDX:N/A)".
    """
    e = entry.strip()
    paren = e.find("(")
    head, tail = (e[:paren], e[paren:]) if paren >= 0 else (e, "")
    for prefix in ("gres:", "gres/"):
        if head.startswith(prefix):
            head = head[len(prefix):]
    head = head.replace("=", ":")
    parts = head.split(":")
    if parts[0] != gres:
        return None
    n = _uint(parts[-1]) if len(parts) > 1 else None
    count = 1 if n is None else n
    if count > MAX_GPU_COUNT:
        raise GresError(f"GRES {entry[:80]!r} names {count} GPUs, more than any node or job holds")
    idx: list[int] = []
    m = _IDX.search(tail)
    if m and m.group(1) not in ("N/A", ""):
        for item in m.group(1).split(","):
            lo_s, _, hi_s = item.partition("-")
            lo, hi = _uint(lo_s), _uint(hi_s) if hi_s else _uint(lo_s)
            if lo is None or hi is None:
                continue
            if hi > MAX_GPU_INDEX:
                raise GresError(f"GRES {entry[:80]!r} names GPU index {hi}, beyond any node's "
                                f"{MAX_GPU_INDEX + 1} GPUs")
            idx.extend(range(lo, hi + 1))
            if len(idx) > MAX_GPU_INDEX + 1:
                raise GresError(f"GRES {entry[:80]!r} lists more GPU indices than any node has")
    return count, idx


def gres_gpus_and_type(text: str | None) -> tuple[int, str]:
    """(GPUs, GPU type) of a node's ``gres``: "gpu:h100:8(S:0-1)" -> (8, "h100").

    Several entries are summed ("gpu:a100:4,gpu:h100:4" -> 8); the type is the one holding
    the most GPUs (the first of equals), lower-case, "" when no entry names one ("gpu:8").
    A node without a GPU entry ("" or "shard:4") has (0, ""): a CPU node, not unknown.
    """
    if not text:
        return 0, ""
    total = 0
    by_type: dict[str, int] = {}
    for e in _split_outside_parens(text):
        r = _gres_entry(e)
        if r is None:
            continue
        total += r[0]
        if total > MAX_GPU_COUNT:
            raise GresError(f"GRES {text[:80]!r} names more GPUs than any node holds")
        head = e.split("(", 1)[0]
        for prefix in ("gres:", "gres/"):
            if head.startswith(prefix):
                head = head[len(prefix):]
        parts = head.replace("=", ":").split(":")
        typ = parts[1] if len(parts) > 2 or (len(parts) == 2 and _uint(parts[1]) is None) else ""
        if typ:
            by_type[typ.lower()] = by_type.get(typ.lower(), 0) + r[0]
    best = max(by_type.items(), key=lambda kv: kv[1], default=("", 0))[0]
    return total, best


def gres_count(text: str | None, gres: str = "gpu") -> int:
    """Total GPUs named in a GRES string (several types are summed): "gpu:4,shard:20" -> 4."""
    if not text:
        return 0
    total = 0
    for e in _split_outside_parens(text):
        r = _gres_entry(e, gres)
        if r:
            total += r[0]
    if total > MAX_GPU_COUNT:
        raise GresError(f"GRES {text[:80]!r} names more GPUs than any node or job holds")
    return total


def gres_indices(text: str | None, gres: str = "gpu") -> list[int]:
    """GPU indices from "gpu:h100:4(IDX:0-3)" style strings ([] when none or N/A)."""
    if not text:
        return []
    out: list[int] = []
    for e in _split_outside_parens(text):
        r = _gres_entry(e, gres)
        if r:
            out.extend(r[1])
            if len(out) > MAX_GPU_INDEX + 1:
                raise GresError(f"GRES {text[:80]!r} lists more GPU indices than any node has")
    return out


def tres_gpus(text: str | None) -> int:
    """GPUs in a TRES string ("cpu=4,gres/gpu=8" or "gres/gpu:h100=8"); 0 when absent."""
    if not text:
        return 0
    total = 0
    for part in text.split(","):
        k, _, v = part.partition("=")
        n = _uint(v)
        if (k == "gres/gpu" or k.startswith("gres/gpu:")) and n is not None:
            if n > MAX_GPU_COUNT:
                raise GresError(f"TRES {text[:80]!r} names {n} GPUs, more than any job holds")
            if k == "gres/gpu":
                return n  # the untyped total already sums the typed entries
            total += n
    return min(total, MAX_GPU_COUNT)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def parse_nodes(nodes: Sequence[Mapping[str, Any]]) -> NodeTable:
    """The ``nodes`` array of ``GET /nodes`` (any version) as a `NodeTable`."""
    n = len(nodes)
    names: list[str] = []
    state = np.zeros(n, np.int8)
    responding = np.ones(n, bool)
    reason: list[str] = []
    gpus = np.zeros(n, np.int16)
    gpus_alloc = np.zeros(n, np.int16)
    parts: list[tuple[str, ...]] = []
    types: list[str] = []
    gres_of = _Memo(gres_gpus_and_type)  # thousands of nodes share a handful of gres strings
    used_of = _Memo(gres_count)
    for i, d in enumerate(nodes):
        names.append(str(d.get("name") or d.get("hostname") or ""))
        st, resp = node_state(d.get("state"), d.get("state_flags"))
        state[i] = st
        responding[i] = resp
        reason.append(str(d.get("reason") or ""))
        count, typ = gres_of[str(d.get("gres") or "")]
        used = used_of[str(d.get("gres_used") or "")]
        if max(count, used) > MAX_GPU_INDEX + 1:
            raise GresError(f"node {names[-1][:80]!r} has a gres of {max(count, used)} GPUs, more "
                            f"than any node holds ({MAX_GPU_INDEX + 1})")
        gpus[i] = count
        types.append(typ)
        gpus_alloc[i] = used
        parts.append(csv_list(d.get("partitions")))
    return NodeTable(tuple(names), state, responding, tuple(reason), gpus, gpus_alloc,
                     tuple(parts), gpu_types=tuple(types))


class _Codes:
    """Category codes in order of first appearance (tenant, partition, reason columns)."""

    def __init__(self) -> None:
        self.table: dict[str, int] = {}

    def __call__(self, v: str) -> int:
        t = self.table
        c = t.get(v)
        if c is None:
            c = t[v] = len(t)
        return c

    def names(self) -> tuple[str, ...]:
        return tuple(self.table)


def job_gpus(d: Mapping[str, Any], per_node: list[list[int]] | None = None,
             node_count: int = 1) -> int:
    """GPUs a job holds (allocated: gres_detail) or asks for (tres_per_job/node)."""
    if per_node:
        return sum(len(x) for x in per_node)
    detail = d.get("gres_detail") or ()
    if detail:
        return sum(gres_count(x) for x in detail)
    n = tres_gpus(d.get("tres_alloc_str"))
    if n:
        return n
    n = gres_count(d.get("tres_per_job"))
    if n:
        return n
    n = gres_count(d.get("tres_per_node"))
    if n:
        return n * max(1, node_count)
    n = gres_count(d.get("tres_per_task"))
    if n:
        tasks = nv(d.get("tasks"))
        return n * (int(tasks) if isinstance(tasks, int) and tasks > 0 else 1)
    return tres_gpus(d.get("tres_req_str"))


def _all_of(raw: list[Any], typ: Any) -> bool:
    """True when every value of ``raw`` is of the msgspec type ``typ`` (``list[int]``,
    ``list[str | None]``...), checked exactly (a bool is no int, a float no int, None no str).

    Why msgspec: it checks 50,000 values in C without building anything to compare; a set of
    the values' types, the obvious alternative, hashes one type per value and costs several
    times more, once per column of every poll."""
    try:
        msgspec.convert(raw, typ)
    except msgspec.ValidationError:
        return False
    return True


def _plain_ints(raw: list[Any]) -> bool:
    """True when every value is a plain int (v0.0.38/39 numbers), so numpy can convert them
    all at once instead of one `nv` call per row."""
    return _all_of(raw, list[int])


def _int64s(raw: list[Any]) -> np.ndarray | None:
    """Plain ints (v0.0.38/39 numbers) as int64 in one numpy call, else None (another type, or
    beyond 64 bits: the per-value rules decide). Through int64 because numpy converts a list of
    ints to int64 several times faster than to float64."""
    if not _plain_ints(raw):
        return None
    try:
        return np.array(raw, dtype=np.int64) if raw else np.zeros(0, np.int64)
    except OverflowError:
        return None


def _times_col(raw: list[Any]) -> np.ndarray:
    """`timestamp` over a column: 0 (unset) and negative values become NaN."""
    w = _int64s(raw)
    if w is not None:
        a = w.astype(np.float64)
        a[w <= 0] = np.nan
        return a
    return np.array([timestamp(x) for x in raw], dtype=np.float64)


def _int_col(raw: list[Any], default: int, dtype: Any) -> np.ndarray:
    """`nv` over a column of integers; anything that is not an int within ``dtype``'s range
    gives ``default``."""
    plain = _plain_ints(raw)
    if plain or _all_of(raw, list[int | None]):  # None where unset (array_task_id): numpy
        try:
            if not raw:
                return np.zeros(0, dtype)
            return np.array(raw if plain else [default if x is None else x for x in raw],
                            dtype=dtype)
        except OverflowError:  # one value out of range: the slow path gives it the default
            pass
    info = np.iinfo(dtype)
    out = []
    for x in raw:
        v = nv(x)
        out.append(v if isinstance(v, int) and info.min <= v <= info.max else default)
    return np.array(out, dtype=dtype)


def _limit_col(raw: list[Any]) -> np.ndarray:
    w = _int64s(raw)
    if w is not None:
        return w * 60.0
    return np.array([time_limit_s(x) for x in raw], dtype=np.float64)


def _exit_col(raw: list[Any]) -> np.ndarray:
    w = _int64s(raw)
    if w is not None:
        sig = w & 0x7F
        return np.where(sig != 0, 128 + sig, (w >> 8) & 0xFF).astype(np.int32)
    return np.array([exit_code(x) for x in raw], dtype=np.int32)


def _str_array(values: list[str]) -> np.ndarray:
    """Strings as a fixed-width numpy column. Built from the distinct values and spread by
    their codes: user and job names repeat (a few hundred users, array and sweep jobs), and
    numpy copying each distinct string once plus a take costs less than converting every
    string; the width is measured on the distinct ones (numpy finding it by itself takes
    several times longer than ``max(map(len, ...))``)."""
    if not values:
        return np.zeros(0, "U1")
    codes, distinct = category_codes(values)
    return np.array(distinct, dtype=f"U{max(1, max(map(len, distinct)))}")[codes]


def _object_array(values: list[str]) -> np.ndarray:
    """Strings as an object column, for text whose longest value is far longer than most
    (hostlists: one fragmented 512-node allocation would make a fixed-width column of 50,000
    jobs take 4 bytes x its length for every row, pending jobs' empty lists included)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _lookup_col(raw: list[Any], memo: "_Memo", dtype: Any) -> np.ndarray:
    """``memo[x or ""]`` over a column (a pure function of a few distinct strings): by one
    C-level map when every value is a string or None (``memo`` answers None as it answers "")."""
    if _all_of(raw, list[str | None]):
        return np.fromiter(map(memo.__getitem__, raw), dtype, len(raw))
    return np.array([memo[x or ""] for x in raw], dtype)


class _Memo(dict):
    """A per-call cache of a pure function of one hashable argument (GRES/TRES strings and
    state words repeat across tens of thousands of jobs)."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: Any) -> Any:
        v = self[key] = self.fn(key)
        return v


def _state_key(x: Any) -> Any:
    return tuple(x) if isinstance(x, list) else x


def _state_col(raw: list[Any]) -> np.ndarray:
    """`job_state` over a column, once per distinct value: strings (v0.0.38/39) by one C-level
    map, state arrays (v0.0.40+) as tuples, anything else per value."""
    state_of = _Memo(lambda k: int(job_state(list(k) if isinstance(k, tuple) else k)))
    if _all_of(raw, list[str]):
        keys: Iterable[Any] = raw
    elif _all_of(raw, list[list]):
        keys = map(tuple, raw)
    else:
        keys = map(_state_key, raw)
    return np.fromiter(map(state_of.__getitem__, keys), np.int8, len(raw))


_JOB_KEYS = ("job_id", "array_job_id", "array_task_id", "job_state", "name", "user_name",
             "user_id", "account", "partition", "state_reason", "submit_time", "start_time",
             "end_time", "time_limit", "exit_code", "nodes", "node_count", "gres_detail",
             "tres_alloc_str", "tres_per_job", "tres_per_node", "tres_per_task", "tres_req_str",
             "tasks")
_GET_JOB_KEYS = itemgetter(*_JOB_KEYS)

#: One job of a ``GET /jobs`` answer as `listing_decoder` builds it: only the keys read, None
#: where a key is absent (as ``dict.get`` gives it), values of any JSON type (they differ by API
#: version). A struct, not a dict: msgspec builds 50,000 of them without hashing a key, and
#: ``gc=False`` keeps them out of the cyclic collector (they hold no cycles).
JobRow: Any = msgspec.defstruct("JobRow", [(k, Any, None) for k in _JOB_KEYS], gc=False,
                                module=__name__)


def _job_columns(jobs: Sequence[Any]) -> dict[str, list[Any]]:
    """The fields we use, as columns, touching each job once (50,000 objects of ~100 keys each
    do not fit a CPU cache; one pass per column would fetch them all again). Jobs are
    `JobRow` structs (the typed decoder) or mappings (the plain decoder, tests)."""
    if not jobs:
        return {k: [] for k in _JOB_KEYS}
    if set(map(type, jobs)) == {JobRow}:
        rows: Iterable[tuple[Any, ...]] = map(msgspec.structs.astuple, jobs)  # _JOB_KEYS order
    else:
        try:
            rows = list(map(_GET_JOB_KEYS, jobs))  # mappings with every key
        except (KeyError, TypeError):  # some keys missing (another version), or mixed rows
            rows = list(map(_job_row, jobs))
    # Transposed by numpy: the fields in one flat object array (as objects, never looked
    # into: a list value stays one element), read back by column. zip(*rows) over 50,000 rows
    # is slower, as it steps 50,000 iterators in turn.
    n, width = len(jobs), len(_JOB_KEYS)
    table = np.fromiter(chain.from_iterable(rows), object, n * width).reshape(n, width)
    return {k: table[:, j].tolist() for j, k in enumerate(_JOB_KEYS)}


def _job_row(d: Any) -> tuple[Any, ...]:
    """One job's fields in `_JOB_KEYS` order, None where a key is missing."""
    if type(d) is JobRow:
        return msgspec.structs.astuple(d)
    try:
        return _GET_JOB_KEYS(d)
    except KeyError:
        return tuple(d.get(k) for k in _JOB_KEYS)


def _text_col(raw: list[Any], default: str = "") -> list[str]:
    if _all_of(raw, list[str]):  # the common case: only strings, "" means ``default``
        return list(raw) if not default else [x or default for x in raw]
    return [x if type(x) is str and x else (str(x) if x else default) for x in raw]


def parse_jobs(jobs: Sequence[Mapping[str, Any]]) -> JobTable:
    """The ``jobs`` array of ``GET /jobs`` (any version) as a `JobTable`, built column-wise.

    Fifty thousand jobs are a design target, so: the fields are gathered in one pass, numeric
    columns are converted by numpy when the API sends plain integers (v0.0.38/39), state
    words and GRES/TRES strings are parsed once per distinct value, and hostlists are expanded
    only for jobs that report per-node GPU indices (``gres_detail``: one entry per allocated
    node, in the order of the expanded ``nodes`` hostlist).
    """
    n = len(jobs)
    c = _job_columns(jobs)
    job_id = _int_col(c["job_id"], 0, np.int64)
    job_id[job_id < 0] = 0
    array_job_id = _int_col(c["array_job_id"], 0, np.int64)
    array_job_id[array_job_id < 0] = 0
    array_task_id = _int_col(c["array_task_id"], -1, np.int32)
    array_task_id[(array_job_id == 0) | (array_task_id < 0)] = -1
    state = _state_col(c["job_state"])
    names = _text_col(c["name"])
    users = c["user_name"]
    if not (_all_of(users, list[str]) and all(users)):  # else: the uid where no name
        users = [u if type(u) is str and u else str(u or i or "")
                 for u, i in zip(users, c["user_id"])]
    account, accounts = category_codes(_text_col(c["account"]))
    partition, partitions = category_codes(_text_col(c["partition"]))
    reason, reasons = category_codes(_text_col(c["state_reason"], "None"))
    submit = _times_col(c["submit_time"])
    start = _times_col(c["start_time"])
    end = _times_col(c["end_time"])
    limit = _limit_col(c["time_limit"])
    ecode = _exit_col(c["exit_code"])
    node_lists = _text_col(c["nodes"])
    nnodes = _int_col(c["node_count"], 0, np.int32)
    nnodes[nnodes < 0] = 0

    gres_n = _Memo(gres_count)
    tres_n = _Memo(tres_gpus)
    # GPUs asked for, by precedence (job_gpus); columns of per-distinct-string answers
    k_alloc = _lookup_col(c["tres_alloc_str"], tres_n, np.int64)
    k_job = _lookup_col(c["tres_per_job"], gres_n, np.int64)
    k_node = _lookup_col(c["tres_per_node"], gres_n, np.int64)
    k_task = _lookup_col(c["tres_per_task"], gres_n, np.int64)
    k_req = _lookup_col(c["tres_req_str"], tres_n, np.int64)
    if n and k_task.any():
        tasks = np.array([t if isinstance(t, int) and 0 < t <= MAX_GPU_COUNT else 1
                          for t in (nv(x) for x in c["tasks"])], np.int64)
    else:
        tasks = np.ones(n, np.int64)
    gpus64 = np.where(k_alloc > 0, k_alloc, np.where(k_job > 0, k_job, np.where(
        k_node > 0, k_node * np.maximum(nnodes, 1), np.where(k_task > 0, k_task * tasks, k_req))))
    # a per-node request times a corrupt node count must not wrap around the int32 column
    gpus = np.minimum(gpus64, MAX_GPU_COUNT).astype(np.int32) if n else np.zeros(0, np.int32)

    idx_of = _Memo(gres_indices)
    alloc_nodes: dict[str, int] = {}
    aj: list[int] = []
    an: list[int] = []
    ag: list[int] = []
    details = c["gres_detail"]
    for i in compress(range(n), details):  # allocated jobs only
        detail = details[i]
        expr = node_lists[i]
        total = 0
        if expr:
            hosts = hostlist.expand(expr)
            for host, det in zip(hosts, detail):
                idx = idx_of[det]
                if idx:
                    total += len(idx)
                    code = alloc_nodes.setdefault(host, len(alloc_nodes))
                    aj.extend([i] * len(idx))
                    an.extend([code] * len(idx))
                    ag.extend(idx)
            nnodes[i] = max(int(nnodes[i]), len(hosts))
        gpus[i] = total or sum(gres_n[x] for x in detail if x)
    return JobTable(
        job_id=job_id, array_job_id=array_job_id, array_task_id=array_task_id,
        name=_str_array(names), user=_str_array(users),
        account=account, accounts=accounts, partition=partition, partitions=partitions,
        state=state, reason=reason, reasons=reasons, gpus=gpus, nodes=nnodes,
        submit_time=submit, start_time=start, end_time=end, time_limit_s=limit, exit_code=ecode,
        node_list=_object_array(node_lists),
        alloc_job=np.array(aj, np.int32), alloc_node=np.array(an, np.int32),
        alloc_gpu=np.array(ag, np.int16), alloc_node_names=tuple(alloc_nodes))


class JobsRefused(Exception):
    """`parse_jobs` refused a run of a streamed answer: valid JSON, jobs of a shape it cannot
    read. That is the answer's verdict, as `parse_jobs` of the whole list would give it (the
    source's BAD_PAYLOAD, worded by ``kind``), not a reason to ask for the answer again.
    Streams put one in place of the table (`job_stream`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # the refusing exception's type name


def table_of_run(jobs: Sequence[Any]) -> JobTable:
    """`parse_jobs` of one run of a streamed answer; `JobsRefused` where it cannot read one of
    them (the exceptions the scheduler source turns into BAD_PAYLOAD)."""
    try:
        return parse_jobs(jobs)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise JobsRefused(type(exc).__name__) from None


#: The keys of a node `parse_nodes` reads.
_NODE_KEYS = ("name", "hostname", "state", "state_flags", "reason", "gres", "gres_used",
              "partitions")
#: The keys of a ``/nodes`` or ``/jobs`` answer the scheduler source reads besides the list.
_ANSWER_KEYS = ("meta", "errors", "warnings", "last_update")


@lru_cache(maxsize=4)
def listing_decoder(key: str) -> Callable[[bytes], Any] | None:
    """A decoder of a ``GET /nodes`` (``key`` "nodes") or ``/jobs`` answer that builds only the
    keys `parse_nodes` / `parse_jobs` and the scheduler source read: plain dicts and lists, as
    `json.loads` gives them, less the rest (None for another key: decode in full).

    Why: a running job carries ``job_resources`` with a map per allocated core, and every job
    some hundred keys; at 50,000 jobs building those objects costs more than the parse that
    follows. Values keep any JSON type (they differ by API version; `parse_jobs` sorts that out).
    Jobs come as `JobRow` structs (cheaper to build and to read by column than dicts); an
    answer msgspec refuses is decoded in full by ``json.loads`` instead (plain dicts).
    """
    if key not in ("nodes", "jobs"):
        return None
    return typed_decoder(_listing_types(key)[1])


@lru_cache(maxsize=4)
def _listing_types(key: str) -> tuple[Any, Any]:
    """The msgspec types of a listing's items and of its whole answer (built once per key:
    the stream and the whole-body decoder must agree on them)."""
    typed_dict: Any = TypedDict  # built at run time, one per key
    item_t = JobRow if key == "jobs" else typed_dict("NodesItem", {k: Any for k in _NODE_KEYS},
                                                     total=False)
    answer_t = typed_dict(f"{key.title()}Answer", {**{k: Any for k in _ANSWER_KEYS},
                                                   key: GenericAlias(list, (item_t,))}, total=False)
    return item_t, answer_t


def listing_stream(key: str, min_run: int | None = None, tables: bool = True,
                   ) -> StreamFactory | None:
    """A factory of streams that decode a ``GET /nodes`` or ``/jobs`` answer while it arrives
    (`stream_json.ListStream`), into exactly what `listing_decoder` gives for the whole answer
    (None for another key). slurmrestd pretty-prints its answers; one that it did not (a
    proxy in between) is decoded whole instead, with the same result. ``min_run`` (bytes
    gathered before a run is decoded) is for tests: small answers then take many runs too.

    Jobs come as one `JobTable` (``answer["jobs"]``), built run by run while the answer
    arrives, partly in a helper process (`job_stream`); ``tables`` False gives the `JobRow`
    items instead (tests of the item stream)."""
    if key not in ("nodes", "jobs"):
        return None
    item_t, _ = _listing_types(key)
    typed_dict: Any = TypedDict
    rest_t = typed_dict(f"{key.title()}Rest", {**{k: Any for k in _ANSWER_KEYS},
                                                key: list[int]}, total=False)
    kind: Any = ListStream
    if key == "jobs" and tables:
        from console.sources.job_stream import JobTableStream

        kind = JobTableStream
    if min_run is None:
        return lambda: kind(key, item_t, rest_t)
    return lambda: kind(key, item_t, rest_t, min_run=min_run)


def partition_names(parts: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(str(p.get("name") or "") for p in parts if p.get("name"))

"""Slurm accounting answers (``/slurmdb/vX/...`` and ``/slurm/vX/shares``) into plain records.

Pure functions, no I/O, so every API version's recorded answers are tested without a server.
What differs between versions, as recorded from real slurmrestd 22.05 (v0.0.38), 24.11
(v0.0.40..42) and 26.05 (v0.0.42..45) with slurmdbd:

- numbers are plain in v0.0.38 and ``{set, infinite, number}`` structs later (`slurm_parse.nv`);
- a job's ``state.current`` is a string in v0.0.38 and a list of words later;
- the QOS list is under ``QOS`` in v0.0.38 and ``qos`` later;
- ``/shares`` exists from v0.0.39 on (not in 22.05), its floats plain in v0.0.40/41 and structs
  from v0.0.42 on.

GPUs come from the job's *allocated* TRES (``gres/gpu``), never from what was requested: a job
is charged for what it held. A TRES list without a ``gres/gpu`` entry means no GPUs (a CPU job,
or a site that does not account GPUs: the source says which in its notes); an absent limit is
``None`` (unlimited), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from console import hostlist
from console.accounting.records import FairShare, GpuLimit, JobUsage
from console.sources.slurm_parse import nv, states


class AccountingShapeError(ValueError):
    """An accounting answer that does not have the shape of any known version (words say where)."""


# ---------------------------------------------------------------------------------------------
# Scalars and TRES lists
# ---------------------------------------------------------------------------------------------


def epoch(x: Any) -> float | None:
    """POSIX seconds, or None where Slurm says "not yet" (0, unset, infinite)."""
    v = nv(x)
    if v is None or v <= 0 or v == math.inf:
        return None
    return float(v)


def _count(x: Any) -> int | None:
    v = nv(x)
    if v is None or v == math.inf or v < 0:
        return None
    return int(v)


def _is_gpu(entry: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether a TRES entry counts GPUs, and its GPU type when it names one.

    Entries are ``{type: "gres", name: "gpu"}`` (or ``name: "gpu:h100"`` for a typed count)
    in /slurmdb/ answers, and ``{name: "gres/gpu"}`` in /shares answers.
    """
    kind = str(entry.get("type") or "")
    name = str(entry.get("name") or "")
    if kind == "gres" or (not kind and name.startswith("gres/")):
        name = name.removeprefix("gres/")
        if name == "gpu":
            return True, None
        if name.startswith("gpu:"):
            return True, name.split(":", 1)[1] or None
    return False, None


def tres_gpus(tres: Any) -> tuple[int, str | None]:
    """GPUs in a TRES list and their model when exactly one type is named.

    The untyped ``gres/gpu`` total wins (it already sums the typed ones); without it the typed
    counts are summed. A list with no GPU entry is 0 GPUs.
    """
    if tres is None:
        return 0, None
    if not isinstance(tres, list):
        raise AccountingShapeError("a TRES field is not a list")
    total: int | None = None
    typed: dict[str, int] = {}
    for e in tres:
        if not isinstance(e, Mapping):
            raise AccountingShapeError("a TRES entry is not an object")
        gpu, model = _is_gpu(e)
        if not gpu:
            continue
        n = _count(e.get("count"))
        if n is None:
            continue
        if model is None:
            total = n
        else:
            typed[model] = typed.get(model, 0) + n
    models = [m for m, n in typed.items() if n > 0]
    model = models[0] if len(models) == 1 else None
    return (total if total is not None else sum(typed.values())), model


def tres_gpu_limit(tres: Any) -> int | None:
    """The ``gres/gpu`` value of a limit's TRES list; None when the list does not set it."""
    if not isinstance(tres, list):
        return None
    for e in tres:
        if isinstance(e, Mapping) and _is_gpu(e) == (True, None):
            return _count(e.get("count"))
    return None


def dig(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...``, or None where a level is missing or not an object."""
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------


def _nodes(x: Any) -> tuple[str, ...]:
    if not isinstance(x, str) or not x.strip() or x.strip().lower() == "none assigned":
        return ()
    try:
        return tuple(hostlist.expand(x.strip()))
    except ValueError:
        return (x.strip(),)


#: Base states of a job that has not ended: its record has no end time of its own.
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "REQUEUED", "RESIZING",
                           "CONFIGURING"})


def parse_job(d: Mapping[str, Any]) -> JobUsage:
    """One ``/slurmdb/vX/jobs`` entry as a `JobUsage`.

    A job still running has no end, and a pending one no start: 22.05 sends 0, but 24.11 and
    26.05 send the time of the request as ``time.end`` of a running job and as ``time.start``
    and ``time.end`` of a pending one (measured), which would read as "ended now" or "started
    now"; the state decides.
    """
    t = d.get("time")
    if not isinstance(t, Mapping):
        raise AccountingShapeError(f"job {d.get('job_id')!r} has no time object")
    base = states(dig(d, "state", "current"))
    state = base[0] if base else "UNKNOWN"
    gpus, model = tres_gpus(dig(d, "tres", "allocated"))
    qos = d.get("qos")
    return JobUsage(
        job_id=str(d.get("job_id", "")),
        account=str(d.get("account") or dig(d, "association", "account") or ""),
        user=str(d.get("user") or dig(d, "association", "user") or ""),
        partition=str(d.get("partition") or ""),
        state=state,
        submit=epoch(t.get("submission")),
        start=None if state == "PENDING" else epoch(t.get("start")),
        end=None if state in ACTIVE_STATES else epoch(t.get("end")),
        gpus=gpus,
        nodes=_nodes(d.get("nodes")),
        gpu_model=model,
        qos=str(qos) if isinstance(qos, str) and qos else None,
    )


def job_key(d: Mapping[str, Any]) -> tuple[str, str, str]:
    """What tells two job records apart across clusters and a reused job id."""
    return (str(d.get("cluster") or ""), str(d.get("job_id", "")),
            str(dig(d, "time", "submission")))


def overlaps(job: JobUsage, since: float, until: float) -> bool:
    """Whether a job held resources or ended within ``[since, until)``.

    A job that never started counts only if it ended (was cancelled) inside the period.
    """
    if job.start is None:
        return job.end is not None and since <= job.end < until
    end = job.end if job.end is not None else math.inf
    return job.start < until and end >= since


def parse_jobs(jobs: Iterable[Mapping[str, Any]]) -> list[JobUsage]:
    try:
        return [parse_job(j) for j in jobs]
    except (AttributeError, TypeError) as e:
        raise AccountingShapeError(f"unexpected job shape ({type(e).__name__})") from None


# ---------------------------------------------------------------------------------------------
# Limits: associations and QOS
# ---------------------------------------------------------------------------------------------


def account_limits(assocs: Sequence[Mapping[str, Any]], cluster: str | None = None) -> list[GpuLimit]:
    """GPU limits of account-level associations (no user, no partition) that set one.

    ``max.tres.total`` is GrpTRES and ``max.tres.group.minutes`` GrpTRESMins in every version
    recorded (v0.0.38..v0.0.45). Accounts without a GPU limit are left out.
    """
    out: dict[str, GpuLimit] = {}
    for a in assocs:
        if not isinstance(a, Mapping):
            raise AccountingShapeError("an association is not an object")
        if a.get("user") or a.get("partition"):
            continue
        if cluster and a.get("cluster") and a.get("cluster") != cluster:
            continue
        account = str(a.get("account") or "")
        if not account:
            continue
        tres = dig(a, "max", "tres")
        gpus = tres_gpu_limit(dig(tres, "total"))
        minutes = tres_gpu_limit(dig(tres, "group", "minutes"))
        if gpus is None and minutes is None:
            continue
        out[account] = GpuLimit("account", account, gpus=gpus, gpu_minutes=minutes)
    return list(out.values())


def qos_list(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The QOS entries of a ``/slurmdb/vX/qos`` answer (``QOS`` in v0.0.38, ``qos`` later)."""
    items = body.get("qos", body.get("QOS"))
    if not isinstance(items, list):
        raise AccountingShapeError("no list of QOS")
    return items


def qos_limits(items: Sequence[Mapping[str, Any]]) -> tuple[list[GpuLimit], bool]:
    """GPU limits of QOS that set one, and whether the answer shows GrpTRESMins at all.

    GrpTRES is ``limits.max.tres.total``; GrpTRESMins is ``limits.max.tres.minutes.total``,
    which v0.0.38, v0.0.40 and v0.0.41 do not send (measured: a QOS created with
    ``GrpTRESMins=gres/gpu=6000`` shows no such value): there a QOS's ``gpu_minutes`` is
    unknown, not unlimited, and the second value is False so the caller can say so.
    """
    out = []
    shown = True
    for q in items:
        if not isinstance(q, Mapping):
            raise AccountingShapeError("a QOS is not an object")
        tres = dig(q, "limits", "max", "tres")
        gpus = tres_gpu_limit(dig(tres, "total"))
        minutes_obj = dig(tres, "minutes")
        if not (isinstance(minutes_obj, Mapping) and "total" in minutes_obj):
            shown = False
        minutes = tres_gpu_limit(dig(minutes_obj, "total"))
        if gpus is None and minutes is None:
            continue
        out.append(GpuLimit("qos", str(q.get("name") or ""), gpus=gpus, gpu_minutes=minutes))
    return out, shown


# ---------------------------------------------------------------------------------------------
# Fair share
# ---------------------------------------------------------------------------------------------


def _float(x: Any) -> float | None:
    v = nv(x)
    if v is None or v == math.inf:
        return None
    return float(v)


#: Slurm sends an infinite LevelFS (an association with no usage at all) as 2**64 in a "set"
#: struct (26.05, measured); anything this large is that infinity, not a level.
_LEVEL_INFINITE = float(2**63)


def _level(x: Any) -> float | None:
    v = nv(x)
    if v is None:
        return None
    return math.inf if v >= _LEVEL_INFINITE else float(v)


def share_rows(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows of a ``/slurm/vX/shares`` answer: ``{"shares": {"shares": [...]}}``."""
    inner = body.get("shares")
    rows = inner.get("shares") if isinstance(inner, Mapping) else None
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise AccountingShapeError("no list of shares")
    return rows


def _is_user_row(row: Mapping[str, Any]) -> bool:
    return "USER" in states(row.get("type"))


def parse_shares(rows: Sequence[Mapping[str, Any]], cluster: str | None = None) -> list[FairShare]:
    """One `FairShare` per account row and per user-in-account row; the ``root`` account and
    its users are left out (the whole cluster, not a tenant).

    In /shares a user row's ``name`` is the user and ``parent`` its account; an account row's
    ``name`` is the account. ``fairshare.level`` is LevelFS, ``fairshare.factor`` the fair-share
    factor; both are plain floats in v0.0.40/41 and structs from v0.0.42 on.
    """
    out = []
    for r in rows:
        if cluster and r.get("cluster") and r.get("cluster") != cluster:
            continue
        name = str(r.get("name") or "")
        user_row = _is_user_row(r)
        account = str(r.get("parent") or "") if user_row else name
        if account in ("root", ""):
            continue
        fs = r.get("fairshare")
        fs = fs if isinstance(fs, Mapping) else {}
        out.append(FairShare(
            account=account,
            user=name if user_row else None,
            shares=_count(r.get("shares")),
            level_fs=_level(fs.get("level")),
            effective_usage=_float(r.get("effective_usage")),
            fairshare=_float(fs.get("factor")),
        ))
    return out


def used_gpu_minutes(rows: Sequence[Mapping[str, Any]], cluster: str | None = None) -> dict[str, float]:
    """Account -> GPU-minutes Slurm counts against GrpTRESMins (``tres.usage`` of ``gres/gpu``,
    in GPU-seconds, decayed as the site's PriorityDecayHalfLife says). Accounts whose row has no
    ``gres/gpu`` usage entry are left out (unknown, not 0)."""
    out: dict[str, float] = {}
    for r in rows:
        if _is_user_row(r) or (cluster and r.get("cluster") and r.get("cluster") != cluster):
            continue
        if str(r.get("name") or "") in ("root", ""):
            continue
        usage = dig(r, "tres", "usage")
        if not isinstance(usage, list):
            continue
        for e in usage:
            if isinstance(e, Mapping) and str(e.get("name") or "") == "gres/gpu":
                v = _float(e.get("value"))
                if v is not None and v >= 0:
                    out[str(r.get("name") or "")] = v / 60.0
    return out

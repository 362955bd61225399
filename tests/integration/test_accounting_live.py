"""Slurm accounting read live from a real slurmdbd, against what Slurm's own commands say.

The stack (``scripts/stack.py start --accounting``) runs slurmdbd with MariaDB, tenants with GPU
quotas and a QOS, and jobs that ran and ended during start-up (COMPLETED, FAILED, CANCELLED)
next to running and pending ones. The console reads it through slurmrestd
(console/sources/slurmdb.py) and turns it into GPU-hours per tenant (console/accounting); the
truth is ``sacct`` and ``sacctmgr`` of the same Slurm, with the GPU-hours worked out here, in a
few lines of this file, from sacct's own records: allocated ``gres/gpu`` x the part of each
job's run inside the period.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from console.accounting.periods import Period
from console.accounting.records import AccountingSnapshot
from console.accounting.table import UsageTable
from console.accounting.usage import tenant_usage
from console.sources.http import Auth
from console.sources.slurm import SlurmClient
from console.sources.slurmdb import SlurmdbAccountingSource

from .live import Stack


def slurm_cmd(stack: Stack, *argv: str) -> list[list[str]]:
    """A Slurm command of the stack's own release, times as epoch seconds, rows split on "|"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(SLURM_CONF=stack.info["slurm_conf"], SLURM_TIME_FORMAT="%s", TZ="UTC")
    root = stack.info.get("root")
    res = subprocess.run(["chroot", root, *argv] if root else list(argv), env=env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"{argv}: {res.stderr}"
    return [line.split("|") for line in res.stdout.splitlines() if line.strip()]


def utc_words(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def gpus_of(tres: str) -> int:
    for part in tres.split(","):
        key, _, value = part.partition("=")
        if key == "gres/gpu":
            return int(value)
    return 0


def sacct_gpu_hours(stack: Stack, since: float, until: float) -> dict[str, float]:
    """GPU-hours per account in [since, until) from sacct: each job cut at the period's edges,
    a running job counted up to ``until``."""
    rows = slurm_cmd(stack, "sacct", "-X", "-a", "-n", "-P", "-S", utc_words(since - 60),
                     "-E", utc_words(until + 60), "--format=Account,Start,End,AllocTRES")
    out: dict[str, float] = {}
    for account, start, end, tres in rows:
        if start in ("Unknown", "None"):
            continue  # never started: no GPU time
        run_end = until if end in ("Unknown", "None") else float(end)
        inside = min(run_end, until) - max(float(start), since)
        if inside > 0 and gpus_of(tres):
            out[account] = out.get(account, 0.0) + gpus_of(tres) * inside / 3600.0
    return out


#: Seconds within which slurmdbd may not yet know of a job's start or end (see the test).
RECORDED_LAG_S = 5.0


def reader(stack: Stack) -> SlurmdbAccountingSource:
    client = SlurmClient.from_url(stack.urls["slurm"],
                                  auth=Auth("slurm_jwt", user=stack.user, secret=stack.token))
    return SlurmdbAccountingSource(client)


def console_gpu_hours(snap: AccountingSnapshot) -> dict[str, float]:
    table = UsageTable.build(list(snap.jobs))
    usage = tenant_usage(table, Period(snap.since, snap.until, "test"), now=snap.until)
    return {acct: u.gpu_hours for acct, u in usage.items() if u.gpu_hours > 0}


def history(stack: Stack) -> list[dict]:
    return stack.info["accounting"]["history_jobs"]


def history_span(stack: Stack) -> tuple[float, float]:
    """(first start, last end) of the history jobs, from sacct."""
    ids = ",".join(str(j["id"]) for j in history(stack))
    rows = slurm_cmd(stack, "sacct", "-X", "-n", "-P", "-j", ids, "--format=Start,End")
    return min(float(r[0]) for r in rows), max(float(r[1]) for r in rows)


def test_gpu_hours_per_account_match_sacct_over_the_whole_history(accounting_stack: Stack) -> None:
    first, last = history_span(accounting_stack)
    # The period ends just after the history, and is read once slurmdbd has had time to record
    # it: slurmctld tells slurmdbd of a job's start or end through a queue, so for the last
    # seconds before "now" the console's read and sacct's later one may see a job differently
    # (both read slurmdbd). The comparison itself stays exact.
    since, until = first - 600, float(int(last)) + 5.0
    time.sleep(max(0.0, until + RECORDED_LAG_S - time.time()))
    snap = reader(accounting_stack).read(since, until)
    truth = sacct_gpu_hours(accounting_stack, since, until)
    got = console_gpu_hours(snap)
    assert got.keys() == truth.keys()
    assert got == {a: pytest.approx(h, rel=1e-12) for a, h in truth.items()}
    # every tenant with a finished or running GPU job is there; hkbu ran a CPU job only
    assert set(truth) == {"hku", "cuhk", "polyu", "hkust", "cityu"}


def test_gpu_hours_of_jobs_cut_at_both_edges_match_sacct(accounting_stack: Stack) -> None:
    """A period that starts inside the history jobs and ends before the job mix ran: every
    finished job crossing an edge counts only its part inside."""
    first, last = history_span(accounting_stack)
    since, until = first + 1, last - 1
    assert until > since, "the history jobs ran for under 3 s: nothing to cut"
    snap = reader(accounting_stack).read(since, until)
    truth = sacct_gpu_hours(accounting_stack, since, until)
    assert truth, "sacct shows no GPU time in the period"
    assert console_gpu_hours(snap) == {a: pytest.approx(h, rel=1e-12) for a, h in truth.items()}
    pretrain = next(j for j in snap.jobs if j.gpus == 8 and j.state == "COMPLETED")
    assert pretrain.start is not None and pretrain.start < since  # really crossing the edge


def test_end_states_are_what_the_stack_ran(accounting_stack: Stack) -> None:
    first, _ = history_span(accounting_stack)
    snap = reader(accounting_stack).read(first - 60, time.time())
    by_id = {j.job_id: j for j in snap.jobs}
    for h in history(accounting_stack):
        j = by_id[str(h["id"])]
        assert (j.state, j.account) == (h["expected_state"], h["account"]), h["name"]
        assert j.end is not None and j.start is not None and j.end >= j.start
    running = [j for j in snap.jobs if j.state == "RUNNING"]
    assert running and all(j.end is None for j in running)
    sacct_states = {r[0]: r[1].split()[0] for r in slurm_cmd(
        accounting_stack, "sacct", "-X", "-a", "-n", "-P", "-S", utc_words(first - 60),
        "--format=JobID,State")}
    assert {j.job_id: j.state for j in snap.jobs if j.job_id in sacct_states} == {
        k: v for k, v in sacct_states.items() if k in by_id}


def test_limits_are_what_sacctmgr_shows(accounting_stack: Stack) -> None:
    snap = reader(accounting_stack).read(time.time() - 3600, time.time())
    got = {(lim.scope, lim.name): (lim.gpus, lim.gpu_minutes) for lim in snap.limits}
    expected: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    for account, user, partition, grp_tres, grp_mins in slurm_cmd(
            accounting_stack, "sacctmgr", "-n", "-P", "show", "assoc",
            "format=Account,User,Partition,GrpTRES,GrpTRESMins"):
        if user or partition or account == "root" or not (grp_tres or grp_mins):
            continue
        expected[("account", account)] = (gpus_of(grp_tres) if grp_tres else None,
                                          gpus_of(grp_mins) if grp_mins else None)
    assert {k: v for k, v in got.items() if k[0] == "account"} == expected
    qos = {name: gpus_of(tres) for name, tres in slurm_cmd(
        accounting_stack, "sacctmgr", "-n", "-P", "show", "qos", "format=Name,GrpTRES") if tres}
    assert {k[1]: v[0] for k, v in got.items() if k[0] == "qos"} == qos == {"interactive": 4}
    release = accounting_stack.info.get("slurm_series", "22.05")
    if release == "22.05":  # no /shares: quota use and fair share are unknown, and said so
        assert all(lim.used_gpu_minutes is None for lim in snap.limits)
        assert snap.shares == []
        assert any("/shares needs Slurm 23.02" in n for n in snap.notes)
    else:
        hku = next(lim for lim in snap.limits if lim.name == "hku")
        assert hku.used_gpu_minutes is not None and hku.used_gpu_minutes > 0
        assert {f.account for f in snap.shares if f.user is None} >= {"hku", "cityu"}


def test_the_quota_job_waits_on_its_tenants_gpu_limit(accounting_stack: Stack) -> None:
    """GrpTRES is enforced: hkbu (2 GPUs) asked for 4 and waits with Slurm's quota reason."""
    quota = next(j for j in accounting_stack.info["jobs"] if j["name"] == "quota-wait")
    ((state, reason),) = slurm_cmd(accounting_stack, "squeue", "-h", "-j", str(quota["id"]),
                                   "-o", "%T|%r")
    assert (state, reason) == ("PENDING", "AssocGrpGRES")


def test_the_database_and_slurmdbd_listen_on_loopback_only(accounting_stack: Stack) -> None:
    """MariaDB and slurmdbd are recorded processes of the stack, on 127.0.0.1 like the rest;
    slurmdbd.conf holds the database password and is readable by its owner only."""
    from .live import is_running
    from .test_stack_script import listening_addresses

    procs = {p["name"]: p for p in accounting_stack.info["processes"]}
    for name in ("mariadb", "slurmdbd"):
        assert name in procs and is_running(procs[name]), name
        found = listening_addresses(procs[name]["pid"])
        assert found and all(addr == "127.0.0.1" for addr, _ in found), (name, found)
    ports = accounting_stack.info["ports"]
    assert ("127.0.0.1", ports["dbd"]) in listening_addresses(procs["slurmdbd"]["pid"])
    assert ("127.0.0.1", ports["mariadb"]) in listening_addresses(procs["mariadb"]["pid"])
    conf = os.path.join(accounting_stack.info["public_dir"], "slurmdbd.conf")
    assert os.stat(conf).st_mode & 0o077 == 0

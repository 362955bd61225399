"""Slurm accounting for the loopback stack: MariaDB, slurmdbd, associations and job history.

Used by scripts/stack.py when started with ``--accounting`` (never otherwise, so the plain
stacks and their tests stay as they are). Why a module of its own: the accounting half has its
own daemons, its own data (tenants with GPU quotas, a QOS, finished jobs) and its own order of
start-up, and the stack script is long enough without it.

What it adds, all on 127.0.0.1 and inside the stack's folder:

- MariaDB (the host's, for every release) with its own datadir, socket and port
  (``mariadb-install-db``, then ``mariadbd`` as a recorded process; no system service), and a
  database user for slurmdbd whose random password lives only in ``slurmdbd.conf`` (mode 600);
- slurmdbd (the release's own), and ``AccountingStorageType=accounting_storage/slurmdbd`` with
  ``AccountingStorageTRES=gres/gpu,gres/gpu:TYPE...`` in slurm.conf, so job records carry their
  GPUs and their model;
- accounts named after institutions with ``GrpTRES=gres/gpu=N`` and ``GrpTRESMins=gres/gpu=M``,
  associations for the submitting user, and a QOS with a GPU limit (``sacctmgr -i``);
- short jobs that run and end during start-up, so that job history exists: COMPLETED ones,
  one FAILED, one CANCELLED (the job mix of stack.py keeps others RUNNING).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Debian packages of the accounting half on the host, and the files that show each is
#: installed. MariaDB is always the host's (`AccountingMixin.host_cmd` says why); slurmdbd is
#: the host's for Debian 12's Slurm and the root's own for a root's (stack_roots.add_accounting).
DB_PACKAGES = {
    "mariadb-server": ["/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db", "/usr/bin/mariadb"],
}
SLURMDBD_PACKAGES = {"slurmdbd": ["/usr/sbin/slurmdbd"]}


def packages(suite: str) -> dict[str, list[str]]:
    """Host packages an accounting stack of ``suite`` needs besides the plain stack's."""
    return {**DB_PACKAGES, **(SLURMDBD_PACKAGES if suite == "bookworm" else {})}


DB_NAME = "slurm_acct_db"
DB_USER = "slurm"


@dataclass(frozen=True)
class Tenant:
    """An account (tenant) and its limits; None = that limit is not set (unlimited)."""

    name: str
    description: str
    gpus: int | None = None         # GrpTRES=gres/gpu=N
    gpu_minutes: int | None = None  # GrpTRESMins=gres/gpu=M
    fairshare: int = 1


#: The accounts of stack.py's job mix, with limits high enough that its jobs keep the states
#: the plain stack gives them; hkbu's 2-GPU quota is the one a job waits on.
TENANTS: tuple[Tenant, ...] = (
    Tenant("hku", "The University of Hong Kong", gpus=40, gpu_minutes=600_000, fairshare=40),
    Tenant("cuhk", "The Chinese University of Hong Kong", gpus=16, fairshare=30),
    Tenant("polyu", "The Hong Kong Polytechnic University", gpu_minutes=120_000, fairshare=20),
    Tenant("hkust", "The Hong Kong University of Science and Technology", gpus=12,
           gpu_minutes=90_000, fairshare=20),
    Tenant("cityu", "City University of Hong Kong", gpus=8, gpu_minutes=30_000, fairshare=10),
    Tenant("hkbu", "Hong Kong Baptist University", gpus=2, fairshare=5),
)


@dataclass(frozen=True)
class Qos:
    """A QOS with GPU limits that users of every tenant may ask for (``--qos``)."""

    name: str
    gpus: int          # GrpTRES=gres/gpu=N
    gpu_minutes: int   # GrpTRESMins=gres/gpu=M
    max_wall: str


QOSES: tuple[Qos, ...] = (Qos("interactive", gpus=4, gpu_minutes=6_000, max_wall="01:00:00"),)


@dataclass(frozen=True)
class HistoryJob:
    """A short job run during start-up: (name, account, sbatch options, script, final state)."""

    name: str
    account: str
    options: tuple[str, ...]
    script: str
    state: str


#: Pinned to nodes that are free before the job mix starts; each runs for seconds.
HISTORY_JOBS: tuple[HistoryJob, ...] = (
    HistoryJob("hist-pretrain", "hku", ("-w", "gpu06", "--gres=gpu:8"), "sleep 4", "COMPLETED"),
    HistoryJob("hist-eval", "cuhk", ("-w", "gpu03", "--gres=gpu:h100:2"), "sleep 2", "COMPLETED"),
    HistoryJob("hist-notebook", "polyu", ("-w", "gpu02", "--gres=gpu:1", "--qos=interactive"),
               "sleep 3", "COMPLETED"),
    HistoryJob("hist-crash", "hkust", ("-w", "gpu02", "--gres=gpu:2"), "sleep 1; exit 3", "FAILED"),
    HistoryJob("hist-cancel", "cityu", ("-w", "gpu05", "--gres=gpu:h100:2"), "sleep 600",
               "CANCELLED"),
    HistoryJob("hist-cpu", "hkbu", ("-w", "cpu01", "-p", "cpu", "-c", "4"), "sleep 1", "COMPLETED"),
)
CANCELLED_AFTER_S = 2.0  # how long hist-cancel runs before it is cancelled

#: A job of the mix that waits on its tenant's quota (hkbu may hold 2 GPUs, it asks for 4).
QUOTA_JOB = ("quota-wait", "hkbu", ("-p", "debug", "-t", "30", "--gres=gpu:4"), "PENDING",
             "AssocGrpGRES")


def job_mix(jobs: tuple[tuple[str, str, tuple[str, ...], str, str], ...]
            ) -> tuple[tuple[str, str, tuple[str, ...], str, str], ...]:
    """stack.py's job mix with QUOTA_JOB before its first pending job.

    Why there: Slurm checks a GPU quota only after it found nodes for the job, and once a job
    of a partition waits for Resources the scheduler keeps that partition's nodes for it; a
    quota job queued behind it would wait for nodes, not for its quota.
    """
    first = next(i for i, j in enumerate(jobs) if j[3] == "PENDING")
    return (*jobs[:first], QUOTA_JOB, *jobs[first:])


def slurm_conf_lines(dbd_port: int | None, munge_socket: Path | str = "",
                     gpu_types: tuple[str, ...] = ()) -> str:
    """slurm.conf's accounting lines: slurmdbd with GPU TRES, or none at all."""
    if dbd_port is None:
        return "AccountingStorageType=accounting_storage/none"
    return "\n".join([
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageHost=localhost",
        f"AccountingStoragePort={dbd_port}",
        # The connection to slurmdbd authenticates with munge through this socket (AuthInfo
        # does not apply to it); without it the commands look for the system's munged.
        f"AccountingStoragePass={munge_socket}",
        # Without this, job records carry no gres/gpu TRES and GPU-hours cannot be counted;
        # the typed entries add each job's GPU model (gres/gpu:h100=2) to its record.
        "AccountingStorageTRES=gres/gpu,"
        + ",".join(f"gres/gpu:{m}" for m in sorted({s for s in gpu_types if s})),
        # Limits are enforced, so GrpTRES really holds a job back (reason AssocGrpGRES).
        "AccountingStorageEnforce=associations,limits,qos",
        # Fair share (sshare, /shares) needs the multifactor plugin; all weights stay 0, so the
        # strict priority order of the job mix is unchanged.
        "PriorityType=priority/multifactor",
    ])


def restd_plugins(plain: str) -> str:
    """slurmrestd's -s list with the accounting plugins: openapi/dbv0.0.3x on 22.05 (one per
    version, next to openapi/v0.0.3x), openapi/slurmdbd from 23.02 on."""
    parts = plain.split(",")
    if "openapi/slurmctld" in parts:
        return ",".join([*parts, "openapi/slurmdbd"])
    return ",".join([*parts, *(p.replace("openapi/v", "openapi/dbv") for p in parts)])


class AccountingMixin:
    """The accounting half of scripts/stack.py's ``Stack`` (and of a root's stack).

    Relies on the stack's ``dir``, ``public``, ``logs``, ``info``, ``spawn``, ``slurm`` (a
    command with the stack's environment, inside the root when there is one), ``save``,
    ``check_free``, ``wait`` (bounded polling that names the log), ``owns_port`` and
    ``failure`` (its error class).
    """

    dir: Path
    public: Path
    logs: Path
    info: dict[str, Any]
    failure: type[Exception]  # the stack's own error class (stack.StackError)

    # Provided by the stack (scripts/stack.py); declared here for readers and type checkers.
    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Any: ...
    def slurm(self, *argv: str, check: bool = True, timeout: float = 20) -> str: ...
    def save(self) -> None: ...
    def check_free(self, port: int, what: str) -> None: ...
    def wait(self, what: str, check: Callable[[], bool], timeout_s: float, log: Path | None = None,
             proc: Any = None) -> None: ...
    def owns_port(self, proc: Any, port: int) -> bool: ...

    # -- MariaDB ------------------------------------------------------------------------------

    def start_mariadb(self, ports: dict[str, int]) -> None:
        datadir = self.dir / "mariadb"
        sock = self.dir / "run" / "mariadb.sock"
        t0 = time.monotonic()
        self.host_cmd("mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={datadir}",
                      "--auth-root-authentication-method=socket", "--skip-test-db",
                      "--skip-name-resolve", timeout=120)
        self.check_free(ports["mariadb"], "MariaDB")
        proc = self.spawn("mariadb", [
            "mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}",
            f"--socket={sock}", f"--port={ports['mariadb']}", "--bind-address=127.0.0.1",
            f"--pid-file={self.dir / 'run' / 'mariadb.pid'}",
            f"--log-error={self.logs / 'mariadb.log'}", "--skip-name-resolve", "--skip-log-bin",
            # Small and quick on a shared test machine; slurmdbd asks for the long lock wait.
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
            "--innodb-lock-wait-timeout=900", "--performance-schema=OFF", "--max-connections=40",
        ])
        self.wait("MariaDB", lambda: self.owns_port(proc, ports["mariadb"]), 60,
                  self.logs / "mariadb.log", proc)
        password = secrets.token_hex(16)
        self.sql(sock, f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
                       f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';")
        self.info["accounting"]["mariadb_socket"] = str(sock)
        self.info["accounting"]["mariadb_s"] = round(time.monotonic() - t0, 2)
        self._db_password = password

    def sql(self, sock: Path, statement: str) -> str:
        return self.host_cmd("mariadb", "--no-defaults", f"--socket={sock}", "-u", "root",
                             "-N", "-e", statement)

    def host_cmd(self, *argv: str, timeout: float = 30) -> str:
        """A command on the host, never inside a root: MariaDB is always the host's own.

        Why: slurmdbd 24.11 with the MariaDB 11.8 of Debian trixie dies at start (error 5027
        on ``select @var := concat('')``), while it works against Debian 12's MariaDB 10.11
        over TCP; slurmdbd only needs a database server on a port, so every stack shares the
        host's packaged server binary (each with its own datadir, socket and port).
        """
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise self.failure(f"`{' '.join(argv)}` failed: {res.stderr.strip() or res.stdout.strip()}")
        return res.stdout

    # -- slurmdbd -----------------------------------------------------------------------------

    def write_slurmdbd_conf(self, ports: dict[str, int], templates: Path) -> None:
        """slurmdbd reads slurmdbd.conf from slurm.conf's folder; mode 600 (it holds a password)."""
        values = {"munge_socket": self.info["munge_socket"], "jwt_key": self.dir / "jwt.key",
                  "dbd_port": ports["dbd"], "log_dir": self.logs, "state_dir": self.dir,
                  "db_port": ports["mariadb"], "db_user": DB_USER, "db_pass": self._db_password}
        text = string.Template((templates / "slurmdbd.conf.in").read_text()).substitute(values)
        path = self.public / "slurmdbd.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def start_slurmdbd(self, ports: dict[str, int], templates: Path) -> None:
        t0 = time.monotonic()
        self.write_slurmdbd_conf(ports, templates)
        self.check_free(ports["dbd"], "slurmdbd")
        proc = self.spawn("slurmdbd", ["slurmdbd", "-D"])
        # The first start creates the database's tables: the slow part of the accounting half.
        self.wait("slurmdbd", lambda: self.owns_port(proc, ports["dbd"]), 120,
                  self.logs / "slurmdbd.log", proc)
        self.slurm("sacctmgr", "-i", "add", "cluster", self.info["slurm_cluster_name"])
        self.info["accounting"]["slurmdbd_s"] = round(time.monotonic() - t0, 2)

    # -- associations -------------------------------------------------------------------------

    def add_associations(self, user: str) -> None:
        """Accounts, the user's associations and the QOS; needs slurmctld up (it registers the
        gres/gpu TRES that the limits name)."""
        def gpu_tres_known() -> bool:
            return "gres|gpu" in self.slurm("sacctmgr", "-n", "-P", "show", "tres",
                                            "format=Type,Name", check=False).split()
        self.wait("slurmctld registering the gres/gpu TRES with slurmdbd", gpu_tres_known, 30,
                  self.logs / "slurmctld.log")
        for q in QOSES:
            self.slurm("sacctmgr", "-i", "add", "qos", q.name, f"GrpTRES=gres/gpu={q.gpus}",
                       f"GrpTRESMins=gres/gpu={q.gpu_minutes}", f"MaxWall={q.max_wall}")
        for t in TENANTS:
            limits = []
            if t.gpus is not None:
                limits.append(f"GrpTRES=gres/gpu={t.gpus}")
            if t.gpu_minutes is not None:
                limits.append(f"GrpTRESMins=gres/gpu={t.gpu_minutes}")
            self.slurm("sacctmgr", "-i", "add", "account", t.name, f"Description={t.description}",
                       f"Organization={t.name}", f"Fairshare={t.fairshare}", *limits)
        qos = ",".join(["normal", *(q.name for q in QOSES)])
        self.slurm("sacctmgr", "-i", "add", "user", user,
                   "Account=" + ",".join(t.name for t in TENANTS), f"QOS={qos}")
        self.info["accounting"]["tenants"] = {
            t.name: {"description": t.description, "gpus": t.gpus, "gpu_minutes": t.gpu_minutes,
                     "fairshare": t.fairshare} for t in TENANTS}
        self.info["accounting"]["qos"] = {q.name: {"gpus": q.gpus, "gpu_minutes": q.gpu_minutes,
                                                   "max_wall": q.max_wall} for q in QOSES}

        def ctld_knows() -> bool:  # slurmctld learns associations from slurmdbd asynchronously
            out = self.slurm("scontrol", "show", "assoc_mgr", "flags=assoc", f"users={user}",
                             check=False)
            return all(f"Account={t.name} " in out for t in TENANTS)
        self.wait("slurmctld receiving the associations", ctld_knows, 30,
                  self.logs / "slurmctld.log")

    # -- job history --------------------------------------------------------------------------

    def run_history(self) -> None:
        """Run HISTORY_JOBS to their end (one cancelled while it runs), recorded in stack.json."""
        t0 = time.monotonic()
        jobs = []
        for j in HISTORY_JOBS:
            script = self.dir / f"{j.name}.sh"
            script.write_text(f"#!/bin/sh\n{j.script}\n")
            os.chmod(script, 0o755)
            out = self.slurm("sbatch", "--parsable", "-J", j.name, f"--account={j.account}",
                             "-t", "10", "-o", str(self.logs / "job-%j.out"),
                             f"--chdir={self.dir}", *j.options,
                             str(script))
            jobs.append({"id": int(out.strip().split(";")[0]), "name": j.name,
                         "account": j.account, "options": list(j.options),
                         "expected_state": j.state})
        self.info["accounting"]["history_jobs"] = jobs
        self.save()

        def states() -> dict[int, str]:
            out = self.slurm("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j",
                             ",".join(str(j["id"]) for j in jobs), check=False, timeout=10)
            return {int(p[0]): p[1].split()[0] for p in (line.split("|") for line in
                                                         out.splitlines()) if len(p) == 2}

        cancel = [j for j in jobs if j["expected_state"] == "CANCELLED"]
        for j in cancel:
            self.wait(f"history job {j['name']} running",
                           lambda j=j: states().get(j["id"]) == "RUNNING", 30)
        if cancel:
            time.sleep(CANCELLED_AFTER_S)  # it has run a little: its GPU time is not zero
            self.slurm("scancel", *(str(j["id"]) for j in cancel))

        def ended() -> bool:
            seen = states()
            return all(seen.get(j["id"]) == j["expected_state"] for j in jobs)
        try:
            self.wait("the history jobs ending", ended, 60)
        except self.failure as exc:
            raise self.failure(f"{exc}; sacct says: {states()}") from None
        self.info["accounting"]["history_s"] = round(time.monotonic() - t0, 2)
        self.save()

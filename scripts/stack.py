#!/usr/bin/env python3
"""Start, inspect and stop a real monitoring stack on 127.0.0.1 for the integration tests.

    python scripts/stack.py start  --dir STATE_DIR   # munge, Slurm, slurmrestd, exporter, Prometheus, Alertmanager
    python scripts/stack.py start  --dir STATE_DIR --suite trixie|sid   # today's Slurm from a Debian root
    python scripts/stack.py start  --dir STATE_DIR --accounting   # + MariaDB, slurmdbd, job history
    python scripts/stack.py status --dir STATE_DIR
    python scripts/stack.py config --dir STATE_DIR > lab.toml   # console config for this stack
    python scripts/stack.py env    --dir STATE_DIR   # `export AISC_SECRET_...=token` line for it
    python scripts/stack.py stop   --dir STATE_DIR

Why a script of its own (stdlib only): the test suite, a developer and CI all need the very same
stack, and it must never leave a daemon behind or talk to a site's server by mistake. So every
port is chosen free on 127.0.0.1 and checked to belong to the process we started, every PID is
recorded in ``STATE_DIR/stack.json`` (with its start time, so a reused PID is never signalled),
and ``stop`` ends exactly those, after cancelling jobs (slurmstepd lives in its own session and
would outlive slurmd).

Exit codes: 0 done; 2 usage; 3 the stack cannot run here (not root, no apt-get, packages could
not be installed), printed plainly so the test suite can skip with that reason; 4 a service
failed to start (its log file is named); 5 no stack recorded in STATE_DIR.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import stack_accounting  # scripts/: MariaDB, slurmdbd, associations, job history (--accounting)
import stack_roots  # scripts/: Debian roots for today's Slurm (--suite)

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "stack"
RULES_DIR = REPO / "resources" / "prometheus"

EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_FAILED, EXIT_NO_STACK = 2, 3, 4, 5

CLUSTER = "lab"
SLURM_CLUSTER_NAME = "aisc-lab"  # slurm.conf's ClusterName (slurmdbd knows the cluster by it)
SLURM_USER = "root"
TOKEN_LIFESPAN_S = 4 * 3600
OPENAPI_PLUGINS = "openapi/v0.0.38,openapi/v0.0.37,openapi/v0.0.36"


@dataclass(frozen=True)
class NodeShape:
    """One node of the test cluster, in the awkward shapes real sites have.

    ``slurm``: declared in slurm.conf; ``slurmd``: a slurmd serves it (else it never registers);
    ``gpus``/``gres_type``: its GPU gres (0: a CPU node, no gres); ``exporter``: "up" (served by
    the simulated dcgm-exporter), "down" (a scrape target with no listener) or None (no target);
    ``model``: the exporter's modelName; ``state``/``reason``: set with `scontrol update`
    ("down", "drain") before the jobs are submitted, except on DRAINING_NODE, drained once its
    job runs (a drain on a node with a job makes it DRAINING).
    """

    name: str
    partitions: tuple[str, ...]
    gpus: int = 8
    gres_type: str = "h800"
    model: str = "NVIDIA H800"
    slurm: bool = True
    slurmd: bool = True
    exporter: str | None = "up"
    state: str | None = None
    reason: str = ""


H800, H100 = "NVIDIA H800", "NVIDIA H100 80GB HBM3"
#: The cluster: two GPU models, 8- and 4-GPU nodes, a CPU-only node in its own partition, a
#: drained and a draining node, a DOWN node, a node never registered, a Slurm node whose
#: exporter target is down and a node the exporter knows but Slurm does not. Every exporter
#: series carries a lowercase `hostname` label and no rack label.
SHAPES: tuple[NodeShape, ...] = (
    NodeShape("gpu01", ("gpu",)),                                   # ALLOCATED (exclusive job)
    NodeShape("gpu02", ("gpu",)),                                   # MIXED, 8 of 8 GPUs
    NodeShape("gpu03", ("gpu", "debug"), gres_type="h100", model=H100),  # MIXED, 2 GPUs
    NodeShape("gpu04", ("gpu", "debug"), gres_type="h100", model=H100,
              state="drain", reason="stack: drained for maintenance"),    # DRAINED (idle)
    NodeShape("gpu05", ("gpu",), gpus=4, gres_type="h100", model=H100,
              state="drain", reason="stack: draining for a firmware update"),  # DRAINING (job on it)
    NodeShape("gpu06", ("gpu",), exporter="down"),                  # IDLE, exporter target down
    NodeShape("gpu07", ("gpu",), slurmd=False, exporter=None,
              state="down", reason="stack: no slurmd (simulated node failure)"),  # DOWN
    NodeShape("gpu08", ("gpu",), slurmd=False, exporter=None),      # never registered: UNKNOWN*
    NodeShape("cpu01", ("cpu",), gpus=0, gres_type="", model="", exporter=None),  # CPU-only
    NodeShape("gpu09", (), slurm=False),                            # exporter only, not in Slurm
)
PARTITIONS: tuple[tuple[str, str], ...] = (  # (name, extra options); members come from SHAPES
    ("gpu", "Default=YES MaxTime=INFINITE State=UP"),
    ("debug", "MaxTime=01:00:00 State=UP"),
    ("cpu", "MaxTime=INFINITE State=UP"),
)
HOSTNAME_LABEL = "hostname"  # lowercase, as some dcgm-exporter deployments relabel it

SLURM_NODES = tuple(s.name for s in SHAPES if s.slurm)
NODES = tuple(s.name for s in SHAPES if s.slurm and s.slurmd)  # each served by its own slurmd
EXPORTER_NODES = tuple(s.name for s in SHAPES if s.exporter == "up")
EXPORTER_DOWN_NODE = next(s.name for s in SHAPES if s.exporter == "down")
DOWN_NODE = next(s.name for s in SHAPES if s.state == "down")
DRAINED_NODE, DRAINING_NODE = "gpu04", "gpu05"
UNREGISTERED_NODES = tuple(s.name for s in SHAPES if s.slurm and not s.slurmd and s.state is None)
CPU_NODES = tuple(s.name for s in SHAPES if s.slurm and s.gpus == 0)
MAX_GPUS = max(s.gpus for s in SHAPES)


def shape(name: str) -> NodeShape:
    return next(s for s in SHAPES if s.name == name)


def node_line(s: NodeShape, port: int) -> str:
    """slurm.conf NodeName line: 64 cores and 512 GB everywhere, GPU gres only where there are GPUs."""
    gres = f" Gres=gpu:{s.gres_type}:{s.gpus}" if s.gpus else ""
    return (f"NodeName={s.name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs=64 "
            f"Boards=1 SocketsPerBoard=2 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=524288"
            f"{gres} State=UNKNOWN")


def gres_lines(dev_dir: Path) -> str:
    """gres.conf lines, one per node (type and device count differ): 22.05 needs File= for each."""
    return "\n".join(f"NodeName={s.name} Name=gpu Type={s.gres_type} File={dev_dir}/nvidia[0-{s.gpus - 1}]"
                     for s in SHAPES if s.slurm and s.gpus)


def partition_lines() -> str:
    return "\n".join(f"PartitionName={p} Nodes={','.join(s.name for s in SHAPES if s.slurm and p in s.partitions)} {opts}"
                     for p, opts in PARTITIONS)


def exporter_args() -> list[str]:
    """Arguments of the simulated exporter serving EXPORTER_NODES with their models and sizes."""
    served = [shape(n) for n in EXPORTER_NODES]
    return ["--nodes", str(len(served)), "--node-names", ",".join(s.name for s in served),
            "--gpus-per-node", str(max(s.gpus for s in served)),
            "--node-gpus", ",".join(f"{s.name}={s.gpus}" for s in served),
            "--node-models", ",".join(f"{s.name}={s.model}" for s in served),
            "--hpc-job", "--hpc-job-duplicates", "--hostname-label", HOSTNAME_LABEL]


def shapes_info() -> dict:
    """What stack.json records about the shapes, so tests read them instead of repeating them."""
    return {
        "nodes": list(SLURM_NODES), "slurmd_nodes": list(NODES), "down_node": DOWN_NODE,
        "drained_node": DRAINED_NODE, "draining_node": DRAINING_NODE,
        "unregistered_nodes": list(UNREGISTERED_NODES), "cpu_nodes": list(CPU_NODES),
        "exporter_nodes": list(EXPORTER_NODES), "exporter_down_node": EXPORTER_DOWN_NODE,
        "exporter_only_nodes": [s.name for s in SHAPES if not s.slurm],
        "node_gpus": {s.name: s.gpus for s in SHAPES},
        "node_models": {s.name: s.model for s in SHAPES if s.model},
        "hostname_label": HOSTNAME_LABEL,
        "node_reasons": {s.name: s.reason for s in SHAPES if s.state},
    }

#: Debian packages and the files that show each one is installed.
PACKAGES = {
    "munge": ["/usr/sbin/munged"],
    "slurmctld": ["/usr/sbin/slurmctld"],
    "slurmd": ["/usr/sbin/slurmd"],
    "slurmrestd": ["/usr/sbin/slurmrestd"],
    "slurm-client": ["/usr/bin/sbatch", "/usr/bin/scontrol", "/usr/bin/squeue", "/usr/bin/sinfo"],
    "slurm-wlm-jwt-plugin": ["/usr/lib/*/slurm-wlm/auth_jwt.so"],
    "prometheus": ["/usr/bin/prometheus", "/usr/bin/promtool"],
    "prometheus-alertmanager": ["/usr/bin/prometheus-alertmanager"],
    "util-linux": ["/usr/bin/setpriv"],
}

#: The job mix: (name, account, sbatch options, expected state, expected reason). Accounts are
#: named after institutions. Running jobs are pinned with -w so node states are deterministic:
#: gpu01 ALLOCATED (exclusive), gpu02 MIXED (8 of 8 GPUs, few cores), gpu03 MIXED (2 typed
#: h100 GPUs), gpu05 MIXED then DRAINING (2 of its 4 GPUs), cpu01 MIXED (a CPU-only job).
#: Pending: the 2-node job finds one free 8-GPU node (gpu06) only, and strict priority order
#: keeps the small job behind it.
JOBS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("pretrain-llm", "hku", ("-w", "gpu01", "--exclusive", "--gres=gpu:8"), "RUNNING", "None"),
    ("finetune-a", "cuhk", ("-w", "gpu02", "--gres=gpu:4", "-c", "4"), "RUNNING", "None"),
    ("eval-b", "polyu", ("-w", "gpu02", "--gres=gpu:2"), "RUNNING", "None"),
    ("vision-c", "hkust", ("-w", "gpu02", "--gres=gpu:h800:2"), "RUNNING", "None"),
    ("notebook-d", "cuhk", ("-w", "gpu03", "--gres=gpu:h100:2", "-p", "gpu"), "RUNNING", "None"),
    ("firmware-e", "cityu", ("-w", "gpu05", "--gres=gpu:h100:2"), "RUNNING", "None"),
    ("cpu-prep", "hkbu", ("-w", "cpu01", "-p", "cpu", "-c", "8"), "RUNNING", "None"),
    ("scale-2node", "hku", ("-N", "2", "--gres=gpu:8"), "PENDING", "Resources"),
    ("queued-small", "polyu", ("--gres=gpu:1",), "PENDING", "Priority"),
    ("held-job", "hkust", ("--hold", "--gres=gpu:4"), "PENDING", "JobHeldUser"),
    ("after-pretrain", "hku", ("--dependency=afterok:{first}", "--gres=gpu:8"), "PENDING", "Dependency"),
)


class StackError(Exception):
    """A failure with plain words and the exit code that classifies it."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Processes and ports
# ---------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    pid: int
    start_ticks: int  # /proc/PID/stat field 22: tells a reused PID from ours

    def to_json(self) -> dict:
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks}


def proc_start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def is_ours(entry: dict) -> bool:
    """True while the recorded process is still the one we started (not a reused PID)."""
    ticks = proc_start_ticks(int(entry["pid"]))
    return ticks is not None and ticks == int(entry["start_ticks"]) and not _is_zombie(int(entry["pid"]))


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split()[0] == "Z"


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now; all held open together so no two are the same."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1:port (or any address), from /proc/net/tcp."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def pid_owns_port(pid: int, port: int) -> bool:
    """Whether the listener on ``port`` is a socket of ``pid``: we never talk to a stranger."""
    inodes = listening_inodes(port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 3.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(what: str, check, timeout_s: float, log: Path | None = None, proc: Proc | None = None) -> None:
    """Poll ``check`` until true; fail with the service's name, the wait and its log file."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if proc is not None and not is_ours(proc.to_json()):
            raise StackError(f"{what} exited during start-up; see {log}")
        try:
            if check():
                return
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            last_error = f" (last error: {exc})"
        time.sleep(0.2)
    where = f"; see {log}" if log else ""
    raise StackError(f"{what} did not become ready within {timeout_s:.0f} s{last_error}{where}")


# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------


def missing_packages(accounting_suite: str | None = None) -> list[str]:
    """Host packages missing: the plain stack's, and with ``accounting_suite`` (the suite of an
    accounting stack) those of its accounting half."""
    extra = stack_accounting.packages(accounting_suite) if accounting_suite else {}
    return [pkg for pkg, files in {**PACKAGES, **extra}.items() if not all(glob.glob(f) for f in files)]


def ensure_packages(accounting_suite: str | None = None) -> None:
    """Install the Debian packages when missing; refuse plainly where that cannot be done."""
    missing = missing_packages(accounting_suite)
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError("cannot start the stack: packages missing (" + ", ".join(missing)
                         + ") and not running as root to install them", EXIT_UNAVAILABLE)
    if shutil.which("apt-get") is None:
        raise StackError("cannot start the stack: packages missing (" + ", ".join(missing)
                         + ") and apt-get is not available to install them", EXIT_UNAVAILABLE)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing " + " ".join(missing) + " ...", file=sys.stderr, flush=True)
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
        try:
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise StackError(f"cannot start the stack: `{' '.join(cmd)}` took over 15 minutes",
                             EXIT_UNAVAILABLE) from None
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
            raise StackError(f"cannot start the stack: `{' '.join(cmd)}` failed: " + " | ".join(tail),
                             EXIT_UNAVAILABLE)
    still = missing_packages(accounting_suite)
    if still:
        raise StackError("cannot start the stack: still missing after apt-get: " + ", ".join(still),
                         EXIT_UNAVAILABLE)


def world_traversable(path: Path) -> bool:
    """Whether user nobody can reach files in ``path`` (every folder above it o+x)."""
    for p in [path, *path.parents]:
        try:
            if not os.stat(p).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------


class Stack(stack_accounting.AccountingMixin):
    """One start of the stack: folders, ports, processes, and what gets written to stack.json.

    With ``accounting`` it also runs MariaDB and slurmdbd, creates tenants' associations and
    runs short jobs to their end (scripts/stack_accounting.py); without it, nothing of that.
    """

    #: slurmrestd's -s plugins and the REST API versions they serve, newest first (Debian 12's
    #: Slurm 22.05 here; a root's newer Slurm has its own, see stack_roots.SUITES).
    openapi_plugins: str = OPENAPI_PLUGINS
    api_versions: tuple[str, ...] = ("v0.0.38", "v0.0.37", "v0.0.36")
    failure = StackError

    def __init__(self, state_dir: Path, python: str, exporter_module: str = "console.sim.exporter",
                 accounting: bool = False) -> None:
        self.dir = state_dir
        self.accounting = accounting
        self.python = python
        self.exporter_module = exporter_module
        self.logs = state_dir / "logs"
        self.procs: list[Proc] = []
        self.info: dict = {"version": 1, "state_dir": str(state_dir), "cluster": CLUSTER, "processes": [],
                           "slurm_cluster_name": SLURM_CLUSTER_NAME}
        if accounting:
            self.info["accounting"] = {}
        # slurmrestd runs as nobody and must read slurm.conf, and munged's socket folder must
        # be mode 755: pytest's tmp folders are 0700, so public files go to a folder of our own
        # under /tmp when STATE_DIR is not reachable by others.
        if world_traversable(state_dir):
            self.public = state_dir / "public"
            self.public.mkdir(mode=0o755, exist_ok=True)
            self.info["public_dir_owned"] = False
        else:
            self.public = Path(tempfile.mkdtemp(prefix="aisc-stack-", dir="/tmp"))
            self.info["public_dir_owned"] = True
        os.chmod(self.public, 0o755)
        self.info["public_dir"] = str(self.public)
        self.slurm_conf = self.public / "slurm.conf"

    # -- bookkeeping ------------------------------------------------------------------------

    def save(self) -> None:
        self.info["processes"] = [p.to_json() for p in self.procs]
        path = self.dir / "stack.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the token
        with os.fdopen(fd, "w") as fh:
            json.dump(self.info, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)

    def daemon_env(self, **extra: str) -> dict[str, str]:
        # An exported SLURM_JWT makes slurmctld exit at start ("AuthType change requires
        # restart of all Slurm daemons"); no other SLURM_* of the caller belongs here either.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(self.slurm_conf)
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        log = self.logs / f"{name}.out"
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env or self.daemon_env(), cwd=cwd or self.dir,
                                     start_new_session=True)
        ticks = None
        for _ in range(50):
            ticks = proc_start_ticks(popen.pid)
            if ticks is not None:
                break
            time.sleep(0.01)
        proc = Proc(name, popen.pid, ticks or 0)
        self.procs.append(proc)
        self.save()
        return proc

    def slurm(self, *argv: str, check: bool = True, timeout: float = 20) -> str:
        res = subprocess.run(list(argv), env=self.daemon_env(), capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise StackError(f"`{' '.join(argv)}` failed: {res.stderr.strip() or res.stdout.strip()}")
        return res.stdout

    def check_free(self, port: int, what: str) -> None:
        if port_in_use(port):
            raise StackError(f"port {port} chosen for {what} is taken by another process; try again")

    def wait(self, what: str, check, timeout_s: float, log: Path | None = None,
             proc: Proc | None = None) -> None:
        wait_for(what, check, timeout_s, log, proc)

    def owns_port(self, proc: Proc, port: int) -> bool:
        return pid_owns_port(proc.pid, port)

    def wait_http(self, proc: Proc, port: int, path: str, what: str, timeout_s: float = 30,
                  headers: dict[str, str] | None = None, ok=(200,)) -> None:
        def ready() -> bool:
            if not pid_owns_port(proc.pid, port):
                return False
            status, _ = http_get(f"http://127.0.0.1:{port}{path}", headers, timeout=2)
            return status in ok
        wait_for(what, ready, timeout_s, self.logs / f"{proc.name}.out", proc)

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        t0 = time.monotonic()
        for sub in ("logs", "run", "slurmctld", "prometheus", "alertmanager", *(f"slurmd/{n}" for n in NODES)):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        names = ("ctld", *SLURM_NODES, "restd", "prometheus", "alertmanager", "exporter", "down",
                 *(("mariadb", "dbd") if self.accounting else ()))
        ports = dict(zip(names, free_ports(len(names))))
        self.info["ports"] = ports
        self.info.update(shapes_info())
        self.info["slurm_conf"] = str(self.slurm_conf)
        self.info["slurm_user"] = SLURM_USER
        self.info["urls"] = {
            "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
            "alertmanager": f"http://127.0.0.1:{ports['alertmanager']}",
            "slurm": f"http://127.0.0.1:{ports['restd']}",
            "exporter": f"http://127.0.0.1:{ports['exporter']}/metrics",
            "down_target": f"http://127.0.0.1:{ports['down']}/metrics",
        }
        self.save()
        self.write_slurm_config(ports)
        self.start_munge()
        if self.accounting:
            self.openapi_plugins = stack_accounting.restd_plugins(self.openapi_plugins)
            self.start_mariadb(ports)
            self.start_slurmdbd(ports, TEMPLATES)
        self.start_slurm(ports)
        if self.accounting:
            self.add_associations(SLURM_USER)
        self.start_exporter(ports)
        # Alertmanager first: an alert Prometheus fails to deliver waits a minute for its resend.
        self.start_alertmanager(ports)
        self.start_prometheus(ports)
        self.make_token()
        self.start_slurmrestd(ports)
        if self.accounting:  # on nodes still free: before the job mix fills them
            self.run_history()
        # DOWN and drained before the jobs (none may land there); DRAINING once its job runs.
        self.set_node_states([s for s in SHAPES if s.state and s.name != DRAINING_NODE])
        self.submit_jobs()
        self.set_node_states([shape(DRAINING_NODE)])
        self.record_stepds()
        self.info["started_s"] = round(time.monotonic() - t0, 2)
        self.info["started_at"] = time.time()
        self.save()

    def write_slurm_config(self, ports: dict[str, int]) -> None:
        dev = self.public / "dev"
        dev.mkdir(exist_ok=True)
        for i in range(MAX_GPUS):
            (dev / f"nvidia{i}").touch()
        node_lines = "\n".join(node_line(s, ports[s.name]) for s in SHAPES if s.slurm)
        jwt_key = self.dir / "jwt.key"
        fd = os.open(jwt_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        values = {
            "ctld_port": ports["ctld"], "munge_socket": self.public / "munge" / "munge.socket.2",
            "jwt_key": jwt_key, "state_dir": self.dir, "log_dir": self.logs, "node_lines": node_lines,
            "partition_lines": partition_lines(), "gres_lines": gres_lines(dev),
            "accounting_lines": stack_accounting.slurm_conf_lines(
                ports["dbd"] if self.accounting else None, self.public / "munge" / "munge.socket.2",
                tuple(s.gres_type for s in SHAPES if s.slurm and s.gpus)),
        }
        for name in ("slurm.conf", "gres.conf"):
            text = string.Template((TEMPLATES / f"{name}.in").read_text()).substitute(values)
            (self.public / name).write_text(text)
            os.chmod(self.public / name, 0o644)
        self.info["munge_socket"] = str(values["munge_socket"])

    def start_munge(self) -> None:
        mdir = self.public / "munge"
        mdir.mkdir(mode=0o755, exist_ok=True)
        os.chmod(mdir, 0o755)
        key = self.dir / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(1024))
        sock = mdir / "munge.socket.2"
        proc = self.spawn("munged", [
            "munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
            f"--pid-file={self.dir / 'run' / 'munged.pid'}", f"--log-file={self.logs / 'munged.log'}",
            f"--seed-file={self.dir / 'run' / 'munged.seed'}",
        ])
        wait_for("munged", sock.exists, 10, self.logs / "munged.out", proc)

    def start_slurm(self, ports: dict[str, int]) -> None:
        conf = str(self.slurm_conf)
        self.check_free(ports["ctld"], "slurmctld")
        ctld = self.spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", conf])
        wait_for("slurmctld", lambda: pid_owns_port(ctld.pid, ports["ctld"]), 20,
                 self.logs / "slurmctld.log", ctld)
        for node in NODES:
            self.check_free(ports[node], f"slurmd {node}")
            self.spawn(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", conf])

        def registered() -> bool:
            out = self.slurm("sinfo", "-h", "-N", "-o", "%N %t", check=False, timeout=5)
            states = dict(line.split() for line in out.splitlines() if line.strip())
            return all(states.get(n, "").rstrip("*") in {"idle", "mix", "alloc"} and
                       not states.get(n, "").endswith("*") for n in NODES)
        wait_for("slurmd nodes " + ",".join(NODES) + " registering", registered, 30,
                 self.logs / "slurmctld.log")

    def start_exporter(self, ports: dict[str, int]) -> None:
        self.check_free(ports["exporter"], "exporter")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = self.spawn("exporter", [
            self.python, "-m", self.exporter_module, "--host", "127.0.0.1",
            "--port", str(ports["exporter"]), *exporter_args(),
            # No injected faults: the tests compare against a stack that holds still. One
            # simulation tick per 10 s, so most scrapes see the values a test read just before.
            "--seed", "7", "--faults", "none", "--advance", "timer", "--interval", "10",
        ], env=env, cwd=REPO)
        self.wait_http(proc, ports["exporter"], "/metrics", "DCGM exporter", 30)

    def start_prometheus(self, ports: dict[str, int]) -> None:
        rules = [RULES_DIR / "console-rules.yml", TEMPLATES / "test-rules.yml"]
        text = string.Template((TEMPLATES / "prometheus.yml.in").read_text()).substitute(
            rule_files="\n".join(f"  - {json.dumps(str(r))}" for r in rules),
            am_port=ports["alertmanager"], exporter_port=ports["exporter"],
            down_port=ports["down"], down_node=EXPORTER_DOWN_NODE, hostname_label=HOSTNAME_LABEL)
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(text)
        self.check_free(ports["prometheus"], "Prometheus")
        proc = self.spawn("prometheus", [
            "prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            # An alert sent before the notifier has found Alertmanager is dropped and by default
            # resent only a minute later: resend every 5 s so tests see alerts within seconds.
            "--rules.alert.resend-delay=5s",
        ])
        self.wait_http(proc, ports["prometheus"], "/-/ready", "Prometheus", 30)

    def start_alertmanager(self, ports: dict[str, int]) -> None:
        self.check_free(ports["alertmanager"], "Alertmanager")
        proc = self.spawn("alertmanager", [
            "prometheus-alertmanager", f"--config.file={TEMPLATES / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            "--cluster.listen-address=",  # no gossip port
        ])
        self.wait_http(proc, ports["alertmanager"], "/api/v2/status", "Alertmanager", 30)

    def make_token(self) -> None:
        out = self.slurm("scontrol", "token", f"username={SLURM_USER}", f"lifespan={TOKEN_LIFESPAN_S}")
        m = re.search(r"SLURM_JWT=(\S+)", out)
        if not m:
            raise StackError("`scontrol token` printed no SLURM_JWT=...")
        self.info["token"] = m.group(1)
        self.info["token_expires_at"] = time.time() + TOKEN_LIFESPAN_S
        self.info["token_env"] = secret_env_name(CLUSTER, "slurm")

    def start_slurmrestd(self, ports: dict[str, int]) -> None:
        # slurmrestd refuses root and SlurmUser; Slurm 22.05 has -u but no -g, so drop to
        # nobody with setpriv (exec, so the PID stays the one we record).
        self.check_free(ports["restd"], "slurmrestd")
        proc = self.spawn("slurmrestd", [
            "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            "slurmrestd", "-f", str(self.slurm_conf), "-s", self.openapi_plugins, "-a", "rest_auth/jwt",
            f"127.0.0.1:{ports['restd']}",
        ], env=self.daemon_env(SLURM_JWT="daemon"), cwd=self.public)
        headers = {"X-SLURM-USER-NAME": SLURM_USER, "X-SLURM-USER-TOKEN": self.info["token"]}
        self.wait_http(proc, ports["restd"], f"/slurm/{self.api_versions[-1]}/ping", "slurmrestd", 20, headers)
        self.info["slurm_api_versions"] = list(self.api_versions)

    def set_node_states(self, shapes: list[NodeShape]) -> None:
        for s in shapes:
            self.slurm("scontrol", "update", f"nodename={s.name}", f"state={s.state}", f"reason={s.reason}")

    def submit_jobs(self) -> None:
        script = self.dir / "job.sh"
        script.write_text("#!/bin/sh\nexec sleep 86400\n")
        os.chmod(script, 0o755)
        jobs = []
        first = ""
        mix = stack_accounting.job_mix(JOBS) if self.accounting else JOBS
        for name, account, opts, state, reason in mix:
            opts = tuple(o.format(first=first) for o in opts)
            out = self.slurm("sbatch", "--parsable", "-J", name, f"--account={account}", "-t", "1-0",
                             "-o", str(self.logs / "job-%j.out"), *opts, str(script))
            job_id = int(out.strip().split(";")[0])
            first = first or str(job_id)
            jobs.append({"id": job_id, "name": name, "account": account, "options": list(opts),
                         "expected_state": state, "expected_reason": reason})
        self.info["jobs"] = jobs
        self.save()

        def settled() -> bool:
            out = self.slurm("squeue", "-h", "-o", "%i %T %r", check=False, timeout=5)
            seen = {int(p[0]): (p[1], p[2]) for p in (l.split() for l in out.splitlines()) if len(p) == 3}
            return all(seen.get(j["id"]) == (j["expected_state"], j["expected_reason"]) for j in jobs)
        try:
            wait_for("the job mix reaching its expected states", settled, 20)
        except StackError as exc:
            raise StackError(f"{exc}; squeue says:\n" + self.slurm("squeue", check=False)) from None

    def record_stepds(self) -> None:
        """slurmstepd runs in its own session and outlives slurmd: record ours to stop them.

        squeue shows a job RUNNING as soon as slurmctld launched it, a moment before slurmd has
        forked its slurmstepd: wait (bounded) for one per running job, so the record is whole.
        """
        running = sum(1 for j in self.info.get("jobs", ()) if j["expected_state"] == "RUNNING")
        try:
            wait_for("a slurmstepd for every running job",
                     lambda: len(self.stepds()) >= running, 20)
        except StackError:
            pass  # record those there are; `stop` looks for this stack's slurmstepd again anyway
        for pid in self.stepds():
            ticks = proc_start_ticks(pid)
            if ticks is not None:
                self.procs.append(Proc("slurmstepd", pid, ticks))
        self.save()


    def stepds(self) -> list[int]:
        return stack_stepds(str(self.slurm_conf), str(self.logs), self.info.get("root"))


class RootStack(stack_roots.InRoot, Stack):
    """The same cluster with Slurm (and for sid, Prometheus and Alertmanager) from a Debian root."""


def stack_stepds(slurm_conf: str, log_dir: str | None = None, root: str | None = None) -> list[int]:
    """slurmstepd processes of this stack: those whose environment names our slurm.conf, or
    (24.11+, which starts them with an empty environment) that write to our log folder."""
    if log_dir:
        return sorted(set(_env_stepds(slurm_conf)) | set(stack_roots.stepds_logging_to(log_dir, root)))
    return _env_stepds(slurm_conf)


def _env_stepds(slurm_conf: str) -> list[int]:
    found = []
    marker = f"SLURM_CONF={slurm_conf}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != "slurmstepd":
                continue
            if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.append(int(entry))
        except OSError:
            continue
    return found


def secret_env_name(cluster: str, endpoint: str) -> str:
    """AISC_SECRET_<CLUSTER>_<ENDPOINT>: upper-cased, every non-alphanumeric turned into ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", f"AISC_SECRET_{cluster}_{endpoint}".upper())


# ---------------------------------------------------------------------------------------------
# stop / status / config
# ---------------------------------------------------------------------------------------------


def load(state_dir: Path) -> dict:
    try:
        return json.loads((state_dir / "stack.json").read_text())
    except FileNotFoundError:
        raise StackError(f"no stack recorded in {state_dir} (stack.json missing)", EXIT_NO_STACK) from None


def stop(state_dir: Path, grace_s: float = 10.0) -> list[str]:
    """Cancel jobs, then end exactly the recorded processes. Returns what it did, in words."""
    info = load(state_dir)
    done: list[str] = []
    procs = [p for p in info.get("processes", [])]
    conf = info.get("slurm_conf")
    logs = str(state_dir / "logs")
    names = {p["name"] for p in procs if is_ours(p)}
    if conf and "slurmctld" in names:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = conf
        try:
            ids = subprocess.run(stack_roots.slurm_argv(info, ["squeue", "-h", "-o", "%i"]), env=env,
                                 capture_output=True, text=True, timeout=10).stdout.split()
            if ids:
                subprocess.run(stack_roots.slurm_argv(info, ["scancel", *ids]), env=env,
                               capture_output=True, timeout=10)
                done.append(f"cancelled {len(ids)} jobs")
                deadline = time.monotonic() + grace_s
                while time.monotonic() < deadline and stack_stepds(conf, logs, info.get("root")):
                    time.sleep(0.2)
        except (OSError, subprocess.SubprocessError) as exc:
            done.append(f"could not cancel jobs: {exc}")
    if conf:  # steps started after `start` recorded its list (a pending job that began later)
        known = {p["pid"] for p in procs}
        for pid in stack_stepds(conf, logs, info.get("root")):
            ticks = proc_start_ticks(pid)
            if pid not in known and ticks is not None:
                procs.append({"name": "slurmstepd", "pid": pid, "start_ticks": ticks})
    # Leaves first, munged last: slurm daemons need munge to say goodbye to each other, and
    # slurmctld sends its last records to slurmdbd, which needs its database.
    order = ["slurmstepd", "slurmrestd", "prometheus", "alertmanager", "exporter"]
    tail = ["slurmctld", "slurmdbd", "mariadb"]
    rank = lambda p: (order.index(p["name"]) if p["name"] in order else
                      len(order) + (0 if p["name"].startswith("slurmd-") else
                                    1 + tail.index(p["name"]) if p["name"] in tail else 1 + len(tail)))
    live = [p for p in sorted(procs, key=rank) if is_ours(p)]
    for p in live:
        try:
            os.kill(p["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(is_ours(p) for p in live):
        time.sleep(0.1)
    for p in live:
        if is_ours(p):
            try:
                os.kill(p["pid"], signal.SIGKILL)
                done.append(f"killed {p['name']} ({p['pid']}) after {grace_s:.0f} s")
            except ProcessLookupError:
                pass
    done.append(f"stopped {len(live)} processes")
    done += stack_roots.stop_root(info)  # a root stack's mounts, once its processes are gone
    if info.get("public_dir_owned") and info.get("public_dir", "").startswith("/tmp/aisc-stack-"):
        shutil.rmtree(info["public_dir"], ignore_errors=True)
    info["stopped_at"] = time.time()
    path = state_dir / "stack.json"
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh, indent=2, sort_keys=True)
    return done


def status(state_dir: Path) -> tuple[bool, list[str]]:
    info = load(state_dir)
    lines, healthy = [], True
    for p in info.get("processes", []):
        alive = is_ours(p)
        healthy &= alive or p["name"] == "slurmstepd"
        lines.append(f"{p['name']:<16} pid {p['pid']:<8} {'running' if alive else 'gone'}")
    for name, url in info.get("urls", {}).items():
        lines.append(f"{name:<16} {url}")
    return healthy and "stopped_at" not in info, lines


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for these values


def config_toml(state_dir: Path) -> str:
    """A console config for the running stack; the Slurm token stays in the environment."""
    info = load(state_dir)
    urls = info["urls"]
    return "\n".join([
        "# Console config for the loopback test stack (scripts/stack.py config).",
        f"# The Slurm token is read from the environment variable {info['token_env']}.",
        "schema_version = 1",
        "",
        "[[clusters]]",
        f"name = {toml_str(info['cluster'])}",
        'precision = "bf16_dense"',
        "",
        "[clusters.prometheus]",
        f"url = {toml_str(urls['prometheus'])}",
        "interval_s = 5",
        "",
        "[clusters.alertmanager]",
        f"urls = [{toml_str(urls['alertmanager'])}]",
        "interval_s = 5",
        "",
        "[clusters.slurm]",
        f"url = {toml_str(urls['slurm'])}",
        "interval_s = 5",
        'auth = "slurm_jwt"',
        f"user = {toml_str(info['slurm_user'])}",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["start", "stop", "status", "config", "env"])
    ap.add_argument("--dir", required=True, type=Path, help="state folder (created by start)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that can import the console, for the exporter")
    ap.add_argument("--exporter-module",
                    default=os.environ.get("AISC_STACK_EXPORTER_MODULE", "console.sim.exporter"),
                    help="module run with `python -m` as the DCGM exporter "
                         "(env AISC_STACK_EXPORTER_MODULE)")
    ap.add_argument("--accounting", action="store_true",
                    help="also run MariaDB and slurmdbd (accounts with GPU quotas, a QOS, finished "
                         "jobs) and serve slurmrestd's /slurmdb/ endpoints")
    ap.add_argument("--suite", choices=["bookworm", *stack_roots.SUITES], default="bookworm",
                    help="Slurm from the host's Debian 12 packages (bookworm: 22.05), or from a "
                         "cached Debian root: trixie (24.11), sid (26.05 with Prometheus 3.5 and "
                         "Alertmanager 0.33); the root is built on first use")
    args = ap.parse_args(argv)
    state_dir = args.dir.resolve()
    try:
        if args.command == "start":
            if (state_dir / "stack.json").exists() and "stopped_at" not in load(state_dir):
                raise StackError(f"a stack is already recorded in {state_dir}; stop it first", EXIT_USAGE)
            if sys.platform != "linux":
                raise StackError("cannot start the stack: it needs Linux (Debian packages)", EXIT_UNAVAILABLE)
            ensure_packages(args.suite if args.accounting else None)
            if os.geteuid() != 0:
                raise StackError("cannot start the stack: it must run as root (slurmd runs jobs as "
                                 "their users and slurmrestd is dropped to nobody)", EXIT_UNAVAILABLE)
            state_dir.mkdir(parents=True, exist_ok=True)
            if args.suite == "bookworm":
                stack = Stack(state_dir, args.python, args.exporter_module, accounting=args.accounting)
            else:
                stack_roots.build(args.suite)
                if args.accounting:
                    stack_roots.add_accounting(args.suite)
                stack = RootStack(state_dir, args.python, args.exporter_module, suite=args.suite,
                                  accounting=args.accounting)
            try:
                stack.start()
            except BaseException:
                stop(state_dir, grace_s=5)
                raise
            print(f"stack up in {stack.info['started_s']} s; state in {state_dir / 'stack.json'}")
            for name, url in stack.info["urls"].items():
                print(f"  {name:<13} {url}")
        elif args.command == "stop":
            for line in stop(state_dir):
                print(line)
        elif args.command == "status":
            ok, lines = status(state_dir)
            print("\n".join(lines))
            return 0 if ok else 1
        elif args.command == "config":
            sys.stdout.write(config_toml(state_dir))
        elif args.command == "env":
            info = load(state_dir)
            print(f"export {info['token_env']}={info['token']}")
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return exc.code
    except stack_roots.RootUnavailable as exc:
        print(f"stack: cannot start the stack: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except subprocess.TimeoutExpired as exc:
        print(f"stack: `{' '.join(map(str, exc.cmd))}` did not answer within {exc.timeout} s", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())

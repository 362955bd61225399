#!/usr/bin/env python3
"""Debian roots for today's Slurm: build once, cache, bind-mount, and run daemons inside.

    python scripts/stack_roots.py build trixie sid      # build (concurrently) what is not cached
    python scripts/stack_roots.py status                # which roots are cached, with versions
    python scripts/stack_roots.py run SUITE -- CMD ...  # one command inside a root (mounts tracked)
    python scripts/stack_roots.py remove SUITE          # delete a cached root (to rebuild it)

Why: Debian 12's Slurm (22.05, REST API v0.0.36-38) is end of life, while sites run 24.11 to
26.05. Debian's newer suites carry those releases; ``debootstrap`` unpacks a suite into a folder
and its daemons run there under ``chroot`` on loopback, without touching the host's packages
(a newer suite in the host's apt sources would upgrade its C library). A root is built into a
temporary folder and renamed into place only when complete, with a stamp file naming the
package versions, so a half-built root is never used. Building needs root and the registry;
where either is missing, :class:`RootUnavailable` says so in words and the tests skip.

Mounts: /proc, /dev and /sys are bind-mounted into the root, plus the stack's own state folders
at the same path inside the root, so every path in a config means the same file for the host
and for a daemon. Each mount made is returned (and recorded by the stack in ``stack.json``) and
unmounted exactly once, even after a failed start. A folder under a root is never removed while
anything is mounted below it (that would reach the host's /dev).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("AISC_ROOTS_CACHE", "/var/cache/aisc-console/roots"))
STAMP = "aisc-root.json"
BASE_PACKAGES = ("slurmctld", "slurmd", "slurmrestd", "slurm-wlm-jwt-plugin", "slurm-client", "munge")
BUILD_TIMEOUT_S = 1200


@dataclass(frozen=True)
class Suite:
    """A Debian suite of the matrix: what to install and what its slurmrestd serves."""

    name: str
    slurm: str  # the Slurm release it carries, for messages and test ids
    extra: tuple[str, ...] = ()
    #: slurmrestd's -s argument: from 23.02 on, `openapi/slurmctld` loads every data parser
    #: version; without slurmdbd the default (which adds openapi/slurmdbd) exits at start.
    openapi_plugins: str = "openapi/slurmctld"
    #: The newest REST API version first (what the console should pick), as measured.
    api_versions: tuple[str, ...] = ()
    #: Whether Prometheus and Alertmanager run from the root (else the host's are used).
    own_monitoring: bool = False

    @property
    def packages(self) -> tuple[str, ...]:
        return BASE_PACKAGES + self.extra


SUITES: dict[str, Suite] = {
    "trixie": Suite("trixie", "24.11", api_versions=("v0.0.42", "v0.0.41", "v0.0.40")),
    "sid": Suite("sid", "26.05", extra=("prometheus", "prometheus-alertmanager"),
                 api_versions=("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42"), own_monitoring=True),
}

#: Packages whose versions the stamp records (and the tests report).
VERSIONED = ("slurmctld", "slurmrestd", "munge", "prometheus", "prometheus-alertmanager")


class RootUnavailable(Exception):
    """A root cannot be built or used on this machine; the message says why, plainly."""


# ---------------------------------------------------------------------------------------------
# Building and caching
# ---------------------------------------------------------------------------------------------


def mirror() -> str:
    """The host's Debian mirror URI: the first ``URIs:`` of debian.sources, else sources.list."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            m = re.match(r"\s*URIs:\s*(\S+)", line)
            if m:
                return m.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
            if m and "security" not in m.group(1):
                return m.group(1)
    raise RootUnavailable("no Debian mirror found in the host's apt sources")


def root_path(suite: str) -> Path:
    return CACHE / suite


def stamp(suite: str) -> dict | None:
    """The stamp of a complete cached root, or None when there is none."""
    try:
        return json.loads((root_path(suite) / STAMP).read_text())
    except (OSError, ValueError):
        return None


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo), deepest first."""
    prefix = str(path.resolve()).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Remove a (failed) root: unmount what debootstrap left mounted first, never cross mounts."""
    for point in mounts_below(path):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=20)
    if mounts_below(path):
        raise RootUnavailable(f"{path} still has mounts below it; not removing it")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], capture_output=True, timeout=300)


def ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    if shutil.which("apt-get") is None:
        raise RootUnavailable("debootstrap is not installed and apt-get is not available")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    res = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
                         env=env, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        res = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=600)
        res = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
                             env=env, capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not shutil.which("debootstrap"):
        tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-2:])
        raise RootUnavailable(f"debootstrap could not be installed: {tail}")


def package_versions(root: Path, packages: tuple[str, ...]) -> dict[str, str]:
    res = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                          *packages], capture_output=True, text=True, timeout=60)
    return dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)


def build(suite_name: str, log: Path | None = None) -> dict:
    """Build the root of ``suite_name`` unless cached; return its stamp. Safe to call in parallel.

    A lock file per suite makes a second caller wait for the first build instead of racing it.
    """
    suite = SUITES.get(suite_name)
    if suite is None:
        raise RootUnavailable(f"unknown suite {suite_name!r} (known: {', '.join(SUITES)})")
    done = stamp(suite_name)
    if done:
        return done
    if sys.platform != "linux" or os.geteuid() != 0:
        raise RootUnavailable(f"cannot build the {suite_name} root (Slurm {suite.slurm}): "
                              "it needs root on Linux (debootstrap and chroot)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{suite_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = stamp(suite_name)
        if done:
            return done
        ensure_debootstrap()
        tmp = Path(tempfile.mkdtemp(prefix=f".{suite_name}.building-", dir=CACHE))
        # mkdtemp's 0700 would be the root's "/": munge's postinst (run as user munge) and
        # slurmrestd (nobody) could not even reach /bin/sh.
        os.chmod(tmp, 0o755)
        log = log or CACHE / f"{suite_name}.build.log"
        t0 = time.monotonic()
        try:
            with open(log, "w") as out:
                res = subprocess.run(
                    ["debootstrap", "--variant=minbase", "--include=" + ",".join(suite.packages),
                     suite_name, str(tmp), mirror()],
                    stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
            if res.returncode != 0:
                inner = tmp / "debootstrap" / "debootstrap.log"  # the reason; gone with tmp
                if inner.exists():
                    with open(log, "a") as out:
                        out.write("\n--- debootstrap.log (end) ---\n")
                        out.write("\n".join(inner.read_text(errors="replace").splitlines()[-60:]) + "\n")
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise RootUnavailable(f"building the {suite_name} root failed (see {log}): {tail}")
            for point in mounts_below(tmp):  # debootstrap unmounts its own; be sure
                subprocess.run(["umount", "-l", point], capture_output=True, timeout=20)
            versions = package_versions(tmp, tuple(p for p in VERSIONED if p in suite.packages))
            missing = [p for p in suite.packages if p in VERSIONED and p not in versions]
            if missing:
                raise RootUnavailable(f"the {suite_name} root lacks {', '.join(missing)} after debootstrap")
            info = {"suite": suite_name, "slurm": suite.slurm, "versions": versions,
                    "mirror": mirror(), "built_at": time.time(),
                    "build_s": round(time.monotonic() - t0, 1)}
            (tmp / STAMP).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
            if root_path(suite_name).exists():  # a folder without a stamp is never used: replace it
                remove_tree(root_path(suite_name))
            os.rename(tmp, root_path(suite_name))
            return info
        except subprocess.TimeoutExpired:
            raise RootUnavailable(f"building the {suite_name} root took over {BUILD_TIMEOUT_S} s") from None
        finally:
            if tmp.exists():
                remove_tree(tmp)


#: Packages the accounting half of a stack (``stack.py --accounting``) needs in a root. Its
#: database server is the host's MariaDB (scripts/stack_accounting.py says why).
ACCOUNTING_PACKAGES = ("slurmdbd",)


def add_accounting(suite_name: str) -> dict:
    """Install slurmdbd into a cached root (once); return its stamp.

    Why not at build time: most stacks need no accounting, and a root built before it existed
    stays usable. ``apt-get`` runs inside the root with a ``policy-rc.d`` that forbids starting
    services (the stack starts its own MariaDB, never a root-wide one), and the stamp gains an
    ``accounting`` entry with the versions only once the install succeeded.
    """
    done = stamp(suite_name)
    if done is None:
        raise RootUnavailable(f"the {suite_name} root is not built")
    if done.get("accounting"):
        return done
    if os.geteuid() != 0:
        raise RootUnavailable(f"cannot add slurmdbd to the {suite_name} root: it needs root")
    root = root_path(suite_name)
    with open(CACHE / f".{suite_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = stamp(suite_name) or {}
        if done.get("accounting"):
            return done
        policy = root / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\n# scripts/stack_roots.py: no services start in a test root\nexit 101\n")
        os.chmod(policy, 0o755)
        log = CACHE / f"{suite_name}.accounting.log"
        points = mount_all(root, ["/etc/resolv.conf"])  # apt needs the host's name server
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            with open(log, "w") as out:
                # sid's Release file may be past its Valid-Until on a machine whose clock runs
                # ahead of the mirror's snapshot; the root was built from that same mirror.
                apt = ["apt-get", "-o", "Acquire::Check-Valid-Until=false"]
                for cmd in ([*apt, "update"],
                            [*apt, "install", "-y", "--no-install-recommends", *ACCOUNTING_PACKAGES]):
                    res = subprocess.run(in_root(root, cmd), env=env, stdout=out,
                                         stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
                    if res.returncode != 0:
                        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                        raise RootUnavailable(f"installing {', '.join(ACCOUNTING_PACKAGES)} in the "
                                              f"{suite_name} root failed (see {log}): {tail}")
        except subprocess.TimeoutExpired:
            raise RootUnavailable(f"installing slurmdbd in the {suite_name} root took over "
                                  f"{BUILD_TIMEOUT_S} s") from None
        finally:
            unmount(points, root)
        versions = package_versions(root, ACCOUNTING_PACKAGES)
        missing = [p for p in ACCOUNTING_PACKAGES if p not in versions]
        if missing:
            raise RootUnavailable(f"the {suite_name} root lacks {', '.join(missing)} after apt-get")
        done["accounting"] = versions
        tmp = root / (STAMP + ".tmp")
        tmp.write_text(json.dumps(done, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, root / STAMP)
        return done


def build_many(suites: list[str]) -> dict[str, dict | RootUnavailable]:
    """Build several roots at once (debootstrap mostly waits on the network and dpkg)."""
    results: dict[str, dict | RootUnavailable] = {}

    def one(name: str) -> None:
        try:
            results[name] = build(name)
        except RootUnavailable as exc:
            results[name] = exc
        except (OSError, subprocess.SubprocessError) as exc:
            results[name] = RootUnavailable(f"building the {name} root failed: {exc}")

    threads = [threading.Thread(target=one, args=(s,)) for s in suites]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ---------------------------------------------------------------------------------------------
# Mounts and commands inside a root
# ---------------------------------------------------------------------------------------------


def bind(root: Path, source: str) -> str:
    """Bind-mount host ``source`` at the same path inside ``root``; return the mount point."""
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source} does not exist on the host")
    target = root / source.lstrip("/")
    if os.path.isdir(source):
        target.mkdir(mode=0o755, parents=True, exist_ok=True)  # 755: slurmrestd (nobody) passes
    else:
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.touch(exist_ok=True)
    subprocess.run(["mount", "--bind", source, str(target)], check=True, capture_output=True, timeout=20)
    return str(target)


#: Host files a root sees as its own: a minbase root has no /etc/hosts, and slurmctld must
#: resolve the machine's own name ("Unable to resolve" is fatal at start).
HOST_FILES = ("/etc/hosts",)


def mount_all(root: Path, shared: list[str]) -> list[str]:
    """Mount /proc, /dev, /sys, /etc/hosts and the ``shared`` host folders into ``root``.

    Returns the mount points in mount order. On an error, what was mounted is unmounted first.
    """
    points: list[str] = []
    try:
        for src in ("/proc", "/dev", "/sys", *HOST_FILES, *shared):
            points.append(bind(root, src))
    except (OSError, subprocess.SubprocessError) as exc:
        unmount(points, root)
        words = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip() or str(exc)
        raise RootUnavailable(f"cannot bind-mount into {root}: {words}") from None
    return points


def unmount(points: list[str], root: Path | None = None) -> list[str]:
    """Unmount each recorded point once, last first; return those that could not be unmounted.

    With ``root``, the empty folders made inside it for a shared host folder are removed too,
    so stopped stacks leave nothing behind in the cached root.
    """
    failed = []
    for point in reversed(points):
        res = subprocess.run(["umount", point], capture_output=True, text=True, timeout=20)
        if res.returncode != 0:
            res = subprocess.run(["umount", "-l", point], capture_output=True, text=True, timeout=20)
            if res.returncode != 0 and "not mounted" not in res.stderr:
                failed.append(point)
                continue
        if root is not None:
            _remove_empty_parents(Path(point), root)
    return failed


def _remove_empty_parents(path: Path, root: Path) -> None:
    """rmdir ``path`` and its parents while empty, never a top-level folder of ``root``."""
    while path.parent != root and root in path.parents:
        if mounts_below(path):
            return
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


def in_root(root: Path | None, argv: list[str]) -> list[str]:
    """``argv`` run inside ``root`` (``chroot`` execs it, so the PID is the command's own)."""
    return ["chroot", str(root), *argv] if root else list(argv)


# ---------------------------------------------------------------------------------------------
# A stack whose daemons run inside a root
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
#: Host folders Prometheus and Alertmanager read their rules and config from (scripts/stack.py).
MONITORING_SHARED = (REPO / "resources" / "prometheus", REPO / "scripts" / "stack")


class InRoot:
    """Mixin for scripts/stack.py's ``Stack``: the same cluster, its daemons inside a root.

    Only what differs is here: the mounts (made before anything starts and recorded in
    stack.json at once, so ``stop`` undoes them even after a failed start), the ``chroot``
    prefix for the daemons and Slurm commands, ``cgroup.conf`` and slurmrestd's plugins. The
    exporter (and, for a suite without its own, Prometheus and Alertmanager) stay on the host.
    """

    def __init__(self, *args: object, suite: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        done = stamp(suite)
        if done is None:
            raise RootUnavailable(f"the {suite} root (Slurm {SUITES[suite].slurm}) is not built; "
                                  f"run `python scripts/stack_roots.py build {suite}`")
        self.suite = SUITES[suite]
        self.root = root_path(suite)
        self.openapi_plugins = self.suite.openapi_plugins
        self.api_versions = self.suite.api_versions
        self.info.update({"suite": suite, "slurm_series": self.suite.slurm, "root": str(self.root),
                          "root_versions": done["versions"], "mounts": []})

    def runs_in_root(self, name: str) -> bool:
        if name in ("munged", "slurmctld", "slurmrestd", "slurmdbd") or name.startswith("slurmd"):
            return True
        return self.suite.own_monitoring and name in ("prometheus", "alertmanager")

    def start(self) -> None:
        shared = [str(self.dir), str(self.public)]
        if self.suite.own_monitoring:
            shared += [str(p) for p in MONITORING_SHARED]
        self.save()  # stack.json first: a failed start is cleaned up from it
        self.info["mounts"] = mount_all(self.root, shared)
        self.save()
        super().start()

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None):  # noqa: ANN201 - returns stack.Proc
        if self.runs_in_root(name):
            argv = in_root(self.root, argv)
        return super().spawn(name, argv, env, cwd)

    def slurm(self, *argv: str, check: bool = True, timeout: float = 20) -> str:
        return super().slurm(*in_root(self.root, list(argv)), check=check, timeout=timeout)

    def write_slurm_config(self, ports: dict[str, int]) -> None:
        super().write_slurm_config(ports)
        # Slurm 24.11+ slurmd dies with "No filesystem mounted on /sys/fs/cgroup": the host's
        # cgroup tree is not visible in the root, and this stack needs no cgroups at all.
        conf = self.public / "cgroup.conf"
        conf.write_text("# Written by scripts/stack.py: no cgroups in a test root.\nCgroupPlugin=disabled\n")
        os.chmod(conf, 0o644)


def stepds_logging_to(log_dir: str, root: str | None = None) -> list[int]:
    """slurmstepd processes holding a file open in ``log_dir`` (as the host sees it).

    From 24.11 on slurmstepd starts with an empty environment, so the ``SLURM_CONF=`` marker
    that finds 22.05's steps is gone; every step keeps its slurmd's log and its job's output
    open, both in the stack's own log folder. In a root, the host sees them below the root.
    """
    prefixes = [log_dir.rstrip("/") + "/"]
    if root:
        prefixes.append(root.rstrip("/") + prefixes[0])
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != "slurmstepd":
                continue
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if any(target.startswith(p) for p in prefixes):
                found.append(int(entry))
                break
    return found


def stop_root(info: dict) -> list[str]:
    """Undo the mounts a root stack recorded (after its processes ended); words for ``stop``."""
    points = info.get("mounts") or []
    if not points:
        return []
    failed = unmount(points, Path(info["root"]))
    info["mounts"] = failed
    if failed:
        return ["could not unmount " + ", ".join(failed)]
    return [f"unmounted {len(points)} mounts in {info['root']}"]


def slurm_argv(info: dict, argv: list[str]) -> list[str]:
    """A Slurm command for a recorded stack: inside its root when it has one."""
    return in_root(Path(info["root"]), argv) if info.get("root") else list(argv)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the roots not yet cached (concurrently)")
    b.add_argument("suites", nargs="*", default=list(SUITES))
    b.add_argument("--accounting", action="store_true",
                   help="also install slurmdbd and MariaDB into them (stack.py --accounting)")
    sub.add_parser("status", help="list the cached roots and their versions")
    rm = sub.add_parser("remove", help="delete a cached root (refused while a stack uses it)")
    rm.add_argument("suite", choices=list(SUITES))
    r = sub.add_parser("run", help="run one command inside a root, with /proc /dev /sys mounted")
    r.add_argument("suite")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    if args.command == "build":
        t0 = time.monotonic()
        results = build_many(args.suites)
        for name, res in list(results.items()):
            if args.accounting and not isinstance(res, RootUnavailable):
                try:
                    results[name] = add_accounting(name)
                except RootUnavailable as exc:
                    results[name] = exc
        code = 0
        for name, res in results.items():
            if isinstance(res, RootUnavailable):
                print(f"{name}: {res}", file=sys.stderr)
                code = 3
            else:
                print(f"{name}: {root_path(name)} " + " ".join(f"{k}={v}" for k, v in sorted(res["versions"].items())))
        print(f"done in {time.monotonic() - t0:.1f} s")
        return code
    if args.command == "remove":
        busy = mounts_below(root_path(args.suite))
        if busy:
            print(f"{args.suite}: in use (mounted: {', '.join(busy)}); stop its stacks first", file=sys.stderr)
            return 1
        remove_tree(root_path(args.suite))
        print(f"{args.suite}: removed {root_path(args.suite)}")
        return 0
    if args.command == "status":
        for name in SUITES:
            st = stamp(name)
            print(f"{name:<8} " + ("not built" if st is None else
                                   f"{root_path(name)} built in {st.get('build_s')} s: "
                                   + " ".join(f"{k}={v}" for k, v in sorted(st["versions"].items()))))
        return 0
    if stamp(args.suite) is None:
        print(f"{args.suite}: not built (run `build {args.suite}` first)", file=sys.stderr)
        return 3
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    points = mount_all(root_path(args.suite), [])
    try:
        return subprocess.run(in_root(root_path(args.suite), cmd)).returncode
    finally:
        unmount(points, root_path(args.suite))


if __name__ == "__main__":
    sys.exit(main())

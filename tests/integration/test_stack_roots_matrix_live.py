"""The root stacks themselves (scripts/stack.py --suite, scripts/stack_roots.py): each daemon runs
inside its Debian root with the recorded PID, on loopback only, with the root's own versions, and
the mounts it needs are recorded so that ``stop`` can undo exactly those."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import root_stack
from .matrix import ROOT_SUITES, RootStack
from .test_stack_script import listening_addresses

IN_ROOT = re.compile(r"^(munged|slurmctld|slurmd-.+|slurmrestd)$")


@pytest.fixture(scope="module", params=ROOT_SUITES)
def root(request: pytest.FixtureRequest, root_stacks: dict[str, RootStack | str]) -> RootStack:
    return root_stack(root_stacks, request.param)


def mount_points() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def test_daemons_run_inside_the_root_with_their_recorded_pid(root: RootStack) -> None:
    own_monitoring = root.info["suite"] == "sid"
    seen = set()
    for p in root.info["processes"]:
        if p["name"] == "slurmstepd":
            continue
        where = os.readlink(f"/proc/{p['pid']}/root")
        inside = bool(IN_ROOT.match(p["name"])) or (own_monitoring and p["name"] in ("prometheus", "alertmanager"))
        assert where == (root.info["root"] if inside else "/"), p
        comm = Path(f"/proc/{p['pid']}/comm").read_text().strip()
        # The recorded PID is the daemon's own (chroot and setpriv exec), not a wrapper's.
        assert comm not in ("chroot", "setpriv"), p
        seen.add(p["name"])
    assert {"munged", "slurmctld", "slurmrestd", "exporter", "prometheus", "alertmanager"} <= seen


def test_slurmrestd_runs_as_nobody(root: RootStack) -> None:
    (restd,) = [p for p in root.info["processes"] if p["name"] == "slurmrestd"]
    status = Path(f"/proc/{restd['pid']}/status").read_text()
    assert re.search(r"^Uid:\s+65534\s", status, re.M), status


def test_root_daemons_listen_on_loopback_only(root: RootStack) -> None:
    checked = 0
    for p in root.info["processes"]:
        if p["name"] == "slurmstepd":
            continue
        for addr, _port in listening_addresses(p["pid"]):
            assert addr in ("127.0.0.1", "::1"), (p["name"], addr)
            checked += 1
    assert checked >= 5


def test_mounts_are_recorded_and_in_place(root: RootStack) -> None:
    points = root.info["mounts"]
    base = root.info["root"]
    assert {f"{base}/proc", f"{base}/dev", f"{base}/sys", f"{base}/etc/hosts",
            f"{base}{root.dir}"} <= set(points)
    assert set(points) <= mount_points()


def test_slurm_is_the_roots_own_release(root: RootStack) -> None:
    out = subprocess.run(["chroot", root.info["root"], "slurmctld", "-V"], capture_output=True,
                         text=True, timeout=30).stdout
    assert out.split() == ["slurm-wlm", root.info["root_versions"]["slurmctld"].split("-")[0]]
    assert out.split()[1].startswith(root.info["slurm_series"])

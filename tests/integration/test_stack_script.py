"""scripts/stack.py itself: loopback only, its records, its status, and the console config it emits."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from .live import Stack, is_running


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] != "0A" or parts[9] not in inodes:
                continue
            addr_hex, port_hex = parts[1].split(":")
            if v6:
                addr = "::1" if addr_hex == "0" * 31 + "1" else ("::" if set(addr_hex) == {"0"} else addr_hex)
            else:
                addr = ".".join(str(int(addr_hex[i:i + 2], 16)) for i in (6, 4, 2, 0))
            found.add((addr, int(port_hex, 16)))
    return found


def test_every_daemon_listens_on_loopback_only(stack: Stack) -> None:
    checked = 0
    for p in stack.info["processes"]:
        if not is_running(p):
            continue
        for addr, port in listening_addresses(p["pid"]):
            assert addr == "127.0.0.1", (p["name"], addr, port)
            checked += 1
    # slurmctld, a slurmd per registered node, slurmrestd, exporter, Prometheus, Alertmanager
    assert checked >= 4 + len(stack.info["slurmd_nodes"])


def test_recorded_services_are_running_and_ports_distinct(stack: Stack) -> None:
    names = [p["name"] for p in stack.info["processes"]]
    for expected in ("munged", "slurmctld", "slurmd-gpu01", "slurmd-gpu04", "slurmrestd",
                     "exporter", "prometheus", "alertmanager"):
        assert expected in names
    running = sum(j["expected_state"] == "RUNNING" for j in stack.info["jobs"])
    assert running == 7
    assert names.count("slurmstepd") == running  # one per running batch job
    # the nodes that must never register have no slurmd
    assert not {f"slurmd-{n}" for n in stack.info["unregistered_nodes"] + [stack.info["down_node"]]} & set(names)
    ports = list(stack.info["ports"].values())
    assert len(set(ports)) == len(ports)
    res = stack.script("status")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "gone" not in res.stdout


def test_state_file_holding_the_token_is_private(stack: Stack) -> None:
    mode = stat.S_IMODE(os.stat(stack.dir / "stack.json").st_mode)
    assert mode == 0o600


def test_config_emitted_for_the_console(stack: Stack) -> None:
    res = stack.script("config")
    assert res.returncode == 0, res.stderr
    assert stack.token not in res.stdout
    cfg = tomllib.loads(res.stdout)
    assert cfg["schema_version"] == 1
    (cluster,) = cfg["clusters"]
    assert cluster["name"] == "lab"
    assert cluster["prometheus"]["url"] == stack.urls["prometheus"]
    assert cluster["alertmanager"]["urls"] == [stack.urls["alertmanager"]]
    assert cluster["slurm"] == {"url": stack.urls["slurm"], "interval_s": 5, "auth": "slurm_jwt",
                                "user": stack.user}
    env = stack.script("env")
    assert env.returncode == 0
    assert env.stdout.strip() == f"export AISC_SECRET_LAB_SLURM={stack.token}"


def test_a_second_start_in_the_same_folder_is_refused(stack: Stack) -> None:
    res = stack.script("start")
    assert res.returncode == 2
    assert "already recorded" in res.stderr

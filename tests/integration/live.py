"""Helpers shared by the integration tests: the recorded stack and bounded waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "scripts" / "stack.py"

T = TypeVar("T")


@dataclass(frozen=True)
class Stack:
    """What stack.json records, with helpers to ask Slurm for ground truth."""

    dir: Path
    info: dict[str, Any]

    @property
    def urls(self) -> dict[str, str]:
        return self.info["urls"]

    @property
    def token(self) -> str:
        return self.info["token"]

    @property
    def user(self) -> str:
        return self.info["slurm_user"]

    def slurm(self, *argv: str) -> str:
        """Run a Slurm command against this stack (never the machine's own Slurm)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = self.info["slurm_conf"]
        res = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, f"{argv}: {res.stderr}"
        return res.stdout

    def script(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(STACK_SCRIPT), *args, "--dir", str(self.dir)],
                              capture_output=True, text=True, timeout=120)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def is_running(entry: dict[str, Any]) -> bool:
    """Whether a recorded process (pid + start time) is still alive and still the same one."""
    f = _stat_fields(int(entry["pid"]))
    return f is not None and f[0] != "Z" and int(f[19]) == int(entry["start_ticks"])


def wait_until(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0,
               step_s: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` when time runs out.

    Waiting on the servers (an alert to fire, a scrape to land) is the one place integration
    tests wait; the bound is generous and only reached when something is broken.
    """
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}"
                                 + (f": {last}" if last else ""))
        time.sleep(step_s)

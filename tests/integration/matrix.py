"""The version matrix of the live tests: which Slurm release runs where, and its stacks.

22.05 is the Debian 12 stack of the host (the session's ``stack``); 24.11 and 26.05 run from
Debian roots (trixie, sid) built once and cached by scripts/stack_roots.py, started by
scripts/stack.py ``--suite``. The root stacks are started together, concurrently, so the
matrix costs one start-up wait, not three.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .live import REPO, STACK_SCRIPT, Stack

ROOTS_SCRIPT = REPO / "scripts" / "stack_roots.py"
EXIT_UNAVAILABLE = 3  # both scripts: "cannot run here", with the reason on stderr


@dataclass(frozen=True)
class Release:
    """One column of the matrix, with what was measured on its live slurmrestd."""

    series: str
    suite: str | None  # Debian suite of its root; None = the host's Debian 12 packages
    api_versions: tuple[str, ...]  # served, newest first
    bad_token_status: int
    #: `jobs?update_time=T` on a quiet cluster at the newest version: 304, or 200 with an
    #: empty list and a "No job changes" warning.
    quiet_jobs_status: int


MATRIX: dict[str, Release] = {
    "22.05": Release("22.05", None, ("v0.0.38", "v0.0.37", "v0.0.36"), 500, 304),
    "24.11": Release("24.11", "trixie", ("v0.0.42", "v0.0.41", "v0.0.40"), 511, 200),
    "26.05": Release("26.05", "sid", ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42"), 511, 200),
}
ROOT_SUITES = tuple(r.suite for r in MATRIX.values() if r.suite)


@dataclass(frozen=True)
class RootStack(Stack):
    """A stack whose Slurm runs inside a root: its commands run there too (same release)."""

    def slurm(self, *argv: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = self.info["slurm_conf"]
        res = subprocess.run(["chroot", self.info["root"], *argv], env=env, capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 0, f"{argv}: {res.stderr}"
        return res.stdout


def start_roots(base: Path, suites: tuple[str, ...] = ROOT_SUITES) -> dict[str, RootStack | str]:
    """Build (when not cached) and start a stack per suite, concurrently.

    Returns suite -> the running stack, or the reason it cannot run here (exit code 3). Any
    other failure raises: a broken stack is an error, never a skip.
    """
    build = subprocess.run([sys.executable, str(ROOTS_SCRIPT), "build", *suites],
                           capture_output=True, text=True, timeout=1800)
    unavailable: dict[str, str] = {}
    if build.returncode != 0:
        for line in build.stderr.splitlines():
            name, _, why = line.partition(": ")
            if name in suites:
                unavailable[name] = why
    procs = {s: subprocess.Popen([sys.executable, str(STACK_SCRIPT), "start", "--suite", s,
                                  "--dir", str(base / s)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in suites if s not in unavailable}
    out: dict[str, RootStack | str] = dict(unavailable)
    errors = []
    for suite, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        if proc.returncode == EXIT_UNAVAILABLE:
            out[suite] = err.strip().removeprefix("stack: ")
        elif proc.returncode != 0:
            errors.append(f"{suite}: scripts/stack.py start failed ({proc.returncode}): {err.strip()}")
        else:
            state = base / suite
            out[suite] = RootStack(state, json.loads((state / "stack.json").read_text()))
    if errors:
        stop_roots(out)
        raise RuntimeError("; ".join(errors))
    return out


def stop_roots(stacks: dict[str, RootStack | str]) -> list[str]:
    """Stop every started root stack; return the failures in words."""
    failures = []
    for suite, st in stacks.items():
        if isinstance(st, RootStack):
            res = st.script("stop")
            if res.returncode != 0:
                failures.append(f"{suite}: {res.stderr.strip()}")
    return failures

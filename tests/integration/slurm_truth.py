"""Independent truth for the Slurm integration tests: what sinfo/squeue say, and a client.

Nothing here uses the console's parsing: the figures come from Slurm's own commands, run in the
stack (inside a release's root where it has one), and are compared with what the console reads.
"""

from __future__ import annotations

import re

from console.model import NodeState
from console.sources.http import Auth
from console.sources.slurm import SlurmClient

from .live import Stack

SINFO_STATE = {"idle": NodeState.IDLE, "mixed": NodeState.MIXED, "allocated": NodeState.ALLOCATED,
               "drained": NodeState.DRAINED, "draining": NodeState.DRAINING, "down": NodeState.DOWN,
               "completing": NodeState.COMPLETING, "unknown": NodeState.UNKNOWN}
GPU_GRES = re.compile(r"gpu(?::[^:(,\s]+)?:(\d+)")  # gpu:N or gpu:TYPE:N; "(null)" on a CPU node


def client(stack: Stack, token: str | None = None) -> SlurmClient:
    return SlurmClient.from_url(stack.urls["slurm"],
                                auth=Auth("slurm_jwt", stack.user, token or stack.token), timeout=10)


def sinfo_nodes(stack: Stack) -> dict[str, tuple[str, bool, str]]:
    """node -> (state, responding, reason) as sinfo reports them."""
    out = stack.slurm("sinfo", "-h", "-N", "-o", "%N|%T|%E")
    nodes = {}
    for line in out.splitlines():
        name, state, reason = line.split("|")
        nodes[name] = (state.rstrip("*~#!%$@^-"), not state.endswith("*"), "" if reason == "none" else reason)
    return nodes


def squeue_jobs(stack: Stack) -> dict[int, dict[str, str]]:
    out = stack.slurm("squeue", "-h", "-o", "%i|%T|%r|%a|%b|%D|%N|%j|%P")
    jobs = {}
    for line in out.splitlines():
        jid, state, reason, account, tres, nnodes, nodelist, name, part = line.split("|")
        jobs[int(jid)] = {"state": state, "reason": reason, "account": account, "tres": tres,
                          "nodes": nnodes, "nodelist": nodelist, "name": name, "partition": part}
    return jobs

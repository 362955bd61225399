"""The live stack for integration tests: started once per session by scripts/stack.py.

Where the servers cannot run here (not root, no apt-get: the script exits with code 3 and says
why), every integration test is skipped with that reason, except under CI (CI=true), where a
skip would hide a broken pipeline and is turned into a failure. A stack that fails to start
for any other reason is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .live import STACK_SCRIPT, Stack, is_running
from .matrix import MATRIX, RootStack, start_roots, stop_roots

EXIT_UNAVAILABLE = 3  # scripts/stack.py: "the stack cannot run here"


#: Tests that need the stack's Prometheus to have scraped for a few minutes: run last, so their
#: wait overlaps the rest of the suite instead of adding to it.
RUN_LAST = ("test_history_backfill_live.py", "test_history_backfill_matrix_live.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: Path(str(item.fspath)).name in RUN_LAST)  # stable: order kept


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"integration tests cannot run and CI=true forbids skipping them: {reason}")
    pytest.skip(f"integration tests skipped: {reason}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack")
    try:
        res = subprocess.run([sys.executable, str(STACK_SCRIPT), "start", "--dir", str(state)],
                             capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        subprocess.run([sys.executable, str(STACK_SCRIPT), "stop", "--dir", str(state)],
                       capture_output=True, timeout=120)
        raise
    if res.returncode == EXIT_UNAVAILABLE:
        skip_or_fail(res.stderr.strip().removeprefix("stack: ") or "scripts/stack.py exited with 3")
    if res.returncode != 0:
        # start cleans up after itself on failure; logs stay in the state folder
        pytest.fail(f"scripts/stack.py start failed ({res.returncode}): {res.stderr.strip()}")
    info = json.loads((state / "stack.json").read_text())
    try:
        yield Stack(state, info)
    finally:
        stop = subprocess.run([sys.executable, str(STACK_SCRIPT), "stop", "--dir", str(state)],
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        after = json.loads((state / "stack.json").read_text())
        left = [p for p in after["processes"] if is_running(p)]
        assert not left, f"processes left running after stop: {left}"


@pytest.fixture(scope="session")
def accounting_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack with slurmdbd (``stack.py start --accounting``): tenants with GPU quotas and
    finished jobs. One per session, apart from ``stack`` (whose Slurm has no accounting).
    ``AISC_ACCOUNTING_SUITE=trixie|sid`` runs it on a root's Slurm instead of Debian 12's."""
    suite = os.environ.get("AISC_ACCOUNTING_SUITE", "bookworm")
    state = tmp_path_factory.mktemp("accounting")
    cmd = [sys.executable, str(STACK_SCRIPT), "start", "--accounting", "--suite", suite, "--dir", str(state)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        subprocess.run([sys.executable, str(STACK_SCRIPT), "stop", "--dir", str(state)],
                       capture_output=True, timeout=120)
        raise
    if res.returncode == EXIT_UNAVAILABLE:
        skip_or_fail(res.stderr.strip().removeprefix("stack: ") or "scripts/stack.py exited with 3")
    if res.returncode != 0:
        pytest.fail(f"scripts/stack.py start --accounting failed ({res.returncode}): {res.stderr.strip()}")
    info = json.loads((state / "stack.json").read_text())
    try:
        yield (RootStack if info.get("root") else Stack)(state, info)
    finally:
        stop = subprocess.run([sys.executable, str(STACK_SCRIPT), "stop", "--dir", str(state)],
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        after = json.loads((state / "stack.json").read_text())
        left = [p for p in after["processes"] if is_running(p)]
        assert not left, f"processes left running after stop: {left}"


@pytest.fixture(scope="session")
def root_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RootStack | str]]:
    """The Debian-root stacks of the matrix (Slurm 24.11, 26.05), started concurrently.

    suite -> stack, or the reason its root cannot be built or run here (tests skip with it).
    """
    stacks = start_roots(tmp_path_factory.mktemp("roots"))
    try:
        yield stacks
    finally:
        failures = stop_roots(stacks)
        assert not failures, failures
        after = [json.loads((st.dir / "stack.json").read_text()) for st in stacks.values()
                 if isinstance(st, RootStack)]
        left = [p for info in after for p in info["processes"] if is_running(p)]
        assert not left, f"processes left running after stop: {left}"
        assert all(info["mounts"] == [] for info in after), "mounts left after stop"


def root_stack(stacks: dict[str, RootStack | str], suite: str) -> RootStack:
    got = stacks[suite]
    if isinstance(got, str):
        skip_or_fail(got)
    assert isinstance(got, RootStack)
    return got


@pytest.fixture(scope="session", params=list(MATRIX))
def release_stack(request: pytest.FixtureRequest) -> Stack:
    """The stack of one Slurm release of the matrix (22.05 is the session's Debian 12 stack)."""
    suite = MATRIX[request.param].suite
    if suite is None:
        return request.getfixturevalue("stack")
    return root_stack(request.getfixturevalue("root_stacks"), suite)


@pytest.fixture(scope="session", params=[r for r, rel in MATRIX.items() if rel.suite is not None])
def rest_actions_stack(request: pytest.FixtureRequest) -> Stack:
    """The releases whose REST API has node update (v0.0.39+), where operator actions are
    checked live: the root stacks (22.05 serves v0.0.38; test_slurm_matrix_live checks the refusal)."""
    return root_stack(request.getfixturevalue("root_stacks"), MATRIX[request.param].suite)


@pytest.fixture(scope="session")
def sid_stack(root_stacks: dict[str, RootStack | str]) -> RootStack:
    """The sid root's stack: Slurm 26.05 with its own Prometheus 3.5 and Alertmanager 0.33."""
    return root_stack(root_stacks, "sid")

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

EXIT_UNAVAILABLE = 3  # scripts/stack.py: "the stack cannot run here"


#: Tests that need the stack's Prometheus to have scraped for a few minutes: run last, so their
#: wait overlaps the rest of the suite instead of adding to it.
RUN_LAST = ("test_history_backfill_live.py",)


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



"""The checks of test_status_live.py, run again against today's servers.

`aisc-console status` against the sid root's stack: Slurm 26.05, Prometheus 3.5, Alertmanager 0.33.
The test functions and their fixtures are imported unchanged; only `stack` is this module's:
the sid root's stack instead of the Debian 12 one.
"""

from __future__ import annotations

import pytest

from .matrix import RootStack
from .test_status_live import *  # noqa: F403 - the same checks, collected again here


@pytest.fixture(scope="module")
def stack(sid_stack: RootStack) -> RootStack:
    return sid_stack

"""The checks of test_pending_alerts_live.py, run again against today's servers.

Prometheus 3.5's alerts endpoint and Alertmanager 0.33 through the console's engine: pending and firing alerts.
The test functions and their fixtures are imported unchanged; only `stack` is this module's:
the sid root's stack instead of the Debian 12 one.
"""

from __future__ import annotations

import pytest

from .matrix import RootStack
from .test_pending_alerts_live import *  # noqa: F403 - the same checks, collected again here


@pytest.fixture(scope="module")
def stack(sid_stack: RootStack) -> RootStack:
    return sid_stack

"""The checks of test_prometheus_live.py, run again against today's servers.

Prometheus 3.5 (the sid root's own): every query the console sends, the targets, the recording rules and the alert rules.
The test functions and their fixtures are imported unchanged; only `stack` is this module's:
the sid root's stack instead of the Debian 12 one.
"""

from __future__ import annotations

import pytest
import requests

from .matrix import RootStack
from .test_prometheus_live import *  # noqa: F403 - the same checks, collected again here


@pytest.fixture(scope="module")
def stack(sid_stack: RootStack) -> RootStack:
    return sid_stack


def test_it_is_prometheus_3_5(stack: RootStack) -> None:
    """The checks above ran against the root's Prometheus 3.5, not the host's 2.42."""
    build = requests.get(stack.urls["prometheus"] + "/api/v1/status/buildinfo", timeout=10).json()
    assert build["data"]["version"].startswith("3.5.")
    assert stack.info["root_versions"]["prometheus"].startswith("3.5.")

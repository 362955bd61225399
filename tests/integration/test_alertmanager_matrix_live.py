"""The checks of test_alertmanager_live.py, run again against today's servers.

Alertmanager 0.33 (the sid root's own): alerts, groups, silences, acknowledge and expire.
The test functions and their fixtures are imported unchanged; only `stack` is this module's:
the sid root's stack instead of the Debian 12 one.
"""

from __future__ import annotations

import pytest
import requests

from .matrix import RootStack
from .test_alertmanager_live import *  # noqa: F403 - the same checks, collected again here


@pytest.fixture(scope="module")
def stack(sid_stack: RootStack) -> RootStack:
    return sid_stack


def test_it_is_alertmanager_0_33(stack: RootStack) -> None:
    """The checks above ran against the root's Alertmanager 0.33, not the host's 0.25."""
    status = requests.get(stack.urls["alertmanager"] + "/api/v2/status", timeout=10).json()
    assert status["versionInfo"]["version"].startswith("0.33.")


def test_groups_hold_the_firing_test_alert(source: AlertmanagerSource) -> None:  # noqa: F405
    """0.33's /api/v2/alerts/groups: grouped by the route's labels, with the alert inside."""
    alert = wait_until(f"{TEST_ALERT} firing",  # noqa: F405
                       lambda: find(source, TEST_ALERT, "firing"), timeout_s=90)  # noqa: F405
    group_by = ("alertname", "Hostname", "hostname")  # scripts/stack/alertmanager.yml
    groups = source.client.groups()
    mine = [g for g in groups if g["labels"].get("alertname") == TEST_ALERT]  # noqa: F405
    assert len(mine) == 1, groups
    assert mine[0]["labels"] == {k: v for k, v in alert.labels.items() if k in group_by}
    assert "gpu02" in mine[0]["labels"].values()
    assert [a["labels"]["alertname"] for a in mine[0]["alerts"]] == [TEST_ALERT]  # noqa: F405
    assert mine[0]["receiver"]["name"] == "null"

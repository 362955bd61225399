"""Read-only mode in the GUI: every action button is disabled and says why, in words.

The reason comes from `Actions.capabilities()`, the same path as any other reason an action
cannot be offered (an old Slurm API, no Alertmanager), so the panels need nothing of their own.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from console.actions import READ_ONLY_REASON, Actions
from console.journal import Journal
from frames import make_test_frame
from widgets.alerts_panel import AlertsPanel
from widgets.job_drilldown import JobDrilldownWindow
from widgets.node_drilldown import NodeDrilldownWindow
from widgets.panel import PanelContext

NOT_AVAILABLE = f"Not available: {READ_ONLY_REASON}"


class Refuses:
    """A client offering every action; a call fails the test (read-only calls nothing)."""

    api_version = "v0.0.40"
    supports_node_update = True

    def __getattr__(self, name: str) -> Any:
        def method(*args: Any) -> Any:
            raise AssertionError(f"{name} called in read-only mode")
        return method


def read_only_context(tmp_path: Path) -> PanelContext:
    sources = [SimpleNamespace(name="alertmanager", kind="alerts", interval_s=10.0,
                               client=Refuses()),
               SimpleNamespace(name="slurm", kind="scheduler", interval_s=10.0, client=Refuses())]
    return PanelContext(actions=Actions(sources, Journal(tmp_path / "j.jsonl"), read_only=True),
                        operator="alice")


def test_node_drill_down_shows_drain_and_resume_disabled_with_the_reason(qtbot,
                                                                        tmp_path: Path) -> None:
    w = NodeDrilldownWindow("n0001", read_only_context(tmp_path))
    qtbot.addWidget(w)
    w.show_frame(make_test_frame())
    w.render_now()
    assert not w.drain_button.isEnabled() and not w.resume_button.isEnabled()
    assert w.drain_button.toolTip() == NOT_AVAILABLE
    assert w.resume_button.toolTip() == NOT_AVAILABLE
    assert w.note_label.text() == f"Drain and Resume are not available: {READ_ONLY_REASON}"
    assert not w.drain()


def test_job_drill_down_shows_cancel_disabled_with_the_reason(qtbot, tmp_path: Path) -> None:
    w = JobDrilldownWindow(101, read_only_context(tmp_path))
    qtbot.addWidget(w)
    w.show_frame(make_test_frame())
    w.render_now()
    assert not w.cancel_button.isEnabled()
    assert w.cancel_button.toolTip() == NOT_AVAILABLE


def test_alerts_panel_shows_acknowledge_and_silence_disabled_with_the_reason(
        qtbot, tmp_path: Path) -> None:
    p = AlertsPanel(read_only_context(tmp_path))
    qtbot.addWidget(p)
    p.show_frame(make_test_frame())
    p.render_now()
    assert p.select_key("am:f-xid")
    assert not p.ack_button.isEnabled() and not p.silence_button.isEnabled()
    assert p.ack_button.toolTip() == NOT_AVAILABLE
    assert p.silence_button.toolTip() == NOT_AVAILABLE

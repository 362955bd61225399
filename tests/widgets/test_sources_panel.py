"""Source status: states in words and marks, errors in plain words, ages, and the banner."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtGui import QColor

from console.model import SourceState
from widgets import theme
from widgets.sources_panel import SourcesPanel, failing_banner


def make_panel(qtbot, frame) -> SourcesPanel:
    panel = SourcesPanel()
    qtbot.addWidget(panel)
    panel.show_frame(frame)
    panel.render_now()
    return panel


def test_each_source_with_state_age_latency_detail(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    rows = [[panel.cell_text(r, c) for c in range(6)] for r in range(3)]
    assert rows == [
        ["prometheus", "telemetry", "\u25cf OK", "3 s old", "45 ms", "Prometheus 2.42.0"],
        ["slurm", "scheduler", "\u25cf OK", "4 s old", "120 ms", "Slurm REST v0.0.38"],
        ["alertmanager", "alerts", "\u25cf OK", "5 s old", "12 ms", "Alertmanager 0.25.0"],
    ]
    assert panel.header.age_label.property("stale") == "false"


def test_failing_source_shows_error_words_and_colour(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame(scheduler_failing=True, scheduler_age=130.0))
    r = panel.row_of("slurm")
    assert panel.cell_text(r, 2) == "\u2716 failing"
    assert panel.cell_text(r, 3) == "2 min old"
    assert panel.cell_text(r, 4) == "\u2014"
    assert panel.cell_text(r, 5) == ("cannot connect to slurm.example:6820 (connection refused)"
                                     " (7 failures in a row)")
    state_colour = panel.table.item(r, 2).foreground().color()
    assert state_colour == QColor(theme.current().severity[theme.Severity.CRITICAL])
    assert panel.header.age_label.text().startswith("SOURCE DOWN")
    assert panel.header.age_label.property("stale") == "true"


def test_rows_are_reused_while_the_set_of_sources_is_unchanged(qtbot, make_frame):
    panel = make_panel(qtbot, make_frame())
    item = panel.table.item(0, 0)
    panel.show_frame(make_frame(scheduler_failing=True))
    panel.render_now()
    assert panel.table.item(0, 0) is item
    assert panel.cell_text(1, 2) == "\u2716 failing"


def test_banner_phrasing(make_frame):
    assert failing_banner(make_frame()) is None
    text, severity = failing_banner(make_frame(scheduler_failing=True, scheduler_age=130.0))
    assert severity == "critical"
    assert text == ("Scheduler source slurm failing: cannot connect to slurm.example:6820 "
                    "(connection refused) \u2014 data shown is 2 min old")
    frame = make_frame()
    never = replace(frame.sources[0], state=SourceState.FAILING, last_success=None, error="timed out after 5 s")
    stale = replace(frame.sources[2], state=SourceState.STALE)
    frame2 = replace(frame, sources=(never, frame.sources[1], stale))
    text, severity = failing_banner(frame2)
    assert text == ("Telemetry source prometheus failing: timed out after 5 s \u2014 no data received yet"
                    "  \u2022  Alerts source alertmanager stale: data shown is 5 s old")

"""Silence editor: live preview of the alerts its matchers catch, refusal in words, creation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from console.actions import Actions
from console.journal import Journal
from console.model import Matcher
from frames import NOW, alerts, make_test_frame
from widgets.alerts_panel import AlertsPanel
from widgets.panel import PanelContext
from widgets.silence_dialog import SilenceDialog


def preview_names(d: SilenceDialog) -> list[str]:
    return [a.fingerprint for a in d.preview()]


def test_preview_lists_matched_alerts(qtbot) -> None:
    d = SilenceDialog(alerts(), [Matcher("alertname", "GpuTemperatureHigh")], author="alice")
    qtbot.addWidget(d)
    assert preview_names(d) == ["f-temp", "f-temp2"]
    assert d.preview_label.text() == "Catches 2 of 5 current alerts:"
    assert d.preview_list.count() == 2
    assert "GPU 5 on n0003 is at 88 C" in d.preview_list.item(0).text()


def test_preview_follows_edits(qtbot) -> None:
    d = SilenceDialog(alerts(), [Matcher("alertname", "GpuTemperatureHigh")], author="alice")
    qtbot.addWidget(d)
    row = d.add_matcher(Matcher("gpu", "6"))
    assert preview_names(d) == ["f-temp2"]
    row.op_combo.setCurrentText("!=")
    assert preview_names(d) == ["f-temp"]
    d.set_matchers([Matcher("rack", "R0[12]", is_regex=True)])
    assert preview_names(d) == ["f-exp", "f-xid", "f-temp", "f-temp2"]
    assert d.preview_list.count() == 4
    d.matcher_rows()[0].value_edit.setText("R0")  # anchored: "R0" matches no rack
    assert preview_names(d) == [] and d.preview_label.text() == "Catches 0 of 5 current alerts:"


def test_problems_in_words_and_create_disabled(qtbot) -> None:
    d = SilenceDialog(alerts(), [Matcher("alertname", "X")], author="alice")
    qtbot.addWidget(d)
    assert d.problem_label.text() == "a comment is required"
    assert not d.create_button.isEnabled()
    d.comment_edit.setText("maintenance on R02")
    assert d.problem() is None and d.create_button.isEnabled()
    d.matcher_rows()[0].op_combo.setCurrentText("=~")
    d.matcher_rows()[0].value_edit.setText(".*")
    assert "silence everything" in d.problem_label.text() and not d.create_button.isEnabled()
    d.matcher_rows()[0].value_edit.setText("(")
    assert "regular expression" in d.problem_label.text()
    assert d.preview() == []


def test_remove_matcher(qtbot) -> None:
    d = SilenceDialog(alerts(), [Matcher("alertname", "GpuTemperatureHigh"), Matcher("gpu", "5")])
    qtbot.addWidget(d)
    assert preview_names(d) == ["f-temp"]
    d.matcher_rows()[1].remove_button.click()
    assert len(d.matcher_rows()) == 1 and preview_names(d) == ["f-temp", "f-temp2"]


def test_matchers_and_duration_results(qtbot) -> None:
    d = SilenceDialog(alerts(), [Matcher("Hostname", "n000[13]", is_regex=True)], duration_s=14400,
                      author="alice", comment="c")
    qtbot.addWidget(d)
    assert d.matchers() == (Matcher("Hostname", "n000[13]", is_regex=True),)
    assert d.duration_s() == 14400 and d.author() == "alice" and d.comment() == "c"
    d.set_duration(5400)
    assert d.duration_s() == 5400
    assert d.matcher_rows()[0].op_combo.currentText() == "=~"


def test_panel_silence_flow_creates_silence_after_preview(qtbot, tmp_path: Path) -> None:
    created: list[tuple] = []
    client = SimpleNamespace(
        create_silence=lambda m, s, e, a, c: (created.append((m, s, e, a, c)), "sid-9")[1],
        expire_silence=lambda i: None)
    actions = Actions([SimpleNamespace(name="am", client=client)], Journal(tmp_path / "j.jsonl"),
                      clock=lambda: NOW)
    panel = AlertsPanel(PanelContext(actions=actions, operator="bob"))
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    panel.select_key("am:f-temp2")
    seen: list[list[str]] = []

    def run(dialog: SilenceDialog) -> bool:
        seen.append(preview_names(dialog))  # the operator saw exactly these before confirming
        dialog.set_matchers([Matcher("alertname", "GpuTemperatureHigh"), Matcher("Hostname", "n0003")])
        dialog.comment_edit.setText("fan swap")
        dialog.set_duration(3600)
        return True

    panel.exec_silence_dialog = run
    dlg = panel.silence_selected()
    assert seen == [["f-temp2"]]  # pre-filled with the alert's identity
    assert dlg is not None and preview_names(dlg) == ["f-temp", "f-temp2"]
    qtbot.waitUntil(lambda: panel.last_result is not None, timeout=5000)
    m, s, e, author, comment = created[0]
    assert m == (Matcher("alertname", "GpuTemperatureHigh"), Matcher("Hostname", "n0003"))
    assert (author, comment, e - s) == ("bob", "fan swap", 3600)
    assert panel.last_result.ids == ("sid-9",)
    actions.close()


def test_panel_silence_cancelled_creates_nothing(qtbot, tmp_path: Path) -> None:
    created: list = []
    client = SimpleNamespace(create_silence=lambda *a: created.append(a) or "x",
                             expire_silence=lambda i: None)
    actions = Actions([SimpleNamespace(name="am", client=client)], Journal(tmp_path / "j.jsonl"))
    panel = AlertsPanel(PanelContext(actions=actions))
    qtbot.addWidget(panel)
    panel.show_frame(make_test_frame())
    panel.render_now()
    panel.exec_silence_dialog = lambda d: False
    panel.silence_selected()
    assert created == [] and panel.last_result is None
    actions.close()

"""The silence editor: matchers, duration and comment, with a live preview of what it will hide.

Why the preview: a silence with a too-wide matcher hides real trouble for hours, and
Alertmanager will not warn about it. The dialog shows, while the operator types, exactly which
current alerts the matchers catch (the same matching rule Alertmanager applies, from
`console.matchers`), and refuses what Alertmanager would refuse, in words, before anything is
sent. Accepting the dialog is the operator's confirmation. Lives in the GUI thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QListWidget, QPushButton, QVBoxLayout, QWidget,
)

from console.actions import matched_alerts, validate_silence
from console.model import Alert, Matcher, Severity
from widgets import theme as theme_mod
from widgets.theme import SEVERITY_WORDS

OPERATORS = ("=", "!=", "=~", "!~")
DURATIONS = (("30 minutes", 1800), ("1 hour", 3600), ("2 hours", 7200), ("4 hours", 14400),
             ("12 hours", 43200), ("1 day", 86400), ("3 days", 259200), ("1 week", 604800))


def matcher_op(m: Matcher) -> str:
    return ("=~" if m.is_regex else "=") if m.is_equal else ("!~" if m.is_regex else "!=")


def matcher_from(name: str, op: str, value: str) -> Matcher:
    return Matcher(name.strip(), value, is_regex="~" in op, is_equal=not op.startswith("!"))


class MatcherRow(QWidget):
    """One matcher: label name, operator, value, and a remove button."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, matcher: Matcher | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("label, e.g. Hostname")
        self.op_combo = QComboBox(self)
        self.op_combo.addItems(OPERATORS)
        self.value_edit = QLineEdit(self)
        self.value_edit.setPlaceholderText("value")
        self.remove_button = QPushButton("Remove", self)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.name_edit, 2)
        lay.addWidget(self.op_combo)
        lay.addWidget(self.value_edit, 3)
        lay.addWidget(self.remove_button)
        if matcher is not None:
            self.name_edit.setText(matcher.name)
            self.op_combo.setCurrentText(matcher_op(matcher))
            self.value_edit.setText(matcher.value)
        self.name_edit.textChanged.connect(self.changed)
        self.value_edit.textChanged.connect(self.changed)
        self.op_combo.currentIndexChanged.connect(self.changed)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))

    def matcher(self) -> Matcher | None:
        name = self.name_edit.text().strip()
        if not name:
            return None
        return matcher_from(name, self.op_combo.currentText(), self.value_edit.text())


class SilenceDialog(QDialog):
    """Create a silence: edit matchers, see the alerts they catch, then confirm."""

    def __init__(self, alerts: Sequence[Alert], matchers: Sequence[Matcher] = (), *,
                 author: str = "operator", comment: str = "", duration_s: int = 7200,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New silence")
        self.setMinimumWidth(720)
        self._alerts = list(alerts)
        self._rows: list[MatcherRow] = []

        self.matchers_box = QVBoxLayout()
        self.matchers_box.setSpacing(4)
        self.add_button = QPushButton("Add matcher", self)
        self.duration_combo = QComboBox(self)
        for label, seconds in DURATIONS:
            self.duration_combo.addItem(label, seconds)
        self.set_duration(duration_s)
        self.author_edit = QLineEdit(author, self)
        self.comment_edit = QLineEdit(comment, self)
        self.comment_edit.setPlaceholderText("why (required), e.g. n0123 drained for RMA, ticket 4711")
        self.preview_label = QLabel("", self)
        self.preview_label.setObjectName("SilencePreviewCaption")
        self.preview_list = QListWidget(self)
        self.preview_list.setMinimumHeight(160)
        self.problem_label = QLabel("", self)
        self.problem_label.setWordWrap(True)
        th = theme_mod.current()
        self.problem_label.setStyleSheet(f"color: {th.severity[Severity.WARNING]};")
        self.buttons = QDialogButtonBox(self)
        self.create_button = self.buttons.addButton("Create silence",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)

        form = QFormLayout()
        form.addRow("Duration (from now)", self.duration_combo)
        form.addRow("Author", self.author_edit)
        form.addRow("Comment", self.comment_edit)
        layout = QVBoxLayout(self)
        title = QLabel("Matchers (all must match; regular expressions are anchored)", self)
        title.setObjectName("PanelTitle")
        layout.addWidget(title)
        layout.addLayout(self.matchers_box)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addLayout(form)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.preview_list, 1)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.buttons)

        self.add_button.clicked.connect(lambda: self.add_matcher(None))
        self.author_edit.textChanged.connect(self._update)
        self.comment_edit.textChanged.connect(self._update)
        self.duration_combo.currentIndexChanged.connect(self._update)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for m in matchers:
            self.add_matcher(m)
        if not matchers:
            self.add_matcher(None)
        self._update()

    # --- editing ----------------------------------------------------------------------------

    def add_matcher(self, matcher: Matcher | None) -> MatcherRow:
        row = MatcherRow(matcher, self)
        row.changed.connect(self._update)
        row.remove_requested.connect(self._on_remove)
        self._rows.append(row)
        self.matchers_box.addWidget(row)
        self._update()
        return row

    def set_matchers(self, matchers: Sequence[Matcher]) -> None:
        for row in list(self._rows):
            self._remove(row)
        for m in matchers:
            self.add_matcher(m)

    def set_duration(self, seconds: int) -> None:
        idx = self.duration_combo.findData(seconds)
        if idx < 0:
            hours = seconds / 3600
            self.duration_combo.addItem(f"{hours:g} hours", seconds)
            idx = self.duration_combo.count() - 1
        self.duration_combo.setCurrentIndex(idx)

    # --- results ----------------------------------------------------------------------------

    def matcher_rows(self) -> list[MatcherRow]:
        return list(self._rows)

    def matchers(self) -> tuple[Matcher, ...]:
        return tuple(m for m in (r.matcher() for r in self._rows) if m is not None)

    def duration_s(self) -> int:
        return int(self.duration_combo.currentData())

    def author(self) -> str:
        return self.author_edit.text().strip()

    def comment(self) -> str:
        return self.comment_edit.text().strip()

    def problem(self) -> str | None:
        return validate_silence(self.matchers(), self.duration_s(), self.author(), self.comment())

    def preview(self) -> list[Alert]:
        """The current alerts this silence would catch (what the list shows)."""
        if validate_silence(self.matchers(), 1, "x", "x") is not None:
            return []  # an invalid regex or an empty set catches nothing useful to show
        return matched_alerts(self.matchers(), self._alerts)

    # --- internals --------------------------------------------------------------------------

    @Slot(object)
    def _on_remove(self, row: MatcherRow) -> None:
        self._remove(row)
        self._update()

    def _remove(self, row: MatcherRow) -> None:
        if row in self._rows:
            self._rows.remove(row)
            self.matchers_box.removeWidget(row)
            row.hide()
            row.deleteLater()

    @Slot()
    def _update(self) -> None:
        if not hasattr(self, "create_button"):
            return  # still building
        caught = self.preview()
        total = sum(1 for a in self._alerts if a.source != "console")
        self.preview_label.setText(f"Catches {len(caught)} of {total} current alerts:")
        self.preview_list.clear()
        for a in caught:
            where = a.node or a.labels.get("instance", "")
            gpu = f" GPU {a.gpu}" if a.gpu is not None else ""
            self.preview_list.addItem(f"{SEVERITY_WORDS[a.severity]:<8}  {a.name}  "
                                      f"{where}{gpu}  \u2014 {a.summary}  [{a.state}]")
        problem = self.problem()
        self.problem_label.setText(problem or "")
        self.create_button.setEnabled(problem is None)

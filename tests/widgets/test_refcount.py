"""Guard against the PySide6 6.12.0 / Python 3.11 bug (PERF.md): every call of a void Qt
method dropped a reference to None until the interpreter aborted with none_dealloc."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QWidget

CALLS = 20_000


def test_void_qt_methods_do_not_drop_references_to_none(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    before = sys.getrefcount(None)
    for i in range(CALLS):
        widget.update()
        widget.resize(100 + (i & 7), 80)
        widget.setToolTip("")
    after = sys.getrefcount(None)
    # With the bug this falls by about 3 x CALLS; normal interpreter noise is a few dozen.
    assert after >= before - 500, f"refcount(None) fell by {before - after} over {3 * CALLS} calls"

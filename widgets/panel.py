"""The base of every dashboard panel: keep the newest Frame, redraw on a timer, skip when hidden.

Lives in the GUI thread. Frames arrive at the data rate through `widgets/bridge.py`; painting is
driven by the panel's own redraw timer and only happens when a new frame arrived (dirty flag) and
the panel is visible (PyDM's pattern, STYLE.md). Subclasses implement `render(frame)`, which must
update existing items in place rather than rebuild them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QWidget

from console.model import Frame

if TYPE_CHECKING:  # the engine module is not needed at run time here, only its contract
    from console.engine import OperatorActions


class Navigator(QObject):
    """Drill-down requests, emitted by any panel and served by the main window.

    Decouples panels from each other: a click on an alert asks for "node n0123" without knowing
    which panel or window shows nodes.
    """

    tenant_requested = Signal(str)  # Slurm account
    node_requested = Signal(str)  # node name
    gpu_requested = Signal(str, int)  # node name, local GPU index
    job_requested = Signal(int)  # job id
    rack_requested = Signal(str)  # rack name
    #: A group of nodes to outline on the health map: (words such as "PDU R07-PDU-A", node names).
    nodes_requested = Signal(str, tuple)


@dataclass
class PanelContext:
    """What every panel may use besides frames: navigation and operator actions.

    `actions` is a `console.engine.OperatorActions` (`console.actions.Actions`, or the worker-
    process engine's proxy; None when actions are unavailable, e.g. in presentation mode);
    panels call it and get results back through its futures.
    """

    navigator: Navigator = field(default_factory=Navigator)
    actions: OperatorActions | None = None
    operator: str = "operator"


class LayoutFirewall(QWidget):
    """Hosts one panel in a dock without a layout, so the panel's own relayouts stop here.

    A label whose text changes width (a KPI value, "updated 3 s ago") makes its layout post a
    request to the parent, and every activated layout calls ``updateGeometry`` on its widget:
    the request climbs to the main window, which then relayouts and repaints the whole window.
    Measured at 1920x1080: two full-window repaints per frame without this, none with it.
    """

    def __init__(self, inner: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inner = inner
        inner.setParent(self)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.inner.setGeometry(self.rect())
        super().resizeEvent(event)

    def sizeHint(self):  # noqa: N802 - Qt override
        return self.inner.sizeHint()

    def minimumSizeHint(self):  # noqa: N802 - Qt override
        return self.inner.minimumSizeHint()


class Panel(QWidget):
    """A dashboard panel. Subclasses set `title` and implement `render`.

    `redraw_ms` caps the paint rate independently of the poll rate. `render_now()` forces one
    render (used by the snapshot command and tests, which must not wait for a timer).
    """

    title: str = "Panel"
    redraw_ms: int = 250

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._frame: Frame | None = None
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(self.redraw_ms)
        self._timer.timeout.connect(self._on_redraw_timer)
        self._timer.start()

    @property
    def frame(self) -> Frame | None:
        return self._frame

    @Slot(object)
    def show_frame(self, frame: Frame) -> None:
        """Accept a new frame; cheap, so it can be called at the data rate."""
        self._frame = frame
        self._dirty = True

    def render_now(self) -> None:
        if self._frame is not None:
            self.render(self._frame)
            self._dirty = False

    @Slot()
    def _on_redraw_timer(self) -> None:
        if self._dirty and self.isVisible() and self._frame is not None:
            self._dirty = False
            self.render(self._frame)

    def render(self, frame: Frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

"""The one place where core callbacks become Qt signals.

The engine calls its subscribers from its own worker thread; no widget may be touched there.
`EngineBridge` lives in the GUI thread: the engine's callback only stores the newest frame
under a lock and, if no delivery is already queued, emits an internal signal that Qt queues to
the GUI thread. When frames arrive faster than the GUI takes them, older undelivered frames are
simply replaced, so the GUI always shows the newest state and never works through a backlog
(glue's "merge queued requests so only the latest runs").

`FleetBridge` does the same for a `console.fleet.Fleet`, newest frame per cluster.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from console.model import Frame


class EngineBridge(QObject):
    """Re-emits engine frames as `frame_ready` on the GUI thread, newest only (GUI thread)."""

    frame_ready = Signal(object)
    #: Internal: emitted from the engine thread, delivered queued to `_deliver`.
    _wake = Signal()

    def __init__(self, engine: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: Frame | None = None
        self._queued = False
        self._closed = False
        self.delivered = 0  # frames handed to the GUI
        self.dropped = 0  # frames replaced by a newer one before the GUI took them
        # Queued explicitly: the emit happens in a foreign thread, delivery must be in ours.
        self._wake.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._engine = engine
        if engine is not None:
            engine.subscribe(self.push)

    def push(self, frame: Frame) -> None:
        """Hand over a frame; safe from any thread. Cheap: stores a reference and maybe wakes."""
        with self._lock:
            if self._closed:
                return
            if self._pending is not None:
                self.dropped += 1
            self._pending = frame
            if self._queued:
                return
            self._queued = True
        self._wake.emit()

    @Slot()
    def _deliver(self) -> None:
        with self._lock:
            frame, self._pending = self._pending, None
            self._queued = False
            closed = self._closed
        if frame is not None and not closed:
            self.delivered += 1
            self.frame_ready.emit(frame)

    def close(self) -> None:
        """Stop delivering; late callbacks from the engine are ignored from now on."""
        with self._lock:
            self._closed = True
            self._pending = None
        unsubscribe = getattr(self._engine, "unsubscribe", None)
        if callable(unsubscribe):
            try:
                unsubscribe(self.push)
            except (ValueError, KeyError):
                pass


class FleetBridge(QObject):
    """Re-emits a fleet's frames as `frame_ready(cluster, frame)` on the GUI thread (GUI thread).

    The same newest-only rule as `EngineBridge`, per cluster: a busy GUI gets each cluster's
    newest frame once, and one chatty cluster can never push another's frame out of the queue.
    """

    frame_ready = Signal(str, object)
    _wake = Signal()

    def __init__(self, fleet: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: dict[str, Frame] = {}
        self._queued = False
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self._wake.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._fleet = fleet
        if fleet is not None:
            fleet.subscribe(self.push)

    def push(self, cluster: str, frame: Frame) -> None:
        """Hand over one cluster's frame; safe from any thread."""
        with self._lock:
            if self._closed:
                return
            if cluster in self._pending:
                self.dropped += 1
            self._pending[cluster] = frame
            if self._queued:
                return
            self._queued = True
        self._wake.emit()

    @Slot()
    def _deliver(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._queued = False
            closed = self._closed
        if closed:
            return
        for cluster, frame in pending.items():
            self.delivered += 1
            self.frame_ready.emit(cluster, frame)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pending = {}
        unsubscribe = getattr(self._fleet, "unsubscribe", None)
        if callable(unsubscribe):
            try:
                unsubscribe(self.push)
            except (ValueError, KeyError):
                pass

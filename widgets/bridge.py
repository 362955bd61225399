"""The one place where core callbacks become Qt signals.

Engines call their subscribers from their own threads; no widget may be touched there. A bridge
lives in the GUI thread: the engine's callback only stores the newest value under a lock and, if
no delivery is already queued, emits an internal signal that Qt queues to the GUI thread. When
values arrive faster than the GUI takes them, older undelivered ones are simply replaced, so the
GUI always shows the newest state and never works through a backlog (glue's "merge queued
requests so only the latest runs"). `Mailbox` is that mechanism, written once.

Two things travel: frames, and the engine's own health (`console.engine.EngineStatus`: a
worker process that died, its restart). A dead engine sends no frames, so its status is the only
way the window learns it is blind.

`FleetBridge` carries a `console.fleet.Fleet`'s, newest per cluster (one chatty cluster can
never push another's frame out of the queue); `EngineBridge` is a single engine as a fleet of
one through the same `FleetBridge`, with signals that carry no cluster name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from console.engine import EngineStatus
from console.model import Frame


class Mailbox(QObject):
    """Newest value per key, handed from any thread to ``deliver(key, value)`` on the thread
    this object lives in (the GUI thread). ``dropped`` counts values replaced before delivery,
    ``delivered`` those handed on."""

    _wake = Signal()

    def __init__(self, deliver: Callable[[Hashable, Any], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._deliver_to = deliver
        self._lock = threading.Lock()
        self._pending: dict[Hashable, Any] = {}
        self._queued = False
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        # Queued explicitly: the emit happens in a foreign thread, delivery must be in ours.
        self._wake.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def put(self, key: Hashable, value: Any) -> None:
        """Safe from any thread. Cheap: stores a reference and maybe wakes the GUI thread."""
        with self._lock:
            if self._closed:
                return
            if key in self._pending:
                self.dropped += 1
            self._pending[key] = value
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
        for key, value in pending.items():
            self.delivered += 1
            self._deliver_to(key, value)

    def close(self) -> None:
        """Deliver nothing more; late values are ignored."""
        with self._lock:
            self._closed = True
            self._pending = {}


def _unsubscribe(source: Any, method: str, callback: Callable[..., None]) -> None:
    fn = getattr(source, method, None)
    if callable(fn):
        try:
            fn(callback)
        except (ValueError, KeyError):
            pass


class FleetBridge(QObject):
    """Re-emits a fleet's frames as `frame_ready(cluster, frame)` and each engine's health as
    `status_changed(cluster, status)` on the GUI thread, newest per cluster (GUI thread)."""

    frame_ready = Signal(str, object)
    status_changed = Signal(str, object)  # cluster, console.engine.EngineStatus

    def __init__(self, fleet: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._frames = Mailbox(lambda k, v: self.frame_ready.emit(k, v), self)
        self._statuses = Mailbox(lambda k, v: self.status_changed.emit(k, v), self)
        self._fleet = fleet
        self._status_hooks: list[tuple[Any, Callable[[EngineStatus], None]]] = []
        if fleet is not None:
            fleet.subscribe(self.push)
            engines = fleet.engines() if callable(getattr(fleet, "engines", None)) else {}
            for name, engine in engines.items():
                if callable(getattr(engine, "subscribe_status", None)):
                    def hook(status: EngineStatus, n: str = name) -> None:
                        self.push_status(n, status)
                    engine.subscribe_status(hook)
                    self._status_hooks.append((engine, hook))

    @property
    def delivered(self) -> int:
        return self._frames.delivered

    @property
    def dropped(self) -> int:
        return self._frames.dropped

    def push(self, cluster: str, frame: Frame) -> None:
        """Hand over one cluster's frame; safe from any thread."""
        self._frames.put(cluster, frame)

    def push_status(self, cluster: str, status: EngineStatus) -> None:
        """Hand over one cluster engine's health; safe from any thread."""
        self._statuses.put(cluster, status)

    def close(self) -> None:
        self._frames.close()
        self._statuses.close()
        for engine, hook in self._status_hooks:
            _unsubscribe(engine, "unsubscribe_status", hook)
        _unsubscribe(self._fleet, "unsubscribe", self.push)


class _FleetOfOne:
    """One engine seen as a fleet of one cluster, so that `FleetBridge` carries it: the single
    cluster case is the fleet case with one key, not a second copy of the bridge."""

    KEY = ""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._hooks: dict[Callable[[str, Frame], None], Callable[[Frame], None]] = {}

    def subscribe(self, callback: Callable[[str, Frame], None]) -> None:
        def hook(frame: Frame) -> None:
            callback(self.KEY, frame)
        self._hooks[callback] = hook
        self.engine.subscribe(hook)

    def unsubscribe(self, callback: Callable[[str, Frame], None]) -> None:
        hook = self._hooks.pop(callback, None)
        if hook is not None:
            _unsubscribe(self.engine, "unsubscribe", hook)

    def engines(self) -> dict[str, Any]:
        return {self.KEY: self.engine}


class EngineBridge(QObject):
    """One engine's frames as `frame_ready(frame)` and its health as `status_changed(status)` on
    the GUI thread, newest only (GUI thread): a `FleetBridge` over a fleet of one, re-emitted
    without the cluster name."""

    frame_ready = Signal(object)
    status_changed = Signal(object)  # console.engine.EngineStatus

    def __init__(self, engine: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fleet = FleetBridge(_FleetOfOne(engine) if engine is not None else None, self)
        self._fleet.frame_ready.connect(self._on_frame)
        self._fleet.status_changed.connect(self._on_status)

    @Slot(str, object)
    def _on_frame(self, _cluster: str, frame: Frame) -> None:
        self.frame_ready.emit(frame)

    @Slot(str, object)
    def _on_status(self, _cluster: str, status: EngineStatus) -> None:
        self.status_changed.emit(status)

    @property
    def delivered(self) -> int:
        """Frames handed to the GUI."""
        return self._fleet.delivered

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before the GUI took them."""
        return self._fleet.dropped

    def push(self, frame: Frame) -> None:
        """Hand over a frame; safe from any thread."""
        self._fleet.push(_FleetOfOne.KEY, frame)

    def push_status(self, status: EngineStatus) -> None:
        """Hand over the engine's health; safe from any thread."""
        self._fleet.push_status(_FleetOfOne.KEY, status)

    def close(self) -> None:
        """Stop delivering; late callbacks from the engine are ignored from now on."""
        self._fleet.close()

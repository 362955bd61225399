"""The accounting view crosses the worker pipe once per read, not once per frame.

Why: a frame carries the newest accounting view (a month of jobs: about 390,000 rows and
38 MB pickled at 4,096 nodes), and frames cross the pipe every second. Sent with each frame,
its bytes were copied and sent each second, and the GUI-side process allocated them again each
second (benchmarks/bench_soak.py). Now the worker
sends a view once, as a control message, when its key changes, and frames carry a
`SameView` marker that the GUI side replaces with the view it received. Control messages are
acted on in order before the newest frame of a batch is unpickled, so the view always
arrives before the frames that name it, even when frames in between are skipped.

No Qt, no pipe: the two halves are plain objects used by `console.engine_process`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from console.model import Frame


@dataclass(frozen=True)
class SameView:
    """Stands in a frame for the accounting view with this key, sent before it."""

    key: str


def _key(view: object) -> str:
    return str(getattr(view, "key", "") or "")


class ViewSender:
    """Worker side: which view went out last. `outgoing` gives the view to send first (None
    when the receiver has it already) and the frame to send, with the marker in its place."""

    def __init__(self) -> None:
        self._sent: str | None = None

    def outgoing(self, frame: Frame) -> tuple[Any | None, Frame]:
        view = frame.accounting
        key = _key(view)
        if view is None or not key:  # no view, or one without a key: sent as it is
            return None, frame
        first = key != self._sent
        self._sent = key
        return (view if first else None), dataclasses.replace(frame, accounting=SameView(key))


class ViewReceiver:
    """GUI side, one per worker: the last view received, put back in place of its marker."""

    def __init__(self) -> None:
        self._last: tuple[str, Any] | None = None

    def received(self, view: Any) -> None:
        self._last = (_key(view), view)

    def incoming(self, frame: Frame) -> Frame:
        marker = frame.accounting
        if not isinstance(marker, SameView):
            return frame
        last = self._last
        # A marker without its view cannot happen in order; if it did, no view beats a wrong one.
        view = last[1] if last is not None and last[0] == marker.key else None
        return dataclasses.replace(frame, accounting=view)


__all__ = ["SameView", "ViewReceiver", "ViewSender"]

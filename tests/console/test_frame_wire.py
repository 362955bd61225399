"""The accounting view crosses the worker pipe once per read; frames carry a marker for it."""

from __future__ import annotations

import dataclasses
import pickle
from types import SimpleNamespace

import pytest

from console.frame_wire import SameView, ViewReceiver, ViewSender
from console.model import Frame
from console.testing import frame_from_sim


@pytest.fixture(scope="module")
def frame() -> Frame:
    return frame_from_sim(nodes=4, polls=1)


def _with(frame: Frame, view: object) -> Frame:
    return dataclasses.replace(frame, accounting=view)


def test_a_view_goes_once_per_key_and_frames_name_it(frame: Frame) -> None:
    sender, receiver = ViewSender(), ViewReceiver()
    v1, v2 = SimpleNamespace(key="p-1"), SimpleNamespace(key="p-2")
    sent = []
    for view in (v1, v1, v1, v2, v2):
        first, out = sender.outgoing(_with(frame, view))
        sent.append(first)
        assert out.accounting == SameView(view.key)
        # across the pipe: the view as a control message (in order), then the frame
        if first is not None:
            receiver.received(pickle.loads(pickle.dumps(first)))
        back = receiver.incoming(pickle.loads(pickle.dumps(out)))
        assert back.accounting == view and back.seq == frame.seq
    assert sent == [v1, None, None, v2, None]


def test_frames_without_a_keyed_view_cross_as_they_are(frame: Frame) -> None:
    sender, receiver = ViewSender(), ViewReceiver()
    for view in (None, SimpleNamespace(key="")):
        first, out = sender.outgoing(_with(frame, view))
        assert first is None and out.accounting is view
        assert receiver.incoming(out).accounting is view


def test_a_marker_whose_view_never_came_shows_no_view_rather_than_another(frame: Frame) -> None:
    receiver = ViewReceiver()
    assert receiver.incoming(_with(frame, SameView("p-9"))).accounting is None
    receiver.received(SimpleNamespace(key="p-1"))
    assert receiver.incoming(_with(frame, SameView("p-9"))).accounting is None

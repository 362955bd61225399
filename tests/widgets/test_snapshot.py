"""The off-screen snapshot: a PNG of the whole dashboard at the requested size."""

from __future__ import annotations

from PySide6.QtGui import QImage

from console.testing import frame_from_sim
from widgets.snapshot import render_snapshot


def test_snapshot_writes_a_png_of_the_requested_size(tmp_path, make_frame):
    out = render_snapshot(make_frame(), tmp_path / "shots" / "dash.png", size=(1280, 720))
    assert out == tmp_path / "shots" / "dash.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 720)
    # not a blank frame: the dark background and the health map's blue are both there
    colours = {image.pixelColor(x, y).name() for x in range(0, 1280, 16) for y in range(0, 720, 16)}
    assert "#121418" in colours
    assert len(colours) > 10


def test_snapshot_of_a_simulated_cluster_at_full_hd(tmp_path):
    frame = frame_from_sim(nodes=24, polls=3)
    out = render_snapshot(frame, tmp_path / "sim.png")
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1920, 1080)


def test_presentation_snapshot(tmp_path, make_frame):
    out = render_snapshot(make_frame(), tmp_path / "wall.png", size=(1600, 900), font_scale=1.4,
                          presentation=True)
    assert QImage(str(out)).size().toTuple() == (1600, 900)

"""Presentation mode: the playlist on its timer (test clock), cross-fades, stale data and the
BLIND banner, no error dialogs, and the proof that no scene draws a name."""

from __future__ import annotations

import dataclasses
import re

import pytest
from PySide6.QtCore import QBuffer, QIODevice, QRect, QSize
from PySide6.QtGui import QImage
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QWidget

from frames import Clock, seeing
from console.model import Frame
from console.presentation_settings import SCENE_NAMES, PresentationSettings, SceneSpec
from console.testing import frame_from_sim
from widgets.presentation.window import PresentationWindow


def make_window(qtbot, clock: Clock, wall: Clock, settings: PresentationSettings | None = None,
                size: tuple[int, int] = (1280, 720)) -> PresentationWindow:
    w = PresentationWindow(settings or PresentationSettings(), clock=clock, wall_clock=wall)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    return w


def test_the_playlist_advances_on_its_timer_with_a_cross_fade(qtbot, make_frame) -> None:
    clock, wall = Clock(1000.0), Clock(make_frame().time)
    settings = PresentationSettings(scenes=(SceneSpec("headline", 20.0), SceneSpec("health", 10.0)),
                                    transition_ms=150)
    w = make_window(qtbot, clock, wall, settings)
    w.show_frame(seeing(make_frame()))
    assert w.current_scene == "headline"
    clock.t = 1019.9
    w.tick()
    assert w.current_scene == "headline"  # not yet
    clock.t = 1020.0  # the window's own timer notices
    qtbot.waitUntil(lambda: w.current_scene == "health", timeout=3000)
    assert w.scenes["health"].isVisible()
    qtbot.waitUntil(lambda: not w.fading and not w.scenes["headline"].isVisible(), timeout=3000)
    assert w.scenes["health"].graphicsEffect() is None  # drawn plainly once the fade is over
    assert w.position_label.text() == "\u25cb\u25cf"
    clock.t = 1030.0
    qtbot.waitUntil(lambda: w.current_scene == "headline", timeout=3000)


def test_keys_step_through_the_scenes_and_escape_closes(qtbot, make_frame) -> None:
    from PySide6.QtCore import Qt

    w = make_window(qtbot, Clock(0.0), Clock(make_frame().time))
    w.show_frame(seeing(make_frame()))
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.current_scene == "health"
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert w.current_scene == "jobs"
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert not w.isVisible()


def test_a_lost_endpoint_shows_stale_data_then_blind_and_recovers(qtbot, make_frame) -> None:
    frame = seeing(make_frame())
    clock, wall = Clock(0.0), Clock(frame.time)
    w = make_window(qtbot, clock, wall)
    w.show_frame(frame)
    assert w.age_label.text() == "data 3 s old" and not w.banner.isVisible()
    assert w.scenes["headline"].value.text() == "7.25 PF"
    clock.t, wall.t = 40.0, frame.time + 40.0  # telemetry 43 s old: past its 30 s limit
    w.tick()
    assert w.age_label.text() == "\u25cc STALE \u00b7 last data 43 s old"
    assert w.age_label.property("stale") == "true"
    assert w.scenes["headline"].value.text() == "7.25 PF"  # the last data, kept, marked
    assert not w.banner.isVisible()  # alerts (45 s limit) still fresh
    clock.t, wall.t = 300.0, frame.time + 300.0
    w.tick()
    assert w.banner.isVisible()
    assert w.banner.text().startswith("\u26a0  BLIND: every data source is stale")
    assert w.banner.text().endswith("do not read this as healthy")
    assert not [x for x in QApplication.topLevelWidgets() if isinstance(x, QDialog) and x.isVisible()]
    later = dataclasses.replace(frame, time=frame.time + 301.0,
                                data_time={k: frame.time + 300.0 for k in frame.data_time})
    w.show_frame(later)  # the engine reconnected
    assert not w.banner.isVisible() and w.age_label.text() == "data 1 s old"


def test_a_dead_engine_turns_everything_stale_at_once(qtbot, make_frame) -> None:
    from console.engine import EngineState, EngineStatus

    frame = seeing(make_frame())
    w = make_window(qtbot, Clock(0.0), Clock(frame.time))
    w.show_frame(frame)
    status = EngineStatus(EngineState.DOWN, "the worker process died", down_since=frame.time)
    w.show_engine_status(status)
    assert w.banner.isVisible() and "every data source is stale" in w.banner.text()


def test_a_scene_that_fails_to_draw_does_not_stop_the_show(qtbot, make_frame, caplog) -> None:
    w = make_window(qtbot, Clock(0.0), Clock(make_frame().time))

    def broken(view) -> None:
        raise ValueError("boom")

    w.scenes["headline"].show_view = broken  # type: ignore[method-assign]
    w.show_frame(seeing(make_frame()))  # logged, not raised, no dialog
    assert "scene headline could not draw" in caplog.text
    assert w.age_label.text() == "data 3 s old"


# -- the redaction proof ---------------------------------------------------------------------


def names_of(frame: Frame) -> set[str]:
    """Every tenant (account and display), user, job and node name the frame knows."""
    jobs = frame.jobs
    return {str(x) for x in (*frame.tenants.account, *frame.tenants.display, *jobs.user,
                             *jobs.name, *frame.topology.node_names, *frame.nodes.names,
                             *jobs.accounts) if str(x)}


def drawn_texts(widget: QWidget) -> list[str]:
    """All text ``widget`` draws: every label's, and everything painted."""
    labels = [lbl.text() for lbl in widget.findChildren(QLabel) if lbl.isVisibleTo(widget)]
    return labels + painted_texts(widget)


def painted_texts(widget: QWidget) -> list[str]:
    """Every string painted by ``widget`` and its children, recorded by rendering it through an
    SVG paint device (pyqtgraph's axes, tick labels and text items, any custom painting)."""
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    gen = QSvgGenerator()
    gen.setOutputDevice(buf)
    gen.setSize(QSize(widget.width(), widget.height()))
    gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    widget.render(gen)
    svg = bytes(buf.data()).decode("utf-8")
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]


def leaks(texts: list[str], names: set[str]) -> list[tuple[str, str]]:
    """(name, text) for every whole-word occurrence of a name in a text (case-insensitive)."""
    out = []
    for name in names:
        pat = re.compile(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-])", re.IGNORECASE)
        out += [(name, t) for t in texts if pat.search(t)]
    return out


@pytest.fixture(scope="module")
def sim_frame() -> Frame:
    return frame_from_sim(nodes=48, polls=8, faults="all", detect=True)


@pytest.mark.parametrize("scene", SCENE_NAMES)
@pytest.mark.parametrize("which", ["known", "simulated"])
def test_no_scene_draws_a_tenant_user_job_or_node_name(qtbot, make_frame, sim_frame, scene, which) -> None:
    frame = make_frame() if which == "known" else sim_frame
    names = names_of(frame)
    assert {"hku", "alice", "llama-pretrain", "n00"} <= names if which == "known" else len(names) > 60
    w = make_window(qtbot, Clock(0.0), Clock(frame.time), size=(1600, 900))
    w.show_frame(frame)
    w.show_scene(scene, animate=False)
    w.render_now()
    QApplication.processEvents()
    texts = drawn_texts(w)
    # the recorder sees what is painted: the scene's heading, the title and the clock
    heading = w.scenes[scene].heading_label.text()
    assert {heading, w.title_label.text(), w.clock_label.text()} <= set(painted_texts(w))
    assert leaks(texts, names) == []


def test_the_redaction_check_catches_a_planted_name(qtbot, make_frame) -> None:
    """The proof above can fail: a name painted anywhere is found."""
    frame = make_frame()
    w = make_window(qtbot, Clock(0.0), Clock(frame.time))
    w.show_frame(frame)
    w.show_scene("delivered", animate=False)
    import pyqtgraph as pg

    planted = pg.TextItem("job llama-pretrain of Alice")
    planted.setPos(float(frame.history.t[-1]) - 1800.0, 1000.0)  # inside the plotted range
    w.scenes["delivered"].plot.addItem(planted)
    w.render_now()
    found = {name for name, _ in leaks(drawn_texts(w), names_of(frame))}
    assert found == {"llama-pretrain", "alice"}


def test_every_scene_renders_at_4k(tmp_path, make_frame) -> None:
    from widgets.snapshot import render_presentation

    out = render_presentation(seeing(make_frame()), tmp_path / "h.png", scene="health", size=(3840, 2160))
    assert QImage(str(out)).size().toTuple() == (3840, 2160)
    with pytest.raises(KeyError, match="no scene 'names'"):
        PresentationWindow().show_scene("names")


def test_the_scene_list_command(capsys) -> None:
    from console.cli import main

    assert main(["snapshot", "--scene", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == list(SCENE_NAMES)


def test_a_scene_shown_by_name_keeps_its_place_in_the_playlist(qtbot, make_frame) -> None:
    """A snapshot of one scene, or a jump to it, shows the dots of the whole show with that
    scene's own dot filled, not the scene moved to the front."""
    clock, wall = Clock(1000.0), Clock(make_frame().time)
    settings = PresentationSettings(scenes=(SceneSpec("headline", 20.0), SceneSpec("health", 10.0),
                                            SceneSpec("tenants", 10.0)))
    w = make_window(qtbot, clock, wall, settings)
    w.show_frame(seeing(make_frame()))
    w.show_scene("tenants", animate=False)
    assert w.current_scene == "tenants"
    assert w.position_label.text() == "\u25cb\u25cb\u25cf"

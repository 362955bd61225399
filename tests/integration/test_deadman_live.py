"""The dead-man's switch against the real Prometheus and Alertmanager: the Watchdog rule
shipped in resources/prometheus/console-rules.yml reaches the console through both paths, so a
healthy live pipeline is not called blind, and a watchdog name that never fires is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import load_settings
from console.deadman import DeadmanSettings, assess
from console.engine import Engine
from console.model import Frame

from .live import Stack, wait_until


@pytest.fixture
def live_frame(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    engines: list[Engine] = []

    def start(with_alertmanager: bool) -> Frame:
        text = ("schema_version = 1\n[[clusters]]\nname = \"lab\"\n"
                f"[clusters.prometheus]\nurl = \"{stack.urls['prometheus']}\"\ninterval_s = 1\n")
        if with_alertmanager:
            text += f"[clusters.alertmanager]\nurls = [\"{stack.urls['alertmanager']}\"]\ninterval_s = 1\n"
        path = tmp_path / f"deadman-{with_alertmanager}.toml"
        path.write_text(text)
        eng = Engine(load_settings(path), refresh_s=0.2, detect=False)
        engines.append(eng)
        eng.start()

        def ready() -> Frame | None:
            f = eng.latest_frame()
            return f if f is not None and any(a.name == "Watchdog" for a in f.alerts) else None

        return wait_until("the Watchdog alert in a live frame", ready, timeout_s=60.0)

    yield start
    for e in engines:
        e.stop()


@pytest.mark.parametrize("with_alertmanager", [True, False], ids=["alertmanager", "prometheus-alerts"])
def test_the_shipped_watchdog_keeps_the_live_console_seeing(live_frame, with_alertmanager) -> None:
    frame = live_frame(with_alertmanager)
    [dog] = [a for a in frame.alerts if a.name == "Watchdog"]
    assert dog.state == "firing" and dog.labels.get("severity") == "info"
    assert not assess(frame).blind
    verdict = assess(frame, DeadmanSettings(watchdog="NoSuchWatchdog"))
    assert verdict.blind and "NoSuchWatchdog alert is missing" in verdict.text

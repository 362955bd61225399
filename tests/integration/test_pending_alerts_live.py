"""Pending alerts from the live Prometheus, through the console's whole pipeline (config ->
sources -> poller threads -> state -> frame): the stack's AiscStackPendingAlert is always true
with ``for: 1h``, so Prometheus holds it pending and Alertmanager never sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import load_settings
from console.engine import Engine
from console.model import Alert, Frame, Severity, SourceState
from console.sources.prometheus import PrometheusClient
from console.sources.prometheus_alerts import PrometheusAlertsSource

from .live import Stack, wait_until

PENDING = "AiscStackPendingAlert"  # scripts/stack/test-rules.yml: vector(1), for: 1h, gpu03 GPU 4
FIRING = "AiscStackTestAlert"  # vector(1), no for:, hostname gpu02


def _config(stack: Stack, folder: Path, with_alertmanager: bool) -> Path:
    text = ("schema_version = 1\n[[clusters]]\nname = \"lab\"\n"
            f"[clusters.prometheus]\nurl = \"{stack.urls['prometheus']}\"\ninterval_s = 1\n")
    if with_alertmanager:
        text += f"[clusters.alertmanager]\nurls = [\"{stack.urls['alertmanager']}\"]\ninterval_s = 1\n"
    p = folder / ("with-am.toml" if with_alertmanager else "prometheus-only.toml")
    p.write_text(text)
    return p


@pytest.fixture
def engine_for(stack: Stack, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the actions journal
    engines: list[Engine] = []

    def start(with_alertmanager: bool) -> Engine:
        settings = load_settings(_config(stack, tmp_path, with_alertmanager))
        eng = Engine(settings, refresh_s=0.2, detect=False)
        engines.append(eng)
        eng.start()
        return eng

    yield start
    for e in engines:
        e.stop()


def _named(frame: Frame, name: str) -> list[Alert]:
    return [a for a in frame.alerts if a.name == name]


def test_pending_alert_listed_with_alertmanagers_firing_ones(engine_for) -> None:
    eng = engine_for(True)

    def ready() -> Frame | None:
        f = eng.latest_frame()
        return f if f is not None and _named(f, PENDING) and _named(f, FIRING) else None

    f = wait_until(f"{PENDING} pending and {FIRING} firing in a frame", ready, timeout_s=90)
    (pending,) = _named(f, PENDING)
    assert (pending.state, pending.source, pending.severity) == ("pending", "prometheus-alerts",
                                                                 Severity.INFO)
    assert (pending.node, pending.gpu) == ("gpu03", 4)
    assert pending.summary == "Pending test alert of the loopback stack on gpu03 GPU 4"
    assert pending.starts_at <= f.time
    # the firing alert is listed once, as Alertmanager's (with the external label)
    (firing,) = _named(f, FIRING)
    assert (firing.state, firing.source) == ("firing", "alertmanager")
    assert firing.labels["cluster"] == "aisc-lab"
    assert not any(a.source == "prometheus-alerts" and a.state == "firing" for a in f.alerts)
    assert f.kpis.alerts_firing == sum(a.state == "firing" for a in f.alerts)
    status = {s.name: s for s in f.sources}
    assert set(status) == {"prometheus", "alertmanager", "prometheus-alerts"}
    row = status["prometheus-alerts"]
    assert (row.kind, row.state, row.error) == ("alerts", SourceState.OK, None)
    assert row.last_success is not None
    # and Alertmanager itself has never heard of the pending alert
    am = next(s for s in eng.sources if s.name == "alertmanager")
    (upd,) = am.fetch()
    assert not [a for a in upd.alerts if a.name == PENDING]


def test_without_alertmanager_prometheus_firing_alerts_are_shown(engine_for) -> None:
    eng = engine_for(False)

    def ready() -> Frame | None:
        f = eng.latest_frame()
        return f if f is not None and _named(f, PENDING) and _named(f, FIRING) else None

    f = wait_until(f"{PENDING} and {FIRING} from Prometheus alone", ready, timeout_s=90)
    (firing,) = _named(f, FIRING)
    assert (firing.state, firing.source, firing.node) == ("firing", "prometheus-alerts", "gpu02")
    assert "cluster" not in firing.labels  # Prometheus' own copy, before external labels
    assert _named(f, PENDING)[0].state == "pending"
    assert f.kpis.alerts_firing >= 1
    assert {s.name for s in f.sources} == {"prometheus", "prometheus-alerts"}


def test_unknown_path_on_the_real_server_is_a_classified_404(stack: Stack) -> None:
    """A URL missing the server's path prefix: Prometheus answers 404, said in words."""
    from console.sources.base import ErrorKind, SourceError

    src = PrometheusAlertsSource(PrometheusClient.from_url(stack.urls["prometheus"] + "/nope",
                                                           timeout=10))
    try:
        with pytest.raises(SourceError) as ei:
            src.fetch()
    finally:
        src.close()
    assert ei.value.kind is ErrorKind.HTTP and ei.value.status == 404
    assert "alerts = false" in ei.value.message

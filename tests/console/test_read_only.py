"""Read-only mode: no write request leaves the console, proven by a server that records them all.

The setting (``read_only`` at the top level or per cluster), ``--read-only`` and presentation
mode all end in `ClusterSettings.read_only`, which the engine hands to `Actions`; there every
action is refused with a worded reason before any client is called. The recording server is the
proof: the same six actions sent through the same engine without read-only reach it as POST and
DELETE requests, and with read-only nothing reaches it at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console import cli
from console.actions import ACTION_NAMES, READ_ONLY_REASON, ActionResult, Actions
from console.config import (AlertmanagerSettings, ClusterSettings, ConfigError, Settings,
                            SlurmSettings, parse_settings, read_only_settings)
from console.engine import Engine
from console.journal import Journal
from console.model import Alert, Matcher, Severity
from console.secrets import MemorySecretStore, SecretResolver

T0 = 1_800_000_000.0


class Recorder:
    """A loopback HTTP server that records every request (method, path) and answers as
    Alertmanager and slurmrestd would to a successful write, so that writes which are sent
    succeed and the control run can tell "sent" from "refused"."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with recorder._lock:
                    recorder.requests.append((self.command, self.path))
                body = {"silenceID": "rec-1"} if self.path.endswith("/silences") else {}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def writes(self) -> list[tuple[str, str]]:
        with self._lock:
            return [r for r in self.requests if r[0] not in ("GET", "HEAD")]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def settings_for(url: str, *, read_only: bool) -> Settings:
    cluster = ClusterSettings(
        name="lab", read_only=read_only,
        alertmanager=AlertmanagerSettings(url=url, urls=(url,), timeout_s=5.0),
        slurm=SlurmSettings(url=url, api_version="v0.0.40", auth="slurm_jwt", user="ops",
                            timeout_s=5.0))
    return Settings(clusters=(cluster,))


def alert() -> Alert:
    labels = {"alertname": "GpuXidError", "Hostname": "gpu04", "gpu": "2", "severity": "warning"}
    return Alert("f1", "GpuXidError", Severity.WARNING, "firing", T0 - 60, labels=labels,
                 source="alertmanager")


def attempt_every_action(actions: Any) -> list[ActionResult]:
    """Each of the six operator actions once, as the panels would call them."""
    futures = [
        actions.acknowledge(alert(), "looking", duration_s=600),
        actions.create_silence((Matcher("Hostname", "gpu04"),), 600, "ops", "maintenance"),
        actions.expire_silence("rec-1"),
        actions.drain_node("gpu04", "XID 79"),
        actions.resume_node("gpu04"),
        actions.cancel_job(42),
    ]
    return [f.result(timeout=30) for f in futures]


def engine_for(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the journal goes here
    secrets = SecretResolver(MemorySecretStore({"lab/slurm": "jwt-token"}), environ={})
    return Engine(settings, secrets=secrets, detect=False)


def test_without_read_only_every_action_reaches_the_recording_server(
        recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the recorder sees the writes, so its silence below means something."""
    engine = engine_for(settings_for(recorder.url, read_only=False), tmp_path, monkeypatch)
    assert engine.actions is not None
    assert engine.actions.capabilities() == dict.fromkeys(ACTION_NAMES)
    results = attempt_every_action(engine.actions)
    engine.stop()
    assert [r.ok for r in results] == [True] * 6, [r.message for r in results]
    assert sorted(recorder.writes()) == sorted([
        ("POST", "/api/v2/silences"), ("POST", "/api/v2/silences"),
        ("DELETE", "/api/v2/silence/rec-1"),
        ("POST", "/slurm/v0.0.40/node/gpu04"), ("POST", "/slurm/v0.0.40/node/gpu04"),
        ("DELETE", "/slurm/v0.0.40/job/42")])


def test_in_read_only_mode_no_request_leaves_the_console(
        recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(settings_for(recorder.url, read_only=True), tmp_path, monkeypatch)
    assert engine.actions is not None
    assert engine.actions.capabilities() == dict.fromkeys(ACTION_NAMES, READ_ONLY_REASON)
    results = attempt_every_action(engine.actions)
    engine.stop()
    assert [(r.action, r.ok, r.message) for r in results] == [
        (name, False, READ_ONLY_REASON) for name in ACTION_NAMES]
    assert recorder.writes() == []
    assert recorder.requests == []  # not even a version probe: nothing was sent at all
    # Every refused attempt is still journalled, with its reason.
    recs = Journal(tmp_path / "data" / "aisc-console" / "journal.jsonl").records()
    outcomes = [r for r in recs if r["event"] == "outcome"]
    assert sorted(r["action"] for r in outcomes) == sorted(ACTION_NAMES)
    assert {(r["ok"], r["message"]) for r in outcomes} == {(False, READ_ONLY_REASON)}


def test_read_only_refuses_before_any_client_is_called(tmp_path: Path) -> None:
    """Whatever the client is, it is never touched: the refusal comes first."""
    calls: list[str] = []

    class Anything:
        """Offers every method (so it is a target of every action) and records any call."""

        def __getattr__(self, name: str) -> Any:
            def method(*args: Any, **kwargs: Any) -> Any:
                calls.append(name)
                raise AssertionError(f"{name} called in read-only mode")
            return method

    sources = [type("S", (), {"name": "x", "client": Anything()})()]
    actions = Actions(sources, Journal(tmp_path / "j.jsonl"), read_only=True)
    results = attempt_every_action(actions)
    actions.close()
    assert {r.message for r in results} == {READ_ONLY_REASON}
    assert calls == []
    assert READ_ONLY_REASON.startswith("read-only mode: ")


def test_the_reason_is_in_words() -> None:
    assert READ_ONLY_REASON == ("read-only mode: this console sends no changes to Alertmanager "
                                "or Slurm (read_only in the config, --read-only, or presentation "
                                "mode)")


# --- the setting ------------------------------------------------------------------------------


def raw(**top: Any) -> dict[str, Any]:
    clusters = top.pop("clusters", [{"name": "a", "sim": {}}, {"name": "b", "sim": {}}])
    return {"clusters": clusters, **top}


def test_read_only_is_off_by_default() -> None:
    assert [c.read_only for c in parse_settings(raw()).clusters] == [False, False]


def test_the_top_level_key_makes_every_cluster_read_only() -> None:
    assert [c.read_only for c in parse_settings(raw(read_only=True)).clusters] == [True, True]


def test_a_cluster_can_be_read_only_alone() -> None:
    s = parse_settings(raw(clusters=[{"name": "a", "sim": {}, "read_only": True},
                                     {"name": "b", "sim": {}}]))
    assert [c.read_only for c in s.clusters] == [True, False]


@pytest.mark.parametrize("where", ["top", "cluster"])
def test_read_only_must_be_a_boolean(where: str) -> None:
    bad = (raw(read_only="yes") if where == "top"
           else raw(clusters=[{"name": "a", "sim": {}, "read_only": 1}]))
    with pytest.raises(ConfigError, match="read_only: expected bool"):
        parse_settings(bad)


def test_read_only_settings_covers_every_cluster() -> None:
    s = read_only_settings(parse_settings(raw()))
    assert [c.read_only for c in s.clusters] == [True, True]


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    (["--demo", "status"], False),
    (["--demo", "--read-only", "status"], True),
    (["--demo", "status", "--read-only"], True),
])
def test_the_read_only_option(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                              expected: bool) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(cli, "cmd_status", lambda args, settings: seen.append(settings) or 0)
    assert cli.main(argv) == 0
    assert [c.read_only for c in seen[0].clusters] == [expected]


@pytest.mark.parametrize("argv", [["--demo", "--presentation"],
                                  ["--demo", "snapshot", "--out", "x.png", "--presentation"]])
def test_presentation_mode_is_always_read_only(monkeypatch: pytest.MonkeyPatch,
                                               argv: list[str]) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(cli, "cmd_gui", lambda args, settings: seen.append(settings) or 0)
    monkeypatch.setattr(cli, "cmd_snapshot", lambda args, settings: seen.append(settings) or 0)
    assert cli.main(argv) == 0
    assert [c.read_only for c in seen[0].clusters] == [True]


def test_the_gui_without_presentation_is_not_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(cli, "cmd_gui", lambda args, settings: seen.append(settings) or 0)
    assert cli.main(["--demo"]) == 0
    assert [c.read_only for c in seen[0].clusters] == [False]


def test_a_read_only_cluster_of_a_fleet_keeps_its_neighbours_writable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per cluster means per engine: the engine of the read-only cluster refuses, the other not."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    s = parse_settings(raw(clusters=[{"name": "a", "sim": {"nodes": 4}, "read_only": True},
                                     {"name": "b", "sim": {"nodes": 4}}]))
    engines = [Engine(s, cluster=name, detect=False) for name in ("a", "b")]
    try:
        caps = [e.actions.capabilities() if e.actions else None for e in engines]
    finally:
        for e in engines:
            e.stop()
    assert caps[0] == dict.fromkeys(ACTION_NAMES, READ_ONLY_REASON)
    assert caps[1] is not None and READ_ONLY_REASON not in caps[1].values()
    assert replace(s.clusters[1], read_only=True).read_only  # a frozen copy, not a mutation


def test_the_worker_process_engine_refuses_too(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine in a worker process builds its `Actions` from the same settings: the GUI's
    proxy gets the read-only reason as the capabilities, and an action comes back refused."""
    from console.config import demo_settings
    from console.engine_process import ProcessEngine

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = read_only_settings(demo_settings(seed=1, nodes=4, faults="none"))
    engine = ProcessEngine(settings, detect=False, autopoll=False)
    with engine:
        frame = engine.step(1)
        job = int(frame.jobs.job_id[0])
        result = engine.actions.cancel_job(job).result(timeout=30)
        caps = engine.actions.capabilities()
        assert job in {int(j) for j in engine.step(1).jobs.job_id}  # still there: not cancelled
    assert (result.ok, result.message) == (False, READ_ONLY_REASON)
    assert caps == dict.fromkeys(ACTION_NAMES, READ_ONLY_REASON)

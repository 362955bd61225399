"""Operator actions from the window with the engine in a worker process (issue 15).

Drain, resume, cancel, acknowledge, silence and expire are driven from the panels and the
drill-down windows, exactly as an operator would (only the confirmation dialogs are answered
by the test), through a real `ProcessEngine` whose child polls a recording fake slurmrestd and
Alertmanager on the loopback interface. Each action is checked twice: the request the server
received, and the audit journal the child wrote.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from console.config import AlertmanagerSettings, ClusterSettings, Settings, SlurmSettings
from console.engine import OperatorActions
from console.engine_process import ActionsProxy, ProcessEngine
from console.journal import default_journal_path
from console.model import Matcher
from widgets.bridge import EngineBridge
from widgets.main_window import MainWindow
from widgets.panel import PanelContext

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
API = "/slurm/v0.0.41"
ALERT = {
    "labels": {"alertname": "GpuXidError", "severity": "critical", "Hostname": "n01", "gpu": "3"},
    "annotations": {"summary": "XID 79 on n01 GPU 3"}, "fingerprint": "fp-xid",
    "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T01:00:00Z",
    "updatedAt": "2026-01-01T00:00:00Z", "generatorURL": "", "receivers": [{"name": "ops"}],
}


class FakeSite:
    """slurmrestd (v0.0.41, recorded answers) and Alertmanager on one loopback port, recording
    every request that changes something. Silences are kept, so the alert shows as silenced
    after an acknowledgement, as a real Alertmanager would show it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.silences: dict[str, dict[str, Any]] = {}
        self._ids = (f"s-{i}" for i in itertools.count(1))
        self._lock = threading.Lock()
        nodes = (FIXTURES / "v0.0.41_nodes.json").read_bytes()
        jobs = (FIXTURES / "v0.0.41_jobs.json").read_bytes()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = urlsplit(self.path).path
                if path == f"{API}/nodes":
                    self._answer(200, nodes)
                elif path == f"{API}/jobs":
                    self._answer(200, jobs)
                elif path == "/api/v2/alerts":
                    self._answer(200, [site.alert()])
                elif path == "/api/v2/silences":
                    with site._lock:
                        self._answer(200, list(site.silences.values()))
                else:
                    self._answer(404, {"errors": [{"error": "not found"}]})

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with site._lock:
                    site.requests.append(("POST", path, body))
                    if path == "/api/v2/silences":
                        sid = next(site._ids)
                        site.silences[sid] = {**body, "id": sid, "status": {"state": "active"}}
                        self._answer(200, {"silenceID": sid})
                        return
                self._answer(200, {"errors": [], "warnings": []})

            def do_DELETE(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                with site._lock:
                    site.requests.append(("DELETE", path, None))
                    sid = path.rsplit("/", 1)[-1]
                    if path.startswith("/api/v2/silence/") and sid in site.silences:
                        site.silences[sid]["status"] = {"state": "expired"}
                self._answer(200, {"errors": [], "warnings": []})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def alert(self) -> dict[str, Any]:
        with self._lock:
            active = [sid for sid, s in self.silences.items() if s["status"]["state"] == "active"]
        state = {"state": "suppressed" if active else "active", "silencedBy": active,
                 "inhibitedBy": []}
        return {**ALERT, "status": state}

    def changes(self) -> list[tuple[str, str, Any]]:
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _journal_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child inherits this environment: its audit journal goes under tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))


def journal_outcomes() -> list[dict[str, Any]]:
    path = default_journal_path()
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if r["event"] == "outcome"]


def test_the_proxy_offers_every_action_of_the_contract() -> None:
    """Forwarding by name: the proxy has each action `Actions` has, with its keywords."""
    proxy = ActionsProxy(engine=None)  # type: ignore[arg-type]
    assert isinstance(proxy, OperatorActions)
    with pytest.raises(AttributeError):
        proxy.reboot_node  # noqa: B018 - not an action: no silent forwarding of typos


def test_every_action_works_from_the_window_with_a_worker_process_engine(qtbot, site) -> None:
    settings = Settings(clusters=(ClusterSettings(
        name="lab",
        slurm=SlurmSettings(url=site.url, api_version="v0.0.41", interval_s=1.0),
        alertmanager=AlertmanagerSettings(url=site.url, urls=(site.url,), interval_s=1.0)),))
    engine = ProcessEngine(settings, detect=False)
    context = PanelContext(actions=engine.actions, operator="olga")
    win = MainWindow(context, persist=False)
    qtbot.addWidget(win)
    bridge = EngineBridge(engine, win)
    bridge.frame_ready.connect(win.show_frame)
    engine.start()
    try:
        qtbot.waitUntil(lambda: win._frame is not None and bool(win._frame.alerts)
                        and "n07" in win._frame.topology.node_names
                        and engine.actions.capabilities()["drain_node"] is None,
                        timeout=60_000)

        # Drain n07 (idle) from its drill-down window.
        context.navigator.node_requested.emit("n07")
        node = win._drilldowns["node:n07"]
        node.render_now()
        node.ask_text = lambda title, text, default="": "PSU fault"
        assert node.drain()
        qtbot.waitUntil(lambda: node.last_result is not None, timeout=30_000)
        assert node.last_result.ok, node.last_result.message
        assert node.status_label.text() == "node n07 is draining (slurm)"
        assert site.changes()[-1] == ("POST", f"{API}/node/n07",
                                      {"state": ["DRAIN"], "reason": "PSU fault"})

        # Resume n03 (drained in the recorded answer).
        context.navigator.node_requested.emit("n03")
        drained = win._drilldowns["node:n03"]
        drained.render_now()
        drained.confirm = lambda title, text: True
        assert drained.resume()
        qtbot.waitUntil(lambda: drained.last_result is not None, timeout=30_000)
        assert drained.last_result.ok, drained.last_result.message
        assert site.changes()[-1] == ("POST", f"{API}/node/n03", {"state": ["RESUME"]})

        # Cancel job 101 (running) from its drill-down window.
        context.navigator.job_requested.emit(101)
        job = win._drilldowns["job:101"]
        job.render_now()
        job.confirm = lambda title, text: True
        assert job.cancel()
        qtbot.waitUntil(lambda: job.last_result is not None, timeout=30_000)
        assert job.last_result.ok, job.last_result.message
        assert site.changes()[-1] == ("DELETE", f"{API}/job/101", None)

        # Acknowledge the alert from the alerts panel: a narrow silence, "ACK! ..." comment.
        alerts = win.panels["alerts"]
        alerts.render_now()
        assert alerts.select_key("am:fp-xid")
        alerts.ask_ack = lambda row: ("swapping the GPU", 1800.0)
        assert alerts.acknowledge_selected()
        qtbot.waitUntil(lambda: alerts.last_result is not None, timeout=30_000)
        assert alerts.last_result.ok and alerts.last_result.ids == ("s-1",)
        method, path, body = site.changes()[-1]
        assert (method, path, body["createdBy"], body["comment"]) == (
            "POST", "/api/v2/silences", "olga", "ACK! swapping the GPU")
        assert body["matchers"][0] == {"name": "alertname", "value": "GpuXidError",
                                       "isRegex": False, "isEqual": True}

        # A silence from the editor, pre-filled from the alert and narrowed by the operator.
        def fill(dialog) -> bool:
            dialog.set_matchers([Matcher("alertname", "GpuXidError"), Matcher("Hostname", "n01")])
            dialog.comment_edit.setText("RMA in progress")
            dialog.set_duration(7200)
            return True

        alerts.last_result = None
        alerts.exec_silence_dialog = fill
        assert alerts.silence_selected() is not None
        qtbot.waitUntil(lambda: alerts.last_result is not None, timeout=30_000)
        assert alerts.last_result.ok and alerts.last_result.ids == ("s-2",)
        method, path, body = site.changes()[-1]
        assert (method, path, body["comment"], len(body["matchers"])) == (
            "POST", "/api/v2/silences", "RMA in progress", 2)

        # Expire: the alert shows as silenced once the engine polled again; expire from it.
        qtbot.waitUntil(lambda: any(a.silenced_by == ("s-1", "s-2") for a in win._frame.alerts),
                        timeout=30_000)
        alerts.render_now()
        assert alerts.select_key("am:fp-xid")
        alerts.last_result = None
        alerts.confirm = lambda title, text: True
        assert alerts.expire_selected_silence()
        qtbot.waitUntil(lambda: alerts.last_result is not None, timeout=30_000)
        assert alerts.last_result.ok, alerts.last_result.message
        assert site.changes()[-1] == ("DELETE", "/api/v2/silence/s-1", None)

        # The child journalled every outcome, with the operator at the window as author.
        qtbot.waitUntil(lambda: len(journal_outcomes()) == 6, timeout=10_000)
        outcomes = journal_outcomes()
        assert [(r["action"], r["target"], r["operator"], r["ok"]) for r in outcomes] == [
            ("drain_node", "n07", "olga", True),
            ("resume_node", "n03", "olga", True),
            ("cancel_job", "101", "olga", True),
            ("acknowledge", outcomes[3]["target"], "olga", True),
            ("create_silence", '{alertname="GpuXidError", Hostname="n01"}', "olga", True),
            ("expire_silence", "s-1", "olga", True),
        ]
        assert outcomes[0]["comment"] == "PSU fault"
        assert outcomes[3]["target"].startswith('{alertname="GpuXidError"')
    finally:
        bridge.close()
        engine.stop()

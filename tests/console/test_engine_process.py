"""The engine in a worker process: same figures as in-process, clean exits, errors, actions."""

from __future__ import annotations

import inspect
import multiprocessing as mp
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from console.actions import ACTION_NAMES, Actions
from console.config import ClusterSettings, PrometheusSettings, Settings, demo_settings
from console.engine import (Engine, EngineApi, EngineState, EngineStatus, OperatorActions,
                            run_sync)
from console.engine_process import (EngineProcessError, ProcessEngine, exit_words, make_engine,
                                    restart_delay, wants_process)
from console.model import Frame
from console.secrets import MemorySecretStore, SecretResolver


@pytest.fixture(autouse=True)
def _journal_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child writes its action journal under XDG_DATA_HOME; keep it out of the real home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _assert_gone(engine: ProcessEngine, pid: int) -> None:
    assert mp.active_children() == []
    # the pid may only linger as a zombie of ours: join() has reaped it, so it must be gone
    assert not _pid_alive(pid)


def test_step_frames_equal_the_thread_engines_figures() -> None:
    settings = demo_settings(seed=3, nodes=12, faults="none")
    expected_first = run_sync(Engine(settings, detect=False), 1)
    expected_frame = run_sync(Engine(settings, detect=False), 3)

    engine = ProcessEngine(settings, detect=False, autopoll=False)
    with engine:
        first = engine.step(1)
        frame = engine.step(2)
        assert engine.latest_frame() is frame
    assert first.kpis == expected_first.kpis
    assert frame.seq == expected_frame.seq == 3
    assert frame.kpis == expected_frame.kpis
    assert frame.topology.node_names == expected_frame.topology.node_names
    np.testing.assert_array_equal(frame.gpu.health, expected_frame.gpu.health)
    np.testing.assert_array_equal(frame.jobs.job_id, expected_frame.jobs.job_id)
    assert [a.name for a in frame.alerts] == [a.name for a in expected_frame.alerts]


def test_polling_engine_delivers_frames_to_subscribers_and_stops_cleanly() -> None:
    engine = ProcessEngine(demo_settings(seed=1, nodes=8, faults="none"), detect=False)
    seen: list[Frame] = []
    got = threading.Event()

    def on_frame(frame: Frame) -> None:
        seen.append(frame)
        got.set()

    engine.subscribe(on_frame)
    engine.start()
    try:
        ready = engine.wait_ready(timeout=30)
        assert ready.kpis.gpus_total == 64
        assert all(s.last_attempt is not None for s in ready.sources)
        before = ready.seq
        engine.poll_now()
        later = engine.wait_frames(1, timeout=30)
        assert later.seq > before
        assert got.wait(10) and seen[-1].seq >= before
        pid = engine.pid
        assert pid is not None and _pid_alive(pid)
    finally:
        engine.stop()
    _assert_gone(engine, pid)
    assert engine.error is None


def test_stop_kills_a_child_that_ignores_the_request() -> None:
    engine = ProcessEngine(demo_settings(seed=1, nodes=4, faults="none"), detect=False,
                           autopoll=False)
    engine.start()
    engine.step(1)
    pid = engine.pid
    assert pid is not None
    os.kill(pid, 19)  # SIGSTOP: it can no longer read "stop"; stop() must escalate
    engine.stop(timeout_s=0.5)
    _assert_gone(engine, pid)


def _bad_secrets() -> object:
    raise RuntimeError("keyring exploded")


def test_child_failure_is_reported_in_words() -> None:
    engine = ProcessEngine(demo_settings(nodes=4), secrets_factory=_bad_secrets, restart=False)
    errors: list[str] = []
    engine.subscribe_errors(errors.append)
    with engine:
        with pytest.raises(EngineProcessError, match="RuntimeError: keyring exploded"):
            engine.wait_frames(1, timeout=30)
        assert engine.error == "RuntimeError: keyring exploded"
    assert errors == ["RuntimeError: keyring exploded"]
    assert mp.active_children() == []


def test_config_error_in_the_child_comes_back_as_a_config_message() -> None:
    cluster = ClusterSettings(name="lab", prometheus=PrometheusSettings(url="ftp://nowhere"))
    engine = ProcessEngine(Settings(clusters=(cluster,)), detect=False)
    with engine:
        with pytest.raises(EngineProcessError, match="must start with http"):
            engine.wait_ready(timeout=30)


def test_a_child_that_dies_is_reported_and_actions_fail_softly() -> None:
    engine = ProcessEngine(demo_settings(seed=1, nodes=4, faults="none"), detect=False,
                           autopoll=False, restart=False)
    with engine:
        engine.step(1)
        pid = engine.pid
        assert pid is not None
        os.kill(pid, 9)
        with pytest.raises(EngineProcessError, match="ended unexpectedly"):
            engine.wait_frames(1, timeout=30)
        result = engine.actions.cancel_job(1).result(timeout=10)
        assert not result.ok
        assert "ended unexpectedly" in result.message


def test_acknowledge_through_the_proxy_creates_a_silence_seen_in_a_later_frame() -> None:
    settings = demo_settings(seed=5, nodes=16, faults="all", speed=600.0)
    engine = ProcessEngine(settings, detect=False, autopoll=False)
    with engine:
        frame = engine.step(1)
        for _ in range(30):
            if any(a.source == "simulator" for a in frame.alerts):
                break
            frame = engine.step(1)
        alert = next(a for a in frame.alerts if a.source == "simulator")
        assert engine.actions.capabilities()["acknowledge"] is None
        result = engine.actions.acknowledge(alert, "looking at it", duration_s=600.0,
                                            author="alice").result(timeout=30)
        assert result.ok, result.message
        assert len(result.ids) == 1
        later = engine.step(1)
        silence = next(s for s in later.silences if s.id == result.ids[0])
        assert silence.comment == "ACK! looking at it"
        assert silence.created_by == "alice"
        expired = engine.actions.expire_silence(result.ids[0]).result(timeout=30)
        assert expired.ok, expired.message


def test_step_is_refused_while_the_poller_runs() -> None:
    engine = ProcessEngine(demo_settings(seed=1, nodes=4, faults="none"), detect=False)
    with engine:
        engine.wait_frames(1, timeout=30)
        with pytest.raises(EngineProcessError, match="autopoll=False"):
            engine.step(1)


def test_make_engine_chooses_by_size_endpoints_and_secrets() -> None:
    small, big = demo_settings(nodes=1024), demo_settings(nodes=1025)
    assert not wants_process(small.cluster()) and wants_process(big.cluster())
    live = Settings(clusters=(ClusterSettings(
        name="lab", prometheus=PrometheusSettings(url="http://prom:9090")),))
    assert wants_process(live.cluster())
    assert isinstance(make_engine(small, mode="auto"), Engine)
    assert isinstance(make_engine(big, mode="auto"), ProcessEngine)
    assert isinstance(make_engine(live, mode="auto"), ProcessEngine)
    assert isinstance(make_engine(big, mode="thread"), Engine)
    assert isinstance(make_engine(small, mode="process"), ProcessEngine)
    in_memory = SecretResolver(MemorySecretStore({"lab/prometheus": "s3cret"}), environ={})
    assert isinstance(make_engine(live, secrets=in_memory, mode="auto"), Engine)
    assert isinstance(make_engine(live, secrets=SecretResolver(None), mode="auto"), ProcessEngine)
    with pytest.raises(ValueError):
        make_engine(small, mode="fork")


def test_a_killed_child_is_restarted_and_frames_continue() -> None:
    engine = ProcessEngine(demo_settings(seed=1, nodes=4, faults="none"), detect=False,
                           autopoll=False, restart_delays_s=(0.2,))
    statuses: list[EngineStatus] = []
    restarted = threading.Event()

    def record(status: EngineStatus) -> None:
        statuses.append(status)
        if status.restarts:
            restarted.set()

    engine.subscribe_status(record)
    with engine:
        first = engine.step(2)
        pid = engine.pid
        assert pid is not None and engine.latest_pid == pid
        assert engine.engine_status() == EngineStatus(EngineState.RUNNING, pid=pid)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(EngineProcessError, match="killed by SIGKILL"):
            engine.wait_frames(1, timeout=30)
        # The new child takes commands once it is ready; the frame count goes on from where
        # the dead one left it.
        assert restarted.wait(30)
        frame = None
        pause = threading.Event()  # never set: a bounded pause between attempts
        for _ in range(240):
            try:
                frame = engine.step(1)
                break
            except EngineProcessError:  # the new child is not ready yet
                pause.wait(0.25)
        assert frame is not None
        assert frame.seq == first.seq + 1
        assert engine.latest_pid not in (None, pid)
        assert engine.error is None and engine.restarts == 1
    states = [(s.state, s.restarts) for s in statuses]
    assert states[0] == (EngineState.RUNNING, 0)
    assert (EngineState.DOWN, 0) in states and states[-2:] == [(EngineState.RUNNING, 1),
                                                               (EngineState.STOPPED, 1)]
    down = next(s for s in statuses if s.down)
    assert down.message == exit_words(-signal.SIGKILL) and down.pid == pid
    assert down.retry_at is not None and down.down_since is not None
    assert mp.active_children() == []


def test_restart_waits_grow_and_are_capped() -> None:
    assert [restart_delay(n) for n in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert [restart_delay(n, (0.5, 3.0)) for n in (1, 2, 3)] == [0.5, 3.0, 3.0]


def test_a_child_that_keeps_failing_is_retried_and_reported_once() -> None:
    engine = ProcessEngine(demo_settings(nodes=4), secrets_factory=_bad_secrets,
                           restart_delays_s=(0.1,))
    errors: list[str] = []
    seen: list[EngineStatus] = []
    third = threading.Event()

    def record(status: EngineStatus) -> None:
        seen.append(status)
        if status.restarts >= 3:
            third.set()

    engine.subscribe_errors(errors.append)
    engine.subscribe_status(record)
    with engine:
        assert third.wait(60)
        assert engine.error == "RuntimeError: keyring exploded"
    assert errors == ["RuntimeError: keyring exploded"]  # one outage, one report
    down = [s for s in seen if s.down]
    assert {s.message for s in down} == {"RuntimeError: keyring exploded"}
    assert len({s.down_since for s in down}) == 1  # the outage is counted from its start
    assert seen[-1].state is EngineState.STOPPED
    assert mp.active_children() == []


def test_exit_words_name_the_signal_or_the_code() -> None:
    assert exit_words(-9) == ("its worker process ended unexpectedly, killed by SIGKILL (a crash, "
                              "or the out-of-memory killer)")
    assert exit_words(-15) == "its worker process ended unexpectedly, killed by SIGTERM"
    assert exit_words(3) == "its worker process ended unexpectedly (exit code 3)"
    assert exit_words(None) == "its worker process ended unexpectedly"


def _params(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name != "self"]


def test_the_actions_contract_matches_actions_and_the_proxy_forwards_it_all() -> None:
    """`OperatorActions` is what panels call: `Actions` must have each method with the same
    parameters, and the worker-process engine's proxy forwards every action by name."""
    contract = [n for n in dir(OperatorActions) if not n.startswith("_")]
    assert sorted(contract) == sorted((*ACTION_NAMES, "capabilities"))
    for name in contract:
        assert _params(getattr(Actions, name)) == _params(getattr(OperatorActions, name)), name
    engine = ProcessEngine(demo_settings(nodes=4))
    assert isinstance(engine.actions, OperatorActions)
    assert isinstance(engine, EngineApi) and isinstance(Engine(demo_settings(nodes=4)), EngineApi)
    calls: list[tuple] = []
    engine._call = lambda name, args, kwargs=None: calls.append((name, args, kwargs))  # type: ignore[method-assign]
    engine.actions.drain_node("n01", "PSU", author="olga")
    engine.actions.cancel_job(7, author="olga")
    engine.actions.expire_silence("s-1", author="olga")
    engine.actions.create_silence(iter(["m"]), 60.0, "olga", "why")
    assert calls == [("drain_node", ("n01", "PSU"), {"author": "olga"}),
                     ("cancel_job", (7,), {"author": "olga"}),
                     ("expire_silence", ("s-1",), {"author": "olga"}),
                     ("create_silence", (("m",), 60.0, "olga", "why"), {})]


def _writable_arrays(frame: Frame) -> list[str]:
    """Dotted names of every numpy array of a frame that can still be written."""
    out: list[str] = []
    parts = {"frame": frame, "topology": frame.topology, "gpu": frame.gpu, "nodes": frame.nodes,
             "jobs": frame.jobs, "tenants": frame.tenants, "history": frame.history}
    for prefix, obj in parts.items():
        for name in obj.__dataclass_fields__:
            value = getattr(obj, name)
            values = value.items() if isinstance(value, dict) else [(name, value)]
            for key, v in values:
                if isinstance(v, np.ndarray) and v.flags.writeable:
                    out.append(f"{prefix}.{key}")
    return out


def test_published_frames_are_read_only_in_both_engines() -> None:
    settings = demo_settings(seed=3, nodes=12, faults="none")
    thread_frame = run_sync(Engine(settings, detect=False), 2)
    assert _writable_arrays(thread_frame) == []
    with pytest.raises(ValueError, match="read-only"):
        thread_frame.gpu.util[0] = 1.0  # a panel cannot change what the others see
    engine = ProcessEngine(settings, detect=False, autopoll=False)
    with engine:
        frame = engine.step(2)
        assert _writable_arrays(frame) == []  # unpickled arrays are writeable unless frozen
        with pytest.raises(ValueError, match="read-only"):
            frame.jobs.job_id[0] = 7

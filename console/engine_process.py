"""The engine in a worker process, behind the same interface as the in-process `Engine`.

Why a process: the GIL is held for a whole ``json.loads``, so a 50,000-job slurmrestd answer or
a 32,768-series Prometheus answer parsed in a worker *thread* stalls the GUI event loop for
hundreds of milliseconds (PERF.md). In a child process only the finished `Frame` crosses over:
numpy-backed, a few MB, unpickled in a couple of milliseconds.

Shape of it:

* the child (started with the "spawn" method: fork is unsafe once Qt has threads) builds its
  own sources from the settings, resolves its own secrets from the environment and the OS
  keyring (a secret never travels through the pipe), and runs an ordinary `Engine`;
* frames go to the parent pickled with protocol 5 by a sender thread holding only the newest
  frame, and the parent's receiver thread drains everything waiting before it unpickles, so a
  parent that falls behind gets the newest frame, never a backlog;
* operator actions are proxied: each call returns a `concurrent.futures.Future` resolved when
  the child answers, and like `console.actions.Actions` it never raises (a failure is an
  ``ActionResult`` with ``ok=False``);
* the child dies with the parent (pipe EOF, plus a parent-pid watchdog), and `stop()` ends it
  within a few seconds, escalating to SIGTERM and SIGKILL if it does not leave on its own;
* a child that dies on its own (a crash, the OOM killer) is reported at once as an
  `EngineStatus` in words, logged, and replaced by a new one after a growing wait.

No Qt here. Scripts that start a `ProcessEngine` must keep their top level under
``if __name__ == "__main__":`` (the spawn method re-imports the main module in the child).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from console.actions import ACTION_NAMES, ActionResult
from console.config import ClusterSettings, Settings
from console.engine import (Engine, EngineCommon, EngineState, EngineStatus, FrameCallback,
                            OperatorActions, StatusCallback, poll_once)
from console.frame_wire import ViewReceiver, ViewSender
from console.memory import Trimmer
from console.model import Frame, freeze_arrays

log = logging.getLogger(__name__)

#: Node count above which "auto" runs a simulated cluster in a worker process.
AUTO_PROCESS_MIN_NODES = 1024
PICKLE_PROTOCOL = 5
#: How long the child gives its engine to stop before it leaves anyway.
_CHILD_SHUTDOWN_S = 2.0
#: Waits before each restart of a worker process that died, one more per death in a row (the
#: last repeats): quick after a one-off kill, without a restart storm when it keeps dying.
RESTART_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
#: A worker that ran this long before it died starts the waits again from the first.
STABLE_RUN_S = 60.0

# Message tags (first byte of every message; the rest is a pickle).
_FRAME, _CONTROL = b"F", b"C"

ErrorCallback = Callable[[str], None]
#: What the child answers a command with: (it worked, the value or the failure in words).
_Answer = tuple[bool, Any]


class EngineProcessError(RuntimeError):
    """The worker process failed or is gone; the message is meant for the operator."""


# =============================================================================================
# Child side
# =============================================================================================


def _child_send(conn: Any, lock: threading.Lock, tag: bytes, payload: bytes) -> bool:
    try:
        with lock:
            conn.send_bytes(tag + payload)
        return True
    except (OSError, ValueError, EOFError):  # the parent went away; the main loop will notice
        return False


def _child_control(conn: Any, lock: threading.Lock, *msg: Any) -> bool:
    return _child_send(conn, lock, _CONTROL, pickle.dumps(msg, protocol=PICKLE_PROTOCOL))


class _FrameSender:
    """Holds the newest frame and ships it from its own thread, so the engine never waits on
    the pipe and a slow parent only ever gets the newest frame."""

    def __init__(self, conn: Any, lock: threading.Lock, actions: Any) -> None:
        self._conn = conn
        self._lock = lock
        self._actions = actions
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._caps: dict[str, str | None] | None = None
        self._caps_at = 0.0
        self.thread = threading.Thread(target=self._run, name="engine-sender", daemon=True)
        self._trimmer = Trimmer()  # freed frame buffers go back to the OS (console.memory)
        self._views = ViewSender()  # the accounting view goes once per read (console.frame_wire)

    def offer(self, frame: Frame) -> None:
        with self._cond:
            self._slot = frame
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                frame, self._slot = self._slot, None
            self.send_caps(force=False)
            assert frame is not None  # (the wait above ends with a frame or returns)
            view, frame = self._views.outgoing(frame)
            if view is not None and not _child_control(self._conn, self._lock, "view", view):
                return
            data = pickle.dumps(frame, protocol=PICKLE_PROTOCOL)
            if not _child_send(self._conn, self._lock, _FRAME, data):
                return
            del frame, data
            self._trimmer.maybe_trim()

    def send_caps(self, force: bool) -> None:
        """Send the actions' capabilities when they changed (checked at most every 2 s).

        The parent's proxy answers `capabilities()` from this cache, because the GUI asks
        synchronously and must never wait on the child (or on slurmrestd's version probe).
        """
        actions = self._actions
        now = time.monotonic()
        if actions is None or (not force and now - self._caps_at < 2.0):
            return
        self._caps_at = now
        try:
            caps = dict(actions.capabilities())
        except Exception:  # noqa: BLE001 - capabilities are advisory; keep the last known
            log.debug("capabilities failed", exc_info=True)
            return
        if caps != self._caps:
            self._caps = caps
            _child_control(self._conn, self._lock, "caps", caps)


def _describe(exc: BaseException) -> str:
    """Plain words for a failure in the child; `SourceError` and `ConfigError` are already."""
    from console.config import ConfigError
    from console.sources.base import SourceError

    if isinstance(exc, SourceError):
        return exc.message
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """Backstop for pipe EOF: if the parent is gone, leave at once (nobody reads our frames)."""
    while not stop.wait(0.5):
        if os.getppid() != parent_pid:
            os._exit(0)


def _unavailable(name: str, args: tuple[Any, ...], words: str) -> Any:
    target = str(getattr(args[0], "name", args[0])) if args else ""
    return ActionResult(name, target, False, words)


class _ChildRunner:
    """Everything the child does: build the engine, then serve the parent's commands."""

    def __init__(self, conn: Any, lock: threading.Lock, engine: Engine, autopoll: bool) -> None:
        self.conn = conn
        self.lock = lock
        self.engine = engine
        self.autopoll = autopoll
        self.actions = engine.actions  # built in one place (`Engine`), journal and operator too
        self.sender = _FrameSender(conn, self.lock, self.actions)
        self._rid = itertools.count(1)

    def run(self) -> None:
        self.sender.thread.start()
        self.engine.subscribe(self.sender.offer)
        self.sender.send_caps(force=True)
        _child_control(self.conn, self.lock, "ready", os.getpid(),
                       tuple(s.name for s in self.engine.sources))
        if self.autopoll:
            self.engine.start()
        while True:
            try:
                raw = self.conn.recv_bytes()
            except (EOFError, OSError):
                break
            msg = pickle.loads(raw)
            if msg[0] == "stop":
                break
            try:
                self._dispatch(msg)
            except Exception as exc:  # noqa: BLE001 - a bad command must not kill the engine
                log.exception("engine command %r failed", msg[0])
                if msg[0] in ("call", "step"):
                    _child_control(self.conn, self.lock, "reply", msg[1], False, _describe(exc))

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "poll_now":
            self.engine.poll_now()
        elif kind == "call":
            self._call(*msg[1:])
        elif kind == "step":
            _, call_id, polls = msg
            frame = self._step(int(polls))
            self.sender.offer(frame)
            _child_control(self.conn, self.lock, "reply", call_id, True, frame.seq)

    def _step(self, polls: int) -> Frame:
        """Deterministic stepping: each source fetched in turn on this thread, no poller."""
        if self.autopoll:
            raise RuntimeError("step() needs a ProcessEngine made with autopoll=False")
        engine = self.engine
        frame: Frame | None = None
        for _ in range(max(1, polls)):
            rid = next(self._rid)
            for src in engine.sources:
                engine.state.apply(poll_once(src, rid))
            frame = engine.state.build_frame()
        assert frame is not None
        return frame

    def _call(self, call_id: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        actions = self.actions
        if actions is None or not callable(getattr(actions, name, None)):
            _child_control(self.conn, self.lock, "reply", call_id, True,
                           _unavailable(name, args, "operator actions are unavailable "
                                        "in the console engine"))
            return
        result = getattr(actions, name)(*args, **kwargs)
        if not isinstance(result, Future):
            _child_control(self.conn, self.lock, "reply", call_id, True, result)
            return

        def done(f: Future[Any]) -> None:
            try:
                value, ok = f.result(), True
            except Exception as exc:  # noqa: BLE001 - the future convention is results, not raises
                value, ok = _describe(exc), False
            _child_control(self.conn, self.lock, "reply", call_id, ok, value)
            self.sender.send_caps(force=True)

        result.add_done_callback(done)

    def shutdown(self) -> None:
        self.sender.stop()
        try:
            self.engine.stop()
        finally:
            close = getattr(self.actions, "close", None)
            if callable(close):
                close()


def _child_main(conn: Any, settings: Settings, cluster: str | None, options: dict[str, Any],
                parent_pid: int) -> None:
    """Entry point of the worker process (must stay a picklable module-level function)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.basicConfig(level=options.get("log_level", logging.WARNING),
                        format="%(asctime)s %(levelname)s engine[%(process)d] %(name)s: %(message)s")
    stop_watch = threading.Event()
    threading.Thread(target=_watch_parent, args=(parent_pid, stop_watch), daemon=True,
                     name="parent-watch").start()
    lock = threading.Lock()
    try:
        factory: Callable[[], object] | None = options.get("secrets_factory")
        if factory is None:
            from console.secrets import default_resolver

            factory = default_resolver
        engine = Engine(settings, cluster=cluster, secrets=factory(),
                        refresh_s=options.get("refresh_s", 1.0), detect=options.get("detect", True))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as words
        log.debug("engine construction failed", exc_info=True)
        _child_control(conn, lock, "fatal", _describe(exc))
        stop_watch.set()
        conn.close()
        return
    runner = _ChildRunner(conn, lock, engine, bool(options.get("autopoll", True)))
    try:
        runner.run()
    except BaseException as exc:  # noqa: BLE001
        log.exception("engine process failed")
        _child_control(conn, lock, "fatal", _describe(exc))
    finally:
        stop_watch.set()
        # A fetch in flight (a 100 MB slurmrestd answer) can hold the poller for seconds; the
        # parent is waiting, and nothing we hold needs more than a bounded, best-effort close.
        closer = threading.Thread(target=runner.shutdown, name="engine-shutdown", daemon=True)
        closer.start()
        closer.join(_CHILD_SHUTDOWN_S)
        try:
            conn.close()
        except OSError:
            pass
        if closer.is_alive():
            logging.shutdown()
            os._exit(0)


# =============================================================================================
# Parent side
# =============================================================================================


class ActionsProxy:
    """Stands in for `console.actions.Actions` in the GUI process (an `OperatorActions`).

    Every action of `console.actions.ACTION_NAMES` is forwarded by name with its arguments as
    given, keywords included, so this proxy cannot drift from `Actions`: a new argument there
    works here unchanged. Arguments must pickle (model dataclasses do). Each call returns a
    `Future` resolved when the child answers; `capabilities()` answers at once from the child's
    last report, because panels ask it synchronously on the GUI thread.
    """

    def __init__(self, engine: "ProcessEngine") -> None:
        self._engine = engine
        self._caps: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"ActionsProxy(pid={self._engine.pid})"

    def capabilities(self) -> dict[str, str | None]:
        if self._caps:
            return dict(self._caps)
        return {n: "waiting for the console engine to start" for n in ACTION_NAMES}

    def __getattr__(self, name: str) -> Callable[..., Future[ActionResult]]:
        if name not in ACTION_NAMES:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")
        engine = self._engine

        def forward(*args: Any, **kwargs: Any) -> Future[ActionResult]:
            return engine._call(name, tuple(_picklable(a) for a in args),
                                {k: _picklable(v) for k, v in kwargs.items()})

        forward.__name__ = forward.__qualname__ = name
        return forward

    def close(self) -> None:
        """Nothing to release here: the child's `Actions` is closed when the engine stops."""


def _picklable(value: Any) -> Any:
    """A generator of matchers (the silence editor's) becomes a tuple; the rest as given."""
    return tuple(value) if isinstance(value, Iterator) else value


def exit_words(code: int | None) -> str:
    """Why a worker process ended, from its exit code, in words for a banner and the log."""
    if code is None:
        return "its worker process ended unexpectedly"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (a crash, or the out-of-memory killer)" if -code == signal.SIGKILL else ""
        return f"its worker process ended unexpectedly, killed by {name}{hint}"
    return f"its worker process ended unexpectedly (exit code {code})"


def restart_delay(deaths_in_a_row: int, delays: Sequence[float] = RESTART_DELAYS_S) -> float:
    """The wait before restarting after the n-th death in a row (1-based); the last repeats."""
    return float(delays[min(max(1, deaths_in_a_row), len(delays)) - 1])


@dataclass
class _Worker:
    """One spawned child and its pipe; a restart makes a new one (the old one is dead)."""

    generation: int
    proc: BaseProcess
    conn: Connection
    started: float  # time.monotonic() at spawn
    seq_offset: int  # frames built by the workers before this one (frame seq continues)
    receiver: threading.Thread | None = None
    views: ViewReceiver = dataclasses.field(default_factory=ViewReceiver)

    @property
    def pid(self) -> int | None:
        try:
            return self.proc.pid
        except ValueError:  # closed
            return None


class ProcessEngine(EngineCommon):
    """`Engine`'s interface, with the engine running in a spawned worker process.

    Subscribers are called on the parent's receiver thread (never the GUI thread), with the
    newest frame only. ``secrets_factory`` is a picklable zero-argument callable run in the
    child to build its secret resolver (default `console.secrets.default_resolver`).
    ``autopoll=False`` starts no poller: frames then come only from `step()` (tests,
    benchmarks).

    A worker that dies (a crash, the OOM killer) is reported at once through `engine_status`
    and `subscribe_errors`, logged, and, with ``restart`` (the default), replaced after
    ``restart_delays_s`` (the wait grows with each death in a row; the last one repeats).
    The frame count continues across restarts, and the last frame stays the latest until the
    new worker delivers one.
    """

    def __init__(self, settings: Settings, *, cluster: str | None = None,
                 secrets_factory: Callable[[], object] | None = None, refresh_s: float = 1.0,
                 detect: bool = True, autopoll: bool = True, restart: bool = True,
                 restart_delays_s: Sequence[float] = RESTART_DELAYS_S) -> None:
        self.settings = settings
        self.cluster: ClusterSettings = settings.cluster(cluster)  # ConfigError here, as Engine
        self._cluster_name = cluster
        self._options: dict[str, Any] = {
            "secrets_factory": secrets_factory, "refresh_s": refresh_s, "detect": detect,
            "autopoll": autopoll, "log_level": logging.getLogger().getEffectiveLevel()}
        self._restart = restart
        self._delays = tuple(float(d) for d in restart_delays_s) or RESTART_DELAYS_S
        self._proxy = ActionsProxy(self)
        # Typed as the contract: the type checker holds the proxy to `OperatorActions`.
        self.actions: OperatorActions = self._proxy
        self._subscribers: list[FrameCallback] = []
        self._error_subscribers: list[ErrorCallback] = []
        self._status = EngineStatus(EngineState.STARTING)
        self._status_subscribers: list[StatusCallback] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        #: Serialises spawning, restarting and stopping the worker.
        self._life = threading.Lock()
        self._latest: Frame | None = None
        self._latest_pid: int | None = None
        self._error: str | None = None
        self._pending: dict[int, Future[_Answer]] = {}
        self._ids = itertools.count(1)
        self._worker: _Worker | None = None
        self._generations = itertools.count(1)
        self._deaths_in_a_row = 0
        self._restarts = 0
        self._down_since: float | None = None
        self._timer: threading.Timer | None = None
        self._started = False
        self._stopping = False
        #: seconds the receiver spent unpickling the last frame (GIL time in this process)
        self.last_receive_s = 0.0
        self._trimmer = Trimmer()  # freed frame buffers go back to the OS (console.memory)

    def __repr__(self) -> str:
        return f"ProcessEngine({self.cluster.name!r}, pid={self.pid})"

    # ------------------------------------------------------------------ lifecycle

    @property
    def pid(self) -> int | None:
        """The current worker process (after a restart, the new one)."""
        worker = self._worker
        return None if worker is None else worker.pid

    @property
    def latest_pid(self) -> int | None:
        """The worker process that built the latest frame."""
        return self._latest_pid

    @property
    def restarts(self) -> int:
        """How many times a dead worker process was replaced."""
        return self._restarts

    @property
    def error(self) -> str | None:
        """Why the worker process failed or ended unexpectedly, or None (again None once a
        restarted worker delivers frames)."""
        return self._error

    def start(self) -> None:
        with self._life:
            if self._started:
                return
            self._started = True
            self._spawn(seq_offset=0)

    def _spawn(self, seq_offset: int) -> None:
        """Start a worker process and its receiver thread (holding ``_life``)."""
        ctx = mp.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_child_main, name="aisc-engine", daemon=True,
                           args=(child_conn, self.settings, self._cluster_name,
                                 self._options, os.getpid()))
        worker = _Worker(next(self._generations), proc, parent_conn, time.monotonic(), seq_offset)
        proc.start()
        child_conn.close()  # so the child's death reads as EOF here
        self._worker = worker
        worker.receiver = threading.Thread(target=self._receive, args=(worker,),
                                           name="engine-receiver", daemon=True)
        worker.receiver.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Ask the child to leave; SIGTERM after ``timeout_s``, SIGKILL a second later."""
        with self._life:
            self._stopping = True
            if self._timer is not None:
                self._timer.cancel()
            worker = self._worker
        if worker is not None:
            self._end_worker(worker, timeout_s)
        self._fail_pending("the console engine stopped")
        if self._started:
            self._publish_status(EngineStatus(EngineState.STOPPED, restarts=self._restarts))

    def _end_worker(self, worker: _Worker, timeout_s: float) -> None:
        proc = worker.proc
        self._send_to(worker, "stop")
        try:
            proc.join(timeout_s)
            if proc.is_alive():
                log.warning("engine process %s did not stop in %.0f s; terminating", proc.pid,
                            timeout_s)
                proc.terminate()
                proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        except ValueError:  # already closed by a restart
            pass
        try:
            worker.conn.close()
        except OSError:
            pass
        receiver = worker.receiver
        if receiver is not None and receiver is not threading.current_thread():
            receiver.join(2.0)
        try:
            proc.close()
        except ValueError:
            pass

    # ------------------------------------------------------------------ frames

    def subscribe_errors(self, callback: ErrorCallback) -> None:
        """``callback(message)`` on the receiver thread when the worker process fails (once
        per outage: not again for each failed restart)."""
        with self._lock:
            self._error_subscribers.append(callback)

    def _built(self) -> int:
        """Frames built so far (from frame seq: coalesced frames count too)."""
        f = self._latest
        return 0 if f is None else f.seq

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise EngineProcessError(self._error)

    def poll_now(self) -> None:
        self._send("poll_now")

    def step(self, polls: int = 1, timeout: float = 60.0) -> Frame:
        """Fetch every source ``polls`` times in the child and return the resulting frame
        (only with ``autopoll=False``; the counterpart of `console.engine.run_sync`)."""
        worker = self._worker
        offset = 0 if worker is None else worker.seq_offset
        fut = self._request("step", (polls,))
        try:
            ok, value = fut.result(timeout)
        except TimeoutError:
            raise TimeoutError(f"no frame within {timeout:.0f} s") from None
        if not ok:
            raise EngineProcessError(str(value))
        return self._wait_built(offset + int(value), time.monotonic() + timeout, timeout)

    # ------------------------------------------------------------------ plumbing

    def _send(self, *msg: Any) -> bool:
        worker = self._worker
        return worker is not None and self._send_to(worker, *msg)

    def _send_to(self, worker: _Worker, *msg: Any) -> bool:
        data = pickle.dumps(msg, protocol=PICKLE_PROTOCOL)  # this direction carries no tag
        try:
            with self._send_lock:
                worker.conn.send_bytes(data)
            return True
        except (OSError, ValueError, EOFError):
            return False

    def _request(self, kind: str, args: tuple[Any, ...]) -> Future[_Answer]:
        """A command whose answer is (ok, value); the future resolves with that pair."""
        fut: Future[_Answer] = Future()
        call_id = next(self._ids)
        with self._lock:
            if self._error is not None or self._stopping:
                fut.set_result((False, self._error or "the console engine stopped"))
                return fut
            self._pending[call_id] = fut
        if not self._send(kind, call_id, *args):
            with self._lock:
                self._pending.pop(call_id, None)
            fut.set_result((False, self._error or "the console engine is not running"))
        return fut

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
              ) -> Future[ActionResult]:
        """An action: a future of an ``ActionResult`` that never raises."""
        out: Future[ActionResult] = Future()
        inner = self._request("call", (name, args, dict(kwargs or {})))

        def done(f: Future[_Answer]) -> None:
            ok, value = f.result()
            out.set_result(value if ok else _unavailable(name, args, str(value)))

        inner.add_done_callback(done)
        return out

    def _fail_pending(self, words: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_result((False, words))

    def _receive(self, worker: _Worker) -> None:
        """Receiver thread of one worker: drain the pipe, act on controls in order, unpickle
        only the newest frame, then hand it to the subscribers."""
        conn = worker.conn
        closed = False
        while not closed:
            batch: list[bytes] = []
            try:
                batch.append(conn.recv_bytes())
                while conn.poll(0):
                    batch.append(conn.recv_bytes())
            except (EOFError, OSError):
                closed = True  # still act on what arrived before the end (a "fatal" message)
            newest: bytes | None = None
            for raw in batch:
                if raw[:1] == _FRAME:
                    newest = raw
                else:
                    self._control(pickle.loads(raw[1:]), worker)
            if newest is not None:
                self._deliver(newest, worker)
        self._gone(worker)

    def _deliver(self, raw: bytes, worker: _Worker) -> None:
        t0 = time.perf_counter()
        frame: Frame = worker.views.incoming(pickle.loads(memoryview(raw)[1:]))
        freeze_arrays(frame)  # unpickled arrays are writeable again: published frames are not
        if worker.seq_offset:
            frame = dataclasses.replace(frame, seq=frame.seq + worker.seq_offset)
        self.last_receive_s = time.perf_counter() - t0
        with self._cond:
            if worker is not self._worker or self._stopping:
                return  # a late frame of a worker already replaced
            recovered = self._status.state is not EngineState.RUNNING
            self._latest = frame
            self._latest_pid = worker.pid
            if recovered:
                self._error = None
                down_since, self._down_since = self._down_since, None
            subs = list(self._subscribers)
            self._cond.notify_all()
        if recovered:
            if worker.generation > 1:
                after = "" if down_since is None else f" {time.time() - down_since:.0f} s after it went down"
                log.warning("console engine restarted: worker process %s delivers frames again%s",
                            worker.pid, after)
            self._publish_status(EngineStatus(EngineState.RUNNING, pid=worker.pid,
                                              restarts=self._restarts))
        for cb in subs:
            try:
                cb(frame)
            except Exception:  # noqa: BLE001 - one bad subscriber must not stop the others
                log.exception("frame subscriber failed")
        self._trimmer.maybe_trim()

    def _control(self, msg: tuple[Any, ...], worker: _Worker) -> None:
        kind = msg[0]
        if kind == "reply":
            _, call_id, ok, value = msg
            with self._lock:
                fut = self._pending.pop(call_id, None)
            if fut is not None and not fut.done():
                fut.set_result((ok, value))
        elif kind == "view":  # the accounting view that the next frames name (frame_wire)
            worker.views.received(msg[1])
        elif kind == "caps":
            self._proxy._caps = dict(msg[1])
        elif kind == "ready":
            # A restarted child serves commands again (actions, step): the failure is over
            # for callers; the status says "running" only once its first frame arrives.
            with self._cond:
                if worker is self._worker and not self._stopping:
                    self._error = None
                    self._cond.notify_all()
        elif kind == "fatal":
            self._set_error(str(msg[1]))

    def _set_error(self, words: str) -> None:
        """Record why the worker failed and tell the error subscribers (once per outage)."""
        with self._cond:
            if self._error is not None:
                return
            self._error = words
            subs = list(self._error_subscribers)
            self._cond.notify_all()
        for cb in subs:
            try:
                cb(words)
            except Exception:  # noqa: BLE001
                log.exception("error subscriber failed")

    def _gone(self, worker: _Worker) -> None:
        """A worker's pipe closed: expected after stop(), otherwise the child died."""
        with self._life:
            current = worker is self._worker and not self._stopping
        if current:
            code = None
            try:
                worker.proc.join(1.0)
                code = worker.proc.exitcode
            except ValueError:  # closed by a concurrent stop()
                pass
            self._set_error(exit_words(code))  # no-op when the child said why ("fatal")
            words = self._error or exit_words(code)
            self._fail_pending(words)
            self._after_death(worker, words)
        else:
            self._fail_pending(self._error or "the console engine stopped")
        with self._cond:
            self._cond.notify_all()

    def _after_death(self, worker: _Worker, words: str) -> None:
        """Log the death, show it in the status, and schedule the restart with backoff."""
        with self._life:
            if self._stopping or worker is not self._worker:
                return
            now = time.time()
            if time.monotonic() - worker.started >= STABLE_RUN_S:
                self._deaths_in_a_row = 0
            self._deaths_in_a_row += 1
            if self._down_since is None:
                self._down_since = now
            if not self._restart:
                log.error("console engine process %s: %s", worker.pid, words)
                status = EngineStatus(EngineState.DOWN, words, worker.pid, self._restarts,
                                      self._down_since)
            else:
                delay = restart_delay(self._deaths_in_a_row, self._delays)
                log.error("console engine process %s: %s; restarting it in %.0f s (restart %d)",
                          worker.pid, words, delay, self._restarts + 1)
                status = EngineStatus(EngineState.DOWN, words, worker.pid, self._restarts,
                                      self._down_since, now + delay)
                self._timer = threading.Timer(delay, self._restart_now, args=(worker,))
                self._timer.daemon = True
                self._timer.name = "engine-restart"
                self._timer.start()
        self._publish_status(status)

    def _restart_now(self, dead: _Worker) -> None:
        """Replace a dead worker with a new one (timer thread)."""
        with self._life:
            if self._stopping or dead is not self._worker:
                return
            try:
                dead.proc.close()
            except ValueError:
                pass
            self._restarts += 1
            log.warning("restarting the console engine (restart %d)", self._restarts)
            try:
                self._spawn(seq_offset=self._built())
                failed = None
            except Exception as exc:  # noqa: BLE001 - e.g. no memory for a new process
                failed = f"its worker process could not be restarted: {exc}"
            status = self._status
            worker = self._worker
        if failed is not None:
            self._after_death(dead, failed)
            return
        self._publish_status(EngineStatus(EngineState.DOWN, status.message, worker.pid if worker else None,
                                          self._restarts, status.down_since, time.time()))


# =============================================================================================
# Choosing
# =============================================================================================


def _secrets_stay_local(secrets: object | None) -> bool:
    """True when the child can find the same secrets itself (env + OS keyring, or none).

    A resolver over an in-memory store (tests, a login typed into a dialog) cannot be
    recreated in the child without sending the secret, so such engines stay in-process.
    """
    if secrets is None:
        return True
    from console.secrets import KeyringSecretStore, SecretResolver

    if not isinstance(secrets, SecretResolver):
        return False
    store = getattr(secrets, "_store", None)
    return (store is None or isinstance(store, KeyringSecretStore)) and \
        getattr(secrets, "_env", None) is os.environ


def wants_process(cluster: ClusterSettings) -> bool:
    """The "auto" rule: live endpoints, or a simulated cluster of more than 1,024 nodes."""
    if cluster.prometheus or cluster.alertmanager or cluster.slurm:
        return True
    return cluster.sim is not None and cluster.sim.nodes > AUTO_PROCESS_MIN_NODES


def make_engine(settings: Settings, *, cluster: str | None = None, secrets: object | None = None,
                mode: str = "auto") -> Engine | ProcessEngine:
    """An engine for ``settings``: ``mode`` "thread" (in-process), "process", or "auto".

    In a process the child resolves secrets itself (environment, then the OS keyring);
    ``secrets`` is then only used to decide: "auto" stays in-process when ``secrets`` holds
    secrets the child could not find on its own.
    """
    if mode not in ("auto", "thread", "process"):
        raise ValueError(f"mode must be 'auto', 'thread' or 'process', not {mode!r}")
    if mode == "auto":
        c = settings.cluster(cluster)
        mode = "process" if wants_process(c) and _secrets_stay_local(secrets) else "thread"
    if mode == "process":
        return ProcessEngine(settings, cluster=cluster)
    return Engine(settings, cluster=cluster, secrets=secrets)


__all__ = ["AUTO_PROCESS_MIN_NODES", "ActionsProxy", "EngineProcessError", "ProcessEngine",
           "RESTART_DELAYS_S", "exit_words", "restart_delay",
           "make_engine", "wants_process"]

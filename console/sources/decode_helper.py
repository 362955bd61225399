"""A second process that decodes runs of slurmrestd's jobs into tables (`job_stream`).

Why a process: decoding JSON holds the GIL, so a thread would take turns with the receiving
one; a process decodes on another core while this one receives and decodes the next run.

How, and why it cannot hold a poll: the runs travel through shared memory (an anonymous
``memfd`` mapped by both sides, a few fixed slots) and only a short ticket message goes over a
socket, so handing over a run costs one copy and never blocks on the helper. A run goes to the
helper only when a slot is free; the tables come back pickled (numpy columns: cheap). An
answer that does not come within `RESULT_TIMEOUT_S` marks the helper broken: the stream then
gives up and the whole answer is decoded here, so a dead or stuck helper costs time, never a
wrong table. One helper serves the whole process, one answer at a time (`acquire`), started
when first wanted and started again at most every `RESTART_AFTER_S` after it failed. It exits
when this process closes its end of the socket, which the kernel does if this process dies.

Off when this process may use only one core (it would only add copies), where ``memfd`` does
not exist, or with ``AISC_CONSOLE_DECODE_HELPER=0``.
"""

from __future__ import annotations

import atexit
import gc
import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["TableHelper", "acquire", "available", "release", "shutdown"]

#: Bytes per shared slot: a run (`job_stream.TABLE_RUN` plus what arrived with its last chunk)
#: fits; a larger one is decoded here.
SLOT_BYTES = 4 << 20
#: Slots: runs the helper may hold at once (its queue).
SLOTS = 4
#: Longest wait for one run's table once the answer is in (a run takes milliseconds).
RESULT_TIMEOUT_S = 10.0
#: Seconds before a helper that failed is started again.
RESTART_AFTER_S = 60.0
#: Longest wait for a stopping helper to exit before it is killed.
STOP_TIMEOUT_S = 2.0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _secret_name(name: str) -> bool:
    """Environment variables the helper must not inherit: it decodes bytes and needs no
    credentials (the console's own variables, and anything named like a secret)."""
    upper = name.upper()
    return upper.startswith("AISC_") or any(w in upper for w in ("TOKEN", "SECRET", "PASSW",
                                                                  "JWT", "KEY"))


def available() -> bool:
    """Whether a helper may be used in this process at all."""
    return (os.environ.get("AISC_CONSOLE_DECODE_HELPER", "1") != "0"
            and hasattr(os, "memfd_create") and _cores() >= 2)


class TableHelper:
    """The parent's handle on one helper process (used by one stream at a time)."""

    def __init__(self) -> None:
        self._fd = os.memfd_create("aisc-console-decode", os.MFD_CLOEXEC)  # passed to it alone
        os.ftruncate(self._fd, SLOT_BYTES * SLOTS)
        self._mem = mmap.mmap(self._fd, SLOT_BYTES * SLOTS)
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # the directory holding `console`
        env = {k: v for k, v in os.environ.items() if not _secret_name(k)}
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "console.sources.decode_helper", str(self._fd),
                 str(SLOT_BYTES * SLOTS), str(theirs.fileno())],
                pass_fds=(self._fd, theirs.fileno()), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, env=env, close_fds=True)
        except BaseException:
            ours.close()
            self._mem.close()
            os.close(self._fd)
            raise
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self.ready = False
        self.broken = ""  # why it is no longer used ("" while it works)
        self._free = list(range(SLOTS))
        self._slot_of: dict[int, int] = {}  # ticket -> slot it occupies
        self._mine: set[int] = set()  # tickets of the current owner's stream
        #: ticket -> its table (or `JobsRefused`), or the ValueError to raise
        self._done: dict[int, Any] = {}
        self._next = 0

    # ---- parent side ------------------------------------------------------------------------

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the helper has started (tests; a stream never waits for it)."""
        deadline = time.monotonic() + timeout_s
        while not self.ready and not self.broken:
            try:
                if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                    break  # (blocks until a message comes or the time is up)
                self._receive()
            except OSError as exc:
                self._fail(f"its socket failed ({exc})")
        return self.ready and not self.broken

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return not self.broken and self._proc.poll() is None

    def submit(self, run: memoryview) -> int | None:
        """Hand ``run`` (a JSON array of jobs) over: its ticket, or None when the helper is not
        ready, has no free slot, or the run is larger than a slot (decode it here)."""
        self._drain()
        if not self.ready or not self._free or len(run) > SLOT_BYTES or self.broken:
            return None
        slot = self._free.pop()
        off = slot * SLOT_BYTES
        self._mem[off:off + len(run)] = run
        ticket = self._next
        self._next += 1
        try:
            self._conn.send(("run", ticket, off, len(run)))
        except OSError as exc:
            self._fail(f"could not hand it a run ({exc})")
            self._free.append(slot)
            return None
        self._slot_of[ticket] = slot
        self._mine.add(ticket)
        return ticket

    def result(self, ticket: int, timeout_s: float = RESULT_TIMEOUT_S) -> Any:
        """The table of ``ticket``'s run; ValueError when the run did not decode, or the helper
        failed or did not answer in time (in each case it is not used again until restarted)."""
        deadline = time.monotonic() + timeout_s
        while ticket not in self._done:
            if self.broken:
                raise ValueError(f"the decoding helper failed: {self.broken}")
            left = deadline - time.monotonic()
            try:
                ready = left > 0 and self._conn.poll(left)
            except OSError as exc:
                self._fail(f"its socket failed ({exc})")
                continue
            if not ready:
                self._fail(f"no table within {timeout_s:g} s")
                continue
            self._receive()
        got = self._done.pop(ticket)
        self._mine.discard(ticket)
        if isinstance(got, ValueError):
            # Either the answer is broken (asked for again, as without the helper) or the
            # helper reads runs wrongly; in case it is the helper, it rests until its restart,
            # so that it cannot make every poll ask slurmrestd twice.
            self._fail(f"it refused a run ({got})")
            raise got
        return got

    def forget(self) -> None:
        """The owner's stream is done: answers still due are dropped when they come."""
        self._mine.clear()
        self._done.clear()

    def _drain(self) -> None:
        """Take every message already waiting (never blocks)."""
        try:
            while not self.broken and self._conn.poll(0):
                self._receive()
        except OSError as exc:
            self._fail(f"its socket failed ({exc})")

    def _receive(self) -> None:
        try:
            msg = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._fail(f"it exited or closed its socket ({type(exc).__name__})")
            return
        except Exception as exc:  # noqa: BLE001 - a message that does not unpickle: not ours
            self._fail(f"it sent an unreadable message ({type(exc).__name__})")
            return
        kind = msg[0]
        if kind == "ready":
            self.ready = True
            return
        ticket = msg[1]
        slot = self._slot_of.pop(ticket, None)
        if slot is not None:
            self._free.append(slot)
        if ticket in self._mine:
            self._done[ticket] = msg[2] if kind == "ok" else ValueError(
                f"a run did not decode in the helper ({msg[2]})")

    def _fail(self, why: str) -> None:
        if not self.broken:
            self.broken = why
            log.warning("decoding helper: %s; decoding in this process until it is restarted",
                        why)
        self._stop(kill=True)

    def close(self) -> None:
        """Stop the helper (it exits when its socket closes) and free the shared memory."""
        self.broken = self.broken or "closed"
        self._stop(kill=False)

    def _stop(self, kill: bool) -> None:
        try:
            self._conn.close()
        except OSError:
            pass
        if self._proc.poll() is None:
            if kill:
                self._proc.kill()
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(STOP_TIMEOUT_S)
        if not self._mem.closed:
            self._mem.close()
            os.close(self._fd)


# ---- one helper per process ---------------------------------------------------------------

_LOCK = threading.Lock()
_HELPER: TableHelper | None = None
_OWNED = False
_FAILED_AT = -RESTART_AFTER_S


def acquire() -> TableHelper | None:
    """The process's helper for one answer (started if need be), or None: not available here,
    serving another answer, or failed less than `RESTART_AFTER_S` ago."""
    global _HELPER, _OWNED, _FAILED_AT
    if not available():
        return None
    with _LOCK:
        if _OWNED:
            return None
        if _HELPER is not None and not _HELPER.alive:
            _HELPER.close()
            _HELPER = None
            _FAILED_AT = time.monotonic()
        if _HELPER is None:
            if time.monotonic() - _FAILED_AT < RESTART_AFTER_S:
                return None
            try:
                _HELPER = TableHelper()
            except OSError as exc:
                log.warning("decoding helper could not start (%s): decoding in this process", exc)
                _FAILED_AT = time.monotonic()
                return None
        _OWNED = True
        return _HELPER


def release(helper: TableHelper) -> None:
    """Give ``helper`` back after an answer (whatever became of it)."""
    global _OWNED
    with _LOCK:
        helper.forget()
        if helper is _HELPER:
            _OWNED = False


def shutdown() -> None:
    """Stop the process's helper (at exit; tests)."""
    global _HELPER, _OWNED, _FAILED_AT
    with _LOCK:
        if _HELPER is not None:
            _HELPER.close()
        _HELPER = None
        _OWNED = False
        _FAILED_AT = -RESTART_AFTER_S


atexit.register(shutdown)


# ---- the helper process ------------------------------------------------------------------


def _serve(mem_fd: int, size: int, sock_fd: int) -> None:
    """Decode each run handed over into its table until the parent closes the socket."""
    import msgspec

    from console.sources.slurm_parse import JobRow, JobsRefused, table_of_run

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    gc.disable()  # decoded jobs hold no cycles; collections would only cost time
    mem = mmap.mmap(mem_fd, size)
    conn = Connection(sock_fd)
    decode = msgspec.json.Decoder(list[JobRow]).decode
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "run":
            return
        _, ticket, off, n = msg
        try:
            with memoryview(mem) as whole, whole[off:off + n] as part:
                table = table_of_run(decode(part))
        except JobsRefused as refused:  # valid JSON the table cannot read: the answer's verdict
            reply: tuple[Any, ...] = ("ok", ticket, refused)
        except (msgspec.MsgspecError, ValueError) as exc:
            reply = ("err", ticket, f"{type(exc).__name__}: {exc}")
            gc.collect()  # an exception's traceback may hold cycles (the collector is off)
        else:
            reply = ("ok", ticket, table)
        try:
            conn.send(reply)
        except OSError:
            return


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))

"""Operator intents (acknowledge, silence, drain, resume, cancel) run off the GUI thread.

Why a class of its own: an action talks to a remote API that may hang for its whole timeout, it
must be checked against what that API version can do *before* the operator is offered it, and
every attempt must leave an audit record whatever happens. Panels call `Actions`, get a
`concurrent.futures.Future` back at once, and show the `ActionResult` words when it completes
(the future never raises: failures are results with ``ok=False``).

Targets are found by duck typing on the configured sources, so this module imports no client:
- an Alertmanager source has ``.client`` with ``create_silence(matchers, starts_at, ends_at,
  created_by, comment) -> id`` and ``expire_silence(id)`` (or ``.clients``, several
  Alertmanagers of one HA pair: the first that accepts is enough, they gossip silences);
- a Slurm source has ``.client`` with ``drain_node(name, reason)``, ``resume_node(name)``,
  ``cancel_job(job_id)``, the detected ``version``/``api_version`` and
  ``supports_node_update`` (read only once the version is known: no I/O on the GUI thread);
- the simulated cluster source has ``.cluster`` offering the same method names.

No Qt here; the worker threads never touch widgets.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from console.journal import Journal, redact_text
from console.matchers import matcher_matches, matches
from console.model import Alert, Matcher

ACK_PREFIX = "ACK! "
#: Labels that identify one alert instance, in the order they are added to an ACK silence.
ACK_IDENTITY_LABELS = ("Hostname", "hostname", "instance", "gpu", "job")
ACTION_NAMES = ("acknowledge", "create_silence", "expire_silence", "drain_node", "resume_node",
                "cancel_job")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Why every action is refused in read-only mode (shown as the disabled actions' reason).
READ_ONLY_REASON = ("read-only mode: this console sends no changes to Alertmanager or Slurm "
                    "(read_only in the config, --read-only, or presentation mode)")


# ---------------------------------------------------------------------------------------------
# Matchers: pure functions shared by the silence editor's preview and the ACK flow
# ---------------------------------------------------------------------------------------------


def ack_matchers(alert: Alert) -> tuple[Matcher, ...]:
    """The matchers of an acknowledgement: alertname plus the alert's identifying labels.

    Narrow on purpose: acknowledging "XID on gpu04 GPU 2" must not hide the same alert on
    another node.
    """
    labels = alert.labels
    out = [Matcher("alertname", labels.get("alertname") or alert.name)]
    out += [Matcher(k, labels[k]) for k in ACK_IDENTITY_LABELS if labels.get(k)]
    return tuple(out)


def alert_matches(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (Alertmanager's rule, from `console.matchers`)."""
    return matches(matchers, labels)


def matched_alerts(matchers: Sequence[Matcher], alerts: Iterable[Alert]) -> list[Alert]:
    """The alerts a silence with these matchers would catch (console anomalies excluded)."""
    return [a for a in alerts if a.source != "console" and alert_matches(matchers, a.labels)]


def validate_silence(matchers: Sequence[Matcher], duration_s: float, author: str,
                     comment: str) -> str | None:
    """Why Alertmanager would refuse this silence, in words, or None when it is acceptable.

    Checked locally so the editor can say so before sending (Alertmanager answers 400 with a
    terse message otherwise).
    """
    if not matchers:
        return "add at least one matcher"
    for m in matchers:
        if not _LABEL_NAME.match(m.name):
            return f"{m.name!r} is not a valid label name"
        if m.is_regex:
            try:
                re.compile(m.value)
            except re.error as exc:
                return f"the pattern for {m.name} is not a valid regular expression ({exc})"
    if all(matcher_matches(m, {}) for m in matchers):
        return "at least one matcher must require a non-empty value (this would silence everything)"
    if not (duration_s > 0 and math.isfinite(duration_s)):
        return "the duration must be positive"
    if not author.strip():
        return "the author is missing"
    if not comment.strip():
        return "a comment is required"
    return None


def format_matchers(matchers: Sequence[Matcher]) -> str:
    """``{alertname="X", Hostname=~"gpu0.*"}``: how Alertmanager and amtool print them."""
    def op(m: Matcher) -> str:
        return ("=~" if m.is_regex else "=") if m.is_equal else ("!~" if m.is_regex else "!=")
    return "{" + ", ".join(f'{m.name}{op(m)}"{m.value}"' for m in matchers) + "}"


# ---------------------------------------------------------------------------------------------
# Results and targets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one action, in words an operator can read in a status line."""

    action: str
    target: str
    ok: bool
    message: str
    ids: tuple[str, ...] = ()  # silence ids created


@dataclass(frozen=True)
class _Target:
    """One source that can act; `objs` are alternatives tried in order (an HA pair of
    Alertmanagers gossips silences, so one that accepts is enough)."""

    name: str
    objs: tuple[Any, ...]
    is_simulator: bool = False

    @property
    def obj(self) -> Any:
        return self.objs[0]

    def call(self, method: str, *args: Any) -> Any:
        errors: list[str] = []
        for o in self.objs:
            try:
                return getattr(o, method)(*args)
            except Exception as exc:  # noqa: BLE001 - try the next one, report all
                errors.append(_error_words(exc))
        raise _TargetFailed("; ".join(dict.fromkeys(errors)))


class _TargetFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _known_version(obj: Any) -> str:
    """The API version a Slurm client has already detected, without asking the server.

    `capabilities()` runs on the GUI thread: it must never trigger version detection (I/O).
    """
    for attr in ("api_version", "version"):
        v = getattr(obj, attr, None)
        if isinstance(v, str) and v:
            return v
    return ""


def _error_words(exc: BaseException) -> str:
    """The operator-facing words of a failure; `SourceError` messages are already plain."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return redact_text(message)
    text = str(exc) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text}" if str(exc) else text)


def _can_update_nodes(t: _Target) -> bool:
    """True when drain/resume will work on this target, judged without any I/O."""
    if t.is_simulator:
        return True
    if not _known_version(t.obj):
        return False  # unknown until the poller has detected the version
    return bool(_flag(t.obj, "supports_node_update"))


def _flag(obj: Any, name: str) -> bool | None:
    """Read a capability that a client may expose as a property, an attribute or a method."""
    value = getattr(obj, name, None)
    if callable(value):
        try:
            value = value()
        except Exception:  # noqa: BLE001 - an unanswerable capability is "unknown"
            return None
    return None if value is None else bool(value)


class Actions:
    """Runs operator actions in worker threads and journals each attempt and outcome.

    Lives in the GUI process but does its work in its executor's threads; it is safe to call
    from the GUI thread. `clock` is injectable so tests control silence start and end times.

    ``read_only``: every action is refused with `READ_ONLY_REASON` before any target is looked
    at, in the one place every action passes through (`_submit`), so no write request can leave
    the console whatever a panel offers; the refusal is still journalled as an attempt.
    """

    def __init__(self, sources: Sequence[Any], journal: Journal, *,
                 executor: Executor | None = None, operator: str = "operator",
                 clock: Callable[[], float] = time.time, read_only: bool = False) -> None:
        self.read_only = bool(read_only)
        self._sources = list(sources)
        self.journal = journal
        self.operator = operator
        self._clock = clock
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="actions")

    def __repr__(self) -> str:
        return f"Actions({len(self._sources)} sources, {self.journal!r})"

    def close(self) -> None:
        """Stop taking actions; ones already running finish (their outcome is journalled)."""
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    shutdown = close  # the engine's name for it

    # --- targets --------------------------------------------------------------------------

    def _targets(self, method: str) -> list[_Target]:
        out: list[_Target] = []
        for s in self._sources:
            name = str(getattr(s, "name", "") or "source")
            client = getattr(s, "client", None)
            if callable(getattr(client, method, None)):
                out.append(_Target(name, (client,)))
            clients = tuple(c for c in (getattr(s, "clients", None) or ())
                            if callable(getattr(c, method, None)))
            if clients:
                out.append(_Target(name, clients))
            cluster = getattr(s, "cluster", None)
            if callable(getattr(cluster, method, None)):
                out.append(_Target(name, (cluster,), True))
        return out

    def _silence_targets(self) -> list[_Target]:
        return self._targets("create_silence")

    def _slurm_targets(self) -> list[_Target]:
        return self._targets("cancel_job")

    # --- capabilities ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, str | None]:
        """For each action, None when it can be offered, else the plain reason it cannot."""
        if self.read_only:
            return dict.fromkeys(ACTION_NAMES, READ_ONLY_REASON)
        caps: dict[str, str | None] = {}
        no_am = None if self._silence_targets() else "no Alertmanager is configured"
        for name in ("acknowledge", "create_silence", "expire_silence"):
            caps[name] = no_am
        slurm = self._slurm_targets()
        caps["cancel_job"] = None if slurm else "no Slurm REST API is configured"
        caps["drain_node"] = caps["resume_node"] = self._node_update_reason(slurm)
        return caps

    @staticmethod
    def _node_update_reason(slurm: list[_Target]) -> str | None:
        if not slurm:
            return "no Slurm REST API is configured"
        reasons = []
        for t in slurm:
            if _can_update_nodes(t):
                return None
            version = _known_version(t.obj)
            if not version:
                reasons.append("waiting for the Slurm REST API to answer (its version decides "
                               "whether nodes can be drained)")
            else:
                reasons.append("draining needs Slurm REST API v0.0.39 or newer; this server "
                               f"offers {version}")
        return reasons[0]

    # --- the actions ------------------------------------------------------------------------

    def acknowledge(self, alert: Alert, comment: str, duration_s: float = 3600.0,
                    author: str | None = None) -> Future[ActionResult]:
        """Acknowledge = a silence on the alert's identity, comment ``ACK! ...``, with an expiry."""
        author = author or self.operator
        text = comment.strip() or f"acknowledged by {author}"
        if not text.startswith("ACK!"):
            text = ACK_PREFIX + text
        matchers = ack_matchers(alert)
        target = format_matchers(matchers)
        if alert.source == "console":
            return self._refuse("acknowledge", target, author, text,
                                "this anomaly was detected by the console and is not in "
                                "Alertmanager; there is nothing to acknowledge there")
        preferred = [t for t in self._silence_targets() if t.name == alert.source]
        return self._submit_silence("acknowledge", matchers, duration_s, author, text, target,
                                    preferred or None)

    def create_silence(self, matchers: Sequence[Matcher], duration_s: float, author: str,
                       comment: str) -> Future[ActionResult]:
        matchers = tuple(matchers)
        return self._submit_silence("create_silence", matchers, duration_s, author, comment,
                                    format_matchers(matchers), None)

    def expire_silence(self, silence_id: str, *, author: str | None = None) -> Future[ActionResult]:
        targets = self._silence_targets()
        reason = None if targets else "no Alertmanager is configured"

        def run() -> ActionResult:
            errors: list[str] = []
            done: list[str] = []
            for t in targets:
                try:
                    t.call("expire_silence", silence_id)
                    done.append(t.name)
                except Exception as exc:  # noqa: BLE001 - every failure becomes words
                    errors.append(f"{t.name}: {_error_words(exc)}")
            if done:
                return ActionResult("expire_silence", silence_id, True,
                                    f"silence {silence_id} expired on {', '.join(done)}")
            return ActionResult("expire_silence", silence_id, False,
                                "could not expire silence: " + "; ".join(errors))

        return self._submit("expire_silence", silence_id, author or self.operator, "", {},
                            reason, run)

    def drain_node(self, name: str, reason: str, *,
                   author: str | None = None) -> Future[ActionResult]:
        def call(t: _Target) -> str:
            t.call("drain_node", name, reason)
            return f"node {name} is draining ({t.name})"
        return self._submit_slurm("drain_node", name, reason, call, node_update=True,
                                  author=author)

    def resume_node(self, name: str, *, author: str | None = None) -> Future[ActionResult]:
        def call(t: _Target) -> str:
            t.call("resume_node", name)
            return f"node {name} resumed ({t.name})"
        return self._submit_slurm("resume_node", name, "", call, node_update=True, author=author)

    def cancel_job(self, job_id: int, *, author: str | None = None) -> Future[ActionResult]:
        def call(t: _Target) -> str:
            t.call("cancel_job", int(job_id))
            return f"job {job_id} cancelled ({t.name})"
        return self._submit_slurm("cancel_job", str(job_id), "", call, node_update=False,
                                  author=author)

    # --- plumbing ---------------------------------------------------------------------------

    def _submit_silence(self, action: str, matchers: tuple[Matcher, ...], duration_s: float,
                        author: str, comment: str, target: str,
                        preferred: list[_Target] | None) -> Future[ActionResult]:
        targets = preferred or self._silence_targets()
        reason = None if targets else "no Alertmanager is configured"
        if reason is None:
            reason = validate_silence(matchers, duration_s, author, comment)
        details = {"matchers": [m.__dict__ for m in matchers], "duration_s": duration_s}

        def run() -> ActionResult:
            starts = self._clock()
            ends = starts + duration_s
            ids: list[str] = []
            errors: list[str] = []
            for t in targets:
                try:
                    ids.append(str(t.call("create_silence", matchers, starts, ends, author,
                                          comment)))
                except Exception as exc:  # noqa: BLE001 - every failure becomes words
                    errors.append(f"{t.name}: {_error_words(exc)}")
            if ids and not errors:
                word = "acknowledged" if action == "acknowledge" else "silenced"
                return ActionResult(action, target, True,
                                    f"{word} {target} until {time.strftime('%H:%M', time.localtime(ends))} "
                                    f"(silence {', '.join(ids)})", tuple(ids))
            if ids:
                return ActionResult(action, target, True,
                                    f"silence {', '.join(ids)} created; failed on "
                                    + "; ".join(errors), tuple(ids))
            return ActionResult(action, target, False, "could not create the silence: "
                                + "; ".join(errors))

        return self._submit(action, target, author, comment, details, reason, run)

    def _submit_slurm(self, action: str, target: str, comment: str,
                      call: Callable[[_Target], str], *, node_update: bool,
                      author: str | None = None) -> Future[ActionResult]:
        caps = self.capabilities()
        reason = caps[action]
        targets = self._slurm_targets()
        if node_update:
            targets = [t for t in targets if _can_update_nodes(t)]

        def run() -> ActionResult:
            errors: list[str] = []
            for t in targets:
                try:
                    return ActionResult(action, target, True, call(t))
                except Exception as exc:  # noqa: BLE001 - every failure becomes words
                    errors.append(f"{t.name}: {_error_words(exc)}")
            return ActionResult(action, target, False, "; ".join(errors) or "no target")

        return self._submit(action, target, author or self.operator, comment, {}, reason, run)

    def _refuse(self, action: str, target: str, author: str, comment: str,
                reason: str) -> Future[ActionResult]:
        def never() -> ActionResult:  # not called: a refused action only journals its refusal
            raise AssertionError(reason)
        return self._submit(action, target, author, comment, {}, reason, never)

    def _submit(self, action: str, target: str, author: str, comment: str,
                details: dict[str, Any], refused: str | None,
                run: Callable[[], ActionResult]) -> Future[ActionResult]:
        base = {"action": action, "operator": author, "target": target, "comment": comment,
                **details}
        if self.read_only:  # before anything else: no target is called, whatever was asked
            refused = READ_ONLY_REASON

        def job() -> ActionResult:
            self._write({**base, "event": "attempt"})
            if refused is not None:
                result = ActionResult(action, target, False, refused)
            else:
                try:
                    result = run()
                except Exception as exc:  # noqa: BLE001 - a bug of ours is still reported
                    result = ActionResult(action, target, False, _error_words(exc))
            self._write({**base, "event": "outcome", "ok": result.ok, "message": result.message,
                         "ids": list(result.ids)})
            return result

        return self._executor.submit(job)

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self.journal.append({"time": self._clock(), **record})
        except OSError:
            pass  # a full disk must not stop the operator acting; the result is still shown


__all__ = ["ACK_PREFIX", "ACTION_NAMES", "READ_ONLY_REASON", "ActionResult", "Actions", "ack_matchers",
           "alert_matches", "format_matchers", "matched_alerts", "matcher_matches",
           "validate_silence"]

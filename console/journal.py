"""The operator audit journal: every action attempt and its outcome, one JSON object per line.

Why a local file and not a database: it must work on a laptop at 3 a.m. with nothing else
running, survive a crash (a torn last line is skipped on reading, earlier lines stay valid),
and be readable with `tail` or `jq` during an incident review. Append-only: the console never
rewrites or truncates it.

Secrets never reach the file: record fields whose names look like credentials are replaced
before writing, and any string value that looks like an auth header or a ``token=`` query is
masked (see `redact`). Thread-safe: `Actions` writes from its worker threads.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

APP_DIR_NAME = "aisc-console"
JOURNAL_FILE_NAME = "journal.jsonl"

_SECRET_KEY = re.compile(r"(token|password|passwd|secret|authorization|api[_-]?key|cookie)", re.I)
_SECRET_TEXT = [
    # "Authorization: Bearer abc", "X-SLURM-USER-TOKEN: abc", "token=abc", "password: abc"
    re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"),
    re.compile(r"(?i)(x-slurm-user-token\s*[:=]\s*)[^\s'\",;]+"),
    re.compile(r"(?i)((?:token|password|passwd|secret|api[_-]?key)\s*[=:]\s*)[^\s'\",;&]+"),
    re.compile(r"(?i)(https?://[^/\s:@]+:)[^@\s/]+(@)"),
]
MASK = "***"


def _home() -> Path:
    """The user's home folder, absolute: an empty or relative ``$HOME`` (a stripped-down
    environment) would otherwise put the journal under whatever folder the console was started
    in, so the account's own home from the password database is used instead."""
    home = Path.home()
    if home.is_absolute():
        return home
    import pwd

    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def default_path() -> Path:
    """The journal's place in the user's data folder, per platform convention.

    A relative ``$XDG_DATA_HOME`` is ignored, as the XDG specification says it must be."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = _home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else _home() / ".local" / "share"
    return base / APP_DIR_NAME / JOURNAL_FILE_NAME


#: The name the engine imports.
default_journal_path = default_path


def redact_text(text: str) -> str:
    """Mask anything in free text that looks like a credential (error messages can echo URLs)."""
    for pattern in _SECRET_TEXT:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + MASK + m.group(2), text)
        else:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` that is safe to write: secret-named fields masked, strings scrubbed."""
    if key and _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # keep every line valid JSON
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact_text(str(value))


class Journal:
    """Append-only JSON-lines audit log at `path` (created with its folder on first write)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write one record (a ``time`` is added when missing); returns what was written."""
        clean: dict[str, Any] = redact(dict(record))
        clean.setdefault("time", time.time())
        line = json.dumps(clean, ensure_ascii=False, sort_keys=True, allow_nan=False,
                          default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write of a whole line in append mode: concurrent writers never interleave
            # inside a line, and a crash can only tear the last one.
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
        return clean

    def records(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """All readable records, oldest first (the newest `limit` when given)."""
        out = list(self._iter())
        return out[-limit:] if limit is not None else out

    def _iter(self) -> Iterator[dict[str, Any]]:
        try:
            fh = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return
        with fh:
            for raw in fh:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # a line torn by a crash: the rest of the journal is still good
                if isinstance(rec, dict):
                    yield rec

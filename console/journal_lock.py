"""One writer of derived events per cluster's journal, whatever the number of consoles.

Why: an operator may run ``aisc-console status`` (or a second window) while the console runs;
both engines see the same transitions, and both writing them would list every drain twice.
The first engine to open a cluster's journal holds an advisory lock (``flock``) on a file beside
it; another engine's recorder stands by (it writes only its own operator actions and notes,
which no other console saw) and takes over when the lock is free. Where the platform has no
``fcntl`` (Windows), every engine writes. No Qt here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


class WriterLock:
    """An exclusive, non-blocking advisory lock on ``<database>.writer``."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".writer")
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> bool:
        """True when this process holds the lock (now or already); OSError if the folder
        cannot be written at all (the caller pauses on it like on any write failure)."""
        if self._fh is not None:
            return True
        try:
            import fcntl
        except ImportError:  # no advisory locks here: every engine writes
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return True

    def holder(self) -> str:
        """The process id the lock file names (the current writer), or "" when unknown."""
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()  # closing the file releases the lock


__all__ = ["WriterLock"]

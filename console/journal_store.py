"""The journal's storage: one SQLite database per cluster (WAL), with a schema version.

Why SQLite and not more JSON lines: the incident timeline, ``status --at`` and the time
scrubber ask "what happened between A and B" and "what were the figures at T" over weeks of
data; an indexed table answers in milliseconds, a text file must be read from the start. WAL
mode lets the GUI and the command line read while the engine writes, and a writer killed in
the middle of a transaction leaves the database as it was at the last commit.

This module only stores and reads: `console.journal_recorder` decides what to write and when
(on the engine's journal thread, never the GUI thread). Unknown figures are stored as SQL NULL,
never 0. No Qt here.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from console.journal import default_path as default_jsonl_path

#: The schema this code writes. 1 was the first layout (events only); `migrate` upgrades.
SCHEMA_VERSION = 2
DATA_DIR_ENV = "AISC_CONSOLE_DATA_DIR"

#: Cluster-level figures kept per minute (the `Kpis` names); REAL columns, NULL = unknown.
CLUSTER_FIGURES = ("installed_pf", "available_pf", "allocated_pf", "busy_pf", "delivered_pf",
                   "gpus_total", "gpus_available", "gpus_healthy", "gpus_allocated", "gpus_busy",
                   "nodes_total", "jobs_running", "jobs_pending", "gpus_pending", "alerts_firing",
                   "anomalies_open")
#: Minutes are filed at their centre: the minute holding ``t`` may be filed up to this after it.
HALF_MINUTE_S = 30.0
#: Figures kept per minute for each partition and each tenant.
GROUP_FIGURES = ("gpus_in_use", "delivered_pf", "jobs_running", "jobs_pending", "gpus_pending")
#: Per-node arrays kept per minute, packed in one compressed blob per minute (4,096 nodes x
#: a row each would be 6 million rows a day): (name, stored type). Codes are int8 with -1 for
#: unknown; readings are whole units (%, °C, W, TFLOPS) in unsigned integers whose largest
#: value means unknown (NaN when read back). Whole units compress to about half of float16.
NODE_FIELDS: tuple[tuple[str, str], ...] = (
    ("state", "i1"), ("health", "i1"), ("util", "u1"), ("temp", "u1"), ("power", "u2"),
    ("delivered_tflops", "u2"))
#: The first byte of a node blob: its layout, so a later one can be told apart.
NODE_BLOB_FORMAT = 1

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS events_time ON events (time);
"""

_V2_CLUSTER_COLUMNS = ", ".join(f"{f} REAL" for f in CLUSTER_FIGURES)
_V2_GROUP_COLUMNS = ", ".join(f"{f} REAL" for f in GROUP_FIGURES)
_MIGRATE_V1_TO_V2 = f"""
ALTER TABLE events ADD COLUMN summary TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS events_kind_time ON events (kind, time);
CREATE INDEX IF NOT EXISTS events_subject ON events (subject, time);
CREATE TABLE IF NOT EXISTS agg_cluster (
    t REAL PRIMARY KEY, {_V2_CLUSTER_COLUMNS}, detail TEXT NOT NULL DEFAULT '{{}}');
CREATE TABLE IF NOT EXISTS agg_group (
    level TEXT NOT NULL, key TEXT NOT NULL, t REAL NOT NULL, {_V2_GROUP_COLUMNS},
    PRIMARY KEY (level, key, t)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_group_t ON agg_group (t);
CREATE TABLE IF NOT EXISTS node_sets (id INTEGER PRIMARY KEY, digest TEXT UNIQUE NOT NULL,
    names TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agg_nodes (t REAL PRIMARY KEY, node_set INTEGER NOT NULL,
    data BLOB NOT NULL);
"""
#: Each step takes the database from version i to i + 1, inside one transaction.
MIGRATIONS: dict[int, str] = {1: _MIGRATE_V1_TO_V2}


class JournalUnavailable(Exception):
    """The journal cannot be written or read; ``words`` says why for an operator."""

    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


def why_words(exc: BaseException) -> str:
    """Plain words for a storage failure: full disk, read-only folder, locked, damaged.

    Classified by evidence (errno, SQLite's result code or message), never a guess from the
    exception type alone.
    """
    import errno

    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    err = getattr(exc, "errno", None)
    if err == errno.ENOSPC or name == "SQLITE_FULL" or "disk is full" in text or \
            "no space" in text:
        return "the disk is full"
    if err in (errno.EROFS, errno.EACCES, errno.EPERM) or name.startswith("SQLITE_READONLY") or \
            "readonly" in text or "read-only" in text or "permission denied" in text:
        return "the journal folder is read-only"
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return "the database is locked by another program"
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or \
            "not a database" in text:
        return "the database file is damaged"
    if name.startswith("SQLITE_IOERR") or isinstance(exc, OSError):
        strerror = getattr(exc, "strerror", None)
        return f"a disk error ({strerror or text or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def data_folder(configured: str | os.PathLike[str] | None = None) -> Path:
    """Where the console keeps its data: the configured folder, else ``$AISC_CONSOLE_DATA_DIR``,
    else the user's data folder (the one the JSON-lines audit journal has always used)."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return default_jsonl_path().parent


def cluster_slug(cluster: str) -> str:
    """A file name for a cluster's name: readable, and distinct for distinct names."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", cluster).strip("._") or "cluster"
    digest = format(zlib.crc32(cluster.encode("utf-8")), "08x")
    return f"{base[:60]}-{digest}"


def database_path(cluster: str, folder: str | os.PathLike[str] | None = None) -> Path:
    return data_folder(folder) / "journal" / f"{cluster_slug(cluster)}.sqlite3"


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``kind`` is dotted ("alert.firing", "node.state", "note");
    ``subject`` what it is about ("node:n0012", "alert:<fingerprint>", "job:4812");
    ``summary`` one line in words; ``data`` the details (JSON-safe, secrets already masked)."""

    time: float
    kind: str
    subject: str = ""
    summary: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "subject": self.subject,
                "summary": self.summary, "data": dict(self.data)}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False,
                      default=str, separators=(",", ":"))


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass(frozen=True, eq=False)
class NodeMinute:
    """One minute of per-node figures: arrays aligned with ``names`` (-1 / NaN = unknown)."""

    t: float
    names: tuple[str, ...]
    arrays: Mapping[str, np.ndarray]


def pack_nodes(arrays: Mapping[str, np.ndarray], n: int) -> bytes:
    parts = [bytes([NODE_BLOB_FORMAT])]
    for name, dtype in NODE_FIELDS:
        a = arrays.get(name)
        if dtype.startswith("i"):
            codes = np.full(n, -1, np.int8) if a is None or len(a) != n else np.asarray(a)
            parts.append(codes.astype(dtype).tobytes())
            continue
        unknown = np.iinfo(dtype).max
        v = np.full(n, np.nan) if a is None or len(a) != n else np.asarray(a, np.float64)
        ok = np.isfinite(v)
        q = np.full(n, unknown, dtype)
        q[ok] = np.clip(np.rint(v[ok]), 0, unknown - 1).astype(dtype)
        parts.append(q.tobytes())
    return zlib.compress(b"".join(parts), 3)  # most of level 9's size at a fraction of its time


def unpack_nodes(blob: bytes, n: int) -> dict[str, np.ndarray]:
    """The arrays of `pack_nodes`: codes as int8 (-1 unknown), readings as float32 (NaN)."""
    raw = zlib.decompress(blob)
    if raw[:1] != bytes([NODE_BLOB_FORMAT]):
        raise JournalUnavailable(f"a node snapshot of an unknown layout ({raw[:1]!r})")
    out: dict[str, np.ndarray] = {}
    pos = 1
    for name, dtype in NODE_FIELDS:
        size = np.dtype(dtype).itemsize * n
        a = np.frombuffer(raw[pos:pos + size], dtype=dtype)
        if dtype.startswith("i"):
            out[name] = a.copy()
        else:
            f = a.astype(np.float32)
            f[a == np.iinfo(dtype).max] = np.nan
            out[name] = f
        pos += size
    return out


class JournalStore:
    """One cluster's journal database. Not thread-safe: one store per thread.

    ``readonly`` opens it for reading only (the GUI's views, the command line): no schema
    change, no write, and a missing file is `JournalUnavailable`, never an empty new database.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False,
                 busy_timeout_s: float = 2.0) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise JournalUnavailable(f"no journal yet at {self.path.name}")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s,
                                          check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(str(self.path), timeout=busy_timeout_s,
                                          isolation_level=None, check_same_thread=False)
                self.db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a power cut may lose the last commits, never corrupt.
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.migrate()
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnavailable(why_words(exc)) from exc

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> "JournalStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Bring the schema to `SCHEMA_VERSION`, one step per transaction; returns the
        version found. A newer database than this code knows is refused, not downgraded."""
        found = self.version()
        if found > SCHEMA_VERSION:
            raise JournalUnavailable(f"the journal was written by a newer console (schema "
                                     f"{found}, this one reads {SCHEMA_VERSION})")
        if found == 0:
            has_events = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE name='events'").fetchone()
            if not has_events:
                self.db.executescript(_SCHEMA_V1)
            self.db.execute("PRAGMA user_version=1")
        version = max(found, 1)
        while version < SCHEMA_VERSION:
            with self._transaction() as db:
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute(f"PRAGMA user_version={version + 1}")
            version += 1
        return found

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ writing

    def write(self, events: Sequence[Event] = (), cluster_rows: Sequence[Mapping[str, Any]] = (),
              group_rows: Sequence[Mapping[str, Any]] = (), nodes: Sequence[NodeMinute] = (),
              meta: Mapping[str, str] | None = None) -> None:
        """Write a batch in one transaction: all of it is kept, or none of it."""
        with self._transaction() as db:
            if events:
                db.executemany(
                    "INSERT INTO events (time, kind, subject, summary, data) VALUES (?,?,?,?,?)",
                    [(float(e.time), e.kind, e.subject, e.summary, _json(e.data)) for e in events])
            if cluster_rows:
                cols: tuple[str, ...] = ("t", *CLUSTER_FIGURES, "detail")
                db.executemany(
                    f"INSERT OR REPLACE INTO agg_cluster ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))})",
                    [(float(r["t"]), *(_finite_or_none(r.get(f)) for f in CLUSTER_FIGURES),
                      _json(r.get("detail") or {})) for r in cluster_rows])
            if group_rows:
                cols = ("level", "key", "t", *GROUP_FIGURES)
                db.executemany(
                    f"INSERT OR REPLACE INTO agg_group ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))})",
                    [(r["level"], r["key"], float(r["t"]),
                      *(_finite_or_none(r.get(f)) for f in GROUP_FIGURES)) for r in group_rows])
            for nm in nodes:
                set_id = self._node_set(nm.names)
                db.execute("INSERT OR REPLACE INTO agg_nodes (t, node_set, data) VALUES (?,?,?)",
                           (float(nm.t), set_id, pack_nodes(nm.arrays, len(nm.names))))
            for k, v in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, v))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception, which is raised
        as it was (a rollback that fails too, on a broken disk, does not replace it)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    def _node_set(self, names: tuple[str, ...]) -> int:
        text = _json(list(names))
        digest = format(zlib.crc32(text.encode("utf-8")), "08x") + f"-{len(names)}"
        row = self.db.execute("SELECT id, names FROM node_sets WHERE digest=?", (digest,)).fetchone()
        if row is not None and row[1] == text:
            return int(row[0])
        if row is not None:  # a crc collision: keep both, under a longer digest
            digest += "-" + format(zlib.adler32(text.encode("utf-8")), "08x")
        cur = self.db.execute("INSERT OR IGNORE INTO node_sets (digest, names) VALUES (?, ?)",
                              (digest, text))
        if cur.lastrowid and cur.rowcount:
            return int(cur.lastrowid)
        return int(self.db.execute("SELECT id FROM node_sets WHERE digest=?",
                                   (digest,)).fetchone()[0])

    def prune(self, *, events_before: float, aggregates_before: float, batch: int = 500) -> int:
        """Delete at most ``batch`` old rows per table; returns how many went. Called again
        and again between writes, so a first start over months of data never blocks."""
        gone = 0
        with self._transaction() as db:
            for sql, cut in (
                    ("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? "
                     "ORDER BY time LIMIT ?)", events_before),
                    ("DELETE FROM agg_cluster WHERE t IN (SELECT t FROM agg_cluster WHERE t < ? "
                     "ORDER BY t LIMIT ?)", aggregates_before),
                    ("DELETE FROM agg_group WHERE (level, key, t) IN (SELECT level, key, t "
                     "FROM agg_group WHERE t < ? LIMIT ?)", aggregates_before),
                    ("DELETE FROM agg_nodes WHERE t IN (SELECT t FROM agg_nodes WHERE t < ? "
                     "ORDER BY t LIMIT ?)", aggregates_before)):
                gone += db.execute(sql, (cut, batch)).rowcount
        return gone

    # ------------------------------------------------------------------ reading

    def events(self, since: float | None = None, until: float | None = None, *,
               kinds: Iterable[str] = (), subjects: Iterable[str] = (),
               limit: int | None = None, newest: bool = False) -> list[Event]:
        """Events in [since, until], oldest first; ``kinds`` entries match a kind or a prefix
        ending in "." ("alert."), ``subjects`` exact subjects. With ``limit``, the oldest
        ``limit`` events, or the newest ones when ``newest`` (still returned oldest first)."""
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if since is not None:
            where.append("time >= ?")
            args.append(float(since))
        if until is not None:
            where.append("time <= ?")
            args.append(float(until))
        kinds = list(kinds)
        if kinds:
            parts = []
            for k in kinds:
                if k.endswith("."):
                    parts.append("kind LIKE ?")
                    args.append(k.replace("%", "") + "%")
                else:
                    parts.append("kind = ?")
                    args.append(k)
            where.append("(" + " OR ".join(parts) + ")")
        subjects = list(subjects)
        if subjects:
            where.append(f"subject IN ({', '.join('?' * len(subjects))})")
            args.extend(subjects)
        order = "time DESC, id DESC" if newest else "time, id"
        sql = (f"SELECT id, time, kind, subject, summary, data FROM events "
               f"WHERE {' AND '.join(where)} ORDER BY {order}")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        out = []
        for rid, t, kind, subject, summary, data in self.db.execute(sql, args):
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = {}
            out.append(Event(float(t), str(kind), str(subject), str(summary),
                             parsed if isinstance(parsed, dict) else {}, int(rid)))
        if newest:
            out.reverse()
        return out

    def cluster_at(self, t: float, *, tolerance_s: float = 150.0) -> dict[str, Any] | None:
        """The cluster figures of the minute holding ``t`` (else the newest minute before it,
        no older than ``tolerance_s``), or None when the journal has none there."""
        cols = ("t", *CLUSTER_FIGURES, "detail")
        row = self.db.execute(
            f"SELECT {', '.join(cols)} FROM agg_cluster WHERE t <= ? AND t >= ? "
            f"ORDER BY t DESC LIMIT 1", (float(t) + HALF_MINUTE_S, float(t) - tolerance_s)).fetchone()
        if row is None:
            return None
        out = dict(zip(cols, row))
        try:
            out["detail"] = json.loads(out["detail"] or "{}")
        except ValueError:
            out["detail"] = {}
        return out

    def cluster_series(self, since: float, until: float,
                       figures: Sequence[str] = CLUSTER_FIGURES) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(t, {figure: float32 values}) of the minutes in [since, until]; NaN = unknown."""
        figures = [f for f in figures if f in CLUSTER_FIGURES]
        rows = self.db.execute(
            f"SELECT t{''.join(', ' + f for f in figures)} FROM agg_cluster "
            f"WHERE t >= ? AND t <= ? ORDER BY t", (float(since), float(until))).fetchall()
        t = np.array([r[0] for r in rows], np.float64)
        series = {f: np.array([np.nan if r[i + 1] is None else r[i + 1] for r in rows],
                              np.float32) for i, f in enumerate(figures)}
        return t, series

    def groups_at(self, level: str, t: float, *, tolerance_s: float = 150.0
                  ) -> dict[str, dict[str, float | None]]:
        """{key: {figure: value or None}} of the newest minute at or before ``t``."""
        row = self.db.execute("SELECT max(t) FROM agg_group WHERE level=? AND t <= ? AND t >= ?",
                              (level, float(t) + HALF_MINUTE_S, float(t) - tolerance_s)).fetchone()
        if row is None or row[0] is None:
            return {}
        out: dict[str, dict[str, float | None]] = {}
        for r in self.db.execute(f"SELECT key, {', '.join(GROUP_FIGURES)} FROM agg_group "
                                 f"WHERE level=? AND t=?", (level, row[0])):
            out[str(r[0])] = dict(zip(GROUP_FIGURES, r[1:]))
        return out

    def nodes_at(self, t: float, *, tolerance_s: float = 150.0) -> NodeMinute | None:
        row = self.db.execute(
            "SELECT a.t, s.names, a.data FROM agg_nodes a JOIN node_sets s ON s.id = a.node_set "
            "WHERE a.t <= ? AND a.t >= ? ORDER BY a.t DESC LIMIT 1",
            (float(t) + HALF_MINUTE_S, float(t) - tolerance_s)).fetchone()
        if row is None:
            return None
        names = tuple(json.loads(row[1]))
        return NodeMinute(float(row[0]), names, unpack_nodes(row[2], len(names)))

    def span(self) -> tuple[float, float] | None:
        """(oldest, newest) time the journal holds figures or events for, or None when empty."""
        lo_hi = []
        for sql in ("SELECT min(t), max(t) FROM agg_cluster", "SELECT min(time), max(time) FROM events"):
            r = self.db.execute(sql).fetchone()
            if r and r[0] is not None:
                lo_hi.append((float(r[0]), float(r[1])))
        if not lo_hi:
            return None
        return min(a for a, _ in lo_hi), max(b for _, b in lo_hi)

    def counts(self) -> dict[str, int]:
        return {table: int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("events", "agg_cluster", "agg_group", "agg_nodes")}


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines audit journal (torn lines skipped), for the migration."""
    from console.journal import Journal

    yield from Journal(path).records()


__all__ = ["CLUSTER_FIGURES", "DATA_DIR_ENV", "Event", "GROUP_FIGURES", "JournalStore",
           "JournalUnavailable", "MIGRATIONS", "NODE_FIELDS", "NodeMinute", "SCHEMA_VERSION",
           "cluster_slug", "data_folder", "database_path", "iter_jsonl", "pack_nodes",
           "unpack_nodes", "why_words"]

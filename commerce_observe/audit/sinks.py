"""Where audit lines go: the sink contract, an embedded SQLite file, and memory.

A sink's ``write`` returns only when every line of the batch is durable there, and
raises :class:`SinkUnavailable` (carrying the lines that did not make it) otherwise;
the writer then spools exactly those lines. ``write`` runs on the writer's
background thread only, never on an application thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Protocol


class SinkUnavailable(Exception):
    """The sink could not take (all of) a batch; ``lines`` are the ones to spool."""

    def __init__(self, message: str, lines: Sequence[bytes]) -> None:
        super().__init__(message)
        self.lines = list(lines)


class Sink(Protocol):
    name: str

    def write(self, lines: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps lines in a list; ``down`` makes it refuse writes (tests of the spool path)."""

    name = "memory"

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.down = False

    def write(self, lines: Sequence[bytes]) -> None:
        if self.down:
            raise SinkUnavailable("memory sink is down", lines)
        self.lines.extend(lines)

    def close(self) -> None:
        pass


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit ("
    " id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, event_id BLOB NOT NULL, record BLOB NOT NULL)"
)

_INSERT = "INSERT INTO audit(time_ns, event_id, record) VALUES (?, ?, ?)"


class SqliteSink:
    """An embedded SQLite file: one row per line, one transaction per batch.

    WAL journal with ``synchronous=NORMAL``: a committed batch survives the process
    being killed (it is in the WAL); an OS crash may lose the last commits.
    Several processes can share one file (SQLite serialises the writers; a 30 s
    busy timeout covers them).
    """

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            # No index on time_ns: it doubled the CPU of every insert (about 2 µs a
            # record). Rows are appended in time order, near enough for
            # :func:`read_sqlite` to find a start time by bisecting the row ids.
            self._conn = conn
        return self._conn

    def write(self, lines: Sequence[bytes]) -> None:
        # One comprehension builds the rows (time_ns, event_id are the 2nd and 3rd
        # fields); one executemany in one transaction inserts them with one prepared
        # statement (sqlite3 caches it by its text).
        rows = [(int(f[1]), f[2], line) for line in lines for f in (line.split(b"\t", 3),)]
        try:
            with self._lock:
                conn = self._connect()
                conn.execute("BEGIN")
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise SinkUnavailable(f"sqlite {self.path}: {exc}", lines) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


#: How far out of time order rows may be stored: writers in several processes
#: commit batches up to a flush interval (or a spool replay) late.
TIME_DISORDER_NS = 300 * 1_000_000_000


def _first_id_from(conn: sqlite3.Connection, from_ns: int) -> int | None:
    """The first row id stored at or after ``from_ns``: bisect the ids (rows are in
    time order up to :data:`TIME_DISORDER_NS`), then scan forward from that much earlier."""
    lo, hi = conn.execute("SELECT MIN(id), MAX(id) FROM audit").fetchone()
    if lo is None:
        return None
    target = from_ns - TIME_DISORDER_NS
    while lo < hi:  # first id whose row is at or after ``target``
        mid = (lo + hi) // 2
        row = conn.execute("SELECT id, time_ns FROM audit WHERE id >= ? ORDER BY id LIMIT 1", (mid,)).fetchone()
        if row[1] < target:
            lo = row[0] + 1
        else:
            hi = mid
    row = conn.execute("SELECT MIN(id) FROM audit WHERE id >= ? AND time_ns >= ?", (lo, from_ns)).fetchone()
    return row[0]  # type: ignore[no-any-return]


def read_sqlite(path: str, from_ns: int = 0, batch: int = 20_000) -> Iterator[list[bytes]]:
    """Lines in insertion order from ``from_ns`` on, in batches (bounded memory)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        last = 0
        if from_ns:
            first = _first_id_from(conn, from_ns)
            if first is None:
                return
            last = first - 1
        while True:
            rows = conn.execute("SELECT id, record FROM audit WHERE id > ? ORDER BY id LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [bytes(r[1]) for r in rows]
    finally:
        conn.close()

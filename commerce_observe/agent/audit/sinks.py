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

from commerce_observe.agent.audit.record import first_at_or_after


class SinkUnavailable(Exception):
    """The sink could not take (all of) a batch; ``lines`` are the ones to spool."""

    def __init__(self, message: str, lines: Sequence[bytes]) -> None:
        super().__init__(message)
        self.lines = list(lines)


class Sink(Protocol):
    """``name`` for messages. A sink may also say ``outlives_host = True`` when a line it
    took survives this machine's crash (the Kafka topic): the spool then ships journal
    lines to it without fsyncing them first (``Spool.replay``)."""

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
    "CREATE TABLE IF NOT EXISTS audit_batch (id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, lines BLOB NOT NULL)"
)

_INSERT = "INSERT INTO audit_batch(time_ns, lines) VALUES (?, ?)"


class SqliteSink:
    """An embedded SQLite file: one row per batch, ``lines`` joined by ``\\n``.

    A row per line cost 1.3-2 µs of writer CPU per record (the B-tree insert of a
    row); a row per batch costs one insert per ``write``, whatever its size. Lines
    never contain a raw newline (:mod:`commerce_observe.agent.audit.record` escapes it),
    so joining them is lossless. ``time_ns`` is the time of the batch's first line,
    for :func:`read_sqlite` to find a start time without an index.

    WAL journal with ``synchronous=NORMAL``: a committed batch survives the process
    being killed (it is in the WAL); an OS crash may lose the last commits.
    Several processes can share one file (SQLite serialises the writers; a 30 s
    busy timeout covers them). A file written by the previous version (table
    ``audit``, a row per line) is appended to in the new table; :func:`read_sqlite`
    reads both.
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
            # No index on time_ns: rows are appended in time order, near enough for
            # :func:`read_sqlite` to find a start time by bisecting the row ids.
            self._conn = conn
        return self._conn

    def write(self, lines: Sequence[bytes]) -> None:
        try:
            with self._lock:
                conn = self._connect()
                if lines:
                    # The first line's time and not the minimum over the batch: no
                    # per-line work. The writer thread appends lines in emission order,
                    # so it is the earliest up to the interleaving of emitting threads,
                    # far inside TIME_DISORDER_NS, which is all read_sqlite relies on.
                    # One INSERT in autocommit mode is one transaction.
                    conn.execute(_INSERT, (int(lines[0].split(b"\t", 2)[1]), b"\n".join(lines)))
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"sqlite {self.path}: {exc}", lines) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


#: How far out of time order lines may be stored: writers in several processes
#: commit batches up to a flush interval (or a spool replay) late.
TIME_DISORDER_NS = 300 * 1_000_000_000

#: The tables :func:`read_sqlite` reads, oldest layout first: (table, column of the
#: lines, about how many lines a row holds - for paging).
_TABLES = (("audit", "record", 1), ("audit_batch", "lines", 500))


def _start_id(conn: sqlite3.Connection, table: str, from_ns: int) -> int | None:
    """A row id of ``table`` from which on reading finds every line at or after
    ``from_ns``, as late as bisecting the ids finds one (rows are in time order up to
    :data:`TIME_DISORDER_NS`); None when the table is empty."""
    lo, hi = conn.execute(f"SELECT MIN(id), MAX(id) FROM {table}").fetchone()
    if lo is None:
        return None
    target = from_ns - TIME_DISORDER_NS
    while lo < hi:  # first id whose row is at or after ``target``
        mid = (lo + hi) // 2
        row = conn.execute(f"SELECT id, time_ns FROM {table} WHERE id >= ? ORDER BY id LIMIT 1", (mid,)).fetchone()
        if row[1] < target:
            lo = row[0] + 1
        else:
            hi = mid
    # Start one row earlier: a batch's later lines can reach past the next row's
    # time (a batch spans a flush interval; a spool replay batch, longer). The row
    # before ``lo`` is earlier than ``target``, so every line stored before it is
    # earlier than ``from_ns``.
    before = conn.execute(f"SELECT MAX(id) FROM {table} WHERE id < ?", (lo,)).fetchone()[0]
    return lo if before is None else before  # type: ignore[no-any-return]


def _pages(conn: sqlite3.Connection, table: str, column: str, first_id: int, rows: int) -> Iterator[list[bytes]]:
    """The lines of ``table`` from row ``first_id`` on, ``rows`` rows per query: short
    read transactions, so a long read never holds a snapshot against the writers."""
    last = first_id - 1
    while True:
        page = conn.execute(f"SELECT id, {column} FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (last, rows)).fetchall()
        if not page:
            return
        last = page[-1][0]
        yield b"\n".join([r[1] for r in page]).split(b"\n")


def read_sqlite(path: str, from_ns: int = 0, batch: int = 20_000) -> Iterator[list[bytes]]:
    """Lines in insertion order, in batches of about ``batch`` (bounded memory): from
    the first line whose time is at or after ``from_ns`` on, later lines included
    whatever their time. Rows of a file's old ``audit`` table come first."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables = [t for t in _TABLES if t[0] in present]
        if not tables:
            raise sqlite3.OperationalError(f"{path} has no audit table")
        seeking = from_ns > 0
        pending: list[bytes] = []
        for table, column, per_row in tables:
            first = _start_id(conn, table, from_ns) if seeking else 0
            if first is None:
                continue
            for lines in _pages(conn, table, column, first, max(1, batch // per_row)):
                if seeking:
                    at = first_at_or_after(lines, from_ns)
                    if at is None:
                        continue
                    lines = lines[at:]
                    seeking = False
                pending += lines
                if len(pending) >= batch:
                    yield pending
                    pending = []
        if pending:
            yield pending
    finally:
        conn.close()

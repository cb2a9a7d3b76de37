"""Where the watch reads from: the SQLite audit file the services write, tailed by row id.

Embedded default, no Kafka needed: the audit sink appends one row per writer batch
(``audit_batch``; files of the older layout have one row per line in ``audit``),
with ids in commit order. The tail's position is the last row id read per table:
it goes into the checkpoint, so a restart reads on from exactly there. The first
start begins at the first row that can hold a record at or after the start time
(the same bisection ``commerce-observe audit --from-time`` uses).

The events themselves are not tailed row by row: their figures are read back per
closed bucket from the store (:class:`~commerce_observe.monitor.watch.series.StoreSeries`).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Protocol

# the bisection by record time over a file's row ids, shared with read_sqlite
from commerce_observe.agent.audit.sinks import TIME_DISORDER_NS, _start_id
from commerce_observe.store.documents import Document

#: (table, column of the lines), oldest layout first, as the audit sink writes them
_TABLES = (("audit", "record"), ("audit_batch", "lines"))


class Source(Protocol):
    """What the loop reads from: audit lines and (Kafka) event documents, a batch per poll."""

    caught_up: bool

    def poll(self, until_ns: int | None = None) -> tuple[list[bytes], list[Document]]: ...
    def commit(self, offsets: dict[str, dict[int, int]], resume_ns: int = 0) -> None: ...
    def close(self) -> None: ...


@dataclass
class AuditPosition:
    """Last row id read per table (absent: not started; the start time decides where)."""

    last_id: dict[str, int] = field(default_factory=dict)


class SqliteAuditTail:
    """New audit lines from an SQLite audit file, a page of rows at a time."""

    def __init__(self, path: str, position: AuditPosition, start_ns: int, page_rows: int = 200) -> None:
        self.path = path
        self.position = position
        self.start_ns = start_ns
        self.page_rows = page_rows
        self._conn: sqlite3.Connection | None = None
        self.caught_up = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not os.path.exists(self.path):
                return None  # the services have not written yet
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        return self._conn

    def poll(self, until_ns: int | None = None) -> tuple[list[bytes], list[Document]]:
        """The next lines (at most about a page of rows) and no documents (the store has them);
        ``caught_up`` says whether more are waiting.

        ``until_ns`` (backtest): rows that can only hold records after it are not read.
        """
        conn = self._connect()
        self.caught_up = True
        if conn is None:
            return [], []
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        out: list[bytes] = []
        for table, column in _TABLES:
            if table not in present:
                continue
            last = self.position.last_id.get(table)
            if last is None:
                first = _start_id(conn, table, self.start_ns) if self.start_ns else None
                if first is None and self.start_ns:
                    continue  # empty table: decide where to start once it has rows
                last = self.position.last_id[table] = (first or 1) - 1
            limit = self.page_rows if table == "audit_batch" else self.page_rows * 500
            sql = f"SELECT id, {column} FROM {table} WHERE id > ? ORDER BY id LIMIT ?"
            if until_ns is not None:
                sql = (f"SELECT id, {column} FROM {table} WHERE id > ? "
                       f"{'AND time_ns < ' + str(until_ns + TIME_DISORDER_NS) if table == 'audit_batch' else ''} "
                       "ORDER BY id LIMIT ?")
            rows = conn.execute(sql, (last, limit)).fetchall()
            if not rows:
                continue
            self.position.last_id[table] = rows[-1][0]
            if len(rows) == limit:
                self.caught_up = False
            if table == "audit_batch":
                out += b"\n".join([r[1] for r in rows]).split(b"\n")
            else:
                out += [r[1] for r in rows]
        # lines are in time order up to TIME_DISORDER_NS: a page whose first line is that far past
        # the start (or before the end) needs no look at the others
        if self.start_ns and out and line_time(out[0]) < self.start_ns + TIME_DISORDER_NS:
            out = [ln for ln in out if line_time(ln) >= self.start_ns]
        if until_ns is not None and out and line_time(out[-1]) >= until_ns - TIME_DISORDER_NS:
            out = [ln for ln in out if line_time(ln) < until_ns]
        return out, []

    def commit(self, offsets: dict[str, dict[int, int]], resume_ns: int = 0) -> None:
        """Nothing to tell anyone: the position lives in the checkpoint only."""

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def line_time(line: bytes) -> int:
    """The record time of an audit line (0 when it has none)."""
    t = line.split(b"\t", 2)[1:2]
    return int(t[0]) if t and t[0].isdigit() else 0

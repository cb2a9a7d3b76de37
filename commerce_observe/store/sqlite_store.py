"""The embedded store: one SQLite file, for a laptop with nothing installed.

Why rollup tables filled by triggers: the dashboard asks the same per-minute
questions every few seconds over hours of data, and scanning millions of raw rows
each time is too slow (see ``benchmarks/monitoring.py``). An ``AFTER INSERT``
trigger adds each *new* document to small per-minute tables keyed by the
dimensions we group by; ``INSERT OR IGNORE`` on the ``event.id`` primary key
means a redelivered document is ignored and its trigger never fires, so the
rollups stay exact under at-least-once delivery. Queries read only the rollups
(raw rows serve the alert list).

Each thread gets its own connection (WAL mode: readers never wait for the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from commerce_observe.agent.events import conventions as cv
from commerce_observe.store import documents as d
from commerce_observe.store.queries import (
    LATENCY_BOUNDS_MS, MINUTE_MS, AlertRow, CountRow, LatencyStats, MinuteRow, ProductRow, RevenueRow,
    TimeRange, TrendRow, aov, by_count, money,
)
from commerce_observe.store.store import WriteResult

HOUR_MS = 3_600_000

_LAT_CASE = "CASE " + " ".join(f"WHEN NEW.latency_ms < {b} THEN {i}" for i, b in enumerate(LATENCY_BOUNDS_MS)) + \
    f" ELSE {len(LATENCY_BOUNDS_MS)} END"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS docs(
  id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, record TEXT NOT NULL, action TEXT NOT NULL,
  currency TEXT, method TEXT, reason TEXT, amount_milli INTEGER, product_id TEXT, quantity INTEGER,
  latency_ms REAL, kind TEXT, event_id TEXT, event_type TEXT, order_id TEXT, payment_id TEXT,
  trace_id TEXT, message TEXT, series TEXT, score REAL, body TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute_rollup(minute INTEGER NOT NULL, action TEXT NOT NULL, currency TEXT NOT NULL,
  method TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL, amount_milli INTEGER NOT NULL,
  PRIMARY KEY(minute, action, currency, method, reason)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hour_rollup(hour INTEGER NOT NULL, action TEXT NOT NULL, currency TEXT NOT NULL,
  method TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL, amount_milli INTEGER NOT NULL,
  PRIMARY KEY(hour, action, currency, method, reason)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS product_hour(hour INTEGER NOT NULL, product_id TEXT NOT NULL,
  quantity INTEGER NOT NULL, lines INTEGER NOT NULL, PRIMARY KEY(hour, product_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS product_rollup(minute INTEGER NOT NULL, product_id TEXT NOT NULL,
  quantity INTEGER NOT NULL, lines INTEGER NOT NULL, PRIMARY KEY(minute, product_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latency_rollup(minute INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
  sum_ms REAL NOT NULL, max_ms REAL NOT NULL, PRIMARY KEY(minute, bucket)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS docs_minute AFTER INSERT ON docs WHEN NEW.record IN ('event', 'finding') BEGIN
  INSERT INTO minute_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, NEW.action, coalesce(NEW.currency, ''),
    coalesce(NEW.method, ''), coalesce(NEW.reason, ''), 1, coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET n = n + 1, amount_milli = amount_milli + excluded.amount_milli;
  INSERT INTO hour_rollup VALUES(NEW.ts_ms / {HOUR_MS}, NEW.action, coalesce(NEW.currency, ''),
    coalesce(NEW.method, ''), coalesce(NEW.reason, ''), 1, coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET n = n + 1, amount_milli = amount_milli + excluded.amount_milli;
END;
CREATE TRIGGER IF NOT EXISTS docs_product AFTER INSERT ON docs WHEN NEW.record = 'item' BEGIN
  INSERT INTO product_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, NEW.product_id, NEW.quantity, 1)
  ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity, lines = lines + 1;
  INSERT INTO product_hour VALUES(NEW.ts_ms / {HOUR_MS}, NEW.product_id, NEW.quantity, 1)
  ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity, lines = lines + 1;
END;
CREATE TRIGGER IF NOT EXISTS docs_latency AFTER INSERT ON docs WHEN NEW.latency_ms IS NOT NULL
  AND NEW.record = 'message' BEGIN
  INSERT INTO latency_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, {_LAT_CASE}, 1, NEW.latency_ms, NEW.latency_ms)
  ON CONFLICT DO UPDATE SET n = n + 1, sum_ms = sum_ms + excluded.sum_ms, max_ms = max(max_ms, excluded.max_ms);
END;
"""
#: Indices over the few documents the dashboard lists one by one (findings, scores, alert states).
NOTES = f"""
CREATE INDEX IF NOT EXISTS docs_notes ON docs(ts_ms) WHERE record IN ('{d.FINDING}', '{d.ANOMALY}', '{d.ALERT}');
CREATE INDEX IF NOT EXISTS docs_series ON docs(series, ts_ms) WHERE record = '{d.ANOMALY}';
DROP INDEX IF EXISTS docs_alerts;
"""
#: Columns added after the first release, added to older files when they are opened.
ADDED = (("series", "TEXT"), ("score", "REAL"), ("body", "TEXT"))
COLUMNS = ("id", "ts_ms", "record", "action", "currency", "method", "reason", "amount_milli", "product_id",
           "quantity", "latency_ms", "kind", "event_id", "event_type", "order_id", "payment_id", "trace_id", "message",
           "series", "score", "body")
#: Records whose whole document is kept (``body``): few, and listed field by field.
WHOLE = (d.FINDING, d.ANOMALY, d.ALERT)
INSERT = f"INSERT OR IGNORE INTO docs({', '.join(COLUMNS)}) VALUES({', '.join('?' * len(COLUMNS))})"
Row = tuple[Any, ...]


def _spans(r: TimeRange, table: str, hour_table: str, columns: str) -> tuple[str, tuple[int, ...]]:
    """A UNION ALL over whole hours (from the hourly table) and the minutes at both edges.

    Why: over days, the per-minute product table has minutes x products rows;
    the hourly one has sixty times fewer, so a week stays a few milliseconds.
    """
    m0, m1 = r.start_ms // MINUTE_MS, r.end_ms // MINUTE_MS
    h0, h1 = -(-m0 // 60), m1 // 60
    if h0 >= h1:
        return f"SELECT {columns} FROM {table} WHERE minute >= ? AND minute < ?", (m0, m1)
    sql = (f"SELECT {columns} FROM {table} WHERE minute >= ? AND minute < ? UNION ALL "
           f"SELECT {columns} FROM {hour_table} WHERE hour >= ? AND hour < ? UNION ALL "
           f"SELECT {columns} FROM {table} WHERE minute >= ? AND minute < ?")
    return sql, (m0, h0 * 60, h0, h1, h1 * 60, m1)


def to_row(doc: Mapping[str, Any]) -> Row:
    """The columns of one document (KeyError/ValueError when it is not one of ours)."""
    record = doc[d.RECORD]
    amount = doc.get(cv.AMOUNT)
    kind = doc.get(d.FINDING_KIND) if record == d.FINDING else ("ANOMALY" if record == d.ANOMALY else None)
    body = json.dumps(doc, separators=(",", ":"), sort_keys=True) if record in WHOLE else None
    return (
        str(doc["event.id"]), d.timestamp_ms(doc), record, doc["event.action"], doc.get(cv.CURRENCY),
        doc.get(cv.PAYMENT_METHOD), doc.get(cv.FAILURE_REASON), None if amount is None else round(float(amount) * 1000),
        doc.get(d.PRODUCT_ID), doc.get(d.PRODUCT_QUANTITY), doc.get(d.LATENCY_MS), kind,
        doc.get(cv.EVENT_ID, doc["event.id"] if record == d.EVENT else None), doc.get(cv.EVENT_TYPE),
        doc.get(cv.ORDER_ID), doc.get(cv.PAYMENT_ID), doc.get("trace.id"), doc.get("message"),
        doc.get(d.ANOMALY_SERIES) if record == d.ANOMALY else doc.get(d.ALERT_ID), doc.get(d.ANOMALY_SCORE), body,
    )


class SqliteStore:
    """:class:`~commerce_observe.store.store.EventStore` over one SQLite file."""

    def __init__(self, path: str, *, cache_mb: int = 256) -> None:
        self.path = path
        self._cache_kib = cache_mb * 1024
        self._local = threading.local()
        self._write_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(SCHEMA)
        have = {row[1] for row in conn.execute("PRAGMA table_info(docs)")}
        for name, kind in ADDED:
            if name not in have:
                conn.execute(f"ALTER TABLE docs ADD COLUMN {name} {kind}")
        conn.executescript(NOTES)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{self._cache_kib}")
            self._local.conn = conn
        return conn

    def write(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult:
        rows: list[Row] = []
        rejected = 0
        for doc in docs:
            try:
                rows.append(to_row(doc))
            except (KeyError, ValueError, TypeError):
                rejected += 1
        return self.write_rows(rows) + WriteResult(rejected=rejected)

    def write_rows(self, rows: Sequence[Row]) -> WriteResult:
        """Insert prepared rows in one transaction (the benchmark's fast path)."""
        if not rows:
            return WriteResult()
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.executemany(INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        written = max(cur.rowcount, 0)
        return WriteResult(written=written, duplicates=len(rows) - written)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _q(self, sql: str, r: TimeRange, *extra: Any) -> list[Any]:
        return self._conn().execute(sql, (r.start_ms // MINUTE_MS, r.end_ms // MINUTE_MS, *extra)).fetchall()

    _IN = "minute >= ? AND minute < ?"

    _EVENTS = ("minute_rollup", "hour_rollup", "action, currency, method, reason, n, amount_milli")
    _PRODUCTS = ("product_rollup", "product_hour", "product_id, quantity, lines")

    def _rolled(self, r: TimeRange, select: str, rest: str, *extra: Any,
                tables: tuple[str, str, str] = _EVENTS) -> list[Any]:
        """``SELECT select FROM ... rest`` over a per-minute rollup (``tables``: it, its hourly
        table, the columns; default minute_rollup), whole hours read from the hourly table."""
        union, params = _spans(r, *tables)
        return self._conn().execute(f"SELECT {select} FROM ({union}) {rest}", (*params, *extra)).fetchall()

    def per_minute(self, r: TimeRange) -> list[MinuteRow]:
        rows = self._q(f"""SELECT minute, sum(n * (action = 'order.created')),
            sum(n * (action IN ('payment.authorized', 'payment.failed'))), sum(n * (action = 'payment.failed'))
            FROM minute_rollup WHERE {self._IN} AND action IN ('order.created', 'payment.authorized', 'payment.failed')
            GROUP BY minute ORDER BY minute""", r)
        return [MinuteRow(m * MINUTE_MS, o, p, f) for m, o, p, f in rows]

    def revenue(self, r: TimeRange) -> list[RevenueRow]:
        rows = self._rolled(r, "currency, sum(n), sum(amount_milli)",
                            "WHERE action = 'order.created' AND currency != '' GROUP BY currency ORDER BY currency")
        return [RevenueRow(c, n, money(a), aov(money(a), n)) for c, n, a in rows]

    def sales_trend(self, r: TimeRange, bucket_minutes: int = 1) -> list[TrendRow]:
        rows = self._conn().execute(
            f"""SELECT minute / ? * ? AS b, currency, sum(n), sum(amount_milli) FROM minute_rollup
            WHERE {self._IN} AND action = 'order.created' AND currency != '' GROUP BY b, currency ORDER BY b, currency""",
            (bucket_minutes, bucket_minutes, r.start_ms // MINUTE_MS, r.end_ms // MINUTE_MS)).fetchall()
        return [TrendRow(b * MINUTE_MS, c, n, money(a)) for b, c, n, a in rows]

    def top_products(self, r: TimeRange, limit: int = 10) -> list[ProductRow]:
        rows = self._rolled(r, "product_id, sum(quantity) AS q, sum(lines)",
                            "GROUP BY product_id ORDER BY q DESC, product_id LIMIT ?", limit, tables=self._PRODUCTS)
        return [ProductRow(p, q, n) for p, q, n in rows]

    def _failures(self, r: TimeRange, column: str) -> list[CountRow]:
        rows = self._rolled(r, f"{column}, sum(n)", f"WHERE action = 'payment.failed' AND {column} != '' GROUP BY {column}")
        return by_count(dict(rows))

    def failures_by_reason(self, r: TimeRange) -> list[CountRow]:
        return self._failures(r, "reason")

    def failures_by_method(self, r: TimeRange) -> list[CountRow]:
        return self._failures(r, "method")

    def latency(self, r: TimeRange) -> LatencyStats:
        rows = self._q(f"SELECT bucket, sum(n), sum(sum_ms), max(max_ms) FROM latency_rollup WHERE {self._IN} "
                       "GROUP BY bucket", r)
        counts: dict[int, int] = defaultdict(int)
        total, sum_ms, max_ms = 0, 0.0, None
        for bucket, n, s, m in rows:
            counts[bucket] += n
            total += n
            sum_ms += s
            max_ms = m if max_ms is None else max(max_ms, m)
        bounds: list[float | None] = [*LATENCY_BOUNDS_MS, None]
        return LatencyStats(total, round(sum_ms / total, 3) if total else None,
                            None if max_ms is None else round(max_ms, 3),
                            tuple((b, counts.get(i, 0)) for i, b in enumerate(bounds)))

    def finding_counts(self, r: TimeRange) -> list[CountRow]:
        rows = self._rolled(r, "action, sum(n)", "WHERE action LIKE 'finding.%' GROUP BY action")
        return by_count({a.split(".", 1)[1].upper(): n for a, n in rows})

    def alerts(self, r: TimeRange, limit: int = 50) -> list[AlertRow]:
        rows = self._conn().execute(
            """SELECT ts_ms, kind, event_id, event_type, order_id, payment_id, trace_id, message FROM docs
            WHERE record IN ('finding', 'anomaly') AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms DESC, id LIMIT ?""",
            (r.start_ms, r.end_ms, limit)).fetchall()
        return [AlertRow(*row) for row in rows]

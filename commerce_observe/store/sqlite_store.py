"""The embedded store: one SQLite file, for a laptop with nothing installed.

Why rollup tables filled by triggers: the dashboard asks the same per-minute
questions every few seconds over hours of data, and scanning millions of raw rows
each time is too slow (see ``benchmarks/monitoring.py``). An ``AFTER INSERT``
trigger adds each *new* document to small per-minute tables keyed by the
dimensions we group by; ``INSERT OR IGNORE`` on the ``event.id`` primary key
means a redelivered document is ignored and its trigger never fires, so the
rollups stay exact under at-least-once delivery. Imported history
(:mod:`~commerce_observe.store.aggregates`) goes to its own ``aggregates`` table,
whose triggers add each aggregate's count to the same rollups, so every query
below sees it. Queries read only the rollups (raw rows serve the alert list).

Each thread gets its own connection (WAL mode: readers never wait for the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from commerce_observe.agent.events import conventions as cv
from commerce_observe.store import documents as d
from commerce_observe.store import incidents, sqlite_series
from commerce_observe.store.aggregates import AGGREGATE, Aggregate, PaymentBucket, from_document
from commerce_observe.store.queries import (
    LATENCY_BOUNDS_MS, MINUTE_MS, AlertRow, AnomalyRow, CountRow, LatencyStats, MinuteRow, OpenAlertRow, ProductRow,
    RevenueRow, SeriesPoint, TimeRange, TrendRow, aov, by_count, money,
)
from commerce_observe.store.sqlite_schema import (
    ABNORMAL, COLUMNS, INSERT, INSERT_AGGREGATE, INSERT_PAYMENT_BUCKET, INSERT_START, LAST_PAYMENT_BUCKET,
    PAYMENT_AGGREGATES_AFTER, PAYMENT_ROLLUPS, WHOLE, prepare,
)
from commerce_observe.store.store import WriteResult

Row = tuple[Any, ...]
#: An aggregate's start in ms, its bucket length in s, and both (read in C, no Python per row).
_TS, _BUCKET, _START = itemgetter(1), itemgetter(2), itemgetter(1, 2)
_AGGREGATES = itemgetter(7)  # of a PaymentBucket


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


def _starts(aggs: Sequence[Aggregate] | Sequence[PaymentBucket]) -> set[tuple[int, int]]:
    """The batch's distinct (start minute, bucket length): sets built in C first (a batch is 20,000
    aggregates over a few starts and, nearly always, one bucket length), Python only per distinct start."""
    sizes = set(map(_BUCKET, aggs))
    if len(sizes) == 1:
        size = next(iter(sizes))
        return {(ts // MINUTE_MS, size) for ts in set(map(_TS, aggs))}
    return {(ts // MINUTE_MS, b) for ts, b in set(map(_START, aggs))}


def to_row(doc: Mapping[str, Any]) -> Row:
    """The columns of one document (KeyError/ValueError when it is not one of ours)."""
    record = doc[d.RECORD]
    amount = doc.get(d.PRODUCT_REVENUE if record == d.ITEM else cv.AMOUNT)
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
        prepare(self._conn())

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
        aggs: list[Aggregate] = []
        rejected = 0
        for doc in docs:
            try:
                if doc.get(d.RECORD) == AGGREGATE:
                    aggs.append(from_document(doc))
                else:
                    rows.append(to_row(doc))
            except (KeyError, ValueError, TypeError):
                rejected += 1
        return self.write_rows(rows) + self.write_aggregates(aggs) + WriteResult(rejected=rejected)

    def write_aggregates(self, aggs: Sequence[Aggregate]) -> WriteResult:
        """Imported history: each aggregate is a row as it is (the importer's fast path), and the
        batch's distinct (start minute, bucket length) go to ``import_starts`` in the same transaction."""
        return self.write_rows(aggs, INSERT_AGGREGATE, (INSERT_START, list(_starts(aggs))))

    def write_payment_buckets(self, buckets: Sequence[PaymentBucket]) -> WriteResult:
        """Imported payments, one row per method and bucket, counted like :meth:`write_aggregates` in the
        aggregates they stand for. The rows this batch added are those after the largest rowid before it
        (the write lock is held): :data:`PAYMENT_ROLLUPS` add their outcomes to the rollups, set-based."""
        if not buckets:
            return WriteResult()
        with self._transaction() as conn:
            last = conn.execute(LAST_PAYMENT_BUCKET).fetchone()[0]
            conn.executemany(INSERT_PAYMENT_BUCKET, buckets)
            for statement in PAYMENT_ROLLUPS:
                conn.execute(statement, (last,))
            written = int(conn.execute(PAYMENT_AGGREGATES_AFTER, (last,)).fetchone()[0])
            conn.executemany(INSERT_START, list(_starts(buckets)))
        return WriteResult(written=written, duplicates=sum(map(_AGGREGATES, buckets)) - written)

    def write_rows(self, rows: Sequence[Row], insert: str = INSERT,
                   also: tuple[str, Sequence[Row]] | None = None) -> WriteResult:
        """Insert prepared rows in one transaction (the benchmark's fast path); ``also``: more rows for
        another statement in the same transaction (not counted in the result)."""
        if not rows:
            return WriteResult()
        with self._transaction() as conn:
            written = max(conn.executemany(insert, rows).rowcount, 0)
            if also is not None:
                conn.executemany(*also)
        return WriteResult(written=written, duplicates=len(rows) - written)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside one write transaction (committed, or rolled back on any error)."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

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

    def import_bucket_minutes(self, r: TimeRange) -> int:
        """See :meth:`~commerce_observe.store.queries.MetricsQuery.import_bucket_minutes` (reads ``import_starts``)."""
        longest = self._q("SELECT max(bucket_s) FROM import_starts WHERE minute >= ? AND minute < ?", r)[0][0]
        return -(-int(longest) // 60) if longest else 0

    def series(self, by: str, r: TimeRange, bucket_minutes: int = 60) -> Iterator[SeriesPoint]:
        """See :meth:`~commerce_observe.store.queries.MetricsQuery.series`; read with this thread's connection."""
        return sqlite_series.series(self._conn(), by, r, bucket_minutes)

    _NOTES = """SELECT ts_ms, kind, event_id, event_type, order_id, payment_id, trace_id, message FROM docs
            WHERE {which} AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms DESC, id LIMIT ?"""

    def alerts(self, r: TimeRange, limit: int = 50) -> list[AlertRow]:
        rows = self._conn().execute(
            self._NOTES.format(which=f"(record = '{d.FINDING}' OR (record = '{d.ANOMALY}' AND {ABNORMAL}))"),
            (r.start_ms, r.end_ms, limit)).fetchall()
        return [AlertRow(*row) for row in rows]

    def findings(self, r: TimeRange, limit: int = 50) -> list[AlertRow]:
        rows = self._conn().execute(self._NOTES.format(which=f"record = '{d.FINDING}'"),
                                    (r.start_ms, r.end_ms, limit)).fetchall()
        return [AlertRow(*row) for row in rows]

    def anomalies(self, r: TimeRange, limit: int = 20) -> list[AnomalyRow]:
        conn = self._conn()
        # with max(), SQLite's bare column (score) comes from the row holding the maximum
        hot = conn.execute(f"""SELECT series, max(ts_ms), score FROM docs WHERE record = '{d.ANOMALY}'
            AND {ABNORMAL} AND ts_ms >= ? AND ts_ms < ? GROUP BY series""", (r.start_ms, r.end_ms)).fetchall()
        latest = {name: conn.execute(f"""SELECT max(ts_ms) FROM docs WHERE record = '{d.ANOMALY}' AND series = ?
            AND ts_ms < ? AND score IS NOT NULL""", (name, r.end_ms)).fetchone()[0] for name, _, _ in hot}
        chosen = incidents.shortlist(hot, latest, limit)
        rows = conn.execute(
            f"""SELECT series, ts_ms, score, body FROM docs WHERE record = '{d.ANOMALY}'
            AND series IN ({", ".join("?" * len(chosen))}) AND ts_ms >= ? AND ts_ms < ? ORDER BY series, ts_ms""",
            (*chosen, r.start_ms - incidents.SINCE_LOOKBACK_MS, r.end_ms))
        return incidents.anomaly_rows(rows, limit, lambda body: json.loads(body) if body else {})

    def open_alerts(self, r: TimeRange, limit: int = 50) -> list[OpenAlertRow]:
        rows = self._conn().execute(
            f"""SELECT body FROM docs f WHERE record = '{d.ALERT}' AND action = 'alert.firing' AND ts_ms >= ?
            AND ts_ms < ? AND NOT EXISTS (SELECT 1 FROM docs x WHERE x.record = '{d.ALERT}'
              AND x.action = 'alert.resolved' AND x.series = f.series AND x.ts_ms < ?)
            ORDER BY ts_ms DESC, id LIMIT ?""", (r.end_ms - incidents.OPEN_LOOKBACK_MS, r.end_ms, r.end_ms, limit))
        return [incidents.open_alert_row(json.loads(body)) for body, in rows]

"""Series for learning, read from the embedded store's rollups (raw events and imported history alike).

Why the rollups and not the raw documents: three months of hourly history for
thousands of products is tens of millions of points, and the rollups already
hold them summed per minute and per hour (both events and aggregates feed them,
see :mod:`~commerce_observe.store.sqlite_schema`). Buckets that are whole hours
read the hourly tables; a one-hour bucket then needs no grouping at all, and
SQLite streams the rows in primary-key order without sorting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from commerce_observe.store.queries import MINUTE_MS, SERIES_BY, SeriesPoint, TimeRange, series_bounds

_PAYMENTS = "('payment.authorized', 'payment.failed')"
#: by -> (rollup kind, key expression, value expressions, filter)
_SQL: dict[str, tuple[str, str, str, str]] = {
    "product": ("product", "product_id", "sum(lines), sum(amount_milli), 0, 0", ""),
    "method": ("event", "CASE method WHEN '' THEN 'unknown' ELSE method END",
               "0, 0, sum(n), sum(n * (action = 'payment.failed'))", f"AND action IN {_PAYMENTS}"),
    "currency": ("event", "currency", "sum(n), sum(amount_milli), 0, 0", "AND action = 'order.created'"),
    "site": ("event", "''", "sum(n * (action = 'order.created')), sum(amount_milli * (action = 'order.created')), "
             f"sum(n * (action IN {_PAYMENTS})), sum(n * (action = 'payment.failed'))",
             f"AND action IN ('order.created', {_PAYMENTS[1:-1]})"),
}
_TABLES = {("product", False): ("product_rollup", "minute"), ("product", True): ("product_hour", "hour"),
           ("event", False): ("minute_rollup", "minute"), ("event", True): ("hour_rollup", "hour")}


def series_sql(by: str, r: TimeRange, bucket_minutes: int) -> tuple[str, tuple[int, int], int]:
    """The query, its parameters, and the milliseconds per unit of the bucket column it returns."""
    if by not in _SQL:
        raise ValueError(f"series by {by!r}: expected one of {', '.join(SERIES_BY)}")
    m0, m1 = series_bounds(r, bucket_minutes)
    rollup, key, values, where = _SQL[by]
    hourly = bucket_minutes % 60 == 0
    table, col = _TABLES[rollup, hourly]
    unit = 60 if hourly else 1
    k = bucket_minutes // unit
    bucket = col if k == 1 else f"{col} / {k} * {k}"
    sql = (f"SELECT {bucket} AS b, {key} AS k, {values} FROM {table} WHERE {col} >= ? AND {col} < ? {where} "
           "GROUP BY b, k ORDER BY b, k")
    return sql, (m0 // unit, m1 // unit), unit * MINUTE_MS


def series(conn: sqlite3.Connection, by: str, r: TimeRange, bucket_minutes: int = 60) -> Iterator[SeriesPoint]:
    """:meth:`~commerce_observe.store.queries.MetricsQuery.series` on one connection (streamed)."""
    sql, params, unit_ms = series_sql(by, r, bucket_minutes)
    cursor = conn.execute(sql, params)
    return _points(cursor, unit_ms)


def _points(cursor: sqlite3.Cursor, unit_ms: int) -> Iterator[SeriesPoint]:
    try:
        while rows := cursor.fetchmany(10_000):
            for b, key, orders, revenue_milli, attempts, failures in rows:
                yield SeriesPoint(b * unit_ms, key, orders, round(revenue_milli / 1000, 3), attempts, failures)
    finally:
        cursor.close()

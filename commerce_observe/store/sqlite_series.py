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
_REVENUE = "round(sum({}) / 1000.0, 3)"  # thousandths to currency units, as the other stores round
_ORDER_REVENUE = _REVENUE.format("amount_milli * (action = 'order.created')")
#: by -> (rollup kind, key expression, value expressions, filter)
_SQL: dict[str, tuple[str, str, str, str]] = {
    "product": ("product", "product_id", f"sum(lines), {_REVENUE.format('amount_milli')}, 0, 0", ""),
    "method": ("event", "CASE method WHEN '' THEN 'unknown' ELSE method END",
               "0, 0.0, sum(n), sum(n * (action = 'payment.failed'))", f"AND action IN {_PAYMENTS}"),
    "currency": ("event", "currency", f"sum(n), {_REVENUE.format('amount_milli')}, 0, 0",
                 "AND action = 'order.created'"),
    "site": ("event", "''", f"sum(n * (action = 'order.created')), "
             f"{_ORDER_REVENUE}, "
             f"sum(n * (action IN {_PAYMENTS})), sum(n * (action = 'payment.failed'))",
             f"AND action IN ('order.created', {_PAYMENTS[1:-1]})"),
}
_TABLES = {("product", False): ("product_rollup", "minute"), ("product", True): ("product_hour", "hour"),
           ("event", False): ("minute_rollup", "minute"), ("event", True): ("hour_rollup", "hour")}


def series_sql(by: str, r: TimeRange, bucket_minutes: int) -> tuple[str, tuple[int, int]]:
    """The query and its parameters; its rows are :class:`SeriesPoint` fields, in order."""
    if by not in _SQL:
        raise ValueError(f"series by {by!r}: expected one of {', '.join(SERIES_BY)}")
    m0, m1 = series_bounds(r, bucket_minutes)
    rollup, key, values, where = _SQL[by]
    hourly = bucket_minutes % 60 == 0
    table, col = _TABLES[rollup, hourly]
    unit = 60 if hourly else 1
    k = bucket_minutes // unit
    bucket = col if k == 1 else f"{col} / {k} * {k}"
    sql = (f"SELECT {bucket} * {unit * MINUTE_MS} AS b, {key} AS k, {values} FROM {table} "
           f"WHERE {col} >= ? AND {col} < ? {where} GROUP BY {bucket}, k ORDER BY {bucket}, k")
    return sql, (m0 // unit, m1 // unit)


def series(conn: sqlite3.Connection, by: str, r: TimeRange, bucket_minutes: int = 60) -> Iterator[SeriesPoint]:
    """:meth:`~commerce_observe.store.queries.MetricsQuery.series` on one connection (streamed)."""
    sql, params = series_sql(by, r, bucket_minutes)
    return _points(conn.execute(sql, params))


def _points(cursor: sqlite3.Cursor) -> Iterator[SeriesPoint]:
    """The rows as points, a chunk at a time (no Python work per row beyond making the tuple)."""
    make = SeriesPoint._make
    try:
        while rows := cursor.fetchmany(10_000):
            yield from map(make, rows)
    finally:
        cursor.close()

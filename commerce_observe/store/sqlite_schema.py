"""The embedded store's file layout: tables, the triggers that fill the rollups, upgrades.

Kept apart from :mod:`~commerce_observe.store.sqlite_store` (which writes and asks)
because the layout is read as a whole: every rollup row comes from a trigger on
``docs`` (one event counts 1) or on ``aggregates`` (imported history counts its
``n``), or from :data:`PAYMENT_ROLLUPS` for the ``payment_buckets`` a batch added (a
payments CSV row: its outcomes and reasons count like its aggregates would), and a
change to one of them usually means the same change to its twins.

:func:`prepare` runs at every open: it creates what is missing and upgrades a file
written by an earlier version in place, so an existing store keeps its data.
"""

from __future__ import annotations

import sqlite3

from commerce_observe.store import documents as d
from commerce_observe.store import incidents
from commerce_observe.store.queries import LATENCY_BOUNDS_MS, MINUTE_MS

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
  quantity INTEGER NOT NULL, lines INTEGER NOT NULL, amount_milli INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(hour, product_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS product_rollup(minute INTEGER NOT NULL, product_id TEXT NOT NULL,
  quantity INTEGER NOT NULL, lines INTEGER NOT NULL, amount_milli INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(minute, product_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aggregates(id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, bucket_s INTEGER NOT NULL,
  action TEXT NOT NULL, n INTEGER NOT NULL, amount_milli INTEGER, product_id TEXT, quantity INTEGER, currency TEXT,
  method TEXT, reason TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payment_buckets(id TEXT NOT NULL UNIQUE, ts_ms INTEGER NOT NULL, bucket_s INTEGER NOT NULL,
  method TEXT NOT NULL, authorized INTEGER NOT NULL, unexplained INTEGER NOT NULL, reasons TEXT NOT NULL,
  aggregates INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS import_starts(minute INTEGER NOT NULL, bucket_s INTEGER NOT NULL,
  PRIMARY KEY(minute, bucket_s)) WITHOUT ROWID;
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
  INSERT INTO product_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, NEW.product_id, NEW.quantity, 1,
    coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity, lines = lines + 1,
    amount_milli = amount_milli + excluded.amount_milli;
  INSERT INTO product_hour VALUES(NEW.ts_ms / {HOUR_MS}, NEW.product_id, NEW.quantity, 1, coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity, lines = lines + 1,
    amount_milli = amount_milli + excluded.amount_milli;
END;
CREATE TRIGGER IF NOT EXISTS aggregates_rollup AFTER INSERT ON aggregates BEGIN
  INSERT INTO minute_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, NEW.action, coalesce(NEW.currency, ''),
    coalesce(NEW.method, ''), coalesce(NEW.reason, ''), NEW.n, coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET n = n + excluded.n, amount_milli = amount_milli + excluded.amount_milli;
  INSERT INTO hour_rollup VALUES(NEW.ts_ms / {HOUR_MS}, NEW.action, coalesce(NEW.currency, ''),
    coalesce(NEW.method, ''), coalesce(NEW.reason, ''), NEW.n, coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET n = n + excluded.n, amount_milli = amount_milli + excluded.amount_milli;
END;
CREATE TRIGGER IF NOT EXISTS aggregates_product AFTER INSERT ON aggregates WHEN NEW.product_id IS NOT NULL BEGIN
  INSERT INTO product_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, NEW.product_id, coalesce(NEW.quantity, NEW.n), NEW.n,
    coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity, lines = lines + excluded.lines,
    amount_milli = amount_milli + excluded.amount_milli;
  INSERT INTO product_hour VALUES(NEW.ts_ms / {HOUR_MS}, NEW.product_id, coalesce(NEW.quantity, NEW.n), NEW.n,
    coalesce(NEW.amount_milli, 0))
  ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity, lines = lines + excluded.lines,
    amount_milli = amount_milli + excluded.amount_milli;
END;
CREATE TRIGGER IF NOT EXISTS docs_latency AFTER INSERT ON docs WHEN NEW.latency_ms IS NOT NULL
  AND NEW.record = 'message' BEGIN
  INSERT INTO latency_rollup VALUES(NEW.ts_ms / {MINUTE_MS}, {_LAT_CASE}, 1, NEW.latency_ms, NEW.latency_ms)
  ON CONFLICT DO UPDATE SET n = n + 1, sum_ms = sum_ms + excluded.sum_ms, max_ms = max(max_ms, excluded.max_ms);
END;
"""
#: An abnormal score (at or above ``incidents.WARNING``), written into SQL as a literal:
#: SQLite uses a partial index only for a query whose WHERE repeats the index's condition.
ABNORMAL = f"score >= {incidents.WARNING!r}"
#: Indices for the documents the dashboard lists one by one: findings, abnormal scores, a series'
#: scores, alert states (each partial index is on one record type, as the queries ask for it).
NOTES = f"""
CREATE INDEX IF NOT EXISTS docs_findings ON docs(ts_ms) WHERE record = '{d.FINDING}';
CREATE INDEX IF NOT EXISTS docs_abnormal ON docs(ts_ms, series) WHERE record = '{d.ANOMALY}' AND {ABNORMAL};
CREATE INDEX IF NOT EXISTS docs_series ON docs(series, ts_ms) WHERE record = '{d.ANOMALY}';
CREATE INDEX IF NOT EXISTS docs_alert_states ON docs(action, ts_ms) WHERE record = '{d.ALERT}';
CREATE INDEX IF NOT EXISTS docs_alert_ids ON docs(series, action) WHERE record = '{d.ALERT}';
DROP INDEX IF EXISTS docs_alerts;
DROP INDEX IF EXISTS docs_notes;
"""
#: Columns added after the first release, added to older files when they are opened.
ADDED = (("series", "TEXT"), ("score", "REAL"), ("body", "TEXT"))
COLUMNS = ("id", "ts_ms", "record", "action", "currency", "method", "reason", "amount_milli", "product_id",
           "quantity", "latency_ms", "kind", "event_id", "event_type", "order_id", "payment_id", "trace_id", "message",
           "series", "score", "body")
#: Records whose whole document is kept (``body``): few, and listed field by field.
WHOLE = (d.FINDING, d.ANOMALY, d.ALERT)
INSERT = f"INSERT OR IGNORE INTO docs({', '.join(COLUMNS)}) VALUES({', '.join('?' * len(COLUMNS))})"
#: An :class:`~commerce_observe.store.aggregates.Aggregate` is one row of this table, fields in order.
INSERT_AGGREGATE = ("INSERT OR IGNORE INTO aggregates(id, ts_ms, bucket_s, action, n, amount_milli, product_id, quantity, "
                    "currency, method, reason) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
#: A :class:`~commerce_observe.store.aggregates.PaymentBucket` is one row of this table, fields in order.
INSERT_PAYMENT_BUCKET = ("INSERT OR IGNORE INTO payment_buckets(id, ts_ms, bucket_s, method, authorized, unexplained, "
                         "reasons, aggregates) VALUES(?, ?, ?, ?, ?, ?, ?, ?)")
#: The aggregates of the payment buckets after rowid ``?`` (those one batch added) as (ts_ms, method, action,
#: reason, n) rows, as the ``aggregates`` table would hold them.
_NEW_PAYMENTS = ("WITH new AS (SELECT ts_ms, method, authorized, unexplained, reasons FROM payment_buckets "
                 "WHERE rowid > ?) "
                 "SELECT ts_ms, method, 'payment.authorized' AS action, '' AS reason, authorized AS n FROM new "
                 "UNION ALL SELECT ts_ms, method, 'payment.failed', '', unexplained FROM new "
                 "UNION ALL SELECT ts_ms, method, 'payment.failed', j.key, j.value FROM new, json_each(new.reasons) AS j")
#: Their counts into the rollups, once per batch (not a trigger per row, as for ``docs`` and ``aggregates``:
#: set-based, SQLite spends 40% less on a payments import, see docs/import.md).
PAYMENT_ROLLUPS = tuple(
    f"INSERT INTO {table} SELECT ts_ms / {size}, action, '', method, reason, n, 0 FROM ({_NEW_PAYMENTS}) WHERE n > 0 "
    "ON CONFLICT DO UPDATE SET n = n + excluded.n"
    for table, size in (("minute_rollup", MINUTE_MS), ("hour_rollup", HOUR_MS)))
#: What a batch adds: the largest rowid before it, and the aggregates of the rows after it.
LAST_PAYMENT_BUCKET = "SELECT coalesce(max(rowid), 0) FROM payment_buckets"
PAYMENT_AGGREGATES_AFTER = "SELECT coalesce(sum(aggregates), 0) FROM payment_buckets WHERE rowid > ?"
#: Each distinct (start minute, bucket length) of imported aggregates, one row each (filled by
#: :meth:`~commerce_observe.store.sqlite_store.SqliteStore.write_aggregates` once per batch, not by a
#: trigger per row: the import stays as fast). Three months of hourly history is 2,160 rows, so the
#: dashboard learns how coarse the history in a range is without reading the aggregates.
INSERT_START = "INSERT OR IGNORE INTO import_starts(minute, bucket_s) VALUES(?, ?)"
#: Files made before ``import_starts`` get it filled from the aggregates they hold, once.
FILL_STARTS = f"INSERT OR IGNORE INTO import_starts SELECT DISTINCT ts_ms / {MINUTE_MS}, bucket_s FROM aggregates"
#: Files made before the product rollups kept revenue (and before aggregates) get the column here;
#: the trigger that fills it is dropped so that SCHEMA creates it anew.
MIGRATE = ("ALTER TABLE product_rollup ADD COLUMN amount_milli INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE product_hour ADD COLUMN amount_milli INTEGER NOT NULL DEFAULT 0",
           "DROP TRIGGER IF EXISTS docs_product")


def _upgrade_product_rollups(conn: sqlite3.Connection) -> None:
    """Add the revenue column to product rollups of an older file, once, under the file's write lock."""
    def old() -> bool:
        cols = [row[1] for row in conn.execute("PRAGMA table_info(product_rollup)")]
        return bool(cols) and "amount_milli" not in cols

    if not old():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if old():  # another process may have upgraded it while we waited
            for statement in MIGRATE:
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def prepare(conn: sqlite3.Connection) -> None:
    """Create or upgrade the layout on this connection (idempotent: run at every open)."""
    _upgrade_product_rollups(conn)  # before SCHEMA, whose triggers write the new column
    had_aggregates = _has_table(conn, "aggregates")
    had_starts = _has_table(conn, "import_starts")
    conn.executescript(SCHEMA)
    if had_aggregates and not had_starts:
        conn.execute(FILL_STARTS)  # one statement: atomic, and idempotent if another process does it too
    have = {row[1] for row in conn.execute("PRAGMA table_info(docs)")}
    for name, kind in ADDED:
        if name not in have:
            conn.execute(f"ALTER TABLE docs ADD COLUMN {name} {kind}")
    conn.executescript(NOTES)

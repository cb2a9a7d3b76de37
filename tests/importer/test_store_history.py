"""Imported aggregates in both stores: every query counts them, writes are idempotent, series read them back."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import astuple
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from commerce_observe.store.aggregates import expand, from_document, to_document
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.queries import SERIES_BY, TimeRange
from commerce_observe.store.sqlite_store import SqliteStore
from commerce_observe.store.store import EventStore
from tests.importer import history
from tests.monitoring import dataset

DAY = TimeRange.of(*history.day())


def es_store(url: str) -> ElasticsearchStore:
    return ElasticsearchStore(url, data_stream=f"logs-commerce.events-t{uuid.uuid4().hex[:10]}")


def check_queries_count_aggregates(store: EventStore) -> None:
    """The dashboard's figures over a store holding only imported history."""
    total_orders = sum(n for products in history.ORDERS.values() for n, _ in products.values())
    total_milli = sum(m for products in history.ORDERS.values() for _, m in products.values())
    rev = store.revenue(DAY)
    assert [(r.currency, r.orders, r.revenue) for r in rev] == [("EUR", total_orders, Decimal(total_milli) / 1000)]
    minutes = {r.minute_ms: (r.orders, r.payments, r.payment_failures) for r in store.per_minute(DAY)}
    h = history.H0_MS
    assert minutes[h] == (4, 14, 3) and minutes[h + 2 * history.HOUR_MS] == (0, 5, 5)
    assert sum(t.orders for t in store.sales_trend(DAY, 60)) == total_orders
    assert [(p.product_id, p.quantity, p.lines) for p in store.top_products(DAY, 2)] == [("sku-c", 7, 7), ("sku-a", 5, 5)]
    assert [(c.key, c.count) for c in store.failures_by_reason(DAY)] == [("fraud_suspected", 4), ("declined", 3)]
    assert [(c.key, c.count) for c in store.failures_by_method(DAY)] == [("card", 8)]


def check_series(store: EventStore) -> None:
    for by in SERIES_BY:
        assert [tuple(p) for p in store.series(by, DAY, 60)] == history.expected_series(by), by
    three = [tuple(p) for p in store.series("site", DAY, 180)]
    assert [p[0] for p in three] == [history.H0_MS, history.H0_MS + 3 * history.HOUR_MS]
    assert three[0][2:] == (6, 55.5, 19, 8)
    with pytest.raises(ValueError, match="series by 'sku'"):
        store.series("sku", DAY, 60)


def test_sqlite_counts_imported_history_once(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    aggs = history.aggregates()
    first = store.write_aggregates(aggs)
    again = store.write_aggregates(aggs)
    assert (first.written, again.written, again.duplicates) == (len(aggs), 0, len(aggs))
    as_docs = store.write([to_document(a) for a in aggs])  # NDJSON of the same aggregates: still once
    assert as_docs.duplicates == len(aggs)
    check_queries_count_aggregates(store)
    check_series(store)


def test_sqlite_payment_buckets_count_as_their_aggregates(tmp_path: Path) -> None:
    """One row per method and bucket (the payments CSV's fast path) gives every figure its aggregates give,
    and counts in aggregates, also when a batch is partly stored already."""
    store = SqliteStore(str(tmp_path / "m.db"))
    buckets = history.payment_buckets()
    orders = [a for a in history.aggregates() if a.action == "order.created"]
    payments = [a for a in history.aggregates() if a.action != "order.created" and a.n]  # nothing stored for 0
    assert sorted(a for b in buckets for a in expand(b)) == sorted(payments)  # the same aggregates, ids included
    store.write_aggregates(orders)
    first = store.write_payment_buckets(buckets[:1])
    rest = store.write_payment_buckets(buckets)
    again = store.write_payment_buckets(buckets)
    assert (first.written, first.duplicates) == (3, 0)  # card, hour 0: authorized 7, declined 2, no reason 1
    assert (first.written + rest.written, rest.duplicates) == (len(payments), first.written)
    assert (again.written, again.duplicates) == (0, len(payments))
    check_queries_count_aggregates(store)
    check_series(store)


def test_aggregate_documents_round_trip() -> None:
    for agg in history.aggregates():
        assert from_document(to_document(agg)) == agg


def test_series_of_raw_events_and_history_together(tmp_path: Path) -> None:
    """Raw events (the monitoring data set) and aggregates in the same hour add up."""
    store = SqliteStore(str(tmp_path / "m.db"))
    store.write(dataset.documents())
    hour = TimeRange.of(dataset.T0, dataset.T0 + timedelta(hours=1))
    exp = dataset.expected()
    (site,) = store.series("site", hour, 60)
    minutes = exp["per_minute"].values()
    assert (site.orders, site.attempts, site.failures) == tuple(sum(v[i] for v in minutes) for i in range(3))
    assert site.revenue == float(sum(t for _, t in exp["revenue"].values()))
    products = {p.key: (p.orders, p.revenue) for p in store.series("product", hour, 60)}
    revenue: dict[str, Decimal] = {}
    for e in dataset.events():
        for item in e.items:
            revenue[item.product_id] = revenue.get(item.product_id, Decimal(0)) + item.unit_price * item.quantity
    assert products == {p: (lines, float(revenue[p])) for p, _, lines in exp["top_products"]}
    five = list(store.series("method", hour, 5))
    assert sum(p.attempts for p in five) == site.attempts and all(p.bucket_ms % 300_000 == 0 for p in five)


def test_older_file_gets_product_revenue_on_open(tmp_path: Path) -> None:
    """A store file from before the product rollups kept revenue is upgraded in place."""
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE product_rollup(minute INTEGER NOT NULL, product_id TEXT NOT NULL, quantity INTEGER NOT NULL,
          lines INTEGER NOT NULL, PRIMARY KEY(minute, product_id)) WITHOUT ROWID;
        CREATE TABLE product_hour(hour INTEGER NOT NULL, product_id TEXT NOT NULL, quantity INTEGER NOT NULL,
          lines INTEGER NOT NULL, PRIMARY KEY(hour, product_id)) WITHOUT ROWID;
        INSERT INTO product_hour VALUES(473113, 'sku-old', 2, 1);
        CREATE TRIGGER docs_product AFTER INSERT ON product_rollup BEGIN SELECT 1; END;""")
    conn.close()
    store = SqliteStore(path)
    store.write_aggregates(history.aggregates())
    assert [tuple(p) for p in store.series("product", DAY, 60)] == history.expected_series("product")
    old = TimeRange(473113 * history.HOUR_MS, 473114 * history.HOUR_MS)
    assert [tuple(p) for p in store.series("product", old, 60)] == [(473113 * history.HOUR_MS, "sku-old", 1, 0.0, 0, 0)]


@pytest.mark.elasticsearch
def test_elasticsearch_counts_imported_history_once(elasticsearch_url: str) -> None:
    store = es_store(elasticsearch_url)
    aggs = history.aggregates()
    first = store.write_aggregates(aggs)
    again = store.write_aggregates(aggs)
    assert (first.written, again.written, again.duplicates) == (len(aggs), 0, len(aggs))
    buckets = store.write_payment_buckets(history.payment_buckets())  # their documents are the aggregates above
    assert (buckets.written, buckets.duplicates) == (0, sum(b.aggregates for b in history.payment_buckets()))
    store.refresh()
    check_queries_count_aggregates(store)
    check_series(store)


@pytest.mark.elasticsearch
def test_elasticsearch_series_page_and_match_sqlite(elasticsearch_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw events plus history give the same points in both stores, also when the series takes many pages."""
    from commerce_observe.store import es_series

    monkeypatch.setattr(es_series, "PAGE", 3)
    es, lite = es_store(elasticsearch_url), SqliteStore(str(tmp_path / "m.db"))
    for store in (es, lite):
        store.write(dataset.documents())
        store.write_aggregates(history.aggregates())
    es.refresh()
    span = TimeRange.of(history.H0, dataset.T0 + timedelta(hours=1))
    for by in SERIES_BY:
        for minutes in (1, 60, 1440):
            assert list(es.series(by, span, minutes)) == list(lite.series(by, span, minutes)), (by, minutes)
    assert [astuple(r) for r in es.top_products(span, 20)] == [astuple(r) for r in lite.top_products(span, 20)]


def test_hot_path_ids_are_the_documented_hash() -> None:
    from commerce_observe.store.aggregates import aggregate_id, payment_row

    row = payment_row(history.H0_MS, 3600, "card", 7, [("declined", 2), (None, 1)])
    assert [(a.action, a.n, a.reason) for a in row] == [("payment.authorized", 7, None), ("payment.failed", 2, "declined"),
                                                        ("payment.failed", 1, None)]
    for agg in history.aggregates() + history.aggregates(currency="") + row:
        key = (agg.product_id, agg.currency) if agg.action == "order.created" else (agg.method, agg.reason)
        assert agg.id == aggregate_id(agg.action, agg.ts_ms, *key)

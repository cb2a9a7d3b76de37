"""Imported hourly history in the 24 h and 1 h views, as the dashboard's JSON API serves it, on both stores.

The bug this guards against: an aggregate counts in the minute its bucket starts, so
hourly history drawn per 15 minutes (24 h view) or per minute (1 h view) read as one
peak per hour with zeros between. The charts' bucket must be a whole multiple of the
coarsest imported bucket in the range, the range starting with a whole bucket, and the
headline the sum of the points.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from urllib.request import urlopen

import pytest

from commerce_observe.monitor.dashboard import Dashboard
from commerce_observe.store.aggregates import Aggregate, order_aggregate, payment_aggregate
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.overview import chart_bucket
from commerce_observe.store.queries import TimeRange
from commerce_observe.store.sqlite_store import SqliteStore
from commerce_observe.store.store import EventStore

HOUR_MS = 3_600_000
HOURS = 30  # imported hours, the last one being the current hour


def history(now_ms: int) -> list[Aggregate]:
    """Hourly orders (EUR) and payment attempts, different in every hour, none zero."""
    out = []
    last = now_ms // HOUR_MS * HOUR_MS
    for i in range(HOURS):
        at = last - i * HOUR_MS
        orders = 3 + i % 7
        out.append(order_aggregate(at, 3600, "sku-hist", orders, orders * 12_500, "EUR"))
        out.append(payment_aggregate(at, 3600, "card", "payment.authorized", orders))
        out.append(payment_aggregate(at, 3600, "card", "payment.failed", 1 + i % 2, "card_declined"))
    return out


@pytest.fixture(scope="module", params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, list[Aggregate]]]:
    store: EventStore
    if request.param == "sqlite":
        store = SqliteStore(str(tmp_path_factory.mktemp("hist") / "m.db"))
    else:
        store = ElasticsearchStore(request.getfixturevalue("elasticsearch_url"),
                                   data_stream=f"logs-commerce.events-hv{uuid.uuid4().hex[:10]}")
    aggs = history(int(datetime.now(timezone.utc).timestamp() * 1000))
    assert store.write_aggregates(aggs).written == len(aggs)
    if isinstance(store, ElasticsearchStore):
        store.refresh()
    app = Dashboard(store, port=0).start()
    yield app, aggs
    app.close()
    store.close()


def api(app: Dashboard, minutes: int) -> dict[str, object]:
    with urlopen(f"{app.url}api/summary?minutes={minutes}", timeout=30) as res:
        data: dict[str, object] = json.load(res)
    return data


@pytest.mark.parametrize("minutes", [60, 1440])
def test_hourly_history_is_drawn_per_hour_with_its_figures(served: tuple[Dashboard, list[Aggregate]],
                                                           minutes: int) -> None:
    app, aggs = served
    d = api(app, minutes)
    r = d["range"]
    assert isinstance(r, dict)
    inside = [a for a in aggs if r["start_ms"] <= a.ts_ms < r["end_ms"]]
    assert d["import_bucket_minutes"] == 60 and d["bucket_minutes"] == 60, f"{minutes} min view"
    grid = d["grid"]
    assert isinstance(grid, list) and all(t % HOUR_MS == 0 for t in grid)
    per_bucket = {row["minute_ms"]: row for row in d["per_bucket"]}  # type: ignore[attr-defined]
    want_orders = {a.ts_ms: a.n for a in inside if a.action == "order.created"}
    want_payments = {t: sum(a.n for a in inside if a.ts_ms == t and a.action != "order.created") for t in want_orders}
    # every imported hour is one point holding its hour's figures: no peak-and-zeros
    assert {t: per_bucket[t]["orders"] for t in want_orders} == want_orders
    assert {t: per_bucket[t]["payments"] for t in want_orders} == want_payments
    # the range starts with a whole hour, so no point is a zero the shop never had
    assert r["start_ms"] % HOUR_MS == 0 and set(grid) == set(want_orders), f"{minutes} min view"
    trend = {row["bucket_ms"]: Decimal(row["revenue"]) for row in d["sales_trend"]}  # type: ignore[attr-defined]
    assert trend == {a.ts_ms: Decimal(a.amount_milli or 0) / 1000 for a in inside if a.action == "order.created"}
    headline = d["headline"]
    assert isinstance(headline, dict)
    assert headline["orders"] == sum(want_orders.values()) == sum(row["orders"] for row in per_bucket.values())
    assert headline["payment_failures"] == sum(a.n for a in inside if a.action == "payment.failed")


def test_a_range_without_imported_history_keeps_its_bucket(served: tuple[Dashboard, list[Aggregate]]) -> None:
    app, _ = served
    store = app.store
    future = TimeRange(int(datetime.now(timezone.utc).timestamp() * 1000) // HOUR_MS * HOUR_MS + 2 * HOUR_MS,
                       int(datetime.now(timezone.utc).timestamp() * 1000) // HOUR_MS * HOUR_MS + 5 * HOUR_MS)
    assert store.import_bucket_minutes(future) == 0


def test_the_chart_bucket_is_a_whole_multiple_of_the_imported_one() -> None:
    assert [chart_bucket(asked, 60) for asked in (1, 5, 15, 60, 90, 360, 1440)] == [60, 60, 60, 60, 120, 360, 1440]
    assert [chart_bucket(asked, 0) for asked in (1, 15, 360)] == [1, 15, 360]
    assert chart_bucket(360, 1440) == 1440 and chart_bucket(1, 15) == 15


def test_an_older_sqlite_file_learns_its_imported_buckets_when_opened(tmp_path: object) -> None:
    path = f"{tmp_path}/old.db"
    store = SqliteStore(path)
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    store.write_aggregates(history(now_ms))
    store.close()
    with sqlite3.connect(path) as conn:  # as a file written before import_starts existed
        conn.execute("DROP TABLE import_starts")
    reopened = SqliteStore(path)
    try:
        assert reopened.import_bucket_minutes(TimeRange(now_ms - 5 * HOUR_MS, now_ms + HOUR_MS)) == 60
    finally:
        reopened.close()


def test_the_longest_imported_bucket_starting_in_the_range_is_the_answer(tmp_path: object) -> None:
    day = 20_000 * 86_400_000  # a midnight, UTC
    store = SqliteStore(f"{tmp_path}/mixed.db")
    try:  # one batch, two bucket lengths: a daily figure and hourly ones
        store.write_aggregates([payment_aggregate(day, 86_400, "card", "payment.authorized", 90),
                                *(payment_aggregate(day + h * HOUR_MS, 3600, "wallet", "payment.authorized", 4)
                                  for h in range(24))])
        assert store.import_bucket_minutes(TimeRange(day, day + HOUR_MS)) == 1440
        assert store.import_bucket_minutes(TimeRange(day + HOUR_MS, day + 5 * HOUR_MS)) == 60
        assert store.import_bucket_minutes(TimeRange(day - HOUR_MS, day)) == 0
    finally:
        store.close()

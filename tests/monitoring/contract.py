"""Checks every store must pass on the known data set (SQLite and Elasticsearch alike)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from commerce_observe.store.overview import summary
from commerce_observe.store.queries import LATENCY_BOUNDS_MS, MetricsQuery, TimeRange
from commerce_observe.store.store import EventStore
from tests.monitoring import dataset

RANGE = TimeRange.of(dataset.T0, dataset.T0 + timedelta(minutes=10))


def load(store: EventStore) -> None:
    """Write the data set in uneven batches, then write a third of it again (redelivery)."""
    docs = dataset.documents()
    total = store.write(docs[:100]) + store.write(docs[100:])
    assert total.written == len(docs) and total.duplicates == 0 and total.rejected == 0
    again = store.write(docs[::3])
    assert again.written == 0 and again.duplicates == len(docs[::3])


def check_figures(q: MetricsQuery) -> None:
    exp = dataset.expected()
    rows = q.per_minute(RANGE)
    assert {r.minute_ms: (r.orders, r.payments, r.payment_failures) for r in rows} == exp["per_minute"]
    revenue = {r.currency: (r.orders, r.revenue, r.average_order_value) for r in q.revenue(RANGE)}
    assert revenue == {c: (n, t.quantize(Decimal("0.001")), (t / n).quantize(Decimal("0.001")))
                       for c, (n, t) in exp["revenue"].items()}
    assert [(p.product_id, p.quantity, p.lines) for p in q.top_products(RANGE, 10)] == exp["top_products"]
    assert [(p.product_id, p.quantity) for p in q.top_products(RANGE, 2)] == [t[:2] for t in exp["top_products"][:2]]
    assert [(c.key, c.count) for c in q.failures_by_reason(RANGE)] == exp["reasons"]
    assert [(c.key, c.count) for c in q.failures_by_method(RANGE)] == exp["methods"]
    lat = q.latency(RANGE)
    assert lat.count == len(exp["latency"])
    assert lat.max_ms == max(exp["latency"])
    assert lat.avg_ms == round(sum(exp["latency"]) / len(exp["latency"]), 3)
    bounds = [*LATENCY_BOUNDS_MS, float("inf")]
    want = [sum(1 for x in exp["latency"] if (bounds[i - 1] if i else 0) <= x < b) for i, b in enumerate(bounds)]
    assert [n for _, n in lat.histogram] == want
    assert {c.key: c.count for c in q.finding_counts(RANGE)} == exp["findings"]
    alerts = q.alerts(RANGE)
    assert [a.kind for a in alerts] == ["ANOMALY", "LOST", "DUPLICATE", "LOST"]
    assert alerts[1].trace_id == f"{10:032x}" and alerts[1].event_id == "evt-o9"
    trend = q.sales_trend(RANGE, 5)
    assert sum(t.orders for t in trend) == sum(n for n, _ in exp["revenue"].values())
    assert {t.bucket_ms for t in trend} == {RANGE.start_ms, RANGE.start_ms + 300_000}


def check_subrange(q: MetricsQuery) -> None:
    """A range of two minutes sees only those minutes."""
    sub = TimeRange.of(dataset.T0 + timedelta(minutes=1), dataset.T0 + timedelta(minutes=3))
    exp = dataset.expected()["per_minute"]
    got = {r.minute_ms: (r.orders, r.payments, r.payment_failures) for r in q.per_minute(sub)}
    assert got == {m: v for m, v in exp.items() if sub.start_ms <= m < sub.end_ms}


def check_wide_ranges(q: MetricsQuery) -> None:
    """Ranges spanning whole hours (read from hourly rollups) see the same totals as the tight one."""
    for start, end in ((-120, 180), (-30, 90), (0, 60)):
        wide = TimeRange.of(dataset.T0 + timedelta(minutes=start), dataset.T0 + timedelta(minutes=end))
        assert q.revenue(wide) == q.revenue(RANGE)
        assert q.top_products(wide, 3) == q.top_products(RANGE, 3)
        assert q.failures_by_reason(wide) == q.failures_by_reason(RANGE)
        assert q.finding_counts(wide) == q.finding_counts(RANGE)


def comparable(q: MetricsQuery) -> dict[str, Any]:
    """The whole dashboard summary, for comparing two stores (one range cuts through the data)."""
    out = summary(q, RANGE, bucket_minutes=2)
    edge = TimeRange.of(dataset.T0 + timedelta(minutes=3), dataset.T0 + timedelta(minutes=125))
    out["edge"] = summary(q, edge, bucket_minutes=5)
    out["sub"] = [asdict(r) for r in q.per_minute(TimeRange.of(dataset.T0, dataset.T0 + timedelta(minutes=2)))]
    return out

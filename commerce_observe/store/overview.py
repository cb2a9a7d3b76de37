"""Everything the dashboard shows for one range, asked of any store, as JSON-ready data.

The figures come from :class:`~commerce_observe.store.queries.MetricsQuery`; what
is added here is shared arithmetic both stores must not do twice:

* the **bucket grid**: charts over hours or days draw one point per bucket of
  ``bucket_minutes``, aligned to the Unix epoch (UTC) exactly as the stores
  bucket (SQLite ``minute / n * n``, Elasticsearch ``fixed_interval``), so every
  stored bucket lands on a grid point (a grid started at the range's first minute
  did not: the sales trend read 0 everywhere in the 6 h, 24 h and 7 d views);
* the **chart bucket**: never finer than the imported history in the range
  (:func:`chart_bucket`), whose aggregates count in the minute their bucket starts;
* the **headline**: orders, revenue, payment failure rate in %, lost and
  duplicated events and open alerts for the range.

Revenue means one thing everywhere (docs/monitoring.md): the value of the orders
placed, i.e. the sum of ``order.created`` totals, per currency.
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from commerce_observe.store.queries import MINUTE_MS, MetricsQuery, MinuteRow, TimeRange, fill_minutes, series_bounds

#: What "revenue" means on the dashboard, in the demo and in the docs (one sentence, one place).
REVENUE_MEANS = "value of orders placed (sum of order.created totals)"


def bucket_grid(r: TimeRange, bucket_minutes: int) -> list[int]:
    """Start (epoch ms) of every ``bucket_minutes`` bucket that overlaps the range, epoch-aligned."""
    first, end = series_bounds(r, max(1, bucket_minutes))
    return list(range(first * MINUTE_MS, end * MINUTE_MS, max(1, bucket_minutes) * MINUTE_MS))


def chart_bucket(asked: int, imported: int) -> int:
    """``asked`` minutes, raised to a whole multiple of the longest imported bucket (``imported``, 0 if none).

    Why not spread an aggregate's count over the minutes of its bucket instead: the
    figures would stop being exact (an hour's 7 orders are not 0.1167 a minute), the
    rollups would take sixty times the rows per hourly aggregate and the import would
    slow down accordingly. A multiple, not just the longer of the two, so that every
    chart bucket holds whole imported buckets (6 h stays 6 h over hourly history).
    """
    asked = max(1, asked)
    return asked if imported <= 0 else -(-asked // imported) * imported


def whole_first_bucket(r: TimeRange, bucket_minutes: int) -> TimeRange:
    """The range started at the start of its first chart bucket.

    Why, when the bucket was raised for imported history: "the last 6 hours" from 13:39
    would otherwise begin with a 13:00 point holding only 13:39-14:00, where no hourly
    aggregate starts, a zero the shop never had. The headline covers the same widened
    range (the answer's ``range``), so it still equals the sum of the chart's points.
    """
    step = max(1, bucket_minutes) * MINUTE_MS
    return TimeRange(r.start_ms // step * step, r.end_ms)


def per_bucket(minutes: list[MinuteRow], grid: list[int], bucket_minutes: int) -> list[MinuteRow]:
    """Per-minute counts summed into the grid's buckets (zeros included)."""
    step = max(1, bucket_minutes) * MINUTE_MS
    sums = {b: [0, 0, 0] for b in grid}
    for m in minutes:
        row = sums.get(m.minute_ms // step * step)
        if row is not None:
            row[0] += m.orders
            row[1] += m.payments
            row[2] += m.payment_failures
    return [MinuteRow(b, *sums[b]) for b in grid]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def summary(q: MetricsQuery, r: TimeRange, *, bucket_minutes: int = 1, top: int = 10) -> dict[str, Any]:
    """Everything the dashboard shows for one range, as JSON-ready data.

    ``bucket_minutes`` is what the view asks for; the charts use :func:`chart_bucket` of it
    (``bucket_minutes`` in the answer), ``import_bucket_minutes`` says why it is coarser, and
    then the range starts with its first whole bucket (:func:`whole_first_bucket`).
    """
    minute_list = r.minutes <= 1440  # a week of minutes is too much
    imported = q.import_bucket_minutes(r)
    if chart_bucket(bucket_minutes, imported) != max(1, bucket_minutes):
        bucket_minutes = chart_bucket(bucket_minutes, imported)
        r = whole_first_bucket(r, bucket_minutes)
    lat = q.latency(r)
    minutes = fill_minutes(q.per_minute(r), r)
    grid = bucket_grid(r, bucket_minutes)
    revenue = q.revenue(r)
    counts = {c.key: c.count for c in q.finding_counts(r)}
    open_alerts = q.open_alerts(r)
    payments = sum(m.payments for m in minutes)
    failures = sum(m.payment_failures for m in minutes)
    headline = {
        "orders": sum(m.orders for m in minutes), "payments": payments, "payment_failures": failures,
        "failure_rate_pct": round(100.0 * failures / payments, 1) if payments else None,
        "revenue": [{"currency": x.currency, "revenue": x.revenue} for x in revenue], "revenue_means": REVENUE_MEANS,
        "lost": counts.get("LOST", 0), "duplicate": counts.get("DUPLICATE", 0), "open_alerts": len(open_alerts),
    }
    out: dict[str, Any] = _jsonable({
        "range": {"start_ms": r.start_ms, "end_ms": r.end_ms},
        "bucket_minutes": bucket_minutes,
        "import_bucket_minutes": imported,
        "grid": grid,
        "headline": headline,
        "per_minute": [asdict(x) for x in minutes] if minute_list else [],
        "per_bucket": [asdict(x) for x in per_bucket(minutes, grid, bucket_minutes)],
        "revenue": [asdict(x) for x in revenue],
        "sales_trend": [asdict(x) for x in q.sales_trend(r, bucket_minutes)],
        "top_products": [asdict(x) for x in q.top_products(r, top)],
        "failures_by_reason": [asdict(x) for x in q.failures_by_reason(r)],
        "failures_by_method": [asdict(x) for x in q.failures_by_method(r)],
        "latency": {"count": lat.count, "avg_ms": lat.avg_ms, "max_ms": lat.max_ms,
                    "histogram": [{"lt_ms": b, "count": n} for b, n in lat.histogram]},
        "findings": [asdict(x) for x in q.finding_counts(r)],
        "finding_list": [asdict(x) for x in q.findings(r)],
        "anomalies": [asdict(x) for x in q.anomalies(r)],
        "open_alerts": [asdict(x) for x in open_alerts],
        "alerts": [asdict(x) for x in q.alerts(r)],
    })
    return out

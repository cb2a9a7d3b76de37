"""One query interface, two stores: what the dashboard (and anyone) asks a store.

Both :class:`~commerce_observe.store.sqlite_store.SqliteStore` and
:class:`~commerce_observe.store.es_store.ElasticsearchStore` implement
:class:`MetricsQuery` and must answer the same questions with the same numbers
(``tests/monitoring/test_same_results.py`` runs one data set through both).

Definitions, kept in one place so both stores agree:

* orders: ``order.created`` events; revenue and average order value are their
  totals per currency (the amount, else the sum of the lines);
* payments: payment attempts, ``payment.authorized`` + ``payment.failed``
  (the same ratio the anomaly detector watches); failures: ``payment.failed``;
* top products: order lines of ``order.created`` events, by quantity;
* latency: ``handled`` audit records, handled time - published time;
* imported history: an aggregate document (:mod:`commerce_observe.store.aggregates`)
  counts as ``count`` events of its action wherever one event counts as 1 (it falls
  in the minute its bucket starts; :meth:`MetricsQuery.import_bucket_minutes` tells
  how coarse such history is, so that charts never draw it finer than it was taken).

Ranges are whole minutes: ``start`` is floored and ``end`` raised to a minute
boundary, so the SQLite per-minute rollups and Elasticsearch give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from collections.abc import Iterator
from typing import Any, Final, NamedTuple, Protocol

MINUTE_MS = 60_000
#: Latency histogram bounds in ms: bucket i counts latencies below bound i (and at
#: or above the previous one); a last bucket holds everything from the top bound up.
LATENCY_BOUNDS_MS: tuple[float, ...] = (10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0)
MILLI = Decimal("0.001")


@dataclass(frozen=True)
class TimeRange:
    start_ms: int
    end_ms: int

    @classmethod
    def of(cls, start: datetime, end: datetime) -> TimeRange:
        s = int(start.timestamp() * 1000) // MINUTE_MS * MINUTE_MS
        e = -(-int(end.timestamp() * 1000) // MINUTE_MS) * MINUTE_MS
        return cls(s, max(e, s + MINUTE_MS))

    @classmethod
    def last(cls, minutes: int, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(timezone.utc)
        return cls.of(end - timedelta(minutes=minutes), end)

    @property
    def minutes(self) -> int:
        return (self.end_ms - self.start_ms) // MINUTE_MS


@dataclass(frozen=True)
class MinuteRow:
    minute_ms: int
    orders: int = 0
    payments: int = 0
    payment_failures: int = 0


@dataclass(frozen=True)
class RevenueRow:
    currency: str
    orders: int
    revenue: Decimal
    average_order_value: Decimal


@dataclass(frozen=True)
class TrendRow:
    bucket_ms: int
    currency: str
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class ProductRow:
    product_id: str
    quantity: int
    lines: int


@dataclass(frozen=True)
class CountRow:
    key: str
    count: int


@dataclass(frozen=True)
class LatencyStats:
    count: int
    avg_ms: float | None
    max_ms: float | None
    #: (exclusive upper bound in ms, or None for the overflow bucket; count)
    histogram: tuple[tuple[float | None, int], ...] = field(default=())


@dataclass(frozen=True)
class AlertRow:
    at_ms: int
    kind: str  # LOST, DUPLICATE, ... or ANOMALY
    event_id: str | None
    event_type: str | None
    order_id: str | None
    payment_id: str | None
    trace_id: str | None
    detail: str | None


#: What :meth:`MetricsQuery.series` can key a series by.
SERIES_BY: Final = ("product", "method", "currency", "site")


class SeriesPoint(NamedTuple):
    """One bucket of one series (a NamedTuple: months of hourly points for thousands of products).

    Numbers not meaningful for the series' key are 0: a ``method`` point has
    attempts and failures, a ``product`` or ``currency`` point orders and revenue,
    a ``site`` point all four.
    """

    bucket_ms: int
    key: str
    orders: int
    revenue: float  # currency units (summed over currencies for ``site``)
    attempts: int  # payment.authorized + payment.failed
    failures: int  # payment.failed


def series_bounds(r: TimeRange, bucket_minutes: int) -> tuple[int, int]:
    """The range widened to whole buckets (aligned to the Unix epoch), in minutes."""
    if bucket_minutes < 1:
        raise ValueError("bucket_minutes must be at least 1")
    m0, m1 = r.start_ms // MINUTE_MS, -(-r.end_ms // MINUTE_MS)
    return m0 // bucket_minutes * bucket_minutes, -(-m1 // bucket_minutes) * bucket_minutes


@dataclass(frozen=True)
class AnomalyRow:
    """One series with an abnormal stretch in the range: its latest abnormal bucket, and since when."""

    series: str
    metric: str  # orders, revenue, payment_failures...
    entity: str | None  # product id, currency, payment method (None or __all__: the whole site)
    at_ms: int  # the latest bucket scored at or above WARNING
    since_ms: int  # first bucket of that abnormal stretch
    ongoing: bool  # the series' latest scored bucket is still abnormal
    score: float
    peak: float  # highest score of the stretch
    actual: float
    expected: float | None
    lower: float | None
    upper: float | None
    severity: str


@dataclass(frozen=True)
class OpenAlertRow:
    """An alert firing at the end of the range (its firing document and no resolved one)."""

    id: str
    rule: str
    title: str
    severity: str
    where: str
    since_ms: int
    measure: str
    value: float | None
    links: tuple[tuple[str, str], ...] = ()


class MetricsQuery(Protocol):
    def per_minute(self, r: TimeRange) -> list[MinuteRow]: ...
    def revenue(self, r: TimeRange) -> list[RevenueRow]: ...
    def sales_trend(self, r: TimeRange, bucket_minutes: int = 1) -> list[TrendRow]: ...
    def top_products(self, r: TimeRange, limit: int = 10) -> list[ProductRow]: ...
    def failures_by_reason(self, r: TimeRange) -> list[CountRow]: ...
    def failures_by_method(self, r: TimeRange) -> list[CountRow]: ...
    def latency(self, r: TimeRange) -> LatencyStats: ...
    def finding_counts(self, r: TimeRange) -> list[CountRow]: ...
    def alerts(self, r: TimeRange, limit: int = 50) -> list[AlertRow]: ...
    def findings(self, r: TimeRange, limit: int = 50) -> list[AlertRow]: ...
    def anomalies(self, r: TimeRange, limit: int = 20) -> list[AnomalyRow]: ...
    def open_alerts(self, r: TimeRange, limit: int = 50) -> list[OpenAlertRow]: ...

    def import_bucket_minutes(self, r: TimeRange) -> int:
        """The longest bucket of the imported aggregates starting in the range, in minutes
        (rounded up), or 0 when none does.

        Why: an aggregate counts in the minute its bucket starts, so a chart finer than
        that bucket would draw an hourly export as one peak per hour with zeros between;
        the dashboard makes its buckets a multiple of this instead (figures stay exact).
        """
        ...

    def series(self, by: str, r: TimeRange, bucket_minutes: int = 60) -> Iterator[SeriesPoint]:
        """Per-bucket figures keyed ``by`` product, payment method, currency, or the whole site.

        What a model learns from: raw events and imported aggregates alike
        (an aggregate counts as its ``count`` events, in the bucket holding its
        start, so ask for buckets at least as long as the imported ones).

        * ``by``: ``"product"`` (orders = order lines of the product, revenue of
          those lines; key = product id), ``"method"`` (payment attempts and
          failures; key = method, ``"unknown"`` when an event had none),
          ``"currency"`` (orders and revenue; key = currency), ``"site"``
          (everything, key ``""``);
        * buckets of ``bucket_minutes`` aligned to the Unix epoch (UTC); the range
          is widened to whole buckets; ``bucket_ms`` is a bucket's start;
        * points come in (bucket, key) order, streamed, and only where something
          happened: a bucket or key without data has no point (fill zeros yourself).
        """
        ...


def money(milli: int | float | Decimal) -> Decimal:
    """Thousandths of a currency unit as a Decimal rounded to 0.001 (both stores use this)."""
    return (Decimal(round(milli)) / 1000).quantize(MILLI)


def aov(revenue: Decimal, orders: int) -> Decimal:
    return (revenue / orders).quantize(MILLI) if orders else Decimal(0).quantize(MILLI)


def by_count(rows: dict[str, int]) -> list[CountRow]:
    """Count rows, largest first, then by key (the order both stores return)."""
    return [CountRow(k, v) for k, v in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))]


def fill_minutes(rows: list[MinuteRow], r: TimeRange) -> list[MinuteRow]:
    """Every minute of the range, zeros where there was nothing (charts need them)."""
    have = {row.minute_ms: row for row in rows}
    return [have.get(m, MinuteRow(m)) for m in range(r.start_ms, r.end_ms, MINUTE_MS)]

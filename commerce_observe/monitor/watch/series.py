"""The per-bucket figures the detector scores: orders per product and site-wide, revenue
per currency, payment failures and attempts per method.

Two ways to the same :class:`BucketValues`, counted by the same rules:

* :class:`StoreSeries` reads a closed bucket (or three months of them, at first
  start) back from the store with ``EventStore.series`` (SQLite rollups, or an
  Elasticsearch aggregation). Documents are stored idempotently by ``event.id``,
  so a bucket read after it closed is exact whatever was redelivered, and an
  imported history is read exactly like a recorded one. Buckets are whole minutes.
* :class:`SeriesBuilder` adds up documents as they come off the Kafka events topic,
  per bucket, each ``event.id`` once.

Counting rules (those of the store's rollups): orders of a product = order lines
naming it; ``orders:__all__`` = ``order.created`` events; revenue = their amounts
per currency, in thousandths; payment attempts = authorized + failed, per method
(``unknown`` when the event has none).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from commerce_observe.agent.events import conventions as cv
from commerce_observe.store import documents as d
from commerce_observe.store.queries import MetricsQuery, TimeRange

ALL_ORDERS = "orders:__all__"
ORDER = "order.created"
FAILED, AUTHORIZED = "payment.failed", "payment.authorized"
UNKNOWN_METHOD = "unknown"


@dataclass
class BucketValues:
    """One bucket's figures: count and value series, and (failures, attempts) per payment method."""

    start_ns: int
    orders: dict[str, int] = field(default_factory=dict)  # product id -> order lines
    all_orders: int = 0
    revenue_milli: dict[str, int] = field(default_factory=dict)  # currency -> thousandths
    payments: dict[str, list[int]] = field(default_factory=dict)  # method -> [failures, attempts]

    def add_payment(self, method: str, failed: int, attempts: int) -> None:
        p = self.payments.setdefault(method or UNKNOWN_METHOD, [0, 0])
        p[0] += failed
        p[1] += attempts

    @property
    def empty(self) -> bool:
        return not (self.orders or self.all_orders or self.revenue_milli or self.payments)


def every_bucket(buckets: Iterable[BucketValues], start: int, end: int, size: int) -> Iterator[BucketValues]:
    """Every bucket of ``[start, end)``: those of ``buckets`` (in time order) and empty ones between."""
    t = start
    for v in buckets:
        while t < min(v.start_ns, end):
            yield BucketValues(t)
            t += size
        if v.start_ns >= end:
            return
        yield v
        t = v.start_ns + size
    while t < end:
        yield BucketValues(t)
        t += size


class StoreSeries:
    """Buckets read back from a store (SQLite or Elasticsearch) with ``EventStore.series``."""

    def __init__(self, store: MetricsQuery, bucket_s: int) -> None:
        self.store = store
        self.bucket_s = bucket_s
        self.minutes = bucket_s // 60

    def oldest_ns(self, since_ns: int, until_ns: int) -> int | None:
        """Start of the first bucket in ``[since_ns, until_ns)`` holding any order or payment."""
        r = TimeRange(since_ns // 1_000_000, max(until_ns // 1_000_000, since_ns // 1_000_000 + 60_000))
        first = next(iter(self.store.series("site", r, self.minutes)), None)
        return None if first is None else first.bucket_ms * 1_000_000

    def read(self, start_ns: int, end_ns: int) -> Iterator[BucketValues]:
        """Every bucket in ``[start_ns, end_ns)`` holding data, in time order (both ends bucket-aligned)."""
        r = TimeRange(start_ns // 1_000_000, end_ns // 1_000_000)
        out: dict[int, BucketValues] = {}

        def bucket(ms: int) -> BucketValues:
            v = out.get(ms)
            if v is None:
                v = out[ms] = BucketValues(ms * 1_000_000)
            return v

        for p in self.store.series("site", r, self.minutes):
            bucket(p.bucket_ms).all_orders = p.orders
        for p in self.store.series("currency", r, self.minutes):
            if p.key:
                bucket(p.bucket_ms).revenue_milli[p.key] = round(p.revenue * 1000)
        for p in self.store.series("method", r, self.minutes):
            bucket(p.bucket_ms).add_payment(p.key, p.failures, p.attempts)
        for p in self.store.series("product", r, self.minutes):
            bucket(p.bucket_ms).orders[p.key] = p.orders
        for ms in sorted(out):
            if start_ns <= ms * 1_000_000 < end_ns:
                yield out[ms]


class SeriesBuilder:
    """Buckets added up from event documents as they stream in (the Kafka events topic)."""

    def __init__(self, bucket_s: int) -> None:
        self.bucket_ns = bucket_s * 10**9
        self.open: dict[int, BucketValues] = {}
        self._ids: dict[int, set[str]] = defaultdict(set)  # per open bucket: event ids counted
        self.newest_ns = 0
        self.duplicates = 0
        self.too_late = 0
        self.first_open = 0  # buckets before it are closed: their documents are too late

    def add(self, doc: Mapping[str, Any]) -> None:
        if doc.get(d.RECORD) != d.EVENT:
            return
        action = doc.get("event.action")
        if action not in (ORDER, FAILED, AUTHORIZED):
            return
        t = d.timestamp_ms(doc) * 1_000_000
        if t > self.newest_ns:
            self.newest_ns = t
        b = t // self.bucket_ns
        if b < self.first_open:
            self.too_late += 1
            return
        ids = self._ids[b]
        eid = str(doc.get("event.id"))
        if eid in ids:
            self.duplicates += 1
            return
        ids.add(eid)
        v = self.open.get(b)
        if v is None:
            v = self.open[b] = BucketValues(b * self.bucket_ns)
        if action == ORDER:
            v.all_orders += 1
            for pid in doc.get(cv.PRODUCT_IDS) or ():
                v.orders[pid] = v.orders.get(pid, 0) + 1
            amount, currency = doc.get(cv.AMOUNT), doc.get(cv.CURRENCY)
            if amount is not None and currency:
                v.revenue_milli[currency] = v.revenue_milli.get(currency, 0) + round(float(amount) * 1000)
        else:
            v.add_payment(doc.get(cv.PAYMENT_METHOD) or "", 1 if action == FAILED else 0, 1)

    def take(self, start_ns: int) -> BucketValues:
        """The bucket starting at ``start_ns``, closed: later documents for it are counted as too late."""
        b = start_ns // self.bucket_ns
        self.first_open = max(self.first_open, b + 1)
        self._ids.pop(b, None)
        return self.open.pop(b, None) or BucketValues(start_ns)

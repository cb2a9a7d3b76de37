"""Turn the project's domain events into per-bucket series for the detector.

Series produced per bucket (default one hour):

* ``orders:<product_id>``       orders containing the product (``order.created``)
* ``orders:__all__``            all orders
* ``revenue:<currency>``        sum of ``order.created`` amounts
* ``payment_failures:<method>`` ratio: ``payment.failed`` / (``payment.failed`` + ``payment.authorized``)

Every product / currency / method seen so far gets a row in every bucket (zeros
included), so sparse products are modelled with their empty buckets. Duplicate
events (same ``event_id``) are counted once. Works by duck typing: any object
with the attributes of :class:`DomainEventLike` will do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol

from commerce_observe._internal.selfstats import stats


class ItemLike(Protocol):
    product_id: str
    quantity: int
    unit_price: Decimal


class DomainEventLike(Protocol):
    type: str
    event_id: str
    occurred_at: datetime
    order_id: str | None
    payment_id: str | None
    amount: Decimal | None
    currency: str | None
    items: tuple[ItemLike, ...]
    payment_method: str | None
    reason: str | None


Row = tuple[datetime, str, float, float | None]


class Bucketiser:
    """Accumulates events into fixed buckets and emits complete buckets in time order."""

    def __init__(self, bucket: timedelta = timedelta(hours=1), max_seen_ids: int = 1_000_000) -> None:
        self.bucket_s = int(bucket.total_seconds())
        if self.bucket_s <= 0:
            raise ValueError("bucket must be positive")
        self._counts: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._ratio: dict[int, dict[str, list[float]]] = defaultdict(dict)
        self.products: set[str] = set()
        self.currencies: set[str] = set()
        self.methods: set[str] = set()
        self._seen: dict[str, None] = {}
        self._max_seen = max_seen_ids
        self._next: int | None = None  # first bucket not yet emitted

    def _key(self, ts: datetime) -> int:
        return int(ts.timestamp()) // self.bucket_s

    def add(self, ev: DomainEventLike) -> None:
        if ev.event_id in self._seen:
            stats.incr("anomaly.duplicate_event")
            return
        self._seen[ev.event_id] = None
        if len(self._seen) > self._max_seen:
            self._seen.pop(next(iter(self._seen)))
        k = self._key(ev.occurred_at)
        if self._next is not None and k < self._next:
            stats.incr("anomaly.late_event")  # its bucket was already emitted
            return
        c = self._counts[k]
        if ev.type == "order.created":
            c["orders:__all__"] += 1
            for pid in {it.product_id for it in ev.items}:
                self.products.add(pid)
                c[f"orders:{pid}"] += 1
            if ev.amount is not None and ev.currency:
                self.currencies.add(ev.currency)
                c[f"revenue:{ev.currency}"] += float(ev.amount)
        elif ev.type in ("payment.failed", "payment.authorized"):
            method = ev.payment_method or "unknown"
            self.methods.add(method)
            r = self._ratio[k].setdefault(method, [0.0, 0.0])
            r[1] += 1
            if ev.type == "payment.failed":
                r[0] += 1

    def add_all(self, events: Iterable[DomainEventLike]) -> None:
        for ev in events:
            self.add(ev)

    def flush(self, until: datetime | None = None) -> Iterator[Row]:
        """Emit every bucket that ends at or before ``until`` (all buckets if None)."""
        keys = set(self._counts) | set(self._ratio)
        if not keys:
            return
        last = max(keys) if until is None else self._key(until) - 1
        start = min(keys) if self._next is None else self._next
        for k in range(start, last + 1):
            ts = datetime.fromtimestamp(k * self.bucket_s, tz=timezone.utc)
            c = self._counts.pop(k, {})
            r = self._ratio.pop(k, {})
            yield ts, "orders:__all__", c.get("orders:__all__", 0.0), None
            for pid in sorted(self.products):
                yield ts, f"orders:{pid}", c.get(f"orders:{pid}", 0.0), None
            for cur in sorted(self.currencies):
                yield ts, f"revenue:{cur}", round(c.get(f"revenue:{cur}", 0.0), 2), None
            for m in sorted(self.methods):
                num, den = r.get(m, [0.0, 0.0])
                if den > 0:  # no attempts: nothing to judge in this bucket
                    yield ts, f"payment_failures:{m}", num, den
        self._next = last + 1

"""A small shop's data, as the services would have written it: event documents in the
embedded store and audit lines in the SQLite audit file, with faults to inject.

Minute buckets, a couple of hours of history, a few products: enough for the
detector to learn (``min_history`` is lowered by the tests) and small enough to
write in well under a second.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol

from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.audit.sinks import SqliteSink
from commerce_observe.agent.events.model import DomainEvent, EventType, LineItem
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.store.documents import event_documents
from commerce_observe.store.sqlite_store import SqliteStore

S = 1_000_000_000
MINUTE = 60 * S
PRODUCTS = ("sku-a", "sku-b", "sku-c")
GROUP = "billing"
TOPIC = "orders"


class DocsOut(Protocol):
    def write(self, docs: Sequence[Mapping[str, Any]]) -> Any: ...
    def close(self) -> None: ...


class LinesOut(Protocol):
    def write(self, lines: Sequence[bytes]) -> None: ...
    def close(self) -> None: ...


@dataclass
class Shop:
    """Writes minutes of traffic; ``rate`` orders a minute spread over the products.

    By default into the embedded store and the SQLite audit file; ``docs``/``lines``
    send them elsewhere (a Kafka topic, Elasticsearch)."""

    store_path: str = ""
    audit_path: str = ""
    seed: int = 7
    rate: int = 12
    lost: list[str] = field(default_factory=list)
    docs: DocsOut | None = None
    lines: LinesOut | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.store: DocsOut = self.docs or SqliteStore(self.store_path)
        self.sink: LinesOut = self.lines or SqliteSink(self.audit_path)
        self._seq = 0
        self._n = 0

    def close(self) -> None:
        self.store.close()
        self.sink.close()

    def minute(self, start_ns: int, *, audit: bool = True, spike: str | None = None, lose: int = 0,
               duplicate: int = 0) -> None:
        """One minute of orders and payments from ``start_ns``; ``spike``: that product sells 8x;
        ``lose``: so many events are never handled; ``duplicate``: so many are handled twice."""
        docs, lines = [], []
        count = self.rate + self.rng.randint(-2, 2)
        events = list(self._orders(start_ns, count, spike))
        for i, (ev, ns) in enumerate(events):
            docs += event_documents(ev)
            if audit:
                handled = 0 if i < lose else (2 if i < lose + duplicate else 1)
                lines += self._audit(ev, ns, handled)
        self.store.write(docs)
        if lines:
            self.sink.write(lines)

    def _orders(self, start_ns: int, count: int, spike: str | None) -> Iterator[tuple[DomainEvent, int]]:
        extra = 7 * sum(1 for _ in range(count // len(PRODUCTS))) if spike else 0
        for k in range(count + extra):
            ns = start_ns + (k * MINUTE) // (count + extra) + 1
            product = spike if spike is not None and k >= count else PRODUCTS[self.rng.randrange(len(PRODUCTS))]
            self._n += 1
            order = f"o-{self._n}"
            when = datetime.fromtimestamp(ns / S, timezone.utc)
            yield DomainEvent(EventType.ORDER_CREATED, order_id=order, amount=Decimal("20.00"), currency="EUR",
                              items=(LineItem(product, 1, Decimal("20.00")),), occurred_at=when,
                              event_id=f"e-{self._n:08d}"), ns
            ok = self.rng.random() > 0.05
            yield DomainEvent(EventType.PAYMENT_AUTHORIZED if ok else EventType.PAYMENT_FAILED, order_id=order,
                              payment_id=f"p-{self._n}", amount=Decimal("20.00"), currency="EUR",
                              payment_method="card", reason=None if ok else "insufficient_funds",
                              occurred_at=when, event_id=f"e-{self._n:08d}-pay"), ns

    def _audit(self, ev: DomainEvent, ns: int, handled: int) -> list[bytes]:
        if ev.type is not EventType.ORDER_CREATED:
            return []
        self._seq += 1

        def fact(stage: Stage, dt_ms: int, **kw: object) -> bytes:
            return encode(MessageFact(stage, "kafka", TOPIC, ev.event_id, ev.type.value, "checkout", self._seq,
                                      "ab" * 16, "cd" * 8, ns + dt_ms * 1_000_000, order_id=ev.order_id,
                                      **kw))  # type: ignore[arg-type]

        out = [fact(Stage.PUBLISHED, 0), fact(Stage.ACKED, 2, partition=0, offset=self._seq)]
        for i in range(handled):
            out.append(fact(Stage.HANDLED, 20 + i * 500, consumer_group=GROUP, published_ns=ns, partition=0,
                            offset=self._seq))
        if not handled:
            self.lost.append(ev.event_id)
        return out

    def minutes(self, first_ns: int, n: int, **kw: object) -> None:
        for i in range(n):
            self.minute(first_ns + i * MINUTE, **kw)  # type: ignore[arg-type]


def minute_floor(ns: int) -> int:
    return ns // MINUTE * MINUTE


def live_start(now_ns: int, ahead_minutes: int) -> int:
    """A test's first live minute: at least ``ahead_minutes`` after ``now_ns``, at 10 or 40 past an hour.

    Why not simply ``now + ahead``: the detector learns each hour of the day from the
    history, and the tests learn 150 minutes of it. A spike in the first minute of an
    hour the history never saw scores about 40, not 100 (a new hour's band is wide):
    a test started at minute 57 of an hour (its minute 3, the spike, then fell on the
    hour) never got its spike alert, one run in sixty. Ten minutes into a half hour,
    the live minutes (0 to 8) are all in an hour the history already covers.
    """
    earliest = minute_floor(now_ns) + ahead_minutes * MINUTE
    half_hour = 30 * MINUTE
    start = earliest // half_hour * half_hour + 10 * MINUTE
    return start if start >= earliest else start + half_hour


def ids(docs: Sequence[dict[str, object]], key: str = "event.id") -> set[str]:
    return {str(d[key]) for d in docs}

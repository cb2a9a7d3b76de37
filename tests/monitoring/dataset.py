"""One known data set for every store test, and its numbers computed by hand.

The expected figures are computed here straight from the DomainEvents with plain
Python, not through any store code, so a store test checks the store against an
independent reference; the same-results test then runs both stores on it.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from commerce_observe.monitor.audit.findings import Finding, Kind
from commerce_observe.agent.events.model import DomainEvent, EventType, LineItem
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.store import documents as d

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
PRODUCTS = {"sku-apple": Decimal("1.20"), "sku-bread": Decimal("2.95"), "sku-cheese": Decimal("7.49"),
            "sku-dates": Decimal("4.10"), "sku-eggs": Decimal("3.33")}
REASONS = ("declined", "insufficient_funds", "fraud_suspected", "gateway_timeout")
METHODS = ("card", "paypal", "sepa")


@dataclass(frozen=True)
class Score:
    series: str
    timestamp: datetime
    score: float | None
    actual: float
    expected: float | None


def events(n_orders: int = 60, seed: int = 7) -> list[DomainEvent]:
    rnd = random.Random(seed)
    out: list[DomainEvent] = []
    for i in range(n_orders):
        at = T0 + timedelta(seconds=rnd.randrange(0, 6 * 60), milliseconds=rnd.randrange(1000))
        items = tuple(LineItem(p, rnd.randint(1, 4), PRODUCTS[p]) for p in rnd.sample(sorted(PRODUCTS), rnd.randint(1, 3)))
        currency = "EUR" if i % 3 else "USD"
        trace = f"{i + 1:032x}"
        out.append(DomainEvent(EventType.ORDER_CREATED, order_id=f"ord-{i}", items=items, currency=currency,
                               occurred_at=at, event_id=f"evt-o{i}", trace_id=trace, span_id=f"{i + 1:016x}"))
        pay_at = at + timedelta(seconds=rnd.randrange(1, 50))
        method = METHODS[rnd.randrange(3)]
        if rnd.random() < 0.3:
            out.append(DomainEvent(EventType.PAYMENT_FAILED, payment_id=f"pay-{i}", order_id=f"ord-{i}",
                                   payment_method=method, reason=REASONS[rnd.randrange(4)], occurred_at=pay_at,
                                   event_id=f"evt-f{i}", trace_id=trace))
        else:
            out.append(DomainEvent(EventType.PAYMENT_AUTHORIZED, payment_id=f"pay-{i}", order_id=f"ord-{i}",
                                   payment_method=method, amount=items[0].unit_price, currency=currency,
                                   occurred_at=pay_at, event_id=f"evt-a{i}", trace_id=trace))
            out.append(DomainEvent(EventType.PAYMENT_CAPTURED, payment_id=f"pay-{i}", occurred_at=pay_at,
                                   event_id=f"evt-c{i}", trace_id=trace))
    return out


def facts(seed: int = 11) -> list[MessageFact]:
    rnd = random.Random(seed)
    out = []
    for i in range(40):
        published = int((T0 + timedelta(seconds=rnd.randrange(0, 300))).timestamp() * 1e9)
        latency_ns = rnd.choice((3, 12, 40, 80, 180, 420, 900, 2500, 7000)) * 1_000_000 + rnd.randrange(1_000_000)
        out.append(MessageFact(Stage.HANDLED, "kafka", "orders", f"evt-o{i}", "order.created", "shop", i,
                               f"{i + 1:032x}", f"{i + 7:016x}", published + latency_ns, partition=0, offset=i,
                               consumer_group="billing", published_ns=published))
        out.append(MessageFact(Stage.PUBLISHED, "kafka", "orders", f"evt-o{i}", "order.created", "shop", i,
                               f"{i + 1:032x}", f"{i + 8:016x}", published))
    return out


def findings() -> list[Finding]:
    base = int(T0.timestamp() * 1e9)
    return [
        Finding(Kind.LOST, "evt-o3", "order.created", consumer_group="billing", order_id="ord-3",
                trace_id=f"{4:032x}", published_ns=base + 61 * 10**9),
        Finding(Kind.DUPLICATE, "evt-o5", "order.created", consumer_group="billing", order_id="ord-5",
                trace_id=f"{6:032x}", published_ns=base + 125 * 10**9),
        Finding(Kind.LOST, "evt-o9", "order.created", consumer_group="shipping", order_id="ord-9",
                trace_id=f"{10:032x}", published_ns=base + 200 * 10**9),
    ]


def anomalies() -> list[Score]:
    return [Score("orders:__all__", T0 + timedelta(minutes=4), 82.5, 31.0, 9.5)]


def documents() -> list[d.Document]:
    docs: list[d.Document] = []
    for e in events():
        docs.extend(d.event_documents(e, "shop"))
    docs.extend(d.message_document(f, "billing") for f in facts())
    docs.extend(d.finding_document(f, "auditor") for f in findings())
    docs.extend(d.anomaly_document(s, "detector") for s in anomalies())
    return docs


def expected() -> dict[str, Any]:
    """The figures for the whole range [T0, T0 + 10 min), computed from the events."""
    evs = events()
    per_minute: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    revenue: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    qty: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    for e in evs:
        minute = int(e.occurred_at.timestamp()) // 60 * 60_000
        if e.type is EventType.ORDER_CREATED:
            per_minute[minute][0] += 1
            assert e.currency and e.total is not None
            revenue[e.currency][0] += 1
            revenue[e.currency][1] += e.total
            for item in e.items:
                qty[item.product_id] += item.quantity
                lines[item.product_id] += 1
        elif e.type in (EventType.PAYMENT_AUTHORIZED, EventType.PAYMENT_FAILED):
            per_minute[minute][1] += 1
            if e.type is EventType.PAYMENT_FAILED:
                per_minute[minute][2] += 1
                reasons[e.reason or ""] += 1
                methods[e.payment_method or ""] += 1
    lat = [round((f.time_ns - (f.published_ns or 0)) / 1e6, 3) for f in facts() if f.stage is Stage.HANDLED]
    return {
        "per_minute": {m: tuple(v) for m, v in per_minute.items()},
        "revenue": {c: (n, total) for c, (n, total) in revenue.items()},
        "top_products": sorted(((p, qty[p], lines[p]) for p in qty), key=lambda t: (-t[1], t[0])),
        "reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "methods": sorted(methods.items(), key=lambda kv: (-kv[1], kv[0])),
        "latency": lat,
        "findings": {"LOST": 2, "DUPLICATE": 1},
    }

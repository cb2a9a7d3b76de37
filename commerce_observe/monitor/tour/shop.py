"""The tour's shop: order, payment and notification services over the in-memory log.

Each order is one trace: ``POST /orders`` records ``order.created`` and publishes it;
the payment service consumes it, authorises (or fails, with a reason) and publishes
the outcome; the notification consumer sends the mail. The consumer crashes once in
each of the two ways that cost a shop its evidence:

* it handles a message and dies before committing: the message comes again and is
  handled twice (a DUPLICATE, found by event id);
* it commits and dies before handling: the message is never handled (LOST).

A broken product page is part of the story too: ``BROKEN`` sells nothing.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from opentelemetry import trace
from opentelemetry.trace import SpanKind

import commerce_observe as co
from commerce_observe.agent.messaging import publishing
from commerce_observe.monitor.tour.broker import Log, Message, consume, handle_one

PRODUCTS = {"sku-espresso": Decimal("8.90"), "sku-grinder": Decimal("129.00"), "sku-filter": Decimal("4.50"),
            "sku-mug": Decimal("12.00"), "sku-beans": Decimal("15.90"), "sku-kettle": Decimal("49.00")}
BROKEN = "sku-espresso"  # its product page broke: it sells nothing in the tour
METHODS = ("card", "paypal", "klarna")
REASONS = ("declined", "insufficient_funds", "fraud_suspected", "gateway_timeout")  # FailureReason codes
ORDERS, PAYMENTS = "shop.orders", "shop.payments"


class Crash(Exception):
    """The notification consumer's process dying (the tour restarts it)."""


@dataclass
class Outcome:
    orders: int = 0
    paid: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    duplicated: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)


def _body(message: Message) -> dict[str, str]:
    return json.loads(message.value)  # type: ignore[no-any-return]


class Shop:
    def __init__(self, seed: int = 7, failure_rate: float = 0.15) -> None:
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.log = Log()
        self.out = Outcome()
        self.tracer = trace.get_tracer("commerce_observe.tour")

    def order(self, n: int) -> None:
        """``POST /orders`` of the order service."""
        order_id = f"ord-{n:05d}"
        choices = [p for p in PRODUCTS if p != BROKEN]
        items = [(sku, self.rng.randint(1, 2), PRODUCTS[sku]) for sku in self.rng.sample(choices, self.rng.randint(1, 2))]
        total = sum((price * qty for _, qty, price in items), Decimal(0))
        with self.tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes={
                "http.request.method": "POST", "http.route": "/orders", "http.response.status_code": 201}) as span:
            event = co.order_created(order_id, amount=total, currency="EUR", items=items)
            with publishing(event):
                self.log.send(ORDERS, order_id.encode(), json.dumps({"order_id": order_id, "total": str(total)}).encode())
            self.out.trace_ids.append(format(span.get_span_context().trace_id, "032x"))
        self.out.orders += 1

    def _charge(self, message: Message) -> None:
        body = _body(message)
        order_id, total = body["order_id"], Decimal(body["total"])
        payment_id, method = f"pay-{order_id[4:]}", self.rng.choice(METHODS)
        if self.rng.random() < self.failure_rate:
            reason = self.rng.choice(REASONS)
            event = co.payment_failed(payment_id, order_id=order_id, reason=reason, amount=total, currency="EUR",
                                      method=method)
            self.out.failures[reason] += 1
        else:
            event = co.payment_authorized(payment_id, order_id=order_id, amount=total, currency="EUR", method=method)
            co.order_paid(order_id, amount=total, currency="EUR", payment_id=payment_id)
            self.out.paid += 1
        with publishing(event):
            self.log.send(PAYMENTS, order_id.encode(), json.dumps({"order_id": order_id, "ok": event is None or
                                                                   event.reason is None}).encode())

    def payments(self) -> None:
        """The payment service's poll loop, once."""
        consume(self.log, ORDERS, "payment-service", self._charge)

    def notifications(self, *, duplicate_at: int, lose_at: int) -> None:
        """The notification consumer: mails each outcome; crashes at two messages, restarts."""
        group = "notification-service"
        crashed: set[int] = set()
        while True:
            try:
                for message in self.log.poll(PAYMENTS, group):
                    if message.offset == lose_at and lose_at not in crashed:
                        crashed.add(lose_at)  # commits first, then dies before handling
                        self.log.commit(group, message)
                        self.out.lost.append(_body(message)["order_id"])
                        raise Crash
                    handle_one(message, group, lambda m: None)  # the mail goes out
                    if message.offset == duplicate_at and duplicate_at not in crashed:
                        crashed.add(duplicate_at)  # handled, then dies before the commit
                        self.out.duplicated.append(_body(message)["order_id"])
                        raise Crash
                    self.log.commit(group, message)
                return
            except Crash:
                continue  # the restarted consumer resumes at the committed offset

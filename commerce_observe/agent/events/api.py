"""The public, typed functions for the order and payment lifecycles.

Each returns the recorded :class:`DomainEvent` (with its trace and span ids) or
``None`` when the event was invalid and dropped outside strict mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from commerce_observe.agent.events.model import DomainEvent, EventType, LineItem
from commerce_observe.agent.events.recorder import _order, _payment

Items = Iterable[LineItem | tuple[str, int, Decimal]]


def order_created(order_id: str, *, amount: Decimal | None = None, currency: str | None = None,
                  items: Items | None = None, customer_ref: str | None = None) -> DomainEvent | None:
    return _order(EventType.ORDER_CREATED, order_id, items, amount=amount, currency=currency, customer_ref=customer_ref)


def order_paid(order_id: str, *, amount: Decimal, currency: str, payment_id: str | None = None) -> DomainEvent | None:
    return _order(EventType.ORDER_PAID, order_id, amount=amount, currency=currency, payment_id=payment_id)


def order_cancelled(order_id: str, *, reason: str | None = None) -> DomainEvent | None:
    return _order(EventType.ORDER_CANCELLED, order_id, reason=reason)


def order_shipped(order_id: str, *, items: Items | None = None) -> DomainEvent | None:
    return _order(EventType.ORDER_SHIPPED, order_id, items)


def order_delivered(order_id: str) -> DomainEvent | None:
    return _order(EventType.ORDER_DELIVERED, order_id)


def order_refunded(order_id: str, *, amount: Decimal, currency: str, reason: str | None = None) -> DomainEvent | None:
    return _order(EventType.ORDER_REFUNDED, order_id, amount=amount, currency=currency, reason=reason)


def payment_authorized(payment_id: str, *, order_id: str, amount: Decimal, currency: str,
                       method: str | None = None) -> DomainEvent | None:
    return _payment(EventType.PAYMENT_AUTHORIZED, payment_id, order_id=order_id, amount=amount,
                    currency=currency, payment_method=method)


def payment_captured(payment_id: str, *, order_id: str, amount: Decimal, currency: str,
                     method: str | None = None) -> DomainEvent | None:
    return _payment(EventType.PAYMENT_CAPTURED, payment_id, order_id=order_id, amount=amount,
                    currency=currency, payment_method=method)


def payment_failed(payment_id: str, *, order_id: str, reason: str, amount: Decimal | None = None,
                   currency: str | None = None, method: str | None = None) -> DomainEvent | None:
    return _payment(EventType.PAYMENT_FAILED, payment_id, order_id=order_id, reason=reason, amount=amount,
                    currency=currency, payment_method=method)


def payment_refunded(payment_id: str, *, order_id: str, amount: Decimal, currency: str,
                     reason: str | None = None) -> DomainEvent | None:
    return _payment(EventType.PAYMENT_REFUNDED, payment_id, order_id=order_id, amount=amount,
                    currency=currency, reason=reason)

"""Order and payment domain events (see docs/semantic-conventions.md)."""

from commerce_observe.agent.events.api import (
    order_cancelled,
    order_created,
    order_delivered,
    order_paid,
    order_refunded,
    order_shipped,
    payment_authorized,
    payment_captured,
    payment_failed,
    payment_refunded,
)
from commerce_observe.agent.events.model import DomainEvent, EventType, FailureReason, InvalidEventError, LineItem
from commerce_observe.agent.events.recorder import event_attributes, record

__all__ = [
    "DomainEvent",
    "EventType",
    "FailureReason",
    "InvalidEventError",
    "LineItem",
    "event_attributes",
    "order_cancelled",
    "order_created",
    "order_delivered",
    "order_paid",
    "order_refunded",
    "order_shipped",
    "payment_authorized",
    "payment_captured",
    "payment_failed",
    "payment_refunded",
    "record",
]

"""commerce_observe: order and payment events observable end to end.

Importing this package has no side effects: nothing is patched, no thread starts,
no global is set. ``install()`` (or ``import commerce_observe.auto``) builds the one
runtime from the environment; ``shutdown()`` flushes and undoes it.
"""

from commerce_observe._internal import propagators_env as _propagators_env

_propagators_env.import_propagate_safely()  # first: a bad OTEL_PROPAGATORS must not fail this import

from commerce_observe.config import ConfigError  # noqa: E402
from commerce_observe.agent.events import (
    DomainEvent,
    EventType,
    FailureReason,
    InvalidEventError,
    LineItem,
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
    record,
)
from commerce_observe.agent.runtime import Runtime, current, install, shutdown

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DomainEvent",
    "EventType",
    "FailureReason",
    "InvalidEventError",
    "LineItem",
    "Runtime",
    "__version__",
    "current",
    "install",
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
    "shutdown",
]

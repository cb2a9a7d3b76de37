"""commerce_observe: order and payment events observable end to end.

Importing this package has no side effects: nothing is patched, no thread starts,
no global is set. ``install()`` (or ``import commerce_observe.auto``) builds the one
runtime from the environment; ``shutdown()`` flushes and undoes it.
"""

from commerce_observe._internal import propagators_env as _propagators_env

_propagators_env.import_propagate_safely()  # first: a bad OTEL_PROPAGATORS must not fail this import

import typing as _typing  # noqa: E402

if _typing.TYPE_CHECKING:
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
    from commerce_observe.config import ConfigError

#: The public names loaded on first use (PEP 562): the agent's runtime, ``ConfigError``
#: and, every other name of ``__all__`` below, its domain events. The monitoring side
#: (``commerce-observe anomaly``, ``import``, ``watch``...) imports this package and needs
#: none of the agent; loading it eagerly cost each CLI run ~0.12 s. The configuration
#: module is not loaded here either, so ``python -m commerce_observe.config`` runs it once.
_RUNTIME = frozenset(("Runtime", "current", "install", "shutdown"))


def __getattr__(name: str) -> _typing.Any:
    if name.startswith("_") or name not in __all__:
        raise AttributeError(f"module 'commerce_observe' has no attribute {name!r}")
    import importlib

    module = ("commerce_observe.agent.runtime" if name in _RUNTIME else
              "commerce_observe.config" if name == "ConfigError" else "commerce_observe.agent.events")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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

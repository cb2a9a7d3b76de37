"""The explicit half of "handled means the handler finished": :class:`handling` and
:func:`defer`, for handlers that batch records or finish them after the next poll.

Implicit settling (next fetch, close) covers the simple loop; these two make the
outcome exact and let work outlive the poll that delivered the record.

Both are public face: called with a record and nothing else, they find the
installed agent's open deliveries through :mod:`commerce_observe.agent.current`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent import current
from commerce_observe.agent.messaging.consumer import Delivery, delivery_of

UNKNOWN_RECORD = "messaging.handling_unknown_record"


def defer(record: object) -> None:
    """Report ``record``'s outcome later, with :class:`handling`; not when polling on."""
    state = current.state()
    delivery = delivery_of(state, record) if state is not None else None
    if delivery is None:
        stats.incr(UNKNOWN_RECORD)
        return
    delivery.deferred = True


class handling:
    """``with handling(record):`` — the handler's work on ``record``, made explicit.

    The record's CONSUMER span is current inside the block (the handler's spans
    and domain events join the producer's trace) and ends at its exit: HANDLED,
    or HANDLE_FAILED with the exception, which propagates unchanged. Use it when
    handling is batched or deferred past the next poll (with :func:`defer`).
    A record not from an instrumented consumer is counted and left alone.
    """

    __slots__ = ("record", "delivery", "_token")

    def __init__(self, record: object) -> None:
        self.record = record
        self.delivery: Delivery | None = None
        self._token: Any = None

    def __enter__(self) -> trace.Span:
        state = current.state()
        delivery = delivery_of(state, self.record) if state is not None else None
        if delivery is None or delivery.done:
            stats.incr(UNKNOWN_RECORD)
            return trace.INVALID_SPAN
        delivery.explicit = True
        self.delivery = delivery
        self._token = otel_context.attach(delivery.context)
        return delivery.span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        delivery = self.delivery
        if delivery is None:
            return
        self.delivery = None
        otel_context.detach(self._token)
        delivery.finish(exc)

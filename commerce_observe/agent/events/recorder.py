"""Recording domain events: on the current span, or on a span of their own.

Recording never raises into business code: an invalid event is dropped, counted
(``events.invalid``) and warned about at most once per interval, unless strict mode
is on (tests), where the :class:`InvalidEventError` reaches the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.events import conventions as cv
from commerce_observe.agent.events.model import DomainEvent, EventType, InvalidEventError, LineItem
from commerce_observe.agent import current

_TRACER_NAME = "commerce_observe.agent.events"


def event_attributes(event: DomainEvent) -> dict[str, AttributeValue]:
    """The ``commerce.*`` attributes of an event (see docs/semantic-conventions.md)."""
    attrs: dict[str, AttributeValue] = {cv.EVENT_TYPE: event.type.value, cv.EVENT_ID: event.event_id}
    if event.order_id is not None:
        attrs[cv.ORDER_ID] = event.order_id
    if event.payment_id is not None:
        attrs[cv.PAYMENT_ID] = event.payment_id
    total = event.total
    if total is not None:
        attrs[cv.AMOUNT] = str(total)
    if event.currency is not None:
        attrs[cv.CURRENCY] = event.currency
    if event.items:
        attrs[cv.ITEM_COUNT] = len(event.items)
        attrs[cv.PRODUCT_IDS] = [i.product_id for i in event.items]
        attrs[cv.QUANTITIES] = [i.quantity for i in event.items]
    if event.customer_ref is not None:
        attrs[cv.CUSTOMER_REF] = event.customer_ref
    if event.payment_method is not None:
        attrs[cv.PAYMENT_METHOD] = event.payment_method
    if event.reason is not None:
        attrs[cv.FAILURE_REASON if event.type is EventType.PAYMENT_FAILED else cv.REASON] = event.reason
    return attrs


def _emit(span: trace.Span, build: Callable[[], DomainEvent]) -> DomainEvent:
    ctx = span.get_span_context()
    event = build()
    if ctx.is_valid:
        object.__setattr__(event, "trace_id", format(ctx.trace_id, "032x"))
        object.__setattr__(event, "span_id", format(ctx.span_id, "016x"))
        object.__setattr__(event, "trace_flags", int(ctx.trace_flags))
    attrs = event_attributes(event)
    span.set_attributes(attrs)
    span.add_event(cv.SPAN_EVENT_PREFIX + event.type.value, attrs)
    state = current.state()  # the public face: the installed agent's hub, none before install
    if state is not None:
        state.hub.emit(event)
    return event


def emit(build: Callable[[], DomainEvent]) -> DomainEvent | None:
    """Build (and so validate) an event and record it; ``None`` when it was invalid."""
    try:
        span = trace.get_current_span()
        if span.is_recording():
            return _emit(span, build)
        tracer = trace.get_tracer(_TRACER_NAME)
        with tracer.start_as_current_span("commerce.event") as own:
            event = _emit(own, build)
            own.update_name("commerce " + event.type.value)
            return event
    except InvalidEventError as exc:
        stats.swallow("events.invalid", "invalid commerce event dropped: %s", exc)
        return None


def span_context_of(event: DomainEvent) -> SpanContext | None:
    """The span ``event`` was recorded on, as a parent for what follows from it (its
    messages, their consumers), with that span's sampling decision; None when the
    event was not recorded in a trace (or its ids are not ours: counted)."""
    if not (event.trace_id and event.span_id):
        return None
    try:
        flags = TraceFlags(event.trace_flags if event.trace_flags is not None else TraceFlags.SAMPLED)
        ctx = SpanContext(int(event.trace_id, 16), int(event.span_id, 16), is_remote=False, trace_flags=flags)
    except (TypeError, ValueError):
        ctx = None
    if ctx is None or not ctx.is_valid:
        stats.incr("events.invalid_trace_ids")
        return None
    return ctx


def record(event: DomainEvent) -> DomainEvent | None:
    """Record an already built event (its trace ids are filled in)."""
    return emit(lambda: event)


def _items(items: Iterable[LineItem | tuple[str, int, Decimal]] | None) -> tuple[LineItem, ...]:
    if items is None:
        return ()
    return tuple(i if isinstance(i, LineItem) else LineItem(*i) for i in items)


def _order(kind: EventType, order_id: str, items: Any = None, **fields: Any) -> DomainEvent | None:
    return emit(lambda: DomainEvent(kind, order_id=order_id, items=_items(items), **fields))


def _payment(kind: EventType, payment_id: str, **fields: Any) -> DomainEvent | None:
    return emit(lambda: DomainEvent(kind, payment_id=payment_id, **fields))

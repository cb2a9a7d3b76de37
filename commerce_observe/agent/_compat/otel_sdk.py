"""The OpenTelemetry SDK internals the light spans and the converter read.

Checked against opentelemetry-sdk 1.42 to 1.45: ``Tracer._instrumentation_scope``,
``Tracer._span_limits``, ``Tracer._is_enabled()``, the synchronous multi span
processor's ``_span_processors`` tuple, ``ReadableSpan``'s fields (``_name``,
``_context``, ``_attributes``, ``_events`` ... as set by its ``__init__``),
``BoundedList._dq``, ``Event._name``/``_timestamp``/``_attributes`` and
``BoundedAttributes``' ``_dict``/``_lock``/``_immutable``. Outside that range every
function here answers with the public path's value (or None, meaning "use the SDK's
own spans"), so a new SDK costs speed, never correctness.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList

from commerce_observe.agent._compat.versions import Range

SUPPORTED = Range("opentelemetry-sdk", (1, 42), (1, 46))


def tracer_internals(tracer: Any) -> tuple[Any, Any, tuple[object, ...]] | None:
    """(instrumentation scope, span limits, span processors) of an enabled SDK tracer,
    or None when they cannot be read safely (the caller then uses the SDK's spans)."""
    if not SUPPORTED.fast:
        return None
    try:
        if not tracer._is_enabled():  # noqa: SLF001
            return None
        processors = getattr(tracer.span_processor, "_span_processors", None)
        if type(processors) is not tuple:
            return None
        return tracer._instrumentation_scope, tracer._span_limits, processors  # noqa: SLF001
    except AttributeError:
        return None


def processors_unchanged(tracer: Any, processors: tuple[object, ...]) -> bool:
    """Whether ``tracer`` still has exactly ``processors`` and is still enabled."""
    try:
        return tracer.span_processor._span_processors is processors and bool(tracer._is_enabled())  # noqa: SLF001
    except AttributeError:
        return False


def plain(attributes: object) -> dict[str, Any]:
    """A plain dict copy of finished SDK attributes, much smaller than
    ``BoundedAttributes``. After ``end()`` the SDK marks them immutable, so reading
    the inner dict without its lock is safe; anything unexpected is copied as a mapping."""
    if SUPPORTED.fast:
        inner = getattr(attributes, "_dict", None)
        if type(inner) is dict:
            return inner.copy()
    return dict(attributes) if isinstance(attributes, Mapping) else {}


def plain_attributes(span: Any) -> dict[str, Any]:
    """:func:`plain` of a finished span's attributes (the public property wraps them)."""
    return plain(getattr(span, "_attributes", None) if SUPPORTED.fast else span.attributes)


#: (name, timestamp, attributes) of one span event
EventParts = tuple[str, int, Mapping[str, Any]]
#: what the converter reads of a finished span: name, context, parent, kind, start and
#: end time, attributes, events, status, resource, instrumentation scope
SpanParts = tuple[str, Any, Any, Any, int, int, Mapping[str, Any], list[EventParts], Any, Any, Any]


def _frozen(attributes: object) -> Mapping[str, Any]:
    """A finished span's (or event's) attributes, read-only, without a copy where the
    SDK froze them: ``end()`` makes a span's ``BoundedAttributes`` immutable and an
    event's are immutable from the start, so their inner dict never changes again."""
    if type(attributes) is BoundedAttributes and attributes._immutable:  # noqa: SLF001
        inner = attributes._dict  # noqa: SLF001
        if type(inner) is dict:
            return inner
    return plain(attributes)


def event_parts(events: Any) -> list[EventParts]:
    """(name, timestamp, attributes) of each of a span's events (a ``BoundedList`` or a list)."""
    if not events:
        return []
    items = events._dq if type(events) is BoundedList else events  # type: ignore[attr-defined]  # noqa: SLF001
    return [(e._name, e._timestamp, _frozen(e._attributes)) if type(e) is Event  # noqa: SLF001
            else (e.name, e.timestamp, plain(e.attributes)) for e in items]


def finished_parts(span: Any) -> SpanParts:
    """The fields of a finished span the converter reads (:data:`SpanParts`), read
    once and without copying what the SDK froze. An SDK ``ReadableSpan`` is read
    through its fields in the checked version range (its public properties build
    tuples and copies on every access); anything else through its public interface."""
    if SUPPORTED.fast and type(span) is ReadableSpan:
        start = span._start_time or 0  # noqa: SLF001
        return (span._name, span._context, span._parent, span._kind, start, span._end_time or start,  # noqa: SLF001
                _frozen(span._attributes), event_parts(span._events), span._status, span._resource,  # noqa: SLF001
                span._instrumentation_scope)  # noqa: SLF001
    start = span.start_time or 0
    events = span.events
    return (span.name, span.context, span.parent, span.kind, start, span.end_time or start, plain_attributes(span),
            [(e.name, e.timestamp, plain(e.attributes)) for e in events] if events else [],
            span.status, span.resource, span.instrumentation_scope)


def add_to_bounded(span: Any, attributes: Mapping[str, Any]) -> bool:
    """Add valid primitive ``attributes`` straight into a live SDK span's attribute
    dict under its lock; False when that is not possible (call ``set_attributes``)."""
    if not SUPPORTED.fast:
        return False
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is not BoundedAttributes or bounded.max_value_len is not None or bounded._immutable:  # noqa: SLF001
        return False
    inner = bounded._dict  # noqa: SLF001
    maxlen = bounded.maxlen
    if type(inner) is not dict or (maxlen is not None and len(inner) + len(attributes) > maxlen):
        return False
    with bounded._lock:  # noqa: SLF001
        inner.update(attributes)
    return True

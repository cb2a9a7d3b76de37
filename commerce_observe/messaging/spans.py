"""Starting message spans with attributes we already know are clean, cheaply.

The SDK validates every attribute value on the way in (``_clean_attribute_value``:
type checks, sequence handling, a lock per key). For the dozen attributes of a
message span that is about 5 µs per span — a sixth of the span itself — spent
re-checking ``str``/``int`` values that our own code built. :func:`start_span`
starts the span without attributes and puts ours straight into the SDK's
attribute dict, under its lock, when that is exactly what validation would have
produced: the span is an SDK span, no value-length limit is configured and the
count limit leaves room. Otherwise it calls ``set_attributes`` (validated), so
behaviour under limits is unchanged.

Only values of type ``str``, ``bool``, ``int`` and ``float`` may be passed to
:func:`add_clean` (callers route anything else — application or domain-event
attributes — through ``set_attributes``). The sampler is called without the
attributes: every sampler the runtime configures (``OTEL_TRACES_SAMPLER``) is an
SDK built-in that does not read them.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue


def add_clean(span: trace.Span, attributes: dict[str, AttributeValue]) -> None:
    """Add already-valid primitive ``attributes`` to a live ``span``."""
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is BoundedAttributes and bounded.max_value_len is None and not bounded._immutable:  # noqa: SLF001
        inner = bounded._dict  # noqa: SLF001
        maxlen = bounded.maxlen
        if type(inner) is dict and (maxlen is None or len(inner) + len(attributes) <= maxlen):
            with bounded._lock:  # noqa: SLF001
                inner.update(attributes)
            return
    span.set_attributes(attributes)


def start_span(tracer: trace.Tracer, name: str, context: Context | None, kind: SpanKind,
               attributes: dict[str, AttributeValue], start_time: int) -> trace.Span:
    span = tracer.start_span(name, context, kind, None, None, start_time)
    if span.is_recording():
        add_clean(span, attributes)
    return span

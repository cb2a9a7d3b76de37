"""Starting message spans cheaply.

Message spans are the hottest spans a service makes (one or two per message) and
our own code builds their attributes from ``str``/``int``/``float`` values, so two
shortcuts apply:

* :func:`start_span` (on the agent state's tracer) returns a :class:`~commerce_observe.agent._lightspan.LightSpan`
  (no SDK span object, handed straight to our pipeline) when the runtime's export
  pipeline is the only span processor, and an SDK span otherwise;
* :func:`add_clean` puts such attributes into an SDK span's attribute dict under
  its lock, skipping the SDK's per-value validation (``_clean_attribute_value``:
  type checks, sequence handling — about 5 µs for a dozen attributes) when that is
  exactly what validation would have produced: no value-length limit is configured
  and the count limit leaves room. Otherwise it calls ``set_attributes``, so
  behaviour under limits is unchanged.

Only values of type ``str``, ``bool``, ``int`` and ``float`` may be passed to
either (callers route anything else — application or domain-event attributes —
through ``set_attributes``). An SDK span's sampler is called without the
attributes (every sampler the runtime configures, ``OTEL_TRACES_SAMPLER``, is an
SDK built-in that does not read them); a light span's sampler gets them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent._compat.otel_sdk import add_to_bounded
from commerce_observe.agent._lightspan import LightSpan, remote_context

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState


def add_clean(span: trace.Span, attributes: dict[str, AttributeValue]) -> None:
    """Add already-valid primitive ``attributes`` to a live ``span``."""
    if type(span) is LightSpan:
        span.add_clean(attributes)
        return
    if not add_to_bounded(span, attributes):
        span.set_attributes(attributes)


_PRIMITIVE = (str, int, float, bool)


def merge_clean(attrs: dict[str, AttributeValue], extra: dict[str, AttributeValue] | None) -> dict[str, AttributeValue] | None:
    """Move the ``str``/``int``/``float``/``bool`` values of a wrapper's ``extra``
    attributes (routing key, delivery tag) into ``attrs``; return the others, which
    must go through ``set_attributes`` (validated), or None."""
    if not extra:
        return None
    rest = None
    for key, value in extra.items():
        if type(value) in _PRIMITIVE:
            attrs[key] = value
        else:
            if rest is None:
                rest = {}
            rest[key] = value
    return rest


def start_span(state: AgentState, name: str, context: Context | None, kind: SpanKind, start_time: int,
               attributes: dict[str, AttributeValue]) -> trace.Span:
    """Start a message span of ``state``'s tracer carrying ``attributes`` (clean
    primitives built by our code).

    A :class:`~commerce_observe.agent._lightspan.LightSpan` when the runtime's
    pipeline is the only span processor; otherwise an SDK span, attributes added
    through :func:`add_clean`.
    """
    light = state.light_tracer()
    if light is not None:
        return light.start(name, context, kind, start_time, attributes)
    span = state.tracer.start_span(name, context, kind, None, None, start_time)
    if span.is_recording():
        add_clean(span, attributes)
    return span


def start_child_of_remote(state: AgentState, name: str, parent: SpanContext | None, kind: SpanKind, start_time: int,
                          attributes: dict[str, AttributeValue]) -> trace.Span:
    """:func:`start_span` from a fresh context whose current span is ``parent``, a
    remote span context (None: a new trace), as ``propagation.extract_parent`` gives:
    a light span is started from it directly (no ``Context`` built per message)."""
    light = state.light_tracer()
    if light is not None:
        return light.start_remote(name, parent, kind, start_time, attributes)
    return start_span(state, name, remote_context(parent), kind, start_time, attributes)

"""Light spans: the per-message spans, fed straight to our export pipeline.

An SDK span costs about 8 µs to start and end before any processor runs: four
locks, two bounded lists, a bounded attribute map, a sampler call through three
layers, and on ``end`` a ``ReadableSpan`` copy. Our pipeline then converts that
copy once more. For the one or two spans of every Kafka or RabbitMQ message that
is most of what the span costs, so message spans take a shorter road when — and
only when — nothing can tell the difference:

* the runtime is installed and our :class:`~commerce_observe.agent.export.pipeline.ExportPipeline`
  is the *only* span processor of its SDK tracer provider (add another processor
  and every span goes through the SDK again, so that processor sees them all);
* the tracer is enabled, no attribute value-length limit is set and the SDK's own
  span metrics are off.

A :class:`LightSpan` is a full ``opentelemetry.trace.Span``: application code
that reads the current span inside a handler can set attributes (validated like
the SDK does, by ``BoundedAttributes``), add events, record exceptions, set the
status, start SDK child spans under it. The configured sampler decides as it
would in the SDK (the default parent-based always-on sampler is answered
inline). Ids come from the provider's id generator. On ``end`` the span itself,
now frozen, is handed to the pipeline, whose converter reads it as it reads an
SDK ``ReadableSpan``. Links added after start are ignored (no exporter of ours
sends links).
"""

from __future__ import annotations

import os
import time
from random import getrandbits
import traceback
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, Tracer as SdkTracer
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util.types import AttributeValue, Attributes

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent._compat.otel_api import make_span_context
from commerce_observe.agent._compat.otel_sdk import SpanParts, event_parts, processors_unchanged, tracer_internals
from commerce_observe.agent.export.record import ENTRY_KINDS

#: Where a span's Elastic transaction id rides on the live span object, for its local
#: children: the pipeline's transaction tracker sets it on SDK spans, a light span
#: has it as a slot.
TXN_ATTR = "_commerce_observe_txn"
_UNSET = Status(StatusCode.UNSET)
#: Trace flags by (sampled, random trace id), built once.
_FLAGS = {(sampled, rand): TraceFlags((TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
                                      | (TraceFlags.RANDOM_TRACE_ID if rand else 0))
          for sampled in (False, True) for rand in (False, True)}
DROPPED_ATTRIBUTES = "span.attributes_dropped"
ENDED_TWICE = "span.ended_twice"


def _validated(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The SDK's own validation (invalid values are dropped with its warning)."""
    return dict(BoundedAttributes(None, attributes, immutable=True, max_value_len=None))


class LightSpan(trace.Span):
    """A recording span that hands itself to our export pipeline when it ends.

    The fields the pipeline's converter reads carry the names of an SDK
    ``ReadableSpan``'s (``context``, ``parent``, ``status``, ``events``,
    ``start_time`` …), so one converter serves both.
    """

    __slots__ = ("name", "context", "parent", "kind", "start_time", "end_time", "_attributes", "events", "status",
                 "_factory", "_commerce_observe_txn", "vetted")

    def __init__(self, factory: LightTracer, name: str, context: SpanContext, parent: SpanContext | None,
                 kind: SpanKind, start_time: int, attributes: dict[str, AttributeValue], txn: int) -> None:
        self._factory = factory
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_time = start_time
        self.end_time: int | None = None
        self._attributes = attributes
        self.events: list[Event] = []
        self.status = _UNSET
        self._commerce_observe_txn = txn
        #: True: every attribute key and value was checked against the pipeline's masker
        #: (``LightTracer.masker``) by the code that started the span, and found clean,
        #: so conversion skips its attribute pass. Any later attribute write clears it
        #: (before it writes: the converter copies the attributes, then reads this).
        self.vetted = False

    # --- what the converter reads besides the fields ---------------------------

    @property
    def resource(self) -> Resource:
        return self._factory.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope:
        return self._factory.scope

    @property
    def attributes(self) -> Mapping[str, AttributeValue]:
        return self._attributes

    @property
    def masker(self) -> Any:
        """The masker the pipeline will convert this span with (None: none), for :attr:`vetted`."""
        return self._factory.masker

    @property
    def transaction_id(self) -> int:
        return self._commerce_observe_txn

    def finished_parts(self) -> SpanParts:
        """What the converter reads of a finished span (``otel_sdk.finished_parts``' tuple),
        from the slots: no property calls, and the attributes copied by ``dict.copy``
        (a copy all the same: a ``set_attribute`` racing ``end`` on another thread must
        not reach the dict the converter masked)."""
        start = self.start_time
        factory = self._factory
        events = self.events
        return (self.name, self.context, self.parent, self.kind, start, self.end_time or start,
                self._attributes.copy(), event_parts(events) if events else [], self.status, factory.resource,
                factory.scope)

    # --- opentelemetry.trace.Span ----------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def add_clean(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Add attributes our own code built from ``str``/``int``/``float``/``bool`` values."""
        if self.end_time is not None:
            return
        self.vetted = False
        attrs = self._attributes
        limit = self._factory.max_attributes
        if limit is None or len(attrs) + len(attributes) <= limit:
            attrs.update(attributes)
            return
        for key, value in attributes.items():
            if key in attrs or len(attrs) < limit:
                attrs[key] = value
            else:
                stats.incr(DROPPED_ATTRIBUTES)

    def add_float(self, key: str, value: float) -> None:
        """Add one float our own code computed, keeping :attr:`vetted`: no masking rule
        changes a float, and the caller vetted ``key`` with the span's other keys."""
        if self.end_time is None:
            attrs = self._attributes
            limit = self._factory.max_attributes
            if limit is None or key in attrs or len(attrs) < limit:
                attrs[key] = value
            else:
                stats.incr(DROPPED_ATTRIBUTES)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.end_time is None and attributes:
            self.add_clean(_validated(attributes))

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            return
        if len(self.events) >= self._factory.max_events:
            stats.incr("span.events_dropped")
            return
        clean = _validated(attributes) if attributes else {}
        self.events.append(Event(name, clean, timestamp if timestamp is not None else time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Ignored: links are not exported by our backends' encoders."""

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return  # OK is final, as in the SDK
        if isinstance(status, Status):
            self.status = status
        else:
            self.status = Status(status, description if status is StatusCode.ERROR else None)

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        kind = type(exception)
        module = kind.__module__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            stats.incr(ENDED_TWICE)
            return
        self.end_time = end_time if end_time is not None else time.time_ns()
        self._factory.submit(self)

    def __repr__(self) -> str:
        return f"LightSpan(name={self.name!r}, context={self.context!r})"


class LightTracer:
    """Starts :class:`LightSpan` objects for one SDK tracer whose only processor is ours."""

    __slots__ = ("sdk_tracer", "processors", "resource", "scope", "sampler", "default_sampler", "ids", "fast_ids",
                 "random_ids", "max_attributes", "max_events", "submit", "masker")

    def __init__(self, sdk_tracer: SdkTracer, scope: InstrumentationScope, limits: Any,
                 processors: tuple[object, ...], submit: Any) -> None:
        self.sdk_tracer = sdk_tracer
        self.processors = processors
        self.resource: Resource = sdk_tracer.resource
        self.scope = scope
        self.sampler: sampling.Sampler = sdk_tracer.sampler
        self.default_sampler = _is_parent_based_always_on(self.sampler)
        self.ids: IdGenerator = sdk_tracer.id_generator
        #: The SDK's random generator is ``random.getrandbits`` (retrying a zero): inline it.
        self.fast_ids = type(self.ids) is RandomIdGenerator
        self.random_ids = bool(self.ids.is_trace_id_random())
        self.max_attributes: int | None = limits.max_span_attributes
        self.max_events: int = limits.max_events if limits.max_events is not None else 1 << 30
        self.submit = submit
        #: The masker the pipeline's conversion applies (None: no masking), which a
        #: span's :attr:`LightSpan.vetted` refers to.
        self.masker: Any = None

    def start(self, name: str, context: Context | None, kind: SpanKind, start_time: int,
              attributes: dict[str, AttributeValue]) -> trace.Span:
        parent_span = trace.get_current_span(context)
        return self._start(name, context, parent_span, parent_span.get_span_context(), kind, start_time, attributes)

    def start_remote(self, name: str, parent: SpanContext | None, kind: SpanKind, start_time: int,
                     attributes: dict[str, AttributeValue]) -> trace.Span:
        """:meth:`start` from a fresh context whose current span is ``parent``, a
        *remote* span context (None: a new trace), without building that context
        unless a sampler other than the default one must see it."""
        if not self.default_sampler:
            return self.start(name, remote_context(parent), kind, start_time, attributes)
        return self._start(name, None, None, parent, kind, start_time, attributes)

    def _start(self, name: str, context: Context | None, parent_span: trace.Span | None, parent: SpanContext | None,
               kind: SpanKind, start_time: int, attributes: dict[str, AttributeValue]) -> trace.Span:
        """``parent_span`` is read only when ``parent`` is local, ``context`` only by a
        sampler other than the default one."""
        ids = self.ids
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = (self.fast_ids and getrandbits(128)) or ids.generate_trace_id()
            random_id = self.random_ids
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        if self.default_sampler:
            sampled = parent is None or parent.trace_flags.sampled
            trace_state = parent.trace_state if parent is not None else None
        else:
            result = self.sampler.should_sample(context, trace_id, name, kind, attributes, ())
            sampled = result.decision is sampling.Decision.RECORD_AND_SAMPLE
            trace_state = result.trace_state
            if result.attributes:
                attributes = {**result.attributes, **attributes}
        span_id = (self.fast_ids and getrandbits(64)) or ids.generate_span_id()
        ctx = make_span_context(trace_id, span_id, False, _FLAGS[sampled, random_id],
                           DEFAULT_TRACE_STATE if trace_state is None else trace_state)
        if not sampled:
            return trace.NonRecordingSpan(ctx)
        if parent is None or parent.is_remote or kind in ENTRY_KINDS:  # is_entry_span, inlined
            txn = span_id
        else:
            txn = getattr(parent_span, TXN_ATTR, span_id)
        limit = self.max_attributes
        if limit is not None and len(attributes) > limit:
            stats.incr(DROPPED_ATTRIBUTES, len(attributes) - limit)
            attributes = dict(list(attributes.items())[:limit])
        return LightSpan(self, name, ctx, parent, kind, start_time, attributes, txn)


def remote_context(parent: SpanContext | None) -> Context:
    """A fresh context whose current span is the remote ``parent`` (None: an empty one)."""
    return Context() if parent is None else trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())


def _is_parent_based_always_on(sampler: sampling.Sampler) -> bool:
    """The SDK's and our default sampler, whose decision is "the parent's, or yes"."""
    if type(sampler) is not sampling.ParentBased:
        return False
    get = sampler.__dict__.get
    return (get("_root") is sampling.ALWAYS_ON and get("_remote_parent_sampled") is sampling.ALWAYS_ON
            and get("_remote_parent_not_sampled") is sampling.ALWAYS_OFF
            and get("_local_parent_sampled") is sampling.ALWAYS_ON
            and get("_local_parent_not_sampled") is sampling.ALWAYS_OFF)


def light_tracer_for(sdk_tracer: object, pipeline: Any) -> LightTracer | None:
    """A :class:`LightTracer` for ``sdk_tracer`` if light spans are indistinguishable
    there (see the module doc), else None."""
    if type(sdk_tracer) is not SdkTracer:
        return None
    submit = pipeline.submit
    internals = tracer_internals(sdk_tracer)
    if internals is None:
        return None
    scope, limits, processors = internals
    if len(processors) != 1 or processors[0] is not pipeline:
        return None
    if limits.max_span_attribute_length is not None or limits.max_attribute_length is not None:
        return None
    if os.environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true":
        return None
    light = LightTracer(sdk_tracer, scope, limits, processors, submit)
    light.masker = getattr(pipeline, "masker", None)
    return light


def still_valid(light: LightTracer) -> bool:
    """Whether nothing changed since ``light`` was made (a processor added, the tracer disabled)."""
    return processors_unchanged(light.sdk_tracer, light.processors)


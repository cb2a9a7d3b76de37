"""From a finished OpenTelemetry span to the masked :class:`SpanRecord`, once.

Conversion runs on the pipeline's conversion thread, never on the application
thread. It is the only place where privacy masking is applied, so every exporter
sees the same masked values and none can leak an unmasked one by forgetting to call
the masker. (A light consumer span whose attributes were checked against the same
masker as it started, ``LightSpan.vetted``, has nothing to mask there: its attribute pass
is skipped; names, events and the status are masked all the same.) It is also where the
Elastic transaction id, noted cheaply when the span started (:class:`TransactionTracker`),
joins the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent._compat.otel_sdk import finished_parts
from commerce_observe.agent._lightspan import TXN_ATTR, LightSpan
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.record import EventRecord, SpanRecord, is_entry_span

#: Key under which the status description travels through the masker, so a card
#: number or e-mail in an error message is redacted like any attribute value.
STATUS_DESCRIPTION_KEY = "otel.status_description"


class AttributeMasker(Protocol):
    """What the pipeline needs from ``commerce_observe.agent.privacy.Masker``."""

    def mask_attributes(self, attributes: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]: ...


#: Span and event names repeat endlessly (routes, topics): each is masked once.
_NAMES_MAX = 4096


class TransactionTracker:
    """Remembers, from span start to span end, which transaction a span belongs to.

    The SDK hands ``on_end`` a fresh ``ReadableSpan`` copy, not the span object
    ``on_start`` saw, so the id cannot simply ride on the span object. Two cheap
    structures do the job: the id is set as an attribute on the live span (so a
    local child started later, even after its parent ended, finds it through the
    parent context), and non-entry spans also go into a dict keyed by span id that
    ``on_end`` pops. Entry spans need no entry: their transaction is themselves.
    The dict is capped so spans that never end cannot grow it without bound; past
    the cap a span is treated as its own transaction and counted
    (``export.txn.untracked``).
    """

    def __init__(self, max_open: int = 100_000) -> None:
        self._open: dict[int, int] = {}
        self._max_open = max_open

    def on_start(self, span: object, parent_context: Context | None) -> None:
        ctx = span.get_span_context()  # type: ignore[attr-defined]
        parent = span.parent  # type: ignore[attr-defined]
        span_id: int = ctx.span_id
        if parent is None or parent.is_remote or is_entry_span(span.kind, parent.span_id, False):  # type: ignore[attr-defined]
            txn = span_id
        else:
            parent_span = trace.get_current_span(parent_context)
            txn = getattr(parent_span, TXN_ATTR, span_id)
            if txn != span_id:
                if len(self._open) < self._max_open:
                    self._open[span_id] = txn
                else:
                    txn = span_id
                    stats.incr("export.txn.untracked")
        try:
            setattr(span, TXN_ATTR, txn)
        except AttributeError:  # a span type with __slots__: children fall back
            pass

    def on_end(self, span_id: int) -> int:
        """The transaction id of a span that just ended (and forget it)."""
        return self._open.pop(span_id, span_id)

    def clear(self) -> None:
        self._open.clear()


class SpanConverter:
    """Turns ``ReadableSpan`` objects into masked :class:`SpanRecord` objects."""

    def __init__(self, masker: AttributeMasker | None) -> None:
        self._masker = masker
        self._names: dict[str, str] = {}
        self._service_by_resource: dict[int, tuple[Resource, str, Mapping[str, AttributeValue]]] = {}

    def _resource(self, resource: Resource) -> tuple[str, Mapping[str, AttributeValue]]:
        # Spans share one Resource object; resolve its service name once.
        hit = self._service_by_resource.get(id(resource))
        if hit is None or hit[0] is not resource:
            attrs = dict(resource.attributes)
            service = str(attrs.get("service.name", "unknown_service"))
            if len(self._service_by_resource) > 64:
                self._service_by_resource.clear()
            hit = (resource, service, attrs)
            self._service_by_resource[id(resource)] = hit
        return hit[1], hit[2]

    def _name(self, name: str) -> str:
        """A span or event name, masked (``GET /users/ann@example.com`` is a name too)."""
        mask_text = getattr(self._masker, "mask_text", None)  # a masker of attributes only leaves names
        if mask_text is None:
            return name
        names = self._names
        masked = names.get(name)
        if masked is None:
            if len(names) >= _NAMES_MAX:
                names.clear()
            masked = names[name] = str(mask_text(name))
        return masked

    def convert(self, span: ReadableSpan | LightSpan, transaction_id: int) -> SpanRecord:
        vetted = False
        if type(span) is LightSpan:
            (name, ctx, parent, kind, start, end, attributes, events, status, resource,
             scope) = span.finished_parts()
            vetted = span.vetted  # read after the copy (see LightSpan.vetted)
        else:
            (name, ctx, parent, kind, start, end, attributes, events, status, resource,
             scope) = finished_parts(span)
        masker = self._masker
        error = status.status_code is StatusCode.ERROR
        description = status.description if error else None
        if description and masker is not None:
            masked = masker.mask_attributes({STATUS_DESCRIPTION_KEY: description})
            description = str(masked.get(STATUS_DESCRIPTION_KEY, ""))
        if masker is None:
            records = tuple([EventRecord(*e) for e in events]) if events else ()
        else:
            records = tuple([EventRecord(self._name(n), ts, masker.mask_attributes(a) if a else a)
                             for n, ts, a in events]) if events else ()
            name = self._name(name)
            if attributes and not vetted:  # vetted: checked against this masker when the span started
                attributes = masker.mask_attributes(attributes)
        hit = self._service_by_resource.get(id(resource))
        service, attrs = (hit[1], hit[2]) if hit is not None and hit[0] is resource else self._resource(resource)
        # positional, in SpanRecord's field order (cheaper than by keyword; once per span)
        return SpanRecord(
            ctx.trace_id, ctx.span_id, parent.span_id if parent is not None else None,
            parent is not None and parent.is_remote, transaction_id, name, kind, start, end,
            attributes, records, error, description, ctx.trace_flags.sampled, service, attrs,
            scope.name if scope is not None else "",
        )

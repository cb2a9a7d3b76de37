"""One :class:`SpanRecord` -> intake v2 ``transaction`` / ``span`` / ``error`` events.

Ids are the record's own, hex encoded exactly as the Zipkin encoder writes them,
so one trace is the same trace in both backends. Entry spans (``record.is_entry``)
become transactions; every other span names its transaction through
``record.transaction_id``. Span events named ``exception`` become ``error``
events tied to the span; other events become transaction marks, or one label on
plain spans (the span schema has no marks).

Per-span cost matters (the pipeline maps every exported span), so events are
built as plain dicts in one pass, attribute containers are read once and nothing
is deep-copied. Attributes travel once, as ``otel.attributes`` (see ``_common``).
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.trace import SpanKind

from commerce_observe.export.elastic import classify
from commerce_observe.export.elastic.labels import (
    KEYWORD_MAX,
    labels_from,
    otel_attributes_from,
    sanitize_key,
    truncate,
)
from commerce_observe.export.record import EventRecord, SpanRecord

Event = dict[str, Any]

#: Name OpenTelemetry gives the span event recorded by ``span.record_exception``.
EXCEPTION_EVENT = "exception"
#: Label listing the non-exception span events of a plain span.
EVENTS_LABEL = "otel_events"
#: ``transaction.marks`` group holding span events (offsets in ms from the start).
MARKS_GROUP = "events"

_SERVICE_NAME_BAD = re.compile(r"[^a-zA-Z0-9 _-]")


def service_name(name: str) -> str:
    """The intake schema only allows ``[a-zA-Z0-9 _-]`` in a service name."""
    return truncate(_SERVICE_NAME_BAD.sub("_", name)) or "unknown"


def _hex16(value: int) -> str:
    return format(value, "016x")


#: ``otel.span_kind`` strings, looked up instead of ``SpanKind.name`` per span.
_KIND_NAMES = {k: k.name for k in SpanKind}
_NO_SYNC_KINDS = frozenset({SpanKind.PRODUCER, SpanKind.CONSUMER})


def _common(record: SpanRecord, context: dict[str, Any]) -> Event:
    """Fields transactions and spans share.

    Attributes go once, under ``otel.attributes`` with their original keys, not
    also as ``context.tags``: APM Server (7.16+) runs ``otel.attributes`` through
    its OTLP translation, which maps the semantic-convention attributes to their
    ECS fields and stores every other one as a label (dots replaced by ``_``,
    numbers as numeric labels). Sending the same attributes as ``context.tags`` too
    only produced the same labels twice. Errors have no ``otel`` field, so they
    keep ``context.tags``.
    """
    name = record.name
    event: Event = {
        "id": format(record.span_id, "016x"),
        "trace_id": format(record.trace_id, "032x"),
        "name": name if len(name) <= KEYWORD_MAX else name[:KEYWORD_MAX],
        "timestamp": record.start_ns // 1000,
        "duration": max(0, record.end_ns - record.start_ns) / 1e6,
        "otel": {
            "span_kind": _KIND_NAMES[record.kind],
            "attributes": otel_attributes_from(record.attributes),
        },
    }
    if context:
        event["context"] = context
    return event


def _event_offsets(record: SpanRecord) -> list[EventRecord]:
    return [e for e in record.events if e.name != EXCEPTION_EVENT]


def transaction_event(record: SpanRecord, started_spans: int, service: str | None = None) -> Event:
    """An entry span as a transaction; ``started_spans`` is what the batch window saw."""
    attrs = record.attributes
    context = classify.transaction_context(record.kind, attrs, record.end_ns)
    if service is not None:
        context["service"] = {"name": service}
    event = _common(record, context)
    if record.parent_span_id is not None:
        event["parent_id"] = _hex16(record.parent_span_id)
    event["type"] = classify.transaction_type(record.kind, attrs)
    event["outcome"] = classify.outcome(record.error, attrs, entry=True)
    event["result"] = classify.result(record.error, attrs)
    event["sampled"] = record.sampled
    event["span_count"] = {"started": started_spans, "dropped": 0}
    others = _event_offsets(record) if record.events else None
    if others:
        event["marks"] = {
            MARKS_GROUP: {
                sanitize_key(e.name): max(0.0, (e.timestamp_ns - record.start_ns) / 1e6) for e in others
            }
        }
    return event


def span_event(record: SpanRecord, service: str | None = None) -> Event:
    """A non-entry span; ``parent_id`` is required by the schema."""
    attrs = record.attributes
    kind = classify.span_kind(record.kind, attrs)
    context = classify.span_context(kind, attrs, record.end_ns)
    if service is not None:
        context.setdefault("service", {})["name"] = service
    others = _event_offsets(record) if record.events else None
    if others:
        context["tags"] = {EVENTS_LABEL: truncate(",".join(e.name for e in others))}
    event = _common(record, context)
    parent = record.parent_span_id if record.parent_span_id is not None else record.transaction_id
    event["parent_id"] = _hex16(parent)
    event["transaction_id"] = _hex16(record.transaction_id)
    event["type"] = kind.type
    if kind.subtype is not None:
        event["subtype"] = truncate(kind.subtype)
    if kind.action is not None:
        event["action"] = kind.action
    event["outcome"] = classify.outcome(record.error, attrs, entry=False)
    event["sync"] = record.kind not in _NO_SYNC_KINDS
    return event


def error_events(record: SpanRecord) -> list[Event]:
    """One ``error`` per ``exception`` span event, parented to the span.

    The id is derived from the span id and the event's position, so a re-sent
    batch repeats the same error ids instead of inventing new ones. Errors carry
    the span's labels (an order id on the error is what on-call searches for).
    """
    errors: list[Event] = []
    tags: dict[str, Any] | None = None
    for index, ev in enumerate(record.events):
        if ev.name != EXCEPTION_EVENT:
            continue
        a = ev.attributes
        exc_type = a.get("exception.type")
        message = a.get("exception.message")
        exception: dict[str, Any] = {
            "type": truncate(str(exc_type)) if exc_type is not None else "Exception",
            "message": str(message) if message is not None else "",
            "handled": a.get("exception.escaped") is not True,
        }
        stack = a.get("exception.stacktrace")
        if isinstance(stack, str) and stack:
            exception["attributes"] = {"stacktrace": truncate(stack, 16 * KEYWORD_MAX)}
        error: Event = {
            "id": record.span_id_hex + format(index, "016x"),
            "trace_id": record.trace_id_hex,
            "transaction_id": _hex16(record.transaction_id),
            "parent_id": record.span_id_hex,
            "timestamp": ev.timestamp_ns // 1000,
            "culprit": truncate(record.name),
            "exception": exception,
            "transaction": {"sampled": record.sampled},
        }
        if record.is_entry:
            error["transaction"]["name"] = truncate(record.name)
            error["transaction"]["type"] = classify.transaction_type(record.kind, record.attributes)
        if tags is None:
            tags = labels_from(record.attributes)
        if tags:
            error["context"] = {"tags": tags}
        errors.append(error)
    return errors

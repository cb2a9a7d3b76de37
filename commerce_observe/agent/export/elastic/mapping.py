"""One :class:`SpanRecord` -> intake v2 ``transaction`` / ``span`` / ``error`` events.

Ids are the record's own, hex encoded exactly as the Zipkin encoder writes them,
so one trace is the same trace in both backends. Entry spans (``record.is_entry``)
become transactions; every other span names its transaction through
``record.transaction_id``. Span events named ``exception`` become ``error``
events tied to the span; other events become transaction marks, or one label on
plain spans (the span schema has no marks).

Per-span cost matters (the pipeline maps every exported span), so events are
built as plain dicts in one pass, attribute containers are read once and nothing
is deep-copied. Transactions and spans are written straight to their NDJSON line
(``transaction_line``/``span_line``); ``transaction_event``/``span_event`` parse
that line back for tests and tools. Attributes travel once, as
``otel.attributes`` (see ``attributes_json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.elastic import classify
from commerce_observe.agent.export.elastic.labels import (
    KEYWORD_MAX,
    labels_from,
    otel_value,
    sanitize_key,
    truncate,
)
from commerce_observe.agent.export.record import EventRecord, SpanRecord

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
#: (tables by the member's ``_value_``: hashing an Enum member is a Python-level call)
_KIND_NAMES = {k.value: k.name for k in SpanKind}

#: The C string escaper of the json module (ASCII output: a lone surrogate in
#: attribute text cannot make the body unencodable, and no raw newline can break
#: the NDJSON framing).
_esc: Callable[[str], str] = json.encoder.encode_basestring_ascii
#: Compact C-encoder dumps for the variable parts (context, marks, odd values).
dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def event_line(kind: str, event: Any) -> str:
    """One intake NDJSON line, ``{"<kind>":<event>}`` and its newline, for the events
    built as dicts (metadata, error, metricset); transactions and spans are written
    straight to their line by ``transaction_line``/``span_line``."""
    return '{"' + kind + '":' + dumps(event) + "}\n"


#: ``"<escaped key>":`` by attribute key (keys repeat; bounded like the label key cache).
_KEY_JSON: dict[str, str] = {}
_KEY_JSON_MAX = 4096

#: Classification of spans carrying none of ``classify.CLASSIFY_KEYS``, per kind:
#: the same answers the rules give for empty attributes, computed once.
_NO_ATTRS: dict[str, AttributeValue] = {}
_PLAIN_TXN_TYPE = {k.value: classify.transaction_type(k, _NO_ATTRS) for k in SpanKind}
_PLAIN_SPAN_KIND = {k.value: classify.span_kind(k, _NO_ATTRS) for k in SpanKind}


def _is_plain(attributes: Mapping[str, AttributeValue]) -> bool:
    return attributes.keys().isdisjoint(classify.CLASSIFY_KEYS)


def attributes_json(attributes: Mapping[str, AttributeValue]) -> str:
    """``otel.attributes`` as JSON text: original keys, JSON-safe values.

    Short strings, ints and bools (nearly every attribute) are written directly;
    anything else goes through :func:`otel_value` and the C encoder. Equal, once
    parsed, to ``{k: otel_value(v) for k, v in attributes.items() if v is not None}``.

    Attributes are sent once, under ``otel.attributes``, not also as
    ``context.tags``: APM Server (7.16+) runs ``otel.attributes`` through its OTLP
    translation, which maps the semantic-convention attributes to their ECS fields
    and stores every other one as a label (dots replaced by ``_``, numbers as
    numeric labels). Sending the same attributes as ``context.tags`` too only
    produced the same labels twice. Errors have no ``otel`` field, so they keep
    ``context.tags``.
    """
    esc, key_json = _esc, _KEY_JSON
    parts: list[str] = []
    items: Iterable[tuple[str, Any]] = attributes.items()  # types checked by hand below
    for k, v in items:
        if v is None:
            continue
        kj = key_json.get(k)
        if kj is None:
            kj = esc(k) + ":"
            if len(key_json) < _KEY_JSON_MAX:
                key_json[k] = kj
        t = type(v)
        if t is str:
            parts.append(kj + esc(v if len(v) <= KEYWORD_MAX else v[:KEYWORD_MAX]))
        elif t is int:
            parts.append(kj + int.__repr__(v))
        elif t is bool:
            parts.append(kj + ("true" if v else "false"))
        else:
            parts.append(kj + dumps(otel_value(v)))
    return "{" + ",".join(parts) + "}"


def _head(record: SpanRecord, event_type: str) -> list[str]:
    """The opening of a transaction/span line: ids, name, timing, ``otel``."""
    name = record.name
    return [
        '{"', event_type, '":{"id":"', format(record.span_id, "016x"),
        '","trace_id":"', format(record.trace_id, "032x"),
        '","name":', _esc(name if len(name) <= KEYWORD_MAX else name[:KEYWORD_MAX]),
        ',"timestamp":', str(record.start_ns // 1000),
        ',"duration":', repr(max(0, record.end_ns - record.start_ns) / 1e6),
        ',"otel":{"span_kind":"', _KIND_NAMES[record.kind._value_],
        '","attributes":', attributes_json(record.attributes), "}",
    ]


def _marks_json(events: list[EventRecord], start_ns: int) -> str:
    """``{"<sanitised name>": ms after the start, ...}``; a later colliding name wins,
    as in a dict. Offsets are finite floats, written with ``repr`` as json does."""
    if len(events) == 1:
        (e,) = events
        return "{" + _esc(sanitize_key(e.name)) + ":" + repr(max(0.0, (e.timestamp_ns - start_ns) / 1e6)) + "}"
    marks = {sanitize_key(e.name): max(0.0, (e.timestamp_ns - start_ns) / 1e6) for e in events}
    return dumps(marks)


def _event_offsets(record: SpanRecord) -> list[EventRecord]:
    return [e for e in record.events if e.name != EXCEPTION_EVENT]


def sample_rate_text(rate: float) -> str:
    """``sample_rate`` as Elastic's agents write it: at most 4 decimals (0.0001 kept as such)."""
    rounded = round(rate, 4)
    return "1" if rounded >= 1 else ("0" if rate <= 0 else repr(max(rounded, 0.0001)))


def transaction_line(record: SpanRecord, started_spans: int, service: str | None = None, sample_rate: str = "1") -> str:
    """An entry span as one NDJSON ``transaction`` line (with its newline).

    Written as text: the fixed fields are ids, numbers and known words, so only
    the name, attributes, context and marks need escaping or the encoder; this
    is about half the cost of building a dict and encoding it.
    ``started_spans`` is what the batch window saw; ``sample_rate`` (from
    :func:`sample_rate_text`) lets Kibana extrapolate throughput when sampling.
    """
    attrs = record.attributes
    error = record.error
    out = _head(record, "transaction")
    if _is_plain(attrs):
        context: dict[str, Any] = {}
        txn_type, outcome = _PLAIN_TXN_TYPE[record.kind._value_], "failure" if error else "success"
        result = "error" if error else "success"
    else:
        context = classify.transaction_context(record.kind, attrs, record.end_ns)
        txn_type, outcome = classify.transaction_type(record.kind, attrs), classify.outcome(error, attrs, entry=True)
        result = classify.result(error, attrs)
    if service is not None:
        context["service"] = {"name": service}
    if context:
        out += (',"context":', dumps(context))
    if record.parent_span_id is not None:
        out += (',"parent_id":"', format(record.parent_span_id, "016x"), '"')
    out += (
        ',"type":', _esc(txn_type),
        ',"outcome":"', outcome,
        '","result":', _esc(result),
        ',"sampled":', "true" if record.sampled else "false",
        ',"sample_rate":', sample_rate,
        ',"span_count":{"started":', str(started_spans), ',"dropped":0}',
    )
    others = _event_offsets(record) if record.events else None
    if others:
        out += (',"marks":{"', MARKS_GROUP, '":', _marks_json(others, record.start_ns), "}")
    out.append("}}\n")
    return "".join(out)


def span_line(record: SpanRecord, service: str | None = None, sample_rate: str = "1") -> str:
    """A non-entry span as one NDJSON ``span`` line; ``parent_id`` is required."""
    attrs = record.attributes
    out = _head(record, "span")
    if _is_plain(attrs):
        kind, context = _PLAIN_SPAN_KIND[record.kind._value_], {}
        outcome = "failure" if record.error else "success"
    else:
        kind = classify.span_kind(record.kind, attrs)
        context = classify.span_context(kind, attrs, record.end_ns)
        outcome = classify.outcome(record.error, attrs, entry=False)
    if service is not None:
        context.setdefault("service", {})["name"] = service
    others = _event_offsets(record) if record.events else None
    if others:
        context["tags"] = {EVENTS_LABEL: truncate(",".join(e.name for e in others))}
    if context:
        out += (',"context":', dumps(context))
    parent = record.parent_span_id if record.parent_span_id is not None else record.transaction_id
    out += (
        ',"parent_id":"', format(parent, "016x"),
        '","transaction_id":"', format(record.transaction_id, "016x"),
        '","type":', _esc(kind.type),
    )
    if kind.subtype is not None:
        out += (',"subtype":', _esc(truncate(kind.subtype)))
    if kind.action is not None:
        out += (',"action":', _esc(kind.action))
    out += (
        ',"outcome":"', outcome,
        '","sync":', "false" if record.kind is SpanKind.PRODUCER or record.kind is SpanKind.CONSUMER else "true",
        ',"sample_rate":', sample_rate,
        "}}\n",
    )
    return "".join(out)


def _parsed(line: str, event_type: str) -> Event:
    event: Event = json.loads(line)[event_type]
    return event


def transaction_event(record: SpanRecord, started_spans: int, service: str | None = None) -> Event:
    """:func:`transaction_line` parsed back: the event as a dict (tests, tools)."""
    return _parsed(transaction_line(record, started_spans, service), "transaction")


def span_event(record: SpanRecord, service: str | None = None) -> Event:
    """:func:`span_line` parsed back: the event as a dict (tests, tools)."""
    return _parsed(span_line(record, service), "span")


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

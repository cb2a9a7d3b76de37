"""Elastic APM mapping: schema validity for arbitrary attributes (Hypothesis),
label sanitising, and the same ids as Zipkin for spans from a real TracerProvider.

No APM Server can run here, so every event is validated against the official
intake v2 JSON schemas (the receiver and validator in ``tests/support/apm_intake``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from elasticapm.utils import json_encoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.elastic.labels import labels_from
from commerce_observe.agent.export.elastic.mapping import error_events, span_event, transaction_event
from commerce_observe.agent.export.elastic.metadata import build_metadata
from commerce_observe.agent.export.elastic_apm import ElasticApmExporter
from commerce_observe.agent.export.record import EventRecord, SpanRecord, is_entry_span
from tests.support.apm_intake import T0_NS, IntakeReceiver, IntakeSchemas, span_record

SCHEMAS = IntakeSchemas()


def _wire(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """What APM Server would parse: the event through elastic-apm's own serializer."""
    line = json_encoder.dumps({event_type: data})  # type: ignore[no-untyped-call]
    parsed: dict[str, Any] = json.loads(line)[event_type]
    return parsed


def _mapped(record: SpanRecord) -> list[tuple[str, dict[str, Any]]]:
    main = ("transaction", transaction_event(record, 1)) if record.is_entry else ("span", span_event(record))
    return [main] + [("error", e) for e in error_events(record)]


scalars = st.one_of(
    st.text(max_size=1500),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=5), scalars, max_size=2))
attributes = st.dictionaries(st.text(max_size=40), values, max_size=8)
known_keys = st.sampled_from([
    "messaging.system", "messaging.destination.name", "messaging.operation.type", "http.request.method",
    "http.response.status_code", "url.full", "url.path", "server.address", "server.port", "db.system",
    "db.name", "db.statement", "rpc.system", "commerce.message.published_ns", "exception.type",
    "exception.message", "exception.escaped", "commerce.order.id",
])
semantic = st.dictionaries(known_keys, values, max_size=8)


@st.composite
def records(draw: st.DrawFn) -> SpanRecord:
    kind = draw(st.sampled_from(list(SpanKind)))
    parent = draw(st.one_of(st.none(), st.integers(1, 2**64 - 1)))
    remote = parent is not None and draw(st.booleans())
    span_id = draw(st.integers(1, 2**64 - 1))
    entry = is_entry_span(kind, parent, remote)
    attrs = {**draw(attributes), **draw(semantic)}
    event_names = st.one_of(st.just("exception"), st.text(max_size=30))
    events = draw(st.lists(st.builds(EventRecord, event_names, st.integers(T0_NS - 10**9, T0_NS + 10**9),
                                     st.one_of(attributes, semantic)), max_size=3))
    return span_record(
        trace_id=draw(st.integers(1, 2**128 - 1)), span_id=span_id, parent_span_id=parent, parent_is_remote=remote,
        transaction_id=span_id if entry else draw(st.integers(1, 2**64 - 1)), kind=kind,
        name=draw(st.text(max_size=1100)), start_ns=T0_NS, end_ns=T0_NS + draw(st.integers(0, 10**12)),
        attributes=attrs, events=events, error=draw(st.booleans()), sampled=draw(st.booleans()),
        service_name=draw(st.text(max_size=20)),
    )


@settings(max_examples=300, deadline=None)
@given(records())
def test_arbitrary_spans_map_to_schema_valid_events(record: SpanRecord) -> None:
    """Any attribute keys and values (arrays, bytes, maps, NaN, huge ints, 1500-char
    strings) give events valid against the official schemas; no APM Server can run here."""
    for event_type, data in _mapped(record):
        SCHEMAS.check(event_type, _wire(event_type, data))
        tags = data.get("context", {}).get("tags", {})
        assert not any(c in key for key in tags for c in '.*"')
        assert all(isinstance(v, (str, bool, int, float)) for v in tags.values())
        assert all(len(v) <= 1024 for v in tags.values() if isinstance(v, str))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=40)), attributes)
def test_arbitrary_service_and_resource_give_valid_metadata(name: str, env: str | None, res: dict[str, Any]) -> None:
    """Any service name, environment and resource attributes give valid metadata
    (the schema allows only ``[a-zA-Z0-9 _-]`` in names); no APM Server can run here."""
    SCHEMAS.check("metadata", _wire("metadata", build_metadata(name, env, res)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records(), min_size=1, max_size=5))
def test_arbitrary_batches_are_accepted_over_the_wire(batch: list[SpanRecord]) -> None:
    """The same through elastic-apm's transport to the receiver, which answers 400
    on any schema violation as APM Server would (none can run here)."""
    with IntakeReceiver() as receiver:
        exporter = ElasticApmExporter(receiver.url, "svc", timeout_s=2.0)
        try:
            assert exporter.export(batch) is True
        finally:
            exporter.shutdown()
        assert receiver.problems() == []


def test_label_keys_and_values_are_sanitised() -> None:
    """``.``, ``*`` and ``"`` become ``_``; strings stop at 1024; arrays are joined;
    NaN becomes text. Events validated against the official schemas (no APM Server here)."""
    record = span_record(attributes={
        "commerce.order.id": "ord-9", 'odd*"key': 1, "long": "x" * 5000, "ids": ("a", "b"),
        "ratio": float("nan"), "ok": True, "amount": 12.5,
    })
    (event_type, data), = _mapped(record)
    SCHEMAS.check(event_type, _wire(event_type, data))
    assert "tags" not in data.get("context", {})  # attributes travel once, as otel.attributes
    assert labels_from(record.attributes) == {
        "commerce_order_id": "ord-9", "odd__key": 1, "long": "x" * 1024, "ids": "a,b", "ratio": "nan",
        "ok": True, "amount": 12.5,
    }
    assert data["otel"]["attributes"]["ids"] == ["a", "b"]
    assert data["otel"]["attributes"]["long"] == "x" * 1024
    assert data["otel"]["attributes"]["ratio"] == "nan"
    error = EventRecord("exception", T0_NS, {"exception.type": "E"})
    (err,) = error_events(span_record(attributes=record.attributes, events=(error,)))
    SCHEMAS.check("error", _wire("error", err))
    assert err["context"]["tags"]["commerce_order_id"] == "ord-9"  # errors have no otel field: tags


def _to_record(span: ReadableSpan, by_id: dict[int, ReadableSpan], service: str) -> SpanRecord:
    """A minimal conversion for this test (the pipeline has its own)."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    txn = span
    while True:
        p = txn.parent
        if is_entry_span(txn.kind, p.span_id if p else None, bool(p and p.is_remote)) or p is None:
            break
        txn = by_id[p.span_id]
    txn_ctx = txn.get_span_context()
    assert txn_ctx is not None and span.start_time is not None and span.end_time is not None
    return SpanRecord(
        trace_id=ctx.trace_id, span_id=ctx.span_id, parent_span_id=parent.span_id if parent else None,
        parent_is_remote=bool(parent and parent.is_remote), transaction_id=txn_ctx.span_id, name=span.name,
        kind=span.kind, start_ns=span.start_time, end_ns=span.end_time, attributes=dict(span.attributes or {}),
        events=tuple(EventRecord(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events),
        error=span.status.status_code is StatusCode.ERROR, status_description=span.status.description,
        sampled=ctx.trace_flags.sampled, service_name=service, resource=dict(span.resource.attributes),
        scope_name=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )


def test_same_ids_as_zipkin_for_tracer_provider_spans() -> None:
    """Spans from a real OpenTelemetry TracerProvider: Elastic events carry exactly the
    trace, span and parent ids Zipkin's encoder writes. Validated against the official
    schemas (no APM Server can run here)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST"}):
        with tracer.start_as_current_span("place order") as place:
            place.add_event("commerce.order.created", {"commerce.order.id": "ord-1"})
            with tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER,
                                              attributes={"messaging.system": "kafka",
                                                          "messaging.destination.name": "orders"}):
                pass
            try:
                raise ValueError("card declined")
            except ValueError as exc:
                place.record_exception(exc)
    finished = memory.get_finished_spans()
    by_id = {s.get_span_context().span_id: s for s in finished}  # type: ignore[union-attr]
    batch = [_to_record(s, by_id, "checkout") for s in finished]

    with IntakeReceiver() as receiver:
        exporter = ElasticApmExporter(receiver.url, "checkout", timeout_s=2.0)
        try:
            assert exporter.export(batch)
        finally:
            exporter.shutdown()
        assert receiver.problems() == []
        elastic = {e["id"]: e for e in receiver.events("span") + receiver.events("transaction")}
        (error,) = receiver.events("error")

    encoded = JsonV2Encoder().serialize(finished, NodeEndpoint())  # type: ignore[arg-type]
    zipkin = json.loads(encoded)
    assert {z["id"] for z in zipkin} == set(elastic)
    for z in zipkin:
        e = elastic[z["id"]]
        assert e["trace_id"] == z["traceId"]
        assert e.get("parent_id") == z.get("parentId")
    root = next(z for z in zipkin if "parentId" not in z)
    assert all(e.get("transaction_id", e["id"]) == root["id"] for e in elastic.values())
    place_id = next(z["id"] for z in zipkin if z["name"] == "place order")
    assert error["parent_id"] == place_id and error["transaction_id"] == root["id"]


@pytest.mark.parametrize("kind", list(SpanKind))
@pytest.mark.parametrize("error", [False, True])
def test_plain_attributes_fast_path_matches_the_rules(kind: SpanKind, error: bool) -> None:
    """Spans with none of the attributes the rules read skip them (precomputed per
    kind); the result must be what the rules give. Validated against the official
    schemas (no APM Server can run here)."""
    from commerce_observe.agent.export.elastic import classify

    attrs: dict[str, AttributeValue] = {"commerce.order.id": "ord-1", "commerce.quantity": 2}
    txn = transaction_event(span_record(kind=kind, error=error, attributes=attrs), 0)
    SCHEMAS.check("transaction", _wire("transaction", txn))
    assert txn["type"] == classify.transaction_type(kind, attrs)
    assert txn["outcome"] == classify.outcome(error, attrs, entry=True)
    assert txn["result"] == classify.result(error, attrs)
    assert "context" not in txn and not classify.transaction_context(kind, attrs, T0_NS)

    span = span_event(span_record(kind=kind, error=error, attributes=attrs, span_id=2, transaction_id=1))
    SCHEMAS.check("span", _wire("span", span))
    k = classify.span_kind(kind, attrs)
    assert (span["type"], span.get("subtype"), span.get("action")) == (k.type, k.subtype, k.action)
    assert span["outcome"] == classify.outcome(error, attrs, entry=False)
    assert "context" not in span and not classify.span_context(k, attrs, T0_NS)
    assert span["otel"]["attributes"] == attrs

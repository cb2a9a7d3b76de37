"""Our OTLP bytes, read by the official opentelemetry-proto classes, say what the records say."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.trace import SpanKind

from commerce_observe.agent.export.otlp_encode import OtlpEncoder
from commerce_observe.agent.export.record import EventRecord, SpanRecord

RESOURCE = {"service.name": "checkout", "deployment.environment": "test"}


def record(**changes: object) -> SpanRecord:
    fields: dict[str, object] = dict(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331, parent_span_id=None,
        parent_is_remote=False, transaction_id=0xB7AD6B7169203331, name="order.create", kind=SpanKind.SERVER,
        start_ns=1_700_000_000_123_456_789, end_ns=1_700_000_000_223_456_789, attributes={"a": "b"},
        events=(), error=False, status_description=None, sampled=True, service_name="checkout",
        resource=RESOURCE, scope_name="commerce_observe",
    )
    fields.update(changes)
    return SpanRecord(**fields)  # type: ignore[arg-type]


def plain(value: AnyValue) -> object:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [plain(v) for v in value.array_value.values]
    return getattr(value, which)


def test_every_field_reads_back_with_the_official_classes() -> None:
    long_text = "x" * 300
    attrs = {"s": "value", "long": long_text, "uni": "Zürich ✓", "t": True, "f": False, "i": 42, "neg": -7,
             "d": 19.9, "big": 2**40, "arr": ["a", "b"], "nums": [1, 2]}
    event = EventRecord("commerce.order.created", 1_700_000_000_200_000_000, {"commerce.order.id": "o-1"})
    child = record(span_id=0x1122334455667788, parent_span_id=0xB7AD6B7169203331, parent_is_remote=True,
                   kind=SpanKind.CONSUMER, attributes=attrs, events=(event,), error=True,
                   status_description="card declined", scope_name="other.scope")
    request = ExportTraceServiceRequest.FromString(OtlpEncoder().encode([record(), child]))

    (resource_spans,) = request.resource_spans
    assert {kv.key: plain(kv.value) for kv in resource_spans.resource.attributes} == RESOURCE
    scopes = {s.scope.name: list(s.spans) for s in resource_spans.scope_spans}
    (root,) = scopes["commerce_observe"]
    (span,) = scopes["other.scope"]
    assert root.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c" and root.span_id.hex() == "b7ad6b7169203331"
    assert root.parent_span_id == b"" and root.kind == 2 and root.name == "order.create"
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (1_700_000_000_123_456_789, 1_700_000_000_223_456_789)
    assert root.status.code == 0 and root.flags == 0x101
    assert span.parent_span_id.hex() == "b7ad6b7169203331" and span.kind == 5 and span.flags == 0x301
    assert {kv.key: plain(kv.value) for kv in span.attributes} == attrs
    assert (span.status.code, span.status.message) == (2, "card declined")
    (ev,) = span.events
    assert (ev.name, ev.time_unix_nano) == ("commerce.order.created", 1_700_000_000_200_000_000)
    assert {kv.key: plain(kv.value) for kv in ev.attributes} == {"commerce.order.id": "o-1"}


def test_spans_of_two_resources_go_to_two_resource_spans() -> None:
    other = {"service.name": "payments"}
    request = ExportTraceServiceRequest.FromString(
        OtlpEncoder().encode([record(), record(resource=other, service_name="payments"), record(span_id=5)]))
    counts = {rs.resource.attributes[0].value.string_value: sum(len(s.spans) for s in rs.scope_spans)
              for rs in request.resource_spans}
    assert counts == {"checkout": 2, "payments": 1}


_values = st.one_of(st.text(max_size=150), st.integers(-(2**63), 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=False), st.lists(st.text(max_size=5), max_size=3))


@settings(max_examples=200, deadline=None)
@given(attrs=st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8),
       name=st.text(max_size=30), event_attrs=st.dictionaries(st.text(min_size=1, max_size=5), _values, max_size=3))
def test_any_attributes_read_back_the_same(attrs: dict[str, object], name: str, event_attrs: dict[str, object]) -> None:
    """The encoder's caches (keys, heads by value length, small constants) never mix
    one attribute up with another: one encoder, every example."""
    event = EventRecord("e", 1, event_attrs)
    request = ExportTraceServiceRequest.FromString(_SHARED.encode([record(attributes=attrs, name=name, events=(event,))]))
    (span,) = request.resource_spans[0].scope_spans[0].spans

    def same(got: dict[str, object], want: dict[str, object]) -> bool:
        return got == want and all(type(got[k]) is type(want[k]) for k in want)

    assert span.name == name
    assert same({kv.key: plain(kv.value) for kv in span.attributes}, attrs)
    assert same({kv.key: plain(kv.value) for kv in span.events[0].attributes}, event_attrs)


_SHARED = OtlpEncoder()


def test_a_large_batch_reads_back_whole() -> None:
    """Lengths of one, two and three varint bytes (a span, an event, the whole batch)."""
    batch = [record(span_id=i + 1, attributes={"note": "x" * (i % 300)}) for i in range(400)]
    request = ExportTraceServiceRequest.FromString(OtlpEncoder().encode(batch))
    spans = request.resource_spans[0].scope_spans[0].spans
    assert [int.from_bytes(s.span_id, "big") for s in spans] == list(range(1, 401))
    assert [len(s.attributes[0].value.string_value) for s in spans] == [i % 300 for i in range(400)]


@settings(max_examples=100, deadline=None)
@given(attrs=st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=8),
       name=st.text(max_size=30), event_attrs=st.dictionaries(st.text(min_size=1, max_size=5), _values, max_size=3),
       error=st.booleans(), remote=st.booleans())
def test_the_official_classes_build_the_same_message(attrs: dict[str, object], name: str,
                                                     event_attrs: dict[str, object], error: bool, remote: bool) -> None:
    """``otlp_pb`` (opentelemetry-proto's message classes, the benchmark's reference)
    and our byte writer encode the same request."""
    from commerce_observe.agent.export import otlp_pb

    batch = [record(), record(span_id=7, parent_span_id=0xB7AD6B7169203331, parent_is_remote=remote, name=name,
                              attributes=attrs, events=(EventRecord("e", 1, event_attrs),), error=error,
                              status_description="declined" if error else None, scope_name="other"),
             record(span_id=9, resource={"service.name": "payments"}, service_name="payments")]
    ours = ExportTraceServiceRequest.FromString(_SHARED.encode(batch))
    official = ExportTraceServiceRequest.FromString(otlp_pb.encode(batch))
    assert ours == official

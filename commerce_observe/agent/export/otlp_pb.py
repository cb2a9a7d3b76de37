"""SpanRecord batches as OTLP built with the official ``opentelemetry-proto`` classes.

The reference for :mod:`otlp_encode`, our own writer of the same bytes (the default):
this builds the ``ExportTraceServiceRequest`` as protobuf message objects, one per
span, event, attribute and value, as OpenTelemetry's own exporters do, and lets
protobuf serialise it. It reads the same masked records, so it keeps every masking
guarantee; it costs more CPU per span, which is why it is not the default:
``benchmarks/span_export.py`` runs ``c-ours-triple-pb`` (this encoder) beside
``c-ours-triple`` in the same run. ``OtlpExporter(settings, encoder="protobuf")``
selects it; a test holds the two encoders to the same message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.record import SpanRecord

_MASK64 = (1 << 64) - 1


def _text(value: str) -> str:
    """Text protobuf accepts: a lone surrogate becomes '?' (as ``otlp_encode`` writes it)."""
    return value if value.isascii() else value.encode("utf-8", "replace").decode()


def any_value(value: object) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=_text(value))
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        n = value & _MASK64  # int64 two's complement, as the varint writer does
        return AnyValue(int_value=n - (1 << 64) if n >> 63 else n)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Sequence):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=_text(str(value)))


def key_values(attributes: Mapping[str, AttributeValue]) -> list[KeyValue]:
    return [KeyValue(key=_text(k), value=any_value(v)) for k, v in attributes.items()]


def span(r: SpanRecord) -> Span:
    out = Span(
        trace_id=r.trace_id.to_bytes(16, "big"), span_id=r.span_id.to_bytes(8, "big"), name=_text(r.name),
        kind=r.kind.value + 1,  # type: ignore[arg-type]  # OTLP's enum: OpenTelemetry's value plus one
        start_time_unix_nano=r.start_ns, end_time_unix_nano=r.end_ns,
        attributes=key_values(r.attributes),
        events=[Span.Event(time_unix_nano=e.timestamp_ns, name=_text(e.name), attributes=key_values(e.attributes))
                for e in r.events],
        flags=(1 if r.sampled else 0) | 0x100 | (0x200 if r.parent_is_remote else 0),
    )
    if r.parent_span_id is not None:
        out.parent_span_id = r.parent_span_id.to_bytes(8, "big")
    if r.error:
        out.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=_text(r.status_description or "")))
    return out


def encode(batch: Sequence[SpanRecord]) -> bytes:
    """The serialised ``ExportTraceServiceRequest``: spans grouped by resource, then scope."""
    groups: dict[int, tuple[SpanRecord, dict[str, list[Span]]]] = {}
    for r in batch:
        entry = groups.setdefault(id(r.resource), (r, {}))
        entry[1].setdefault(r.scope_name, []).append(span(r))
    request = ExportTraceServiceRequest()
    for first, scopes in groups.values():
        attrs = dict(first.resource)
        attrs.setdefault("service.name", first.service_name)
        request.resource_spans.append(ResourceSpans(
            resource=Resource(attributes=key_values(attrs)),
            scope_spans=[ScopeSpans(scope=InstrumentationScope(name=_text(scope)), spans=spans)
                         for scope, spans in scopes.items()],
        ))
    data: bytes = request.SerializeToString()
    return data

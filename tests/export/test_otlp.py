"""OTLP export to a real receiver (Jaeger v2, started by the test bed), after masking.

The same spans go to Zipkin and over OTLP; both are read back: same trace and span
ids, parents and attributes, and no card number or e-mail in what the OTLP receiver
holds. A dead OTLP endpoint fills only its own queue and counts its drops.
"""

from __future__ import annotations

import json
import random

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.otlp import OtlpExporter, OtlpSettings
from testbed.base import free_port
from tests.support import jaeger, zipkin
from tests.support.apm_intake import span_record

CARD = "4111 1111 1111 1111"
EMAIL = "buyer7@example.com"


def _make_trace() -> str:
    tracer = otel_trace.get_tracer("otlp-test")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as server:
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT,
                                          attributes={"card_number": CARD, "note": f"mail {EMAIL}",
                                                      "commerce.amount": "19.90", "commerce.items": 3}) as child:
            child.add_event("commerce.payment.failed", {"commerce.failure.reason": "card_declined", "email": EMAIL})
        return format(server.get_span_context().trace_id, "032x")


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_reach_the_otlp_receiver_masked_with_the_zipkin_ids(
        protocol: str, zipkin_url: str, otlp_http_endpoint: str, otlp_grpc_endpoint: str, otlp_query_url: str) -> None:
    service = zipkin.unique_service("otlp")
    endpoint = otlp_grpc_endpoint if protocol == "grpc" else otlp_http_endpoint
    with zipkin.installed(zipkin_url, service, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                          OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_EXPORTER_OTLP_COMPRESSION="gzip") as runtime:
        assert [e.name for e in runtime.exporters] == ["zipkin", "otlp"]
        trace_id = _make_trace()
        assert runtime.flush()
        assert runtime.pipeline.stats()["otlp"]["exported"] == 2

    in_zipkin = zipkin.read_trace(zipkin_url, trace_id, 2)
    in_otlp = jaeger.trace(otlp_query_url, trace_id, lambda spans: len(spans) >= 2)
    assert {s["id"] for s in in_zipkin} == {s["spanID"] for s in in_otlp}
    by_id = {s["spanID"]: s for s in in_otlp}
    for span in in_zipkin:
        mirror = by_id[span["id"]]
        assert mirror["traceID"] == trace_id and mirror["operationName"].lower() == span["name"]
        parents = [ref["spanID"] for ref in mirror.get("references", []) if ref["refType"] == "CHILD_OF"]
        assert parents == ([span["parentId"]] if "parentId" in span else [])
    (charge,) = [s for s in in_otlp if s["operationName"] == "charge card"]
    attrs = jaeger.tags(charge)
    assert attrs["commerce.amount"] == "19.90" and attrs["commerce.items"] == 3
    assert attrs["card_number"] != CARD
    raw = json.dumps(in_otlp)
    assert "1111 1111" not in raw and EMAIL not in raw, "sensitive data reached the OTLP receiver"
    assert "card_declined" in raw  # the event arrived, masked only where it had to be


def test_a_dead_otlp_endpoint_drops_and_counts_only_its_own_spans(zipkin_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with zipkin.installed(zipkin_url, zipkin.unique_service("otlp-dead"), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{dead}/v1/traces",
                          OTEL_EXPORTER_OTLP_TIMEOUT="300") as runtime:
        otlp = runtime.exporters[1]
        assert isinstance(otlp, OtlpExporter) and otlp.settings.endpoint == f"{dead}/v1/traces"
        trace_id = _make_trace()
        runtime.flush()
        counts = runtime.pipeline.stats()
        assert counts["zipkin"]["exported"] == 2 and counts["zipkin"]["dropped"] == 0
        assert counts["otlp"]["exported"] == 0 and counts["otlp"]["failed"] == 2
    assert stats.get("export.otlp.dropped") == 2 and stats.get("export.otlp.failed") == 1
    assert len(zipkin.read_trace(zipkin_url, trace_id, 2)) == 2


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_public_fallbacks_deliver_the_same_bytes(protocol: str, monkeypatch: pytest.MonkeyPatch,
                                                  otlp_http_endpoint: str, otlp_grpc_endpoint: str,
                                                  otlp_query_url: str) -> None:
    """Outside the checked version range of OpenTelemetry's exporters, our bytes go out
    through the standard library (HTTP) or a raw gRPC call, and arrive all the same."""
    from commerce_observe.agent._compat import otlp_exporters
    from commerce_observe.agent._compat.versions import Range

    for name in ("HTTP", "GRPC"):
        monkeypatch.setattr(otlp_exporters, name, Range(getattr(otlp_exporters, name).distribution, (0, 1), (0, 2)))
    endpoint = otlp_grpc_endpoint if protocol == "grpc" else f"{otlp_http_endpoint}/v1/traces"
    exporter = OtlpExporter(OtlpSettings(endpoint, protocol=protocol, compression="gzip"))
    assert type(exporter._sender).__name__ in ("_UrllibSender", "_RawGrpcSender")
    record = span_record(trace_id=random.getrandbits(128) | 1, span_id=random.getrandbits(64) | 1)
    try:
        assert exporter.export([record])
    finally:
        exporter.shutdown()
    (span,) = jaeger.trace(otlp_query_url, record.trace_id_hex, lambda spans: len(spans) >= 1)
    assert span["spanID"] == record.span_id_hex

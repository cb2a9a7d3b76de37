"""OTLP export over TLS to a real receiver: the test bed's Jaeger with TLS on its OTLP
receivers (certificate from the test bed's own CA, ``testbed/jaeger.py``).

The CA comes from ``OTEL_EXPORTER_OTLP_CERTIFICATE`` or its ``_TRACES_`` twin, the
client certificate and key (mutual TLS, on the receiver that requires them) from
``OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE``/``_CLIENT_KEY``; the spans are read
back from the receiver with the ids they were made with. A CA that did not sign the
receiver's certificate drops the spans, counted, with one warning that says so, and
never raises into the application.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind

import commerce_observe
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.runtime import Runtime
from testbed.tls import make_pki
from tests.support import jaeger
from tests.support.zipkin import unique_service


def _install(**env: str) -> Runtime:
    commerce_observe.shutdown()
    runtime = commerce_observe.install(env={"OTEL_SERVICE_NAME": unique_service("otlp-tls"), "OTEL_BSP_SCHEDULE_DELAY": "100",
                                            "COMMERCE_OBSERVE_STRICT": "true", **env})
    assert runtime is not None and [e.name for e in runtime.exporters] == ["otlp"]
    return runtime


def _make_trace() -> tuple[str, set[str]]:
    tracer = otel_trace.get_tracer("otlp-tls-test")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as server:
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as child:
            child.set_attribute("commerce.amount", "19.90")
    ids = {format(s.get_span_context().span_id, "016x") for s in (server, child)}
    return format(server.get_span_context().trace_id, "032x"), ids


@pytest.mark.parametrize(("protocol", "mutual", "prefix"), [
    ("http/protobuf", False, "OTEL_EXPORTER_OTLP_"),
    ("grpc", False, "OTEL_EXPORTER_OTLP_TRACES_"),
    ("http/protobuf", True, "OTEL_EXPORTER_OTLP_TRACES_"),
    ("grpc", True, "OTEL_EXPORTER_OTLP_"),
])
def test_spans_reach_the_tls_receiver_with_their_ids(protocol: str, mutual: bool, prefix: str,
                                                      otlp_tls: dict[str, str]) -> None:
    endpoint = otlp_tls[f"{'mtls_' if mutual else ''}{'grpc' if protocol == 'grpc' else 'http'}_endpoint"]
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
           f"{prefix}CERTIFICATE": otlp_tls["ca_file"]}
    if mutual:
        env |= {f"{prefix}CLIENT_CERTIFICATE": otlp_tls["client_cert"], f"{prefix}CLIENT_KEY": otlp_tls["client_key"]}
    runtime = _install(**env)
    try:
        trace_id, span_ids = _make_trace()
        assert runtime.flush()
        assert runtime.pipeline.stats()["otlp"]["exported"] == 2
    finally:
        commerce_observe.shutdown()
    spans = jaeger.trace(otlp_tls["query_url"], trace_id, lambda found: len(found) >= 2)
    assert {s["spanID"] for s in spans} == span_ids and {s["traceID"] for s in spans} == {trace_id}


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA made now: valid, but not the one that signed the receiver's certificate."""
    return make_pki(tmp_path_factory.mktemp("other-ca")).ca


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_wrong_ca_drops_and_counts_the_spans_with_one_clear_line(
        protocol: str, otlp_tls: dict[str, str], other_ca: Path, caplog: pytest.LogCaptureFixture) -> None:
    endpoint = otlp_tls["grpc_endpoint" if protocol == "grpc" else "http_endpoint"]
    runtime = _install(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                       OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=str(other_ca), OTEL_EXPORTER_OTLP_TIMEOUT="1500")
    caplog.set_level(logging.DEBUG)
    try:
        _make_trace()  # the application goes on: nothing raised at it
        runtime.flush()
        counts = runtime.pipeline.stats()["otlp"]
    finally:
        commerce_observe.shutdown()
    assert counts["exported"] == 0 and counts["failed"] == 2
    assert stats.get("export.otlp.dropped") == 2 and stats.get("export.otlp.failed") == 1
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, [r.getMessage() for r in said]
    line = said[0].getMessage()
    assert line.startswith("otlp exporter gave up on a batch of 2 spans: sending to ")
    assert "TLS certificate verification failed" in line and str(other_ca) in line

"""OTEL_PROPAGATORS limits what is written; every format is still read."""

from opentelemetry import propagate, trace

from commerce_observe.agent.propagation import KafkaHeaders, extract, inject
from commerce_observe.testing import capture


def _written(env: dict[str, str]) -> tuple[set[str], set[str]]:
    with capture(env=env):
        with trace.get_tracer("t").start_as_current_span("send"):
            http: dict[str, str] = {}
            propagate.inject(http)
            kafka = KafkaHeaders(None)
            inject(kafka)
    return set(http), {name for name, _ in kafka.headers}


def test_default_writes_every_format() -> None:
    http, kafka = _written({})
    assert {"traceparent", "b3", "x-b3-traceid", "elastic-apm-traceparent"} <= {h.lower() for h in http}
    assert {"traceparent", "b3", "elasticapmtraceparent"} <= kafka


def test_tracecontext_only_writes_only_traceparent_and_still_reads_b3() -> None:
    http, kafka = _written({"OTEL_PROPAGATORS": "tracecontext"})
    assert {h.lower() for h in http} == {"traceparent"}
    assert kafka == {"traceparent"}
    with capture(env={"OTEL_PROPAGATORS": "tracecontext"}):
        ctx = extract(KafkaHeaders([("b3", b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")]))
        assert trace.get_current_span(ctx).get_span_context().trace_id == 0x80F198EE56343BA864FE8B2A57D3EFF7


def test_b3_and_elastic_and_shutdown_restores_all() -> None:
    http, kafka = _written({"OTEL_PROPAGATORS": "b3,elastic"})
    assert {h.lower() for h in http} == {"b3", "elastic-apm-traceparent"}
    assert kafka == {"b3", "elasticapmtraceparent"}
    _, after = _written({})
    assert "traceparent" in after

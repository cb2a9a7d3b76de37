"""W3C baggage rides along over HTTP and Kafka headers when ``baggage`` is allowed."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, propagate, trace

from commerce_observe.agent import current
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.producer import begin_publish, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders, extract
from commerce_observe.testing import capture


class _Client:
    """Stands for a producer instance (endpoints are kept per client object)."""


def _with_baggage() -> object:
    ctx = baggage.set_baggage("tenant", "shop 7", baggage.set_baggage("cart", "c-42"))
    return context.attach(ctx)


@pytest.mark.parametrize("propagators", [None, "tracecontext,baggage"])
def test_http_headers_carry_baggage_both_ways(propagators: str | None) -> None:
    with capture(env={} if propagators is None else {"OTEL_PROPAGATORS": propagators}):
        token = _with_baggage()
        try:
            with trace.get_tracer("t").start_as_current_span("call"):
                headers: dict[str, str] = {}
                propagate.inject(headers)
        finally:
            context.detach(token)  # type: ignore[arg-type]
        assert headers["baggage"].startswith("cart=c-42,tenant=shop")
        received = propagate.extract(headers)
        assert baggage.get_all(received) == {"cart": "c-42", "tenant": "shop 7"}
        assert trace.get_current_span(received).get_span_context().is_valid


@pytest.mark.parametrize("app_headers", [None, [("app", b"kept")]], ids=["fast path", "through inject"])
def test_kafka_headers_carry_baggage(app_headers: list[tuple[str, bytes]] | None) -> None:
    with capture(env={"OTEL_PROPAGATORS": "tracecontext,baggage"}):
        token = _with_baggage()
        try:
            carrier = KafkaHeaders(None if app_headers is None else list(app_headers))
            publication = begin_publish(endpoint_for(current.state(), _Client(), sc.KAFKA, "test", "127.0.0.1:9092"), "orders",
                                        carrier, Format.W3C)
            assert publication is not None
            publication.acked(0, 1)
        finally:
            context.detach(token)  # type: ignore[arg-type]
        written = dict(carrier.headers or ())
        assert written["baggage"].startswith(b"cart=c-42,tenant=shop")
        received = extract(KafkaHeaders(list(carrier.headers or ())))
        assert baggage.get_all(received) == {"cart": "c-42", "tenant": "shop 7"}


def test_without_baggage_in_the_setting_it_is_neither_written_nor_read() -> None:
    with capture(env={"OTEL_PROPAGATORS": "tracecontext"}):
        token = _with_baggage()
        try:
            with trace.get_tracer("t").start_as_current_span("call"):
                headers: dict[str, str] = {}
                propagate.inject(headers)
        finally:
            context.detach(token)  # type: ignore[arg-type]
        assert "baggage" not in headers
        assert baggage.get_all(propagate.extract({"baggage": "cart=c-1"})) == {}

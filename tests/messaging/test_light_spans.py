"""Message spans take the light road only where nothing can tell the difference.

No broker: the shared producer/consumer functions are driven directly, so these
tests pin the span object itself (type, sampling, API behaviour) and compare what
the exporters receive from a light span and from an SDK span for the same message.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from commerce_observe.agent._lightspan import LightSpan
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.record import SpanRecord
from commerce_observe.agent import current
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.consumer import begin_delivery
from commerce_observe.agent.messaging.producer import begin_publish, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders
from commerce_observe.testing import Capture, capture

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC_BINARY
#: Values an application may pass that the SDK does not keep as given.
ODD_VALUES: dict[str, Any] = {"odd.mapping": {"nested": object()}, "odd.none": None, "odd.mixed": [1, "a"],
                              "odd.object": object()}


class _Client:
    """Stands for a producer instance (endpoints are kept per client object)."""


def _state() -> Any:
    """The installed agent's state, as the client wrappers are handed it."""
    return current.state()


def _publish(topic: str = "orders") -> tuple[Any, list[tuple[str, bytes]]]:
    carrier = KafkaHeaders(None)
    publication = begin_publish(endpoint_for(_state(), _Client(), sc.KAFKA, "test", "127.0.0.1:9092"), topic, carrier,
                                FORMATS, key=b"k1")
    assert publication is not None
    return publication, carrier.headers  # type: ignore[return-value]


def _deliver(headers: list[tuple[str, bytes]], record: object) -> Any:
    delivery = begin_delivery(_state(), record, sc.KAFKA, "orders", KafkaHeaders(headers), partition=0, offset=7,
                              key=b"k1", group="g1", server=("127.0.0.1", 9092))
    assert delivery is not None
    return delivery


class _Seen(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def _shape(record: SpanRecord) -> tuple[Any, ...]:
    return (record.name, record.kind, dict(record.attributes), record.error, record.status_description,
            record.service_name, record.scope_name, record.parent_is_remote, record.is_entry)


def test_message_spans_are_light_and_export_like_sdk_spans(obs: Capture) -> None:
    publication, headers = _publish()
    assert type(publication.span) is LightSpan
    publication.acked(3, 42)
    delivery = _deliver(headers, object())
    assert type(delivery.span) is LightSpan
    delivery.finish()
    light = {r.kind: r for r in obs.spans()}

    # A second processor on the provider: every span must reach it, so the SDK road is taken.
    seen = _Seen()
    obs.runtime.tracer_provider.add_span_processor(seen)
    obs.exporter.clear()
    publication, headers = _publish()
    assert not isinstance(publication.span, LightSpan)
    publication.acked(3, 42)
    delivery = _deliver(headers, object())
    assert not isinstance(delivery.span, LightSpan)
    delivery.finish()
    sdk = {r.kind: r for r in obs.spans()}
    assert len(seen.ended) == 2

    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        a, b = _shape(light[kind]), _shape(sdk[kind])
        # ids, times and the per-message values differ; everything else is equal
        varying = {sc.MESSAGE_ID, sc.SEQUENCE, sc.LATENCY_MS, sc.RECEIVE_LATENCY_MS, sc.CE_EVENT_SOURCE}
        assert {k: v for k, v in a[2].items() if k not in varying} == {k: v for k, v in b[2].items() if k not in varying}
        assert a[:2] + a[3:] == b[:2] + b[3:]
        assert set(a[2]) == set(b[2])
    consumer, producer = light[SpanKind.CONSUMER], light[SpanKind.PRODUCER]
    assert consumer.trace_id == producer.trace_id and consumer.parent_span_id == producer.span_id
    assert producer.attributes[sc.KAFKA_OFFSET] == 42 and producer.attributes[sc.PARTITION] == "3"


def test_light_span_api_matches_the_sdk_contract(obs: Capture) -> None:
    publication, headers = _publish()
    delivery = _deliver(headers, object())
    span = delivery.span
    assert isinstance(span, LightSpan) and span.is_recording()
    token = trace.use_span(span, end_on_exit=False)
    with token:
        assert trace.get_current_span() is span
        span.set_attribute("order.note", "ok")
        for key, value in ODD_VALUES.items():  # cleaned exactly as the SDK cleans them
            span.set_attribute(key, value)
        span.set_attributes({"order.items": [1, 2, 3]})
        span.add_event("stock.checked", {"sku": "A-1"})
        span.update_name("process orders (retry)")
        child = trace.get_tracer("app").start_span("reserve stock")  # an SDK span under a light one
        child.end()
        try:
            raise ValueError("card 4111 1111 1111 1111 declined")
        except ValueError as exc:
            span.record_exception(exc)
        span.set_status(StatusCode.ERROR, "declined")
    delivery.finish()
    ended_twice = stats.snapshot().get("span.ended_twice", 0)
    span.end()
    assert stats.snapshot().get("span.ended_twice", 0) == ended_twice + 1
    span.set_attribute("after.end", "ignored")
    assert not span.is_recording()

    records = {r.name: r for r in obs.spans()}
    consumer = records["process orders (retry)"]
    assert consumer.attributes["order.note"] == "ok"
    assert "after.end" not in consumer.attributes
    reference = TracerProvider().get_tracer("reference").start_span("reference")
    for key, value in ODD_VALUES.items():
        reference.set_attribute(key, value)
    assert {k: consumer.attributes.get(k) for k in ODD_VALUES} == dict(reference.attributes or {})
    assert tuple(consumer.attributes["order.items"]) == (1, 2, 3)  # type: ignore[arg-type]
    assert [e.name for e in consumer.events] == ["stock.checked", "exception"]
    stacktrace = str(consumer.events[1].attributes["exception.stacktrace"])
    assert "4111 1111 1111 1111" not in stacktrace and "[CARD ****1111]" in stacktrace  # masked on export
    assert consumer.error and consumer.status_description == "declined"
    child_record = records["reserve stock"]
    assert child_record.parent_span_id == consumer.span_id and child_record.trace_id == consumer.trace_id
    assert child_record.transaction_id == consumer.span_id  # the consumer span is its Elastic transaction
    publication.acked(0, 1)


def test_finished_parts_of_a_light_span_are_what_the_public_path_reads(obs: Capture) -> None:
    """The converter reads a light span through its slots (``LightSpan.finished_parts``):
    the same tuple as the general path through the span's public properties, with the
    attributes a copy the span no longer shares."""
    from commerce_observe.agent._compat import otel_sdk

    publication, headers = _publish()
    delivery = _deliver(headers, object())
    span = delivery.span
    span.add_event("stock.checked", {"sku": "A-1"})
    span.set_status(StatusCode.ERROR, "declined")
    delivery.finish()
    fast = span.finished_parts()
    public = otel_sdk.finished_parts(span)  # a LightSpan is not a ReadableSpan: the property road
    assert fast == public
    assert fast[6] is not span.attributes and fast[6] == dict(span.attributes)
    assert fast[7] == [("stock.checked", fast[7][0][1], {"sku": "A-1"})]
    publication.acked(0, 1)


def test_ok_status_is_final(obs: Capture) -> None:
    publication, _ = _publish()
    span = publication.span
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR, "too late")
    publication.acked(0, 1)
    assert not obs.span("send orders").error


@pytest.mark.parametrize("sampler, sampled", [("always_off", False), ("parentbased_always_off", False),
                                              ("traceidratio", False), ("always_on", True)])
def test_configured_sampler_decides(sampler: str, sampled: bool) -> None:
    env = {"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0"}
    with capture(env=env) as cap:
        publication, headers = _publish()
        assert publication.span.is_recording() is sampled
        assert publication.span.get_span_context().trace_flags.sampled is sampled
        publication.acked(0, 1)
        assert len(cap.spans()) == (1 if sampled else 0)


def test_unsampled_parent_is_followed_by_the_default_sampler(obs: Capture) -> None:
    headers = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    delivery = _deliver(headers, object())
    assert not delivery.span.is_recording()
    assert delivery.span.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    delivery.finish()
    assert obs.spans() == []


def test_wrapper_attributes_arrive_whether_clean_or_validated(obs: Capture) -> None:
    headers = _publish()[1]
    delivery = begin_delivery(_state(), object(), sc.RABBITMQ, "orders", KafkaHeaders(headers), group="q1",
                              attributes={"messaging.rabbitmq.destination.routing_key": "paid", "delivery.tag": 3,
                                          "odd.list": [1, 2]})
    assert delivery is not None
    delivery.finish()
    record = obs.span("process orders")
    assert record.attributes["messaging.rabbitmq.destination.routing_key"] == "paid"
    assert record.attributes["delivery.tag"] == 3 and tuple(record.attributes["odd.list"]) == (1, 2)  # type: ignore[arg-type]

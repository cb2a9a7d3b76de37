"""A domain event published with no span active is one trace, read back from the REAL
Zipkin: the event's own span, the PRODUCER span of its message and the CONSUMER span
downstream share its trace id, so the trace an audit finding links to shows the event.

The same run checks that a LATE finding and the CONSUMER span measure one latency:
its ``latency_ms`` equals the span's ``commerce.message.latency_ms``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import kafka
import pytest

import commerce_observe
from commerce_observe.agent.audit import attach
from commerce_observe.agent.audit.sinks import MemorySink
from commerce_observe.agent.messaging import publishing
from commerce_observe.monitor.audit.auditor import Auditor
from commerce_observe.monitor.audit.findings import Kind
from opentelemetry import trace

from tests.support import kafka_clients
from tests.support.zipkin import installed, read_trace, unique_service

pytestmark = [pytest.mark.kafka, pytest.mark.zipkin]


def test_event_producer_and_consumer_are_one_zipkin_trace(kafka_bootstrap: str, zipkin_url: str,
                                                          unique_topic: str) -> None:
    service = unique_service("checkout")
    sink = MemorySink()
    with installed(zipkin_url, service, COMMERCE_OBSERVE_AUDIT_SINK="none") as runtime:
        attachment = attach(runtime, sink=sink, flush_interval_s=0.1)
        assert not trace.get_current_span().get_span_context().is_valid  # no span active
        event = commerce_observe.order_created("ord-" + uuid.uuid4().hex[:8], amount=Decimal("24.90"), currency="EUR")
        assert event is not None and event.trace_id and event.trace_flags is not None and event.trace_flags & 1  # sampled
        producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
        with publishing(event):
            producer.send(unique_topic, b"{}").get(timeout=30)
        producer.close()
        assert not trace.get_current_span().get_span_context().is_valid  # the block left nothing behind
        consumer = kafka_clients.consumer(kafka_bootstrap, unique_topic, group_id="billing-" + uuid.uuid4().hex[:6],
                                          auto_offset_reset="earliest", consumer_timeout_ms=20000)
        assert next(iter(consumer)).topic == unique_topic
        consumer.close()  # the record is handled
        assert attachment.writer is not None and attachment.writer.flush(30)
        attachment()

    spans = read_trace(zipkin_url, event.trace_id, 3)
    by_kind = {str(s.get("kind", "LOCAL")): s for s in spans}
    assert sorted(by_kind) == ["CONSUMER", "LOCAL", "PRODUCER"], spans
    own, send, process = by_kind["LOCAL"], by_kind["PRODUCER"], by_kind["CONSUMER"]
    assert own["name"] == "commerce order.created" and own["id"] == event.span_id and "parentId" not in own
    assert send["parentId"] == own["id"] and process["parentId"] == send["id"]
    assert send["tags"]["commerce.order.id"] == event.order_id  # type: ignore[index]
    assert process["tags"]["messaging.message.id"] == event.event_id  # type: ignore[index]

    auditor = Auditor(grace_s=1.0, sla_s=0.0)  # every handling is LATE: the finding to compare
    auditor.feed(sink.lines)
    (finding,) = auditor.finish(auditor.watermark + 10**12)
    assert (finding.kind, finding.event_id, finding.order_id) == (Kind.LATE, event.event_id, event.order_id)
    assert finding.trace_id == event.trace_id and finding.span_id == process["id"]
    span_latency = float(process["tags"]["commerce.message.latency_ms"])  # type: ignore[index]
    assert finding.latency_ms == pytest.approx(span_latency, rel=1e-9, abs=1e-6)
    assert float(process["tags"]["commerce.message.receive_latency_ms"]) <= span_latency  # type: ignore[index]


def _send_span(event: object) -> trace.Span:
    from commerce_observe.agent import current
    from commerce_observe.agent.messaging.producer import Endpoint, begin_publish
    from commerce_observe.agent.propagation import Format, KafkaHeaders

    with publishing(event):  # type: ignore[arg-type]
        publication = begin_publish(Endpoint(current.state(), "kafka", "test", None),  # type: ignore[arg-type]
                                     "orders", KafkaHeaders(None), Format.W3C)
    assert publication is not None
    publication.acked(0, 1)
    return publication.span


@pytest.mark.parametrize("sampler", ["always_on", "always_off"])
def test_the_message_keeps_the_events_sampling_decision(sampler: str) -> None:
    from commerce_observe.testing import capture

    with capture(env={"OTEL_TRACES_SAMPLER": sampler}):
        event = commerce_observe.order_created("ord-1")
        assert event is not None and event.trace_id
        ctx = _send_span(event).get_span_context()
        assert format(ctx.trace_id, "032x") == event.trace_id
        assert ctx.trace_flags.sampled is (sampler == "always_on")


def test_an_event_with_ids_that_are_not_a_trace_starts_none() -> None:
    from dataclasses import replace

    from commerce_observe._internal.selfstats import stats
    from commerce_observe.testing import capture

    with capture():
        event = commerce_observe.order_created("ord-1")
        assert event is not None
        ctx = _send_span(replace(event, trace_id="not-hex")).get_span_context()
        assert ctx.is_valid and format(ctx.trace_id, "032x") != event.trace_id  # a trace of its own
        assert stats.get("events.invalid_trace_ids") == 1

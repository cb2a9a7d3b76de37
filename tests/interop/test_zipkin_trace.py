"""A produce and its consume, read back from the real Zipkin server as one trace."""

from __future__ import annotations

import uuid

import kafka
import pytest

from commerce_observe.testing import capture

from tests.support import kafka_clients
from tests.support.zipkin import read_trace

pytestmark = [pytest.mark.kafka, pytest.mark.zipkin]


def test_produce_and_consume_are_one_zipkin_trace(kafka_bootstrap: str, zipkin_url: str, unique_topic: str) -> None:
    service = "orders-" + uuid.uuid4().hex[:6]
    env = {"OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{zipkin_url}/api/v2/spans", "OTEL_SERVICE_NAME": service}
    with capture(env=env) as cap:
        producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
        producer.send(unique_topic, b"order").get(timeout=30)
        producer.close()
        consumer = kafka_clients.consumer(kafka_bootstrap, unique_topic, group_id="g-" + service,
                                       auto_offset_reset="earliest", consumer_timeout_ms=30000)
        for _ in consumer:
            break
        consumer.close()
        send = cap.span(f"send {unique_topic}")
    spans = read_trace(zipkin_url, f"{send.trace_id:032x}", 2)
    by_kind = {str(s["kind"]): s for s in spans}
    assert set(by_kind) == {"PRODUCER", "CONSUMER"}
    producer_span, consumer_span = by_kind["PRODUCER"], by_kind["CONSUMER"]
    assert consumer_span["parentId"] == producer_span["id"] == f"{send.span_id:016x}"
    assert producer_span["localEndpoint"]["serviceName"] == service  # type: ignore[index]
    tags = consumer_span["tags"]
    assert tags["messaging.destination.name"] == unique_topic  # type: ignore[index]
    assert tags["messaging.message.id"] == producer_span["tags"]["messaging.message.id"]  # type: ignore[index]

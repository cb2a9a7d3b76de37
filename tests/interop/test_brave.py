"""Trace joins across languages: Brave (Java, B3 single header) and us, on the real broker,
plus literal header vectors from the published B3, W3C and Elastic formats."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import confluent_kafka
import kafka
import pytest
from opentelemetry.trace import SpanKind

from commerce_observe.testing import Capture, capture
from tests.support import kafka_clients

pytestmark = pytest.mark.kafka


def _consume_one(bootstrap: str, topic: str) -> Any:
    consumer = kafka_clients.consumer(bootstrap, topic, group_id="g-" + uuid.uuid4().hex[:8],
                                   auto_offset_reset="earliest", consumer_timeout_ms=30000)
    for record in consumer:
        consumer.close()
        return record
    raise AssertionError("no record")


def _raw_send(bootstrap: str, topic: str, headers: list[tuple[str, bytes]]) -> None:
    """Exactly these headers: the C class itself, which instrumentation never touches."""
    producer = confluent_kafka.cimpl.Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"vector", headers=headers)
    assert producer.flush(30) == 0


@pytest.fixture
def obs() -> Any:
    with capture() as cap:
        yield cap


def test_brave_producer_joins_our_consumer(obs: Capture, brave_peer: Callable[..., list[str]],
                                           kafka_bootstrap: str, unique_topic: str) -> None:
    _, trace_hex, span_hex, b3 = brave_peer("produce", kafka_bootstrap, unique_topic)
    assert b3 == f"{trace_hex}-{span_hex}-1", "Brave wrote a b3 single header"
    record = _consume_one(kafka_bootstrap, unique_topic)
    assert {k for k, _ in record.headers} == {"b3"}, "Brave sends only b3"
    process = obs.span(f"process {unique_topic}")
    assert process.trace_id == int(trace_hex, 16) and process.parent_span_id == int(span_hex, 16)
    assert process.parent_is_remote


def test_our_producer_joins_brave_consumer(obs: Capture, brave_peer: Callable[..., list[str]],
                                           kafka_bootstrap: str, unique_topic: str) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(unique_topic, b"from-python").get(timeout=30)
    producer.close()
    send = obs.span(f"send {unique_topic}")
    word, trace_hex, parent_hex, _ = brave_peer("consume", kafka_bootstrap, unique_topic, "60000")
    assert word == "JOINED"
    assert (trace_hex, parent_hex) == (f"{send.trace_id:032x}", f"{send.span_id:016x}")


# Published examples: B3 (openzipkin/b3-propagation README), W3C Trace Context §3.2,
# Elastic binary = version 0, field 0 trace id, field 1 span id, field 2 flags.
VECTORS = [
    ("b3", [("b3", b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")],
     0x80F198EE56343BA864FE8B2A57D3EFF7, 0xE457B5A2E4D86BD1),
    ("b3-64bit", [("b3", b"a3ce929d0e0e4736-00f067aa0ba902b7-1")], 0xA3CE929D0E0E4736, 0x00F067AA0BA902B7),
    ("traceparent", [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
     0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331),
    ("b3-multi", [("X-B3-TraceId", b"463ac35c9f6413ad48485a3953bb6124"), ("X-B3-SpanId", b"a2fb4a1d1a96d312"),
                  ("X-B3-Sampled", b"1")], 0x463AC35C9F6413AD48485A3953BB6124, 0xA2FB4A1D1A96D312),
    ("elastic-binary", [("elasticapmtraceparent", b"\x00\x00" + bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
                         + b"\x01" + bytes.fromhex("b7ad6b7169203331") + b"\x02\x01")],
     0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331),
]


@pytest.mark.parametrize("name,headers,trace_id,span_id", VECTORS, ids=[v[0] for v in VECTORS])
def test_literal_vectors_join(obs: Capture, kafka_bootstrap: str, unique_topic: str, name: str,
                              headers: list[tuple[str, bytes]], trace_id: int, span_id: int) -> None:
    _raw_send(kafka_bootstrap, unique_topic, headers)
    _consume_one(kafka_bootstrap, unique_topic)
    process = obs.span(f"process {unique_topic}")
    assert process.kind is SpanKind.CONSUMER
    assert (process.trace_id, process.parent_span_id) == (trace_id, span_id)

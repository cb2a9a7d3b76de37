"""confluent-kafka against the real broker: delivery-callback acks, poll/consume, one trace."""

from __future__ import annotations

import uuid
from typing import Any

import confluent_kafka
import pytest
import wrapt
from opentelemetry.trace import SpanKind

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.messaging import Stage, handling
from commerce_observe.testing import Capture

from tests.support.waiting import wait_for
from .headers import as_dict, assert_cloudevents, assert_trace_headers

pytestmark = pytest.mark.kafka


def _consumer(bootstrap: str, topic: str) -> Any:
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + uuid.uuid4().hex[:8],
                                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    return c


def _poll_n(consumer: Any, n: int) -> list[Any]:
    out: list[Any] = []

    def probe() -> bool:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            out.append(msg)
        return len(out) >= n

    wait_for(f"{n} messages", probe, timeout=30)
    return out


def test_produce_headers_ack_and_user_callback(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap, "client.id": "pay-svc"})
    assert isinstance(producer, confluent_kafka.Producer)
    delivered: list[tuple[Any, int]] = []
    app_headers = {"app": b"kept"}
    # one partition, so the consumer sees them in send order
    producer.produce(unique_topic, b"a", headers=app_headers, partition=0,
                     on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
    producer.produce(unique_topic, value=b"b", key=b"k", partition=0)
    assert producer.flush(30) == 0
    assert app_headers == {"app": b"kept"}
    assert [err for err, _ in delivered] == [None]

    consumer = _consumer(kafka_bootstrap, unique_topic)
    first, second = _poll_n(consumer, 2)
    consumer.close()
    sends = sorted((s for s in obs.spans() if s.kind is SpanKind.PRODUCER), key=lambda s: s.start_ns)
    assert sends[0].attributes["messaging.kafka.offset"] == delivered[0][1]
    assert sends[1].attributes["messaging.kafka.message.key"] == "k"
    h1, h2 = as_dict(first.headers()), as_dict(second.headers())
    assert h1["app"] == b"kept"
    assert_trace_headers(h1, sends[0], binary_elastic=True)
    assert_cloudevents(h1, sequence=1)
    assert_cloudevents(h2, sequence=2)
    processes = sorted((s for s in obs.spans() if s.kind is SpanKind.CONSUMER), key=lambda s: s.start_ns)
    assert [(p.trace_id, p.parent_span_id) for p in processes] == [(s.trace_id, s.span_id) for s in sends]
    assert processes[0].attributes["messaging.consumer.group.name"].startswith("g-")
    assert [f.stage for f in obs.facts].count(Stage.HANDLED) == 2


def test_config_level_on_delivery_still_called(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    seen: list[Any] = []
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap,
                                         "on_delivery": lambda err, msg: seen.append(err)})
    producer.produce(unique_topic, b"x")
    producer.flush(30)
    assert seen == [None]
    assert [f.stage for f in obs.facts] == [Stage.PUBLISHED, Stage.ACKED]


def test_consume_batch_handling_and_broken_headers(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(unique_topic, b"x", headers=[("traceparent", b"00-zz"), ("b3", b"\xff"),
                                                  ("elasticapmtraceparent", b"\x01")])
    producer.flush(30)
    consumer = _consumer(kafka_bootstrap, unique_topic)
    before = stats.get("messaging.consume_broken_context")
    msgs: list[Any] = []
    wait_for("batch", lambda: msgs.extend(m for m in consumer.consume(10, 0.5) if m.error() is None) or msgs)
    with pytest.raises(RuntimeError):
        with handling(msgs[0]):
            raise RuntimeError("handler failed")
    consumer.close()
    assert stats.get("messaging.consume_broken_context") == before + 1
    process = obs.span(f"process {unique_topic}")
    assert process.error and process.parent_span_id is None
    assert [f.stage for f in obs.facts if f.stage.role == "consumer"] == [Stage.HANDLE_FAILED]


def test_send_failure_reported_through_the_callback(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    errors: list[Any] = []
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap, "message.timeout.ms": 1000})
    producer.produce(unique_topic, b"x", partition=42, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert errors and errors[0] is not None
    assert obs.span(f"send {unique_topic}").error
    assert [f.stage for f in obs.facts] == [Stage.PUBLISHED, Stage.SEND_FAILED]


def test_uninstrument_restores_the_classes() -> None:
    from commerce_observe.agent.instrumentation.confluent_kafka import INSTRUMENTOR

    instrumentor = INSTRUMENTOR()
    instrumentor.disable()
    producer_cls, consumer_cls = confluent_kafka.Producer, confluent_kafka.Consumer
    instrumentor.enable()
    assert isinstance(vars(confluent_kafka)["Producer"], wrapt.FunctionWrapper)
    instrumentor.disable()
    assert confluent_kafka.Producer is producer_cls and confluent_kafka.Consumer is consumer_cls
    assert producer_cls is confluent_kafka.cimpl.Producer

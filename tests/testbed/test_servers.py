"""The test bed's servers really work: one round trip through each, and a restart in place.

These are the canaries: when one fails, the tests that use that server cannot be
trusted either, and the server's log is in the test bed's logs/ folder.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from types import ModuleType
from typing import Any

import pytest

from tests.support import kafka_clients
from tests.support import zipkin as z
from tests.support.waiting import wait_for


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, None


def test_strict_mode_is_on() -> None:
    assert os.environ["COMMERCE_OBSERVE_STRICT"] == "true"


@pytest.mark.zipkin
def test_zipkin_stores_a_span_and_returns_it_by_trace_id(zipkin_url: str) -> None:
    trace_id = uuid.uuid4().hex
    span = {"traceId": trace_id, "id": trace_id[:16], "name": "testbed-check", "kind": "SERVER",
            "timestamp": int(time.time() * 1_000_000), "duration": 1500,
            "localEndpoint": {"serviceName": "testbed"}, "tags": {"order.id": "o-1"}}
    status, _ = _http("POST", f"{zipkin_url}/api/v2/spans", [span])
    assert status == 202

    trace = z.read_trace(zipkin_url, trace_id, 1, timeout=20)
    assert [(s["id"], s["name"], s["tags"]) for s in trace] == [(trace_id[:16], "testbed-check", {"order.id": "o-1"})]


@pytest.mark.kafka
def test_kafka_produces_and_consumes_one_message(kafka_bootstrap: str, unique_topic: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        meta = producer.send(unique_topic, key=b"k", value=b"order-1", headers=[("h", b"v")]).get(timeout=30)
    finally:
        producer.close()
    consumer = kafka_clients.consumer(kafka_bootstrap, unique_topic, group_id=f"g-{unique_topic}",
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert (record.partition, record.offset) == (meta.partition, meta.offset)
    assert (record.key, record.value, list(record.headers)) == (b"k", b"order-1", [("h", b"v")])


@pytest.mark.elasticsearch
def test_elasticsearch_indexes_and_finds_one_document(elasticsearch_url: str) -> None:
    index = f"testbed-{uuid.uuid4().hex[:12]}"
    status, _ = _http("PUT", f"{elasticsearch_url}/{index}/_doc/1?refresh=true", {"order_id": "o-42", "amount": 12.5})
    assert status == 201
    status, found = _http("POST", f"{elasticsearch_url}/{index}/_search",
                          {"query": {"term": {"order_id.keyword": "o-42"}}})
    assert status == 200
    assert [h["_source"] for h in found["hits"]["hits"]] == [{"order_id": "o-42", "amount": 12.5}]
    _http("DELETE", f"{elasticsearch_url}/{index}")


@pytest.mark.rabbitmq
def test_rabbitmq_publishes_and_gets_one_message(rabbitmq_url: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.basic_publish("", queue, b"payment-1", pika.BasicProperties(headers={"h": "v"}))

        def get_one() -> Any:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            return (props, body) if method else None

        properties, body = wait_for("the message", get_one, interval=0.2)
    finally:
        connection.close()
    assert (body, properties.headers) == (b"payment-1", {"h": "v"})


@pytest.mark.zipkin
def test_zipkin_restarts_in_place(zipkin_url: str, testbed_control: ModuleType) -> None:
    pid_before = testbed_control.server("zipkin").pid
    seconds = testbed_control.restart("zipkin")
    assert testbed_control.server("zipkin").pid != pid_before
    assert testbed_control.endpoint("zipkin") == zipkin_url
    status, health = _http("GET", f"{zipkin_url}/health")
    assert (status, health["status"]) == (200, "UP"), f"not healthy {seconds:.1f}s after restart"


@pytest.mark.kafka
def test_kafka_restarts_in_place_and_keeps_its_messages(kafka_bootstrap: str, unique_topic: str,
                                                        testbed_control: ModuleType) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        producer.send(unique_topic, b"before-restart").get(timeout=30)
    finally:
        producer.close()
    testbed_control.restart("kafka")
    assert testbed_control.endpoint("kafka") == kafka_bootstrap
    consumer = kafka_clients.consumer(kafka_bootstrap, unique_topic, group_id=f"g-{unique_topic}",
                             auto_offset_reset="earliest", consumer_timeout_ms=30000)
    try:
        assert next(iter(consumer)).value == b"before-restart"
    finally:
        consumer.close()

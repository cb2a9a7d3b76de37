"""kafka-python against the real broker: headers, one trace, acks, handled-means-finished."""

from __future__ import annotations

import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
import wrapt
from opentelemetry.trace import SpanKind

import commerce_observe
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.messaging import Stage, handling, publishing
from commerce_observe.testing import Capture

from tests.support import kafka_clients

from .headers import as_dict, assert_cloudevents, assert_trace_headers, text

import kafka

pytestmark = pytest.mark.kafka


def _producer(bootstrap: str) -> Any:
    return kafka.KafkaProducer(bootstrap_servers=bootstrap, client_id="orders-svc", linger_ms=0)


def _consumer(bootstrap: str, *topics: str, **extra: Any) -> Any:
    return kafka_clients.consumer(bootstrap, *topics, group_id="g-" + uuid.uuid4().hex[:8],
                               auto_offset_reset="earliest", consumer_timeout_ms=15000, **extra)


def _drain(consumer: Any, n: int) -> list[Any]:
    out: list[Any] = []
    for record in consumer:
        out.append(record)
        if len(out) == n:
            break
    assert len(out) == n, f"got {len(out)} of {n} records"
    return out


def test_headers_all_formats_cloudevents_sequence_and_app_headers(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    other = unique_topic + "-b"
    producer = _producer(kafka_bootstrap)
    app_headers = [("app", b"kept"), ("ce_id", b"app-chosen-id")]
    # one partition, so offsets order the records as they were sent
    producer.send(unique_topic, b"1", headers=app_headers, partition=0).get(timeout=30)
    producer.send(unique_topic, b"2", partition=0).get(timeout=30)
    producer.send(other, b"3").get(timeout=30)
    producer.close()
    assert app_headers == [("app", b"kept"), ("ce_id", b"app-chosen-id")], "caller's list mutated"

    consumer = _consumer(kafka_bootstrap, unique_topic, other)
    records = sorted(_drain(consumer, 3), key=lambda r: (r.topic, r.offset))
    consumer.close()
    sends = sorted((s for s in obs.spans() if s.kind is SpanKind.PRODUCER), key=lambda s: s.start_ns)
    assert [s.name for s in sends] == [f"send {unique_topic}"] * 2 + [f"send {other}"]

    first, second, third = (as_dict(r.headers) for r in records)
    assert first["app"] == b"kept" and list(first).count("ce_id") == 1
    assert text(first["ce_id"]) == "app-chosen-id"
    assert sends[0].attributes["messaging.message.id"] == "app-chosen-id"
    assert_cloudevents(first, sequence=1, event_id="app-chosen-id")
    assert_cloudevents(second, sequence=2)
    assert_cloudevents(third, sequence=1)
    assert first["ce_source"] == second["ce_source"] == third["ce_source"]
    for headers, span in zip((first, second, third), sends):
        assert_trace_headers(headers, span, binary_elastic=True)
        assert "X-B3-TraceId" not in headers


def test_produce_consume_one_trace_with_partition_offset_and_handled_after_handler(
        obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    producer = _producer(kafka_bootstrap)
    tracer = commerce_observe.current().tracer_provider.get_tracer("test")  # type: ignore[union-attr]
    with tracer.start_as_current_span("checkout"):
        metadata = producer.send(unique_topic, b"order", key=b"ord-1").get(timeout=30)
    producer.close()

    consumer = _consumer(kafka_bootstrap, unique_topic)
    seen_during_handler: list[list[Stage]] = []
    for record in consumer:
        seen_during_handler.append([f.stage for f in obs.facts if f.stage.role == "consumer"])
        with tracer.start_as_current_span("handle"):
            pass
        break
    consumer.close()
    assert seen_during_handler == [[]], "HANDLED reported before the handler finished"

    send = obs.span(f"send {unique_topic}")
    process = obs.span(f"process {unique_topic}")
    handle = obs.span("handle")
    checkout = obs.span("checkout")
    assert send.parent_span_id == checkout.span_id
    assert process.trace_id == send.trace_id and process.parent_span_id == send.span_id
    assert handle.parent_span_id == process.span_id
    assert send.attributes["messaging.destination.partition.id"] == str(metadata.partition)
    assert send.attributes["messaging.kafka.offset"] == metadata.offset
    assert send.attributes["messaging.kafka.message.key"] == "ord-1"
    assert send.attributes["server.address"] == "127.0.0.1"
    a = process.attributes
    assert a["messaging.system"] == "kafka" and a["messaging.operation.type"] == "process"
    assert a["messaging.kafka.offset"] == metadata.offset
    assert a["messaging.consumer.group.name"].startswith("g-")
    assert a["commerce.message.sequence"] == 1
    # publication to received <= publication to handled, which is what the HANDLED record says
    assert 0 <= a["commerce.message.receive_latency_ms"] <= a["commerce.message.latency_ms"]
    handled = obs.facts[2]
    assert handled.published_ns is not None
    assert a["commerce.message.latency_ms"] == (handled.time_ns - handled.published_ns) / 1e6
    assert a["messaging.message.id"] == send.attributes["messaging.message.id"]
    stages = [f.stage for f in obs.facts]
    assert stages == [Stage.PUBLISHED, Stage.ACKED, Stage.HANDLED]
    assert obs.facts[1].offset == metadata.offset and obs.facts[2].published_ns is not None


def test_publishing_ties_the_domain_event(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    producer = _producer(kafka_bootstrap)
    event = commerce_observe.order_created("ord-42", amount=Decimal("12.50"), currency="EUR")
    assert event is not None
    with publishing(event):
        producer.send(unique_topic, b"{}").get(timeout=30)
    producer.close()
    send = obs.span(f"send {unique_topic}")
    assert send.attributes["messaging.message.id"] == event.event_id
    assert send.attributes["commerce.order.id"] == "ord-42"
    assert send.attributes["cloudevents.event_type"] == "commerce.order.created"
    published = obs.facts[0]
    assert (published.event_id, published.event_type, published.order_id) == (event.event_id, "order.created", "ord-42")


def test_poll_batch_with_explicit_handling(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    producer = _producer(kafka_bootstrap)
    for i in range(3):
        producer.send(unique_topic, str(i).encode()).get(timeout=30)
    producer.close()
    consumer = _consumer(kafka_bootstrap, unique_topic)
    records: list[Any] = []
    while len(records) < 3:
        for batch in consumer.poll(timeout_ms=2000).values():
            records.extend(batch)
    assert not [f for f in obs.facts if f.stage.role == "consumer"]
    with handling(records[0]):
        pass
    with pytest.raises(KeyError):
        with handling(records[1]):
            raise KeyError("boom")
    consumer.poll(timeout_ms=100)  # record 2 was handed out, never handled explicitly: settled now
    consumer.close()
    outcome = {f.offset: f.stage for f in obs.facts if f.stage.role == "consumer"}
    assert outcome == {records[0].offset: Stage.HANDLED, records[1].offset: Stage.HANDLE_FAILED,
                       records[2].offset: Stage.HANDLED}
    failed = [s for s in obs.spans() if s.name == f"process {unique_topic}" and s.error]
    assert len(failed) == 1 and "boom" in (failed[0].status_description or "")


def test_broken_headers_still_get_a_span_in_a_new_trace(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    raw = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
    garbage = [("traceparent", b"\xff\xfe-not-a-context"), ("b3", b"zz-zz-1"), ("elasticapmtraceparent", b"\x00\x01\x02")]
    raw.send(unique_topic, b"x", headers=garbage).get(timeout=30)
    raw.close()
    before = stats.get("messaging.consume_broken_context")
    consumer = _consumer(kafka_bootstrap, unique_topic)
    _drain(consumer, 1)
    consumer.close()
    sends = [s for s in obs.spans() if s.kind is SpanKind.PRODUCER]
    process = obs.span(f"process {unique_topic}")
    assert process.parent_span_id is None or process.trace_id not in {s.trace_id for s in sends}
    assert stats.get("messaging.consume_broken_context") == before + 1
    assert [f.stage for f in obs.facts if f.stage.role == "consumer"] == [Stage.HANDLED]


def test_library_error_reraised_unchanged_and_send_failed(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=1024)
    with pytest.raises(kafka.errors.MessageSizeTooLargeError):
        producer.send(unique_topic, b"x" * 4096)
    producer.close()
    send = obs.span(f"send {unique_topic}")
    assert send.error
    assert [f.stage for f in obs.facts] == [Stage.PUBLISHED, Stage.SEND_FAILED]


IMPORT_ORDER = """
import sys, os
os.environ["COMMERCE_OBSERVE_STRICT"] = "true"
{devplugin}
from commerce_observe.testing import capture
if {before}:
    import kafka
with capture() as cap:
    import kafka
    p = kafka.KafkaProducer(bootstrap_servers=sys.argv[1])
    p.send(sys.argv[2], b"x").get(timeout=30)
    p.close()
    assert [s.name for s in cap.spans()] == ["send " + sys.argv[2]], cap.spans()
print("ok")
"""


@pytest.mark.parametrize("before", [True, False])
def test_import_order(kafka_bootstrap: str, unique_topic: str, before: bool, request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin("devfixtures")
    dev = "import devfixtures" if plugin is not None else ""
    code = IMPORT_ORDER.format(before=before, devplugin=dev)
    out = subprocess.run([sys.executable, "-c", code, kafka_bootstrap, unique_topic],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_uninstrument_restores_exact_originals() -> None:
    from commerce_observe.agent.instrumentation.kafka_python import INSTRUMENTOR

    originals = {name: vars(kafka.KafkaConsumer)[name] for name in ("__iter__", "__next__", "poll", "close")}
    send = vars(kafka.KafkaProducer)["send"]
    instrumentor = INSTRUMENTOR()
    instrumentor.disable()
    instrumentor.enable()
    assert isinstance(vars(kafka.KafkaProducer)["send"], wrapt.FunctionWrapper)
    assert all(isinstance(vars(kafka.KafkaConsumer)[name], wrapt.FunctionWrapper) for name in originals)
    instrumentor.disable()
    assert vars(kafka.KafkaProducer)["send"] is send
    for name, original in originals.items():
        assert vars(kafka.KafkaConsumer)[name] is original

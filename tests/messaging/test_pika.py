"""pika against the real RabbitMQ broker: text headers, confirms, callback, basic_get and the consume() generator."""

from __future__ import annotations

import uuid
from typing import Any

import pika
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import commerce_observe
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.messaging import Stage, handling
from commerce_observe.testing import Capture

from tests.support.waiting import wait_for
from .headers import assert_cloudevents, assert_trace_headers

pytestmark = pytest.mark.rabbitmq


def _channel(url: str) -> tuple[Any, Any, str]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    queue = "q-" + uuid.uuid4().hex[:10]
    channel.queue_declare(queue, auto_delete=True)
    return connection, channel, queue


def test_publish_consume_callback_one_trace(obs: Capture, rabbitmq_url: str) -> None:
    connection, channel, queue = _channel(rabbitmq_url)
    channel.confirm_delivery()
    props = pika.BasicProperties(headers={"app": "kept"}, content_type="application/json")
    channel.basic_publish("", queue, b"1", props)
    channel.basic_publish("", queue, b"2", properties=props)
    assert props.headers == {"app": "kept"}, "caller's properties mutated"

    got: list[tuple[Any, dict[str, Any], int]] = []
    facts_at_handler: list[int] = []

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        facts_at_handler.append(sum(f.stage is Stage.HANDLED for f in obs.facts))
        got.append((method, dict(properties.headers), trace.get_current_span().get_span_context().span_id))
        ch.basic_ack(method.delivery_tag)
        if len(got) == 2:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    channel.start_consuming()
    connection.close()

    assert facts_at_handler == [0, 1]
    sends = sorted((s for s in obs.spans() if s.kind is SpanKind.PRODUCER), key=lambda s: s.start_ns)
    processes = sorted((s for s in obs.spans() if s.kind is SpanKind.CONSUMER), key=lambda s: s.start_ns)
    assert [s.name for s in sends] == ["publish amq.default"] * 2
    assert [(p.trace_id, p.parent_span_id) for p in processes] == [(s.trace_id, s.span_id) for s in sends]
    assert [span_id for _, _, span_id in got] == [p.span_id for p in processes]
    headers = got[0][1]
    assert headers["app"] == "kept"
    assert_trace_headers(headers, sends[0], binary_elastic=False)
    assert_cloudevents(headers, sequence=1)
    assert_cloudevents(got[1][1], sequence=2)
    a = processes[0].attributes
    assert a["messaging.system"] == "rabbitmq" and a["messaging.rabbitmq.destination.routing_key"] == queue
    assert a["messaging.destination.subscription.name"] == queue
    assert [f.stage for f in obs.facts].count(Stage.ACKED) == 2
    assert {f.destination for f in obs.facts} == {f"/{queue}"}


def test_callback_raising_reports_handle_failed_and_basic_get(obs: Capture, rabbitmq_url: str) -> None:
    connection, channel, queue = _channel(rabbitmq_url)
    channel.basic_publish("", queue, b"x", pika.BasicProperties(headers={"traceparent": "garbage", "b3": "\x00", "elastic-apm-traceparent": "junk"}))
    channel.basic_publish("", queue, b"y")
    before = stats.get("messaging.consume_broken_context")
    got = wait_for("message", lambda: (lambda r: r if r[0] is not None else None)(channel.basic_get(queue, auto_ack=True)))
    assert got[2] == b"x"
    assert stats.get("messaging.consume_broken_context") == before + 1

    def on_message(ch: Any, m: Any, p: Any, b: bytes) -> None:
        raise LookupError("unknown order")

    channel.basic_consume(queue, on_message, auto_ack=True)
    with pytest.raises(LookupError):
        channel.start_consuming()
    connection.close()
    consumer_stages = [f.stage for f in obs.facts if f.stage.role == "consumer"]
    assert consumer_stages == [Stage.HANDLED, Stage.HANDLE_FAILED]  # get settled by the next request
    failed = [s for s in obs.spans() if s.kind is SpanKind.CONSUMER and s.error]
    assert len(failed) == 1 and "unknown order" in (failed[0].status_description or "")


def _publish_three(channel: Any, queue: str) -> None:
    channel.confirm_delivery()
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", queue, body)


def _handled(obs: Capture) -> int:
    return sum(f.stage is Stage.HANDLED for f in obs.facts)


def _current_span_id() -> int:
    return trace.get_current_span().get_span_context().span_id


def test_consume_generator_span_per_message_handled_on_next_request_and_cancel(
        obs: Capture, rabbitmq_url: str) -> None:
    connection, channel, queue = _channel(rabbitmq_url)
    _publish_three(channel, queue)
    tracer = commerce_observe.current().tracer_provider.get_tracer("test")  # type: ignore[union-attr]

    seen: list[tuple[bytes, int, int]] = []  # body, HANDLED facts so far, current span id
    for method, _properties, body in channel.consume(queue, inactivity_timeout=10):
        assert method is not None, "inactivity timeout before the three messages arrived"
        seen.append((body, _handled(obs), _current_span_id()))
        with tracer.start_as_current_span(f"handle {body.decode()}"):
            pass
        if len(seen) == 3:
            last_tag = method.delivery_tag
            break  # the last one is not acked in the loop: only cancel() settles it
        channel.basic_ack(method.delivery_tag)
        assert _handled(obs) == len(seen), "an ack is the application's word: the message is handled"
    assert _current_span_id() == 0, "the message's span stayed current after the loop"
    assert _handled(obs) == 2, "the last message was settled before the application was done with it"
    channel.cancel()
    assert _handled(obs) == 3, "cancel() did not settle the last message"
    channel.basic_ack(last_tag)
    assert _handled(obs) == 3, "an ack of a settled message reported it again"
    connection.close()

    assert [(body, handled) for body, handled, _ in seen] == [(b"1", 0), (b"2", 1), (b"3", 2)]
    sends = sorted((s for s in obs.spans() if s.kind is SpanKind.PRODUCER), key=lambda s: s.start_ns)
    processes = sorted((s for s in obs.spans() if s.kind is SpanKind.CONSUMER), key=lambda s: s.start_ns)
    assert len(sends) == len(processes) == 3
    assert [(p.trace_id, p.parent_span_id) for p in processes] == [(s.trace_id, s.span_id) for s in sends]
    assert len({p.trace_id for p in processes}) == 3, "one trace per message"
    assert [span_id for _, _, span_id in seen] == [p.span_id for p in processes]
    for body, process in zip((b"1", b"2", b"3"), processes):
        assert obs.span(f"handle {body.decode()}").parent_span_id == process.span_id
    a = processes[0].attributes
    assert a["messaging.consumer.group.name"] == queue
    assert a["messaging.destination.subscription.name"] == queue
    handled = [f for f in obs.facts if f.stage is Stage.HANDLED]
    assert [f.sequence for f in handled] == [1, 2, 3]
    assert {f.consumer_group for f in handled} == {queue}


def test_consume_generator_inactivity_timeout_settles_and_traces_nothing(
        obs: Capture, rabbitmq_url: str) -> None:
    connection, channel, queue = _channel(rabbitmq_url)
    _publish_three(channel, queue)

    items: list[tuple[bool, int, int]] = []  # a message?, HANDLED facts so far, current span id
    for method, _properties, _body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.5):
        items.append((method is not None, _handled(obs), _current_span_id()))
        if method is None:
            break
    connection.close()

    assert [(is_message, handled) for is_message, handled, _ in items] == [
        (True, 0), (True, 1), (True, 2), (False, 3)]
    assert items[-1][2] == 0, "a span is current on the inactivity item"
    assert len([s for s in obs.spans() if s.kind is SpanKind.CONSUMER]) == 3
    assert [f.stage for f in obs.facts if f.stage.role == "consumer"] == [Stage.HANDLED] * 3


def test_consume_generator_body_raising_inside_handling_reports_handle_failed(
        obs: Capture, rabbitmq_url: str) -> None:
    connection, channel, queue = _channel(rabbitmq_url)
    channel.basic_publish("", queue, b"bad")

    with pytest.raises(LookupError):
        for method, _properties, _body in channel.consume(queue, auto_ack=True, inactivity_timeout=10):
            assert method is not None
            with handling(method):
                raise LookupError("unknown order")
    assert _current_span_id() == 0, "the message's span stayed current after the exception"
    channel.cancel()  # the explicit outcome is not overwritten by the implicit one
    connection.close()

    assert [f.stage for f in obs.facts if f.stage.role == "consumer"] == [Stage.HANDLE_FAILED]
    (process,) = [s for s in obs.spans() if s.kind is SpanKind.CONSUMER]
    assert process.error and "unknown order" in (process.status_description or "")

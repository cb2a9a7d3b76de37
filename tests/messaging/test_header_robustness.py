"""Whatever a peer puts in a message's headers, the consumer keeps its span and its
HANDLED record; what it cannot use is counted.

Property-based: hypothesis draws header lists (the ``ce_*`` and trace headers, with
bytes, text, Unicode digits, invalid UTF-8, huge values and values nested thousands
deep) and each client's own record type carries them into the instrumentation's
record path, in strict mode, so any internal error fails the test. The pika path
first round-trips the headers through pika's AMQP codec, as the broker delivers
them. The same values then go through the real brokers once per client
(``test_nasty_headers_on_the_real_*``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.instrumentation import aiokafka as co_aiokafka
from commerce_observe.agent.instrumentation import confluent_kafka as co_confluent
from commerce_observe.agent.instrumentation import kafka_python as co_kafka_python
from commerce_observe.agent.instrumentation import pika as co_pika
from commerce_observe.agent.messaging import Stage
from commerce_observe.agent.messaging import cloudevents as ce
from commerce_observe.agent.messaging.consumer import Delivery, Tracker
from commerce_observe.testing import Capture

NAMES = ["ce_id", "ce_type", "ce_source", "ce_time", "ce_sequence", "ce_specversion", "traceparent", "tracestate",
         "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "elastic-apm-traceparent", "elasticapmtraceparent"]
NASTY_TEXT = ["١٢٣", "²", "0" * 25, "1" * 20, "00000000000000000042", "2026-01-01T00:00:00.000000Z",
              "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "", " ", "\t\n", "\ud800",
              "00-" + "0" * 32 + "-" + "0" * 16 + "-01"]
NASTY_BYTES = [b"\xff\xfe", b"\xc0\x80", "١٢٣".encode(), b"\x00" * 29, b"9" * 300]

# Values too deep for hypothesis to print are drawn as tags and built in the test.
Nested = tuple[str, int]


def _kafka_value() -> st.SearchStrategy[Any]:
    return st.one_of(st.binary(max_size=40), st.sampled_from(NASTY_BYTES),
                     st.sampled_from(NASTY_TEXT).map(lambda t: t.encode("utf-8", "surrogatepass")),
                     st.just(("huge", 200_000)), st.none())


def _amqp_value() -> st.SearchStrategy[Any]:
    scalar = st.one_of(st.text(max_size=40), st.binary(max_size=40), st.sampled_from(NASTY_TEXT[:-3]),
                       st.sampled_from(NASTY_BYTES), st.integers(-2**63, 2**63 - 1), st.booleans(), st.none())
    return st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=5), scalar, max_size=3),
                     st.tuples(st.just("nested"), st.integers(1, 900)), st.just(("huge", 200_000)))


def _build(value: Any) -> Any:
    if isinstance(value, tuple) and value and value[0] == "huge":
        return b"7" * value[1]
    if isinstance(value, tuple) and value and value[0] == "nested":
        built: Any = "x"
        for _ in range(value[1]):
            built = [built]
        return built
    return value


def _usable(value: Any) -> str | None:
    """What a ``ce_*`` header's value reads as: the oracle for the event id."""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str) and len(value) <= ce.MAX_TEXT:
        return value
    return None


def _check(cap: Capture, headers: list[tuple[str, Any]], open_record: Callable[[], Delivery | None]) -> None:
    """One record through a client path: a live span, then exactly one HANDLED fact for it."""
    cap.facts.clear()
    before = stats.get(ce.UNUSABLE)
    delivery = open_record()  # strict mode: any error of ours raises here
    assert delivery is not None and delivery.span.is_recording()
    delivery.finish()
    assert not delivery.span.is_recording()
    (fact,) = cap.facts
    assert fact.stage is Stage.HANDLED
    assert fact.span_id == format(delivery.span.get_span_context().span_id, "016x")
    last = {name: value for name, value in headers}  # the carriers' rule: the last one wins
    expected_id = _usable(last["ce_id"]) if "ce_id" in last else None
    assert fact.event_id == expected_id
    assert fact.sequence is None or 0 <= fact.sequence < 10**20
    assert fact.published_ns is None or fact.published_ns >= ce_time_floor()
    unusable_id = "ce_id" in last and last["ce_id"] is not None and expected_id is None
    if unusable_id:
        assert stats.get(ce.UNUSABLE) > before


def ce_time_floor() -> int:
    return 946_684_800 * 1_000_000_000


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
KAFKA_HEADERS = st.lists(st.tuples(st.sampled_from(NAMES), _kafka_value()), max_size=6)


@SETTINGS
@given(drawn=KAFKA_HEADERS)
def test_kafka_python_record_path(obs: Capture, drawn: list[tuple[str, Any]]) -> None:
    from kafka.consumer.fetcher import ConsumerRecord

    headers = [(k, _build(v)) for k, v in drawn]
    record = ConsumerRecord("t", 0, None, 7, 1_750_000_000_000, 0, b"k", b"v", headers, None, 1, 1, -1)
    _check(obs, headers, lambda: co_kafka_python._open(obs.runtime.state, object(), record, Tracker()))


@SETTINGS
@given(drawn=KAFKA_HEADERS)
def test_confluent_kafka_record_path(obs: Capture, drawn: list[tuple[str, Any]]) -> None:
    import confluent_kafka

    headers = [(k, _build(v)) for k, v in drawn]
    msg = confluent_kafka.Message(topic="t", partition=0, offset=7, key=b"k", value=b"v", headers=headers or None,
                                  timestamp=(1, 1_750_000_000_000))
    tracker = Tracker()
    tracker.info = ("g", (None, None))
    _check(obs, headers, lambda: co_confluent._open(obs.runtime.state, object(), msg, tracker))


@SETTINGS
@given(drawn=KAFKA_HEADERS)
def test_aiokafka_record_path(obs: Capture, drawn: list[tuple[str, Any]]) -> None:
    from aiokafka.structs import ConsumerRecord

    headers = [(k, _build(v)) for k, v in drawn]
    record = ConsumerRecord("t", 0, 7, 1_750_000_000_000, 0, b"k", b"v", None, 1, 1, headers)
    _check(obs, headers, lambda: co_aiokafka._open(obs.runtime.state, object(), record, Tracker()))


@SETTINGS
@given(drawn=st.lists(st.tuples(st.sampled_from(NAMES), _amqp_value()), max_size=6))
def test_pika_delivery_path(obs: Capture, drawn: list[tuple[str, Any]]) -> None:
    """Headers as the broker hands them to pika: encoded and decoded by pika's own codec."""
    import pika
    from pika.exceptions import UnsupportedAMQPFieldException

    sent = {k: _build(v) for k, v in drawn}
    try:
        wire = b"".join(pika.BasicProperties(headers=sent).encode())
    except (UnsupportedAMQPFieldException, RecursionError, OverflowError, ValueError, TypeError):
        return  # pika itself refuses to send it: nothing reaches a consumer
    props = pika.BasicProperties()
    props.decode(wire)
    method = pika.spec.Basic.Deliver("ctag", 1, False, "orders", "created")
    received = list((props.headers or {}).items())
    _check(obs, received, lambda: co_pika._open(obs.runtime.state, object(), method, props, "billing"))


def test_unicode_digits_in_ce_sequence_are_counted_not_parsed(obs: Capture) -> None:
    """``'١٢٣'.isdigit()`` is true and ``int('١٢٣')`` is 123; ``int('²')`` raises."""
    from kafka.consumer.fetcher import ConsumerRecord

    for value in ("١٢٣", "²"):
        obs.facts.clear()
        headers = [("ce_id", b"e-1"), ("ce_sequence", value.encode())]
        record = ConsumerRecord("t", 0, None, 7, 1_750_000_000_000, 0, b"k", b"v", headers, None, 1, 1, -1)
        before = stats.get(ce.UNUSABLE)
        delivery = co_kafka_python._open(obs.runtime.state, object(), record, Tracker())
        assert delivery is not None
        delivery.finish()
        (fact,) = obs.facts
        assert fact.event_id == "e-1" and fact.sequence is None
        assert stats.get(ce.UNUSABLE) == before + 1


@pytest.mark.parametrize("value", [b"\xff" * 3, b"x" * (ce.MAX_TEXT + 1)])
def test_unusable_ce_id_reads_as_absent(obs: Capture, value: bytes) -> None:
    from kafka.consumer.fetcher import ConsumerRecord

    record = ConsumerRecord("t", 2, None, 9, 1_750_000_000_000, 0, b"k", b"v", [("ce_id", value)], None, 1, 1, -1)
    delivery = co_kafka_python._open(obs.runtime.state, object(), record, Tracker())
    assert delivery is not None
    delivery.finish()
    (fact,) = obs.facts
    assert fact.event_id is None and (fact.partition, fact.offset) == (2, 9)
    assert stats.get(ce.UNUSABLE) == 1


# --- the same kinds of values through the real brokers ------------------------------------

def _kafka_sets(ok_id: str) -> list[list[tuple[str, bytes]]]:
    return [
        [("ce_id", b"\xff\xfe"), ("ce_sequence", "١٢٣".encode())],
        [("ce_id", b"x" * 100_000), ("ce_type", b"t" * 50_000)],
        [("ce_sequence", "²".encode()), ("ce_time", b"yesterday"), ("traceparent", b"\xff" * 70_000)],
        [("ce_id", ok_id.encode()), ("ce_time", b"0001-01-01T00:00:00+14:00"), ("tracestate", b"a=b," * 20_000)],
    ]


def _assert_consumed(cap: Capture, group: str, ok_id: str, n: int) -> None:
    handled = [f for f in cap.facts if f.consumer_group == group and f.stage is Stage.HANDLED]
    assert len(handled) == n, f"{len(handled)} HANDLED records of {n} messages"
    assert sorted(f.event_id or "" for f in handled) == sorted([ok_id] + [""] * (n - 1))
    assert all(f.sequence is None and (f.published_ns or 0) > 946_684_800 * 10**9 for f in handled)
    spans = [s for s in cap.spans() if s.attributes.get("messaging.consumer.group.name") == group]
    assert sorted(format(s.span_id, "016x") for s in spans) == sorted(f.span_id for f in handled)
    assert stats.get(ce.UNUSABLE) >= 5


@pytest.mark.kafka
def test_nasty_headers_on_the_real_kafka_with_every_client(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    import asyncio
    import itertools
    import uuid

    import aiokafka
    import confluent_kafka
    from confluent_kafka import cimpl

    from tests.support import kafka_clients

    ok_id = "ok-" + uuid.uuid4().hex
    sets = _kafka_sets(ok_id)
    raw = cimpl.Producer({"bootstrap.servers": kafka_bootstrap})  # not instrumented: a foreign producer
    for headers in sets:
        raw.produce(unique_topic, b"{}", headers=headers)
    assert raw.flush(30) == 0

    group = "kp-" + uuid.uuid4().hex[:6]
    consumer = kafka_clients.consumer(kafka_bootstrap, unique_topic, group_id=group, auto_offset_reset="earliest",
                                      consumer_timeout_ms=20000)
    assert len(list(itertools.islice(consumer, len(sets)))) == len(sets)
    consumer.close()
    _assert_consumed(obs, group, ok_id, len(sets))

    group = "ck-" + uuid.uuid4().hex[:6]
    cc = confluent_kafka.Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group,
                                   "auto.offset.reset": "earliest"})
    cc.subscribe([unique_topic])
    got = 0
    for _ in range(200):
        msg = cc.poll(0.2)
        if msg is not None and msg.error() is None:
            got += 1
            if got == len(sets):
                break
    cc.close()
    _assert_consumed(obs, group, ok_id, len(sets))

    group = "ak-" + uuid.uuid4().hex[:6]

    async def consume() -> None:
        ac = aiokafka.AIOKafkaConsumer(unique_topic, bootstrap_servers=kafka_bootstrap, group_id=group,
                                       auto_offset_reset="earliest")
        await ac.start()
        try:
            for _ in range(len(sets)):
                await asyncio.wait_for(ac.getone(), 30)
        finally:
            await ac.stop()

    asyncio.run(consume())
    _assert_consumed(obs, group, ok_id, len(sets))


@pytest.mark.rabbitmq
def test_nasty_headers_on_the_real_rabbitmq(rabbitmq_url: str) -> None:
    import uuid

    import pika

    from commerce_observe.testing import capture
    from tests.support.waiting import wait_for

    queue = "q-" + uuid.uuid4().hex[:10]
    ok_id = "ok-" + uuid.uuid4().hex
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    sets: list[dict[str, Any]] = [
        {"ce_id": b"\xff\xfe", "ce_sequence": "١٢٣"},
        {"ce_id": "x" * 100_000, "traceparent": deep},
        {"ce_id": {"nested": [1, 2, {"deeper": deep}]}, "ce_sequence": "²", "ce_time": "yesterday"},
        {"ce_id": ok_id, "ce_time": "0001-01-01T00:00:00+14:00", "b3": deep, "ce_source": 42},
    ]
    raw = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))  # before install: a foreign publisher
    raw_channel = raw.channel()
    raw_channel.queue_declare(queue)
    for headers in sets:
        raw_channel.basic_publish("", queue, b"{}", pika.BasicProperties(headers=headers))
    raw.close()
    with capture() as obs:
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
        channel = connection.channel()
        for _ in sets:
            wait_for("message", lambda: (lambda r: r if r[0] is not None else None)(channel.basic_get(queue, auto_ack=True)))
        channel.queue_delete(queue)
        connection.close()  # settles the last delivery
        _assert_handled_rabbitmq(obs, ok_id, len(sets))


def _assert_handled_rabbitmq(obs: Capture, ok_id: str, n: int) -> None:
    handled = [f for f in obs.facts if f.system == "rabbitmq" and f.stage is Stage.HANDLED]
    assert len(handled) == n
    assert sorted(f.event_id or "" for f in handled) == sorted([ok_id] + [""] * (n - 1))
    assert all(f.sequence is None for f in handled)
    spans = [s for s in obs.spans() if s.attributes.get("messaging.system") == "rabbitmq" and s.kind.name == "CONSUMER"]
    assert sorted(format(s.span_id, "016x") for s in spans) == sorted(f.span_id for f in handled)
    assert stats.get(ce.UNUSABLE) >= 5

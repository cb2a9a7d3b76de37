"""aiokafka against the real broker: awaited-send acks, async for, getmany + handling."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiokafka
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from commerce_observe.agent.messaging import Stage, handling
from commerce_observe.testing import Capture

from .headers import as_dict, assert_cloudevents, assert_trace_headers

pytestmark = pytest.mark.kafka


def _consumer(bootstrap: str, topic: str) -> Any:
    return aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="g-" + uuid.uuid4().hex[:8],
                                     auto_offset_reset="earliest")


def test_send_async_for_one_trace(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    handled_before: list[int] = []

    async def main() -> Any:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, client_id="mail-svc")
        await producer.start()
        try:
            # one partition, so consumption order is send order
            metadata = await producer.send_and_wait(unique_topic, b"1", key=b"ord-7", headers=[("app", b"x")], partition=0)
            await (await producer.send(unique_topic, b"2", partition=0))
        finally:
            await producer.stop()
        consumer = _consumer(kafka_bootstrap, unique_topic)
        await consumer.start()
        got: list[Any] = []
        try:
            async with asyncio.timeout(30):
                async for record in consumer:
                    handled_before.append(sum(f.stage is Stage.HANDLED for f in obs.facts))
                    assert trace.get_current_span().get_span_context().span_id != 0
                    got.append(record)
                    if len(got) == 2:
                        break
        finally:
            await consumer.stop()
        return metadata, got

    metadata, records = asyncio.run(main())
    assert handled_before == [0, 1]
    sends = sorted((s for s in obs.spans() if s.kind is SpanKind.PRODUCER), key=lambda s: s.start_ns)
    processes = sorted((s for s in obs.spans() if s.kind is SpanKind.CONSUMER), key=lambda s: s.start_ns)
    assert sends[0].attributes["messaging.kafka.offset"] == metadata.offset
    assert sends[0].attributes["messaging.destination.partition.id"] == str(metadata.partition)
    assert [(p.trace_id, p.parent_span_id) for p in processes] == [(s.trace_id, s.span_id) for s in sends]
    headers = as_dict(records[0].headers)
    assert headers["app"] == b"x"
    assert_trace_headers(headers, sends[0], binary_elastic=True)
    assert_cloudevents(headers, sequence=1)
    assert_cloudevents(as_dict(records[1].headers), sequence=2)
    assert [f.stage for f in obs.facts].count(Stage.HANDLED) == 2  # second settled by stop()


def test_getmany_with_handling(obs: Capture, kafka_bootstrap: str, unique_topic: str) -> None:
    async def main() -> None:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(unique_topic, b"1")
        await producer.stop()
        consumer = _consumer(kafka_bootstrap, unique_topic)
        await consumer.start()
        records: list[Any] = []
        async with asyncio.timeout(30):
            while not records:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        with pytest.raises(ValueError):
            with handling(records[0]):
                raise ValueError("bad order")
        await consumer.stop()

    asyncio.run(main())
    assert [f.stage for f in obs.facts if f.stage.role == "consumer"] == [Stage.HANDLE_FAILED]
    assert obs.span(f"process {unique_topic}").error


def test_stop_from_another_task_settles_without_a_detach_error(obs: Capture, kafka_bootstrap: str, unique_topic: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A shutdown handler often stops the consumer from a task other than the one that
    iterated: the record is still settled, and no context token is reset in the wrong context."""
    loop = asyncio.new_event_loop()
    try:
        async def produce() -> None:
            producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(unique_topic, b"1")
            finally:
                await producer.stop()

        async def start() -> Any:
            consumer = _consumer(kafka_bootstrap, unique_topic)
            await consumer.start()
            return consumer

        async def one(consumer: Any) -> None:
            async with asyncio.timeout(30):
                async for _ in consumer:
                    break

        loop.run_until_complete(produce())
        consumer = loop.run_until_complete(start())
        loop.run_until_complete(one(consumer))
        assert [f.stage for f in obs.facts].count(Stage.HANDLED) == 0
        with caplog.at_level("ERROR"):
            loop.run_until_complete(consumer.stop())  # a task of its own
    finally:
        loop.close()
    assert [f.stage for f in obs.facts].count(Stage.HANDLED) == 1
    assert not [r for r in caplog.records if "Failed to detach" in r.getMessage()]

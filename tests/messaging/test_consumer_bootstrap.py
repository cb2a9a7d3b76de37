"""A consumer's bootstrap setting is noted for the default audit cluster as given.

No broker: each client wrapper's consumer path is driven with stand-in consumers
and records. The audit trail's default topic lives on the cluster the application
uses (``commerce_observe.agent.messaging.clusters``); it must get the whole setting, as the
producer side notes it, not a host and port rebuilt from the span's first server
(which turned ``[::1]:9092,b:9093`` into the unusable ``::1:9092``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from commerce_observe.agent.instrumentation import aiokafka as aiokafka_wrapper
from commerce_observe.agent.instrumentation import confluent_kafka as confluent_wrapper
from commerce_observe.agent.instrumentation import kafka_python as kafka_python_wrapper
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.consumer import tracker_for
from commerce_observe.testing import Capture, capture

IPV6_AND_MORE = "[::1]:9092,b:9093"
AS_LIST = ["[::1]:9092", "b:9093"]


@pytest.fixture
def obs() -> Iterator[Capture]:
    with capture() as cap:  # a new agent state: no client seen yet
        yield cap


class _Consumer:
    """Stands for a consumer instance (trackers are kept per consumer object, weakly)."""

    def __init__(self, **attributes: Any) -> None:
        vars(self).update(attributes)


def _record(topic: str) -> Any:
    return SimpleNamespace(topic=topic, headers=[], partition=0, offset=1, key=b"k", timestamp=0, timestamp_type=0)


def _server_of_span(obs: Capture, topic: str) -> tuple[object, object]:
    attributes = obs.span(f"process {topic}").attributes or {}
    return attributes.get(sc.SERVER_ADDRESS), attributes.get(sc.SERVER_PORT)


@pytest.mark.parametrize("servers", [IPV6_AND_MORE, AS_LIST])
def test_kafka_python_consumer_notes_its_setting_as_given(obs: Capture, servers: object) -> None:
    consumer = _Consumer(config={"group_id": "g1", "bootstrap_servers": servers})
    record = _record("kp-bootstrap")
    state = obs.runtime.state
    kafka_python_wrapper._next(state, lambda: record, consumer, (), {})
    kafka_python_wrapper._close(state, lambda: None, consumer, (), {})
    assert state.kafka.bootstrap() == IPV6_AND_MORE
    assert _server_of_span(obs, "kp-bootstrap") == ("::1", 9092)  # the span keeps the first server


def test_confluent_kafka_consumer_notes_its_setting_as_given(obs: Capture) -> None:
    msg = SimpleNamespace(topic=lambda: "ck-bootstrap", headers=lambda: None, partition=lambda: 0,
                          offset=lambda: 1, key=lambda: b"k", timestamp=lambda: (0, 0), error=lambda: None)

    class Consumer:
        def __init__(self, conf: dict[str, Any]) -> None:
            pass

        def poll(self, *args: Any) -> Any:
            return msg

        def close(self) -> None:
            pass

    construct = confluent_wrapper._factory(confluent_wrapper._ConsumerMixin)
    consumer = construct(obs.runtime.state, Consumer, None, ({"bootstrap.servers": IPV6_AND_MORE, "group.id": "g1"},),
                         {})
    consumer.poll(1.0)
    consumer.close()
    assert obs.runtime.state.kafka.bootstrap() == IPV6_AND_MORE
    assert _server_of_span(obs, "ck-bootstrap") == ("::1", 9092)


@pytest.mark.parametrize("servers", [IPV6_AND_MORE, AS_LIST])
def test_aiokafka_consumer_notes_its_setting_as_given_and_reads_it_once(obs: Capture, servers: object) -> None:
    consumer = _Consumer(_group_id="g1", _client=SimpleNamespace(_bootstrap_servers=servers))
    record = _record("aio-bootstrap")

    async def getone() -> Any:
        return record

    async def stop() -> None:
        return None

    state = obs.runtime.state

    async def consume() -> None:
        await aiokafka_wrapper._getone(state, getone, consumer, (), {})
        del consumer._client  # read once per consumer: a second record needs no config
        await aiokafka_wrapper._getone(state, getone, consumer, (), {})
        await aiokafka_wrapper._stop(state, stop, consumer, (), {})

    asyncio.run(consume())
    assert state.kafka.bootstrap() == IPV6_AND_MORE
    assert tracker_for(state, consumer).info == ("g1", ("::1", 9092))

"""An in-memory message log for the tour, traced by the same producer and consumer
code the Kafka wrappers use (``agent.messaging``): PRODUCER and CONSUMER spans, trace
headers, event ids and per-producer sequences, and the audit records the auditor
reconciles. It stands in for Kafka only so that the tour needs no server; the tests
run the real clients against a real broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from commerce_observe.agent import current
from commerce_observe.agent.messaging.consumer import begin_delivery
from commerce_observe.agent.messaging.handling import handling
from commerce_observe.agent.messaging.producer import begin_publish, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders
from commerce_observe.agent.state import AgentState

SYSTEM = "kafka"
SERVER = "tour-broker:9092"
FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC


@dataclass
class Message:
    topic: str
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Log:
    """Topics of one partition each, and the committed offset of each consumer group."""

    def __init__(self) -> None:
        self.topics: dict[str, list[Message]] = {}
        self.committed: dict[tuple[str, str], int] = {}
        self._detached = AgentState()  # used only while no agent is installed

    def state(self) -> AgentState:
        """The installed agent's state (the tour installs one), as a client wrapper is handed it."""
        return current.state() or self._detached

    def send(self, topic: str, key: bytes | None, value: bytes) -> Message:
        """Publish one message with trace headers; the broker's ack completes the PRODUCER span."""
        messages = self.topics.setdefault(topic, [])
        message = Message(topic, len(messages), key, value)
        carrier = KafkaHeaders(message.headers)
        publication = begin_publish(endpoint_for(self.state(), self, SYSTEM, SERVER, SERVER), topic, carrier,
                                    FORMATS, key=key)
        message.headers = carrier.headers or []  # the carrier writes into its own copy
        messages.append(message)
        if publication is not None:
            publication.acked(partition=0, offset=message.offset)
        return message

    def poll(self, topic: str, group: str) -> list[Message]:
        return self.topics.get(topic, [])[self.committed.get((group, topic), 0):]

    def commit(self, group: str, message: Message) -> None:
        self.committed[(group, message.topic)] = message.offset + 1


def consume(log: Log, topic: str, group: str, handle: Callable[[Message], None]) -> None:
    """Handle one message inside its CONSUMER span; ``handle`` raising marks it failed."""
    for message in log.poll(topic, group):
        handle_one(message, group, handle)
        log.commit(group, message)


def handle_one(message: Message, group: str, handle: Callable[[Message], None]) -> None:
    """The CONSUMER span is current while ``handle`` runs; it ends HANDLED, or
    HANDLE_FAILED with the exception, which propagates."""
    begin_delivery(current.state() or AgentState(), message, SYSTEM, message.topic, KafkaHeaders(message.headers),
                   partition=0, offset=message.offset, key=message.key, group=group, server=("tour-broker", 9092))
    with handling(message):
        handle(message)

"""Wiring monitoring into an installed runtime: ``attach(runtime, ...) -> detach``.

Two ways for documents to leave the service, chosen by what is configured:

* ``bootstrap`` given: documents go to the Kafka events topic and a separate
  shipper (``commerce-observe ship``) stores them; nothing in the service talks
  to the store;
* otherwise: straight into ``store`` (SQLite file or Elasticsearch) from a
  background batch writer.

Either way the hub listener only builds documents and queues them
(:class:`~commerce_observe.agent.reporting.batcher.BackgroundBatcher`): the
application thread never waits. Handled message facts are sent too (only the
``handled`` stage, which carries the end-to-end latency) when ``facts`` is true
and the audit trail is not already shipping them through Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from commerce_observe.agent.events.model import DomainEvent
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.agent.privacy.records import mask_documents
from commerce_observe.store import documents as d
from commerce_observe.agent.reporting.batcher import BackgroundBatcher
from commerce_observe.agent.reporting.publisher import KafkaEventPublisher
from commerce_observe.store.kafka_io import EVENTS_TOPIC
from commerce_observe.store.store import WriteResult


class DocumentSink(Protocol):
    """What shipping needs of a store: an event store, or the agent's lazily opened one."""

    def write(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult: ...
    def close(self) -> None: ...


class Attachment:
    """The detach callable; ``batcher`` is exposed for flushing in tests and demos."""

    def __init__(self, batcher: BackgroundBatcher, unsubscribe: list[Callable[[], None]],
                 close: Callable[[], None]) -> None:
        self.batcher = batcher
        self._unsubscribe = unsubscribe
        self._close = close

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self.batcher.flush(timeout_s)

    def __call__(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self.batcher.close()
        self._close()


def attach(runtime: Any, *, store: DocumentSink | None = None, bootstrap: str | None = None,
           topic: str = EVENTS_TOPIC, facts: bool = True, service_name: str | None = None,
           max_queue: int = 10_000, batch_size: int = 500) -> Attachment:
    """Subscribe to the runtime's hub and ship its domain events (and handled facts).

    Needs ``store`` or ``bootstrap``; with both, Kafka wins (the shipper owns the store).
    """
    service = service_name or getattr(getattr(runtime, "config", None), "service_name", None)
    sink: Callable[[Sequence[Any]], object]
    if bootstrap:
        from commerce_observe._internal.kafka_security import KafkaSecurity

        config = getattr(runtime, "config", None)
        publisher = KafkaEventPublisher(bootstrap, topic, KafkaSecurity.from_config(config) if config else None)
        sink, close = publisher, publisher.close
    elif store is not None:
        sink, close = store.write, store.close
    else:
        raise ValueError("attach needs a store or Kafka bootstrap servers")

    masker = getattr(runtime, "masker", None)

    def flat(batch: Sequence[Any]) -> object:
        # masked here, on the batcher's thread: an order id may be a phone number
        return sink(mask_documents(masker, [doc for docs in batch for doc in docs]))

    batcher = BackgroundBatcher(flat, name="commerce-monitoring", max_queue=max_queue, batch_size=batch_size)

    def on_event(event: DomainEvent) -> None:
        batcher.offer(d.event_documents(event, service))

    def on_fact(fact: MessageFact) -> None:
        if fact.stage is Stage.HANDLED and fact.event_id:
            batcher.offer([d.message_document(fact, service)])

    hub = runtime.hub
    unsubscribe = [hub.subscribe(DomainEvent, on_event)]
    if facts:
        unsubscribe.append(hub.subscribe(MessageFact, on_fact))
    return Attachment(batcher, unsubscribe, close)

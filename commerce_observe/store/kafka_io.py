"""Kafka on both sides of the store: the shipper stores what services published.

Topics (JSON, one document per message, key = ``event.id``):

* ``commerce-observe.events``: the documents of every recorded domain event
  (order and its lines, payments), published by the agent's
  :class:`commerce_observe.agent.reporting.publisher.KafkaEventPublisher`;
* the audit topic (``commerce-observe.audit``, the audit trail's own
  tab-separated lines), read as message documents for end-to-end latency.

:class:`Shipper` is a plain consumer group: run more instances with the same
``group_id`` to scale out (Kafka spreads the partitions). It stores a polled
batch, and commits the offsets only after the store accepted it, so a crash
replays the batch (at-least-once) and the store's idempotent writes by
``event.id`` make the replay count nothing twice.

Our own clients must not be traced as application messaging (that would audit
the telemetry topic and loop), so when commerce_observe has patched kafka-python
we call the original ``send``/``poll`` it wrapped (``__wrapped__``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from commerce_observe._internal.kafka_security import KafkaSecurity
from commerce_observe._internal.selfstats import logger, stats
from commerce_observe.store import documents as d
from commerce_observe.store.store import EventStore, StoreUnavailable, WriteResult

EVENTS_TOPIC: Final = "commerce-observe.events"
AUDIT_TOPIC: Final = "commerce-observe.audit"
SHIPPER_GROUP: Final = "commerce-observe-shipper"


def original(cls: type, name: str) -> Callable[..., Any]:
    """The unpatched method (guarded: any object without ``__wrapped__`` is the original)."""
    attr = getattr(cls, name)
    return getattr(attr, "__wrapped__", attr)  # type: ignore[no-any-return]


def decode(topic: str, value: bytes, audit_topic: str = AUDIT_TOPIC) -> list[d.Document]:
    """The documents in a consumed message; what is not one is skipped and counted.

    An audit-topic message holds one audit line or, as the audit sink writes them, a
    batch of lines joined by ``\\n``; an events-topic message is one JSON document.
    """
    if topic == audit_topic:
        from commerce_observe.agent.audit.record import decode as decode_audit

        docs = []
        for line in value.split(b"\n"):
            if line[:1] == b"D":  # a trail-gap marker (a spool was full): not a message record
                continue
            try:
                docs.append(d.message_document(decode_audit(line)))
            except (ValueError, KeyError, TypeError):
                stats.record_failure("monitoring.bad_message", "shipper skipped an audit line that is not a record")
        return docs
    try:
        doc = json.loads(value)
    except (ValueError, TypeError):
        doc = None
    if isinstance(doc, dict) and "event.id" in doc:
        return [doc]
    stats.record_failure("monitoring.bad_message", "shipper skipped a message that is not a document")
    return []


def subscribe_when_known(consumer: Any, topics: Sequence[str], timeout_s: float = 10.0) -> None:
    """Subscribe a kafka-python consumer once its metadata lists the topics' partitions
    (or after ``timeout_s``, for topics that do not exist yet).

    Subscribed first, kafka-python can join the group before its first metadata
    answer: the leader assigns nothing, and the rebalance due when the metadata
    arrives can stall, leaving a member without partitions for good (seen with
    kafka-python 3.0; dpkp/kafka-python#2377 reports the empty assignment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        # One all-topics metadata request a pass; partitions_for_topic then reads the
        # cache (it would send that same request itself for every topic not cached).
        listed = consumer.topics()
        if not (unknown := [t for t in topics if t not in listed or not consumer.partitions_for_topic(t)]):
            break
        if time.monotonic() > deadline:
            logger.info("topics %s not in the metadata after %.0fs: subscribing anyway", unknown, timeout_s)
            break
        time.sleep(0.1)
    consumer.subscribe(list(topics))


class Shipper:
    """One member of the shipper consumer group."""

    def __init__(self, store: EventStore, bootstrap: str, *, group_id: str = SHIPPER_GROUP,
                 topics: Sequence[str] = (EVENTS_TOPIC, AUDIT_TOPIC), audit_topic: str = AUDIT_TOPIC,
                 max_records: int = 5000, retry_backoff_s: float = 1.0, security: KafkaSecurity | None = None,
                 **consumer_config: Any) -> None:
        from kafka import KafkaConsumer

        config: dict[str, Any] = {"auto_offset_reset": "earliest", "enable_auto_commit": False,
                                  "max_poll_records": max_records,
                                  **(security or KafkaSecurity.from_config()).kafka_python()}
        config.update(consumer_config)
        self.store, self.audit_topic = store, audit_topic
        self.retry_backoff_s = retry_backoff_s
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, **config)
        subscribe_when_known(self.consumer, topics)
        self._poll = original(KafkaConsumer, "poll")
        self.total = WriteResult()
        self.messages = 0
        self.documents = 0  #: decoded from those messages (an audit message holds a batch of lines)
        self._stop = threading.Event()

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Poll, store, commit; returns the number of messages handled. Raises StoreUnavailable."""
        polled = self._poll(self.consumer, timeout_ms=timeout_ms)
        docs: list[d.Document] = []
        count = 0
        for tp, records in polled.items():
            for rec in records:
                count += 1
                docs += decode(tp.topic, rec.value, self.audit_topic)
        if count:
            self.total += self.store.write(docs)
            self.consumer.commit()
            self.messages += count
            self.documents += len(docs)
        return count

    def run(self, until: Callable[[], bool] | None = None) -> WriteResult:
        """Ship until ``stop()`` (or ``until()`` is true); store outages are waited out, not skipped."""
        while not self._stop.is_set() and not (until and until()):
            try:
                self.poll_once()
            except StoreUnavailable as exc:
                logger.warning("store unavailable, batch will be re-polled: %s", exc)
                self._rewind()
                self._stop.wait(self.retry_backoff_s)
        return self.total

    def _rewind(self) -> None:
        """Go back to the committed offsets so the failed batch is polled again."""
        for tp in self.consumer.assignment():
            committed = self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
            else:
                self.consumer.seek_to_beginning(tp)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.consumer.close()

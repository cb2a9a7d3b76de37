"""The Kafka audit topic: sink (writer side) and reader (auditor side).

One audit line per Kafka message, keyed by event id so all records of one event
land on one partition in order. confluent-kafka (librdkafka) is used because the
audit stream is several messages per business message: its C producer batches
and compresses them at a cost of about a microsecond each, where a pure-Python
client would cost the writer thread far more.

Delivery is checked per batch: every message gets a delivery report before
``write`` returns (``message.timeout.ms`` bounds the wait), and the lines whose
report is an error are raised back to the writer to spool. A message whose report
timed out may still have reached the broker, so a replay can repeat a record; the
auditor counts identical records once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from commerce_observe.audit.sinks import SinkUnavailable


#: librdkafka's own log lines (one per failed connect while the broker is down) go here,
#: not to stderr; the writer already counts and warns, rate-limited.
_LIBRDKAFKA_LOG = logging.getLogger("commerce_observe.audit.librdkafka")
_LIBRDKAFKA_LOG.setLevel(logging.CRITICAL)


def _confluent() -> Any:
    import confluent_kafka
    import confluent_kafka.admin  # noqa: F401  (binds ck.admin)

    return confluent_kafka


def _raw_clients() -> Any:
    """The C classes themselves: the instrumentation wraps the names ``confluent_kafka.Producer``
    and ``Consumer``, and audit records must not be traced and audited in turn (a loop)."""
    import confluent_kafka.cimpl

    return confluent_kafka.cimpl


class KafkaSink:
    name = "kafka"

    def __init__(self, bootstrap: str, topic: str, *, delivery_timeout_s: float = 5.0, partitions: int = 6,
                 config: Mapping[str, Any] | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.delivery_timeout_s = delivery_timeout_s
        self.partitions = partitions
        self._config = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "logger": _LIBRDKAFKA_LOG,
            "compression.type": "lz4",
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "socket.connection.setup.timeout.ms": int(delivery_timeout_s * 1000),
            "queue.buffering.max.messages": 1_000_000,
            # Delivery reports (a Python call each) only for failures, the lines to
            # spool; flush() still waits for every message to be acked or failed.
            "delivery.report.only.error": True,
            **(config or {}),
        }
        self._producer: Any = None
        self._topic_checked = False
        self._failed: list[bytes] = []

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._failed.append(msg.value())

    def _ensure_topic(self) -> None:
        """Create the audit topic if missing (best effort; brokers may auto-create)."""
        ck = _confluent()
        admin = ck.admin.AdminClient({"bootstrap.servers": self.bootstrap, "logger": _LIBRDKAFKA_LOG})
        meta = admin.list_topics(timeout=self.delivery_timeout_s)
        if self.topic not in meta.topics:
            futures = admin.create_topics([ck.admin.NewTopic(self.topic, self.partitions, 1)])
            try:
                futures[self.topic].result(self.delivery_timeout_s)
            except ck.KafkaException as exc:
                if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        self._topic_checked = True

    def write(self, lines: Sequence[bytes]) -> None:
        ck = _confluent()
        try:
            if not self._topic_checked:
                self._ensure_topic()
            if self._producer is None:
                self._producer = _raw_clients().Producer(self._config)
        except Exception as exc:
            raise SinkUnavailable(f"kafka {self.bootstrap}: {exc}", lines) from exc
        producer = self._producer
        self._failed = []
        produce, cb, topic = producer.produce, self._on_delivery, self.topic
        for line in lines:
            f = line.split(b"\t", 3)  # key: event id; timestamp: the record's own time (seek by time)
            while True:
                try:
                    produce(topic, line, f[2], on_delivery=cb, timestamp=int(f[1]) // 1_000_000)
                    break
                except BufferError:
                    producer.poll(0.05)
        remaining = producer.flush(self.delivery_timeout_s + 2.0)
        if remaining:  # reports still missing: treat all as not delivered (dedupe copes with repeats)
            raise SinkUnavailable(f"kafka {self.bootstrap}: {remaining} deliveries unconfirmed", lines)
        if self._failed:
            raise SinkUnavailable(f"kafka {self.bootstrap}: {len(self._failed)} deliveries failed", self._failed)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.delivery_timeout_s)
            self._producer = None


def _high_watermark(ck: Any, consumer: Any, tp: Any, timeout_s: float) -> int:
    """End offset of a partition, retried while leadership settles (right after a broker restart)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            return int(high)
        except ck.KafkaException as exc:
            if time.monotonic() > deadline or not exc.args[0].retriable() and exc.args[0].code() not in (
                    ck.KafkaError.NOT_LEADER_FOR_PARTITION, ck.KafkaError.LEADER_NOT_AVAILABLE):
                raise
            time.sleep(0.5)


def read_kafka(bootstrap: str, topic: str, from_ns: int = 0, *, timeout_s: float = 30.0,
               batch: int = 10_000) -> Iterator[list[bytes]]:
    """Every audit line in ``topic`` from ``from_ns`` up to the end as of the call, in batches.

    Assigns all partitions directly (no consumer group, nothing committed), seeks by
    timestamp, and stops at the high watermarks read at the start, so a deploy gate
    terminates on a live topic.
    """
    ck = _confluent()
    consumer = _raw_clients().Consumer({"bootstrap.servers": bootstrap, "group.id": "commerce-observe-audit-reader",
                            "enable.auto.commit": False, "enable.partition.eof": True, "logger": _LIBRDKAFKA_LOG,
                            "fetch.max.bytes": 64 << 20, "socket.connection.setup.timeout.ms": int(timeout_s * 1000)})
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            raise LookupError(f"audit topic {topic!r} not found on {bootstrap}")
        parts = [ck.TopicPartition(topic, p, max(from_ns // 1_000_000, 0) if from_ns else ck.OFFSET_BEGINNING)
                 for p in sorted(tmeta.partitions)]
        if from_ns:
            parts = consumer.offsets_for_times(parts, timeout=timeout_s)
        ends: dict[int, int] = {}
        for tp in parts:
            ends[tp.partition] = _high_watermark(ck, consumer, tp, timeout_s)
        todo = [tp for tp in parts if tp.offset != ck.OFFSET_END and (tp.offset < 0 or tp.offset < ends[tp.partition])
                and ends[tp.partition] > 0]
        if not todo:
            return
        consumer.assign(todo)
        open_parts = {tp.partition for tp in todo}
        idle_deadline = time.monotonic() + timeout_s
        while open_parts:
            msgs = consumer.consume(batch, 0.1)
            if not msgs:
                if time.monotonic() > idle_deadline:
                    raise TimeoutError(f"audit topic {topic!r}: no progress for {timeout_s}s")
                continue
            idle_deadline = time.monotonic() + timeout_s
            out = []
            for m in msgs:
                err = m.error()
                p = m.partition()
                if err is not None:
                    if err.code() == ck.KafkaError._PARTITION_EOF:
                        open_parts.discard(p)
                        continue
                    raise RuntimeError(f"audit topic {topic!r}: {err}")
                if m.offset() >= ends[p]:
                    open_parts.discard(p)
                    continue
                out.append(m.value())
                if m.offset() + 1 >= ends[p]:
                    open_parts.discard(p)
            if out:
                yield out
    finally:
        consumer.close()

"""The Kafka audit topic: sink (writer side) and reader (auditor side).

One Kafka message per ``write`` call and partition: the batch's lines are grouped
by partition, ``crc32(event id) % partitions`` (stable across processes and runs,
and the partition librdkafka's default partitioner gave the same event id as a
message key, so an event keeps its partition across the change of layout), and
each group is sent as one message, its lines joined by ``\\n`` in batch order
(lines never hold a raw newline: :mod:`commerce_observe.agent.audit.record` escapes
it), split further to stay under :data:`MAX_MESSAGE_BYTES`. So all records of one
event still land on one partition, in order. A message per line cost ~2.5 µs of
CPU per record (a Python ``produce`` call, librdkafka's per-message work, lz4
framing); a message per group costs one call per partition and batch. The price:
a generic consumer of the topic gets batches of lines (split values on ``\\n``),
messages have no key, and a message's timestamp is its first line's time.

confluent-kafka (librdkafka) is used because its C producer batches and
compresses off the writer thread; a pure-Python client would cost it far more.

Delivery is checked per batch: every message gets a delivery report before
``write`` returns (``message.timeout.ms`` bounds the wait), and the lines of the
messages whose report is an error are raised back to the writer to spool. A
message whose report timed out may still have reached the broker, so a replay can
repeat records; the auditor counts identical records once.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from commerce_observe._internal.kafka_security import KafkaSecurity
from commerce_observe.agent.audit.record import first_at_or_after
from commerce_observe.agent.audit.sinks import TIME_DISORDER_NS, SinkUnavailable

#: Upper bound of a message's value. librdkafka refuses a message above its
#: ``message.max.bytes`` (default 1,000,000) and the broker a record batch above
#: its own (default 1 MiB, after compression); half a MiB leaves room for record
#: overhead and for a cluster configured a little lower, and stays under a generic
#: consumer's default ``max.partition.fetch.bytes`` (1 MiB). A journal shipping batch
#: (4,096 lines of ~190-230 bytes over 6 partitions) is ~130-160 KB a message, so only
#: many-KB lines are ever split.
MAX_MESSAGE_BYTES = 512 * 1024

#: Messages taken per ``consume`` call when reading: bounds the reader's memory
#: (at most 100 x MAX_MESSAGE_BYTES) now that a message holds many lines.
_READ_MESSAGES = 100


#: librdkafka's own log lines (one per failed connect while the broker is down) go here,
#: not to stderr; the writer already counts and warns, rate-limited.
_LIBRDKAFKA_LOG = logging.getLogger("commerce_observe.agent.audit.librdkafka")
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
    #: A line the topic took (``acks=all``) survives this machine: the spool need not
    #: fsync journal lines before shipping them here (see ``Spool.replay``).
    outlives_host = True

    def __init__(self, bootstrap: str, topic: str, *, delivery_timeout_s: float = 5.0, partitions: int = 6,
                 config: Mapping[str, Any] | None = None, security: KafkaSecurity | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        #: SASL/TLS entries (COMMERCE_OBSERVE_KAFKA_*) for the producer and the admin client
        self._security = (security or KafkaSecurity.from_config()).librdkafka()
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
            **self._security,
            **(config or {}),
        }
        self._producer: Any = None
        #: The topic's partition count, from its metadata on the first write (0: not yet).
        self._n_partitions = 0
        self._failed: list[bytes] = []

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:  # a message's lines fail together
            self._failed.extend(msg.value().split(b"\n"))

    def _ensure_topic(self) -> None:
        """Create the audit topic if missing, and learn its partition count: we choose
        each message's partition ourselves."""
        ck = _confluent()
        admin = ck.admin.AdminClient({"bootstrap.servers": self.bootstrap, "logger": _LIBRDKAFKA_LOG, **self._security})
        meta = admin.list_topics(timeout=self.delivery_timeout_s)
        if self.topic not in meta.topics:
            futures = admin.create_topics([ck.admin.NewTopic(self.topic, self.partitions, 1)])
            try:
                futures[self.topic].result(self.delivery_timeout_s)
            except ck.KafkaException as exc:
                if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                # Another process created it meanwhile, maybe with another count.
                meta = admin.list_topics(self.topic, timeout=self.delivery_timeout_s)
            else:
                self._n_partitions = self.partitions
                return
        n = len(meta.topics[self.topic].partitions)
        if not n:  # metadata not settled yet (e.g. just auto-created): the next write asks again
            raise RuntimeError(f"audit topic {self.topic!r} has no partitions in the metadata yet")
        self._n_partitions = n

    def _ready(self, lines: Sequence[bytes]) -> Any:
        """The producer, the topic checked first; SinkUnavailable (all ``lines``) if not."""
        try:
            if not self._n_partitions:
                self._ensure_topic()
            if self._producer is None:
                self._producer = _raw_clients().Producer(self._config)
        except Exception as exc:
            raise SinkUnavailable(f"kafka {self.bootstrap}: {exc}", lines) from exc
        self._failed = []
        return self._producer

    def _await_delivery(self, producer: Any, lines: Sequence[bytes]) -> None:
        """Wait for every report; raise SinkUnavailable with the lines not delivered."""
        remaining = producer.flush(self.delivery_timeout_s + 2.0)
        if remaining:  # reports still missing: treat all as not delivered (dedupe copes with repeats)
            raise SinkUnavailable(f"kafka {self.bootstrap}: {remaining} deliveries unconfirmed", lines)
        if self._failed:
            failed = self._failed
            raise SinkUnavailable(f"kafka {self.bootstrap}: deliveries of {len(failed)} records failed", failed)

    def write(self, lines: Sequence[bytes]) -> None:
        producer = self._ready(lines)
        n = self._n_partitions
        groups: list[list[bytes]] = [[] for _ in range(n)]
        crc32 = zlib.crc32
        # The only per-line work: one split and a CRC of the event id (field record.EVENT_ID),
        # inline: a function call per line measured 3-20% slower here.
        for line in lines:
            groups[crc32(line.split(b"\t", 3)[2]) % n].append(line)
        produce, cb, topic = producer.produce, self._on_delivery, self.topic
        for partition, group in enumerate(groups):
            for value, first in _messages(group):
                # Timestamp: the first line's time, for the reader to seek by time.
                ts = int(first.split(b"\t", 2)[1]) // 1_000_000
                while True:
                    try:
                        produce(topic, value, partition=partition, on_delivery=cb, timestamp=ts)
                        break
                    except BufferError:
                        producer.poll(0.05)
        self._await_delivery(producer, lines)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.delivery_timeout_s)
            self._producer = None


def _messages(lines: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(value, first line) per message for one partition's ``lines``: joined by ``\\n``
    in order, cut into runs of at most :data:`MAX_MESSAGE_BYTES` (a longer line alone)."""
    if not lines:
        return
    value = b"\n".join(lines)
    if len(value) <= MAX_MESSAGE_BYTES:  # the usual case: no per-line work
        yield value, lines[0]
        return
    start, size = 0, -1
    for i, line in enumerate(lines):
        if i > start and size + 1 + len(line) > MAX_MESSAGE_BYTES:
            yield b"\n".join(lines[start:i]), lines[start]
            start, size = i, -1
        size += 1 + len(line)
    yield b"\n".join(lines[start:]), lines[start]


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
               batch: int = 10_000, security: KafkaSecurity | None = None) -> Iterator[list[bytes]]:
    """Every audit line in ``topic`` up to the end as of the call, in batches of about
    ``batch`` lines: per partition, from its first line whose time is at or after
    ``from_ns`` on, later lines included whatever their time.

    Assigns all partitions directly (no consumer group, nothing committed), seeks by
    timestamp, and stops at the high watermarks read at the start, so a deploy gate
    terminates on a live topic. A message's value is one line (the previous layout)
    or several joined by ``\\n``; both read the same.
    """
    ck = _confluent()
    consumer = _raw_clients().Consumer({"bootstrap.servers": bootstrap, "group.id": "commerce-observe-audit-reader",
                            "enable.auto.commit": False, "enable.partition.eof": True, "logger": _LIBRDKAFKA_LOG,
                            "fetch.max.bytes": 64 << 20, "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
                            **(security or KafkaSecurity.from_config()).librdkafka()})
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            raise LookupError(f"audit topic {topic!r} not found on {bootstrap}")
        # A message is time-stamped with its first line's time and holds lines up to a
        # writer batch later (a spool replay batch: longer), and writers in several
        # processes append late: seek TIME_DISORDER_NS early, then skip the lines
        # before ``from_ns`` (as read_sqlite does).
        seek_ms = max((from_ns - TIME_DISORDER_NS) // 1_000_000, 0)
        parts = [ck.TopicPartition(topic, p, seek_ms if from_ns else ck.OFFSET_BEGINNING)
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
        seeking = set(open_parts) if from_ns else set()  # partitions before their first line >= from_ns
        out: list[bytes] = []
        idle_deadline = time.monotonic() + timeout_s
        while open_parts:
            msgs = consumer.consume(_READ_MESSAGES, 0.1)
            if not msgs:
                if time.monotonic() > idle_deadline:
                    raise TimeoutError(f"audit topic {topic!r}: no progress for {timeout_s}s")
                continue
            idle_deadline = time.monotonic() + timeout_s
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
                if m.offset() + 1 >= ends[p]:
                    open_parts.discard(p)
                lines = m.value().split(b"\n")
                if p in seeking:
                    at = first_at_or_after(lines, from_ns)
                    if at is None:
                        continue
                    lines = lines[at:]
                    seeking.discard(p)
                out += lines
            if len(out) >= batch:
                yield out
                out = []
        if out:
            yield out
    finally:
        consumer.close()

"""The Kafka audit topic on the REAL broker: a message per write and partition (one
event on one partition, in order), read back by time (old and new layout), and
sink down -> spool -> broker back -> replay with nothing lost."""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from commerce_observe.agent.audit.kafka_sink import (
    MAX_MESSAGE_BYTES,
    KafkaSink,
    _messages,
    read_kafka,
)
from commerce_observe.agent.audit.record import decode, encode
from commerce_observe.agent.audit.sinks import SinkUnavailable
from commerce_observe.agent.audit.spool import Spool
from commerce_observe.agent.audit.writer import AuditWriter
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from tests.support.kafka_clients import create_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka


def fact(i: int, t0: int, eid: str | None = None) -> MessageFact:
    return MessageFact(Stage.ACKED, "kafka", "orders", eid or f"e{i}", "order.created", "checkout", i,
                       "a" * 32, "b" * 16, t0 + i * 1_000_000, partition=0, offset=i)


def read_all(bootstrap: str, topic: str, from_ns: int = 0) -> list[bytes]:
    return [x for b in read_kafka(bootstrap, topic, from_ns) for x in b]


def raw_messages(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
    """(partition, timestamp ms, key, value) of every message, as any consumer sees them.

    Reads each partition from its low to its high watermark, both asked first, by explicit
    offsets (not OFFSET_BEGINNING and end-of-partition events: one CI run read a sink's
    13 messages as 12, the first missing, and could not say whether the log or the read
    lost it), and checks that every offset in between was read exactly once."""
    import confluent_kafka.cimpl as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "audit-raw-check", "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        marks = {p: consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=30) for p in parts}
        assert all(low == 0 for low, _ in marks.values()), marks  # nothing of a new topic deleted
        todo = {p: high for p, (low, high) in marks.items() if high > low}
        consumer.assign([ck.TopicPartition(topic, p, marks[p][0]) for p in todo])
        got: dict[int, list[tuple[int, int, bytes | None, bytes]]] = {p: [] for p in todo}
        offsets: dict[int, list[int]] = {p: [] for p in todo}
        deadline = time.monotonic() + 30
        while any(len(offsets[p]) < todo[p] - marks[p][0] for p in todo) and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.5):
                assert m.error() is None, m.error()
                p = m.partition() or 0
                offsets[p].append(m.offset() or 0)
                got[p].append((p, m.timestamp()[1], m.key(), m.value() or b""))
        assert offsets == {p: list(range(marks[p][0], todo[p])) for p in todo}, (marks, offsets)
        return [m for p in sorted(got) for m in got[p]]
    finally:
        consumer.close()


def test_one_message_per_write_and_partition_keeps_each_event_on_one_partition_in_order(
        kafka_bootstrap: str, unique_topic: str) -> None:
    t0 = time.time_ns()
    sink = KafkaSink(kafka_bootstrap, unique_topic)
    lines = [encode(fact(i, t0, eid=f"e{i % 50}")) for i in range(1000)]
    writes = [lines[:300], lines[300:600], lines[600:]]
    for w in writes:
        sink.write(w)
    sink.close()
    assert sorted(read_all(kafka_bootstrap, unique_topic)) == sorted(lines)
    msgs = raw_messages(kafka_bootstrap, unique_topic)
    assert len(msgs) <= len(writes) * sink.partitions  # not a message per line
    per_event: dict[str, list[tuple[int, int]]] = {}
    for partition, ts, key, value in msgs:
        got = value.split(b"\n")
        assert key is None and ts == decode(got[0]).time_ns // 1_000_000
        for line in got:
            r = decode(line)
            assert partition == zlib.crc32(r.event_id.encode()) % sink.partitions
            per_event.setdefault(r.event_id, []).append((partition, r.sequence or 0))
    for seen in per_event.values():  # one event, one partition, in write order
        assert len({p for p, _ in seen}) == 1 and [s for _, s in seen] == sorted(s for _, s in seen)


def test_a_large_batch_is_split_under_the_size_bound(kafka_bootstrap: str, unique_topic: str) -> None:
    t0 = time.time_ns()
    sink = KafkaSink(kafka_bootstrap, unique_topic)
    # ~6 MB for one event (one partition): twelve-odd messages of at most MAX_MESSAGE_BYTES
    big = [encode(replace(fact(i, t0, eid="big"), error="x" * 2000)) for i in range(3000)]
    sink.write(big)
    sink.close()
    assert read_all(kafka_bootstrap, unique_topic) == big  # nothing lost, in order
    msgs = raw_messages(kafka_bootstrap, unique_topic)
    assert len(msgs) >= 1 + sum(map(len, big)) // MAX_MESSAGE_BYTES  # at least the ceiling
    assert all(len(v) <= MAX_MESSAGE_BYTES for _, _, _, v in msgs)
    assert len({p for p, _, _, _ in msgs}) == 1
    assert [x for _, _, _, v in msgs for x in v.split(b"\n")] == big  # in order, nothing cut


def test_message_values_split_in_order_and_a_line_above_the_bound_goes_alone() -> None:
    lines = [b"A\t%d\te\t" % i + b"x" * 100_000 for i in range(20)]
    lines.insert(7, b"A\t7\te\t" + b"y" * (MAX_MESSAGE_BYTES + 1))
    msgs = list(_messages(lines))
    assert [x for v, _ in msgs for x in v.split(b"\n")] == lines
    assert all(first == v.split(b"\n")[0] for v, first in msgs)
    assert all(len(v) <= MAX_MESSAGE_BYTES for v, _ in msgs if b"\n" in v)
    assert (lines[7], lines[7]) in msgs and list(_messages([])) == []


def test_reads_a_topic_of_the_old_layout_and_appends_the_new_one_on_the_same_partitions(
        kafka_bootstrap: str, unique_topic: str) -> None:
    """The previous version: a message per line, keyed by event id (librdkafka's
    partitioner), time-stamped with the line's time. The topic has 4 partitions, not
    the sink's default 6: the sink reads the count from the metadata."""
    import confluent_kafka.cimpl as ck

    create_topic(kafka_bootstrap, unique_topic, 4)
    t0 = time.time_ns()
    old = [encode(fact(i, t0, eid=f"e{i % 30}")) for i in range(300)]
    producer = ck.Producer({"bootstrap.servers": kafka_bootstrap})
    for line in old:
        f = line.split(b"\t", 3)
        producer.produce(unique_topic, line, f[2], timestamp=int(f[1]) // 1_000_000)
    assert producer.flush(30) == 0
    new = [encode(fact(i, t0, eid=f"e{i % 30}")) for i in range(300, 600)]
    sink = KafkaSink(kafka_bootstrap, unique_topic)
    sink.write(new)
    sink.close()
    assert sorted(read_all(kafka_bootstrap, unique_topic)) == sorted(old + new)
    assert sorted(read_all(kafka_bootstrap, unique_topic, from_ns=t0 + 250 * 1_000_000)) == sorted((old + new)[250:])
    partitions: dict[bytes, set[int]] = {}
    for partition, _, _, value in raw_messages(kafka_bootstrap, unique_topic):
        for line in value.split(b"\n"):
            partitions.setdefault(line.split(b"\t", 3)[2], set()).add(partition)
    assert {p for ps in partitions.values() for p in ps} <= set(range(4))
    assert all(len(ps) == 1 for ps in partitions.values())  # old and new records of an event: one partition


def test_from_ns_inside_a_message_keeps_its_later_lines_and_everything_after(
        kafka_bootstrap: str, unique_topic: str) -> None:
    """A message is time-stamped with its first line's time; lines in it at or after
    from_ns are read, as is every later line of the partition whatever its time
    (a spool replay), but not the earlier lines of the partition."""
    t0 = time.time_ns()
    sink = KafkaSink(kafka_bootstrap, unique_topic, partitions=1)
    early = [encode(fact(i, t0 - 200_000_000_000)) for i in range(10)]  # well before, inside the seek slack
    batch = [encode(fact(i, t0)) for i in range(1000)]  # t0 .. t0 + 999 ms, one message
    replayed = [encode(fact(i, t0 - 100_000_000_000)) for i in range(5)]  # older times, written later
    for w in (early, batch, replayed):
        sink.write(w)
    sink.close()
    assert len(raw_messages(kafka_bootstrap, unique_topic)) == 3
    from_ns = t0 + 400 * 1_000_000
    assert read_all(kafka_bootstrap, unique_topic, from_ns) == batch[400:] + replayed
    assert read_all(kafka_bootstrap, unique_topic, t0 + 5_000_000_000) == []
    assert read_all(kafka_bootstrap, unique_topic) == early + batch + replayed


def test_failed_messages_spool_exactly_their_lines(kafka_bootstrap: str, unique_topic: str) -> None:
    """The topic refuses messages above 20 kB (uncompressed, so the size is ours): the
    big event's message fails, the small event's (another partition) is stored."""
    create_topic(kafka_bootstrap, unique_topic, 2, **{"max.message.bytes": "20000"})
    t0 = time.time_ns()
    big = [encode(replace(fact(i, t0, eid="big"), error="x" * 1000)) for i in range(40)]
    small_id = next(f"s{i}" for i in range(100) if zlib.crc32(f"s{i}".encode()) % 2 != zlib.crc32(b"big") % 2)
    small = [encode(fact(i, t0, eid=small_id)) for i in range(40, 45)]
    sink = KafkaSink(kafka_bootstrap, unique_topic, config={"compression.type": "none"})
    lines = [x for pair in zip(big, small) for x in pair] + big[len(small):]  # interleaved
    with pytest.raises(SinkUnavailable) as info:
        sink.write(lines)
    assert info.value.lines == big  # exactly the failed message's lines, in order
    sink.write(small)  # the sink still works
    sink.close()
    assert read_all(kafka_bootstrap, unique_topic) == small + small  # dedup is the auditor's job


def test_unreachable_broker_raises_with_every_line(tmp_path: Path) -> None:
    sink = KafkaSink("127.0.0.1:1", "nowhere", delivery_timeout_s=1.0)
    lines = [encode(fact(i, time.time_ns())) for i in range(10)]
    with pytest.raises(Exception) as info:
        sink.write(lines)
    assert getattr(info.value, "lines", None) == lines


class SwitchableSink:
    """The real Kafka sink behind a pointer we can aim at an unreachable address."""

    name = "kafka"

    def __init__(self, real: KafkaSink) -> None:
        self.real = real
        self.broken = KafkaSink("127.0.0.1:1", real.topic, delivery_timeout_s=1.0)
        self.up = True

    def write(self, lines: Sequence[bytes]) -> None:
        (self.real if self.up else self.broken).write(lines)

    def close(self) -> None:
        self.real.close()


def _wait_for_distinct(bootstrap: str, topic: str, n: int, timeout: float = 60.0) -> list[bytes]:
    return wait_for(f"{n} distinct messages on {topic}", lambda: read_all(bootstrap, topic), timeout, 0.5,
                    until=lambda got: len(set(got)) >= n, describe=lambda got: f"it held {len(set(got))}")


def test_unreachable_sink_spools_then_replays_in_order(kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    t0 = time.time_ns()
    sink = SwitchableSink(KafkaSink(kafka_bootstrap, unique_topic))
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), batch_size=100, flush_interval_s=0.05, retry_interval_s=0.5).start()
    for i in range(300):
        w.on_fact(fact(i, t0, eid=f"k{i % 20}"))
    w.flush(30)
    sink.up = False
    for i in range(300, 900):
        w.on_fact(fact(i, t0, eid=f"k{i % 20}"))
    w.flush(30)
    assert w.spooled >= 600
    sink.up = True
    for i in range(900, 1000):
        w.on_fact(fact(i, t0, eid=f"k{i % 20}"))
    got = _wait_for_distinct(kafka_bootstrap, unique_topic, 1000)
    w.close()
    assert sorted({decode(x).sequence or 0 for x in got}) == list(range(1000))  # nothing lost
    per_key: dict[str, list[int]] = {}
    for x in got:
        r = decode(x)
        per_key.setdefault(r.event_id, []).append(r.sequence or 0)
    for seqs in per_key.values():  # the spool kept order: per key (one partition) strictly the write order
        assert seqs == sorted(seqs)


def test_broker_stopped_spool_then_broker_back_replays_everything(
    kafka_bootstrap: str, unique_topic: str, testbed_control: ModuleType, tmp_path: Path
) -> None:
    t0 = time.time_ns()
    sink = KafkaSink(kafka_bootstrap, unique_topic, delivery_timeout_s=2.0)
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), batch_size=200, flush_interval_s=0.05, retry_interval_s=1.0).start()
    for i in range(500):
        w.on_fact(fact(i, t0))
    assert w.flush(30)
    testbed_control.stop("kafka")
    try:
        for i in range(500, 1500):
            w.on_fact(fact(i, t0))
            if i % 100 == 0:
                time.sleep(0.05)
        w.flush(60)
        assert w.spooled > 0
    finally:
        testbed_control.start("kafka")
    got = _wait_for_distinct(kafka_bootstrap, unique_topic, 1500, timeout=120)
    w.close()
    assert {decode(x).event_id for x in got} == {f"e{i}" for i in range(1500)}  # nothing lost (repeats allowed)
    assert w.dropped == 0

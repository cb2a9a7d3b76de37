"""The Kafka audit topic on the REAL broker: keyed records, read back by time, and
sink down -> spool -> broker back -> replay with nothing lost."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from commerce_observe.audit.kafka_sink import KafkaSink, read_kafka
from commerce_observe.audit.record import decode, encode
from commerce_observe.audit.spool import Spool
from commerce_observe.audit.writer import AuditWriter
from commerce_observe.messaging.facts import MessageFact, Stage

pytestmark = pytest.mark.kafka


def fact(i: int, t0: int, eid: str | None = None) -> MessageFact:
    return MessageFact(Stage.ACKED, "kafka", "orders", eid or f"e{i}", "order.created", "checkout", i,
                       "a" * 32, "b" * 16, t0 + i * 1_000_000, partition=0, offset=i)


def read_all(bootstrap: str, topic: str, from_ns: int = 0) -> list[bytes]:
    return [x for b in read_kafka(bootstrap, topic, from_ns) for x in b]


def test_records_keyed_by_event_id_and_read_back_from_a_time(kafka_bootstrap: str, unique_topic: str) -> None:
    import confluent_kafka.cimpl as ck

    t0 = time.time_ns()
    sink = KafkaSink(kafka_bootstrap, unique_topic)
    lines = [encode(fact(i, t0, eid=f"e{i % 50}")) for i in range(1000)]
    sink.write(lines[:600])
    sink.write(lines[600:])
    sink.close()
    assert sorted(read_all(kafka_bootstrap, unique_topic)) == sorted(lines)
    assert len(read_all(kafka_bootstrap, unique_topic, from_ns=t0 + 900 * 1_000_000)) == 100
    consumer = ck.Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "audit-key-check", "auto.offset.reset": "earliest"})
    consumer.subscribe([unique_topic])
    partitions: dict[bytes, set[int]] = {}
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 1000 and time.monotonic() < deadline:
        for m in consumer.consume(1000, 1.0):
            if m.error() is None:
                seen += 1
                assert m.key() == decode(m.value()).event_id.encode()
                partitions.setdefault(m.key(), set()).add(m.partition())
    consumer.close()
    assert seen == 1000 and all(len(p) == 1 for p in partitions.values())  # one event, one partition, in order


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


def _wait_for(bootstrap: str, topic: str, n: int, timeout: float = 60.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        got = read_all(bootstrap, topic)
        if len(set(got)) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


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
    got = _wait_for(kafka_bootstrap, unique_topic, 1000)
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
    got = _wait_for(kafka_bootstrap, unique_topic, 1500, timeout=120)
    w.close()
    assert {decode(x).event_id for x in got} == {f"e{i}" for i in range(1500)}  # nothing lost (repeats allowed)
    assert w.dropped == 0

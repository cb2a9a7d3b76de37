"""Messages from a producer that does not use commerce_observe (no ``ce_id``: a Java
service traced by Brave, say) are still audited on the consumer side, on the REAL
brokers: a message handled twice by one consumer group is a DUPLICATE, named by its
topic, partition and offset (Kafka) or its AMQP ``message_id`` (RabbitMQ).

The stand-in for the foreign producer is a plain kafka-python producer used before
commerce_observe is installed, writing a Brave-style ``b3`` header and nothing else.
Two real consumers of one group: the first handles every message and leaves without
committing, the second gets them all again from the broker.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import kafka
import pika
import pytest

from commerce_observe.agent.audit import attach
from commerce_observe.agent.audit.sinks import SqliteSink
from commerce_observe.monitor.alerts.inputs import finding_from_dict
from commerce_observe.monitor.cli import main
from commerce_observe.store import finding_document
from commerce_observe.testing import capture
from tests.support import kafka_clients

N = 6


def _consume_all(bootstrap: str, topic: str, group: str, commit: bool) -> list[int]:
    consumer = kafka_clients.consumer(bootstrap, topic, group_id=group, enable_auto_commit=False,
                                      auto_offset_reset="earliest", consumer_timeout_ms=20000)
    offsets = []
    for record in consumer:  # each record is handled when the next one is asked for
        offsets.append(record.offset)
        if len(offsets) == N:
            break
    if commit:
        consumer.commit()
    consumer.close()  # settles the last record
    return offsets


@pytest.mark.kafka
def test_a_foreign_message_handled_twice_by_one_group_is_a_duplicate_by_offset(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the spool directory is relative to the working directory
    kafka_clients.create_topic(kafka_bootstrap, unique_topic, 1)
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)  # not instrumented: nothing installed yet
    for i in range(N):
        b3 = f"{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-1".encode()
        producer.send(unique_topic, b"{}", headers=[("b3", b3)]).get(timeout=30)
    producer.close()

    group, other = "billing-" + uuid.uuid4().hex[:6], "ledger-" + uuid.uuid4().hex[:6]
    path = str(tmp_path / "audit.sqlite")
    with capture() as cap:
        attachment = attach(cap.runtime, sink=SqliteSink(path), flush_interval_s=0.1)
        try:
            assert _consume_all(kafka_bootstrap, unique_topic, group, commit=False) == list(range(N))
            assert _consume_all(kafka_bootstrap, unique_topic, group, commit=True) == list(range(N))  # redelivered
            assert _consume_all(kafka_bootstrap, unique_topic, other, commit=True) == list(range(N))  # once: fine
            assert attachment.writer is not None and attachment.writer.flush(30)
        finally:
            attachment()

    capsys.readouterr()
    assert main(["audit", "--sqlite", path, "--as-of", "all", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    found = {(f["kind"], f["consumer_group"], f["destination"], f["partition"], f["offset"]) for f in report["findings"]}
    assert found == {("DUPLICATE", group, unique_topic, 0, offset) for offset in range(N)}
    assert all("event_id" not in f and len(f["handlings"]) == 2 for f in report["findings"])
    assert report["summary"]["handled_without_event_id"] == N
    assert report["summary"]["handled_without_producer_record"] == 0
    docs = [finding_document(finding_from_dict(f)) for f in report["findings"]]
    assert len({d["event.id"] for d in docs}) == N  # one store document per message, not one for all
    assert sorted(d["commerce.message.offset"] for d in docs) == list(range(N))

    assert main(["audit", "--sqlite", path, "--as-of", "all"]) == 1
    table = capsys.readouterr().out
    assert f"{N} message(s) without an event id" in table
    assert sum(line.startswith("DUPLICATE") and f"{unique_topic}/0@" in line for line in table.splitlines()) == N


def _handle_all(url: str, queue: str, n: int, ack: bool) -> list[tuple[str | None, bool]]:
    """One consumer of ``queue`` handles ``n`` messages, acking them or not, and leaves
    (what it did not ack goes back to the queue); returns (message_id, redelivered)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=n)
    seen: list[tuple[str | None, bool]] = []

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        seen.append((properties.message_id, bool(method.redelivered)))
        if ack:
            ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    deadline = time.monotonic() + 30
    while len(seen) < n and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.2)
    connection.close()
    return seen


@pytest.mark.rabbitmq
def test_a_foreign_rabbitmq_message_handled_twice_is_a_duplicate_by_its_message_id(
        rabbitmq_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A plain pika producer (nothing installed yet) sets the AMQP ``message_id`` on some
    messages and only a ``b3`` header: the ones with a ``message_id`` handled by a
    consumer that left without acking and again by the next one are DUPLICATEs named by
    it; the ones without are not identifiable (the redelivered flag is no proof that the
    first consumer handled them) and are only counted."""
    monkeypatch.chdir(tmp_path)
    queue = f"foreign-{uuid.uuid4().hex[:10]}"
    mids = [f"m-{uuid.uuid4().hex[:12]}" for _ in range(N)]
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))  # not instrumented: nothing installed
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.confirm_delivery()
    for mid in [*mids, None, None]:
        b3 = f"{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-1"
        channel.basic_publish("", queue, b"{}", pika.BasicProperties(message_id=mid, headers={"b3": b3}))
    connection.close()

    path = str(tmp_path / "audit.sqlite")
    with capture() as cap:
        attachment = attach(cap.runtime, sink=SqliteSink(path), flush_interval_s=0.1)
        try:
            first = _handle_all(rabbitmq_url, queue, N + 2, ack=False)
            second = _handle_all(rabbitmq_url, queue, N + 2, ack=True)
            assert attachment.writer is not None and attachment.writer.flush(30)
        finally:
            attachment()
    assert sorted(m or "" for m, _ in first) == sorted(m or "" for m, _ in second) == sorted(["", "", *mids])
    assert all(redelivered for _, redelivered in second) and not any(redelivered for _, redelivered in first)

    capsys.readouterr()
    assert main(["audit", "--sqlite", path, "--as-of", "all", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    found = {(f["kind"], f["consumer_group"], f["event_id"], len(f["handlings"])) for f in report["findings"]}
    assert found == {("DUPLICATE", queue, mid, 2) for mid in mids}
    assert report["summary"]["handled_without_producer_record"] == N
    pika_conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    pika_conn.channel().queue_delete(queue)
    pika_conn.close()

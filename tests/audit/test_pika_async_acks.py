"""pika's asynchronous adapters (``SelectConnection``, ``AsyncioConnection``,
``TornadoConnection``), on the REAL broker: the records of acked messages are
durable before the acks leave the process, with one checkpoint per data round.

An ack on any of them only appends its frame to the
transport's write buffer; the I/O loop sends it after the callbacks return. So at
each checkpoint the round's acks must still sit in that buffer (not on the wire),
and the journal must already hold every handling they cover. The kill -9 half
(separate processes, SIGKILL right after handling and right after an ack) is in
``tests/audit/test_kill9.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pika
import pytest

from commerce_observe.agent.audit import attach
from commerce_observe.agent.audit.sinks import MemorySink
from commerce_observe.agent.messaging.facts import Checkpoint
from commerce_observe.testing import capture
from tests.support.pika_async import ack_all

pytestmark = pytest.mark.rabbitmq

N = 60


def _publish(url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.confirm_delivery()
    for i in range(N):
        channel.basic_publish("", queue, b"{}", pika.BasicProperties(headers={"ce_id": f"{queue}-{i}"}))
    connection.close()


@pytest.mark.parametrize("adapter", ["select", "asyncio", "tornado"])
def test_async_adapter_acks_wait_in_the_buffer_until_their_records_are_durable(
        adapter: str, rabbitmq_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if adapter == "tornado":
        pytest.importorskip("tornado")  # a test dependency since this test: older environments skip
    monkeypatch.chdir(tmp_path)  # the spool directory is relative to the working directory
    queue = f"async-acks-{adapter}-{uuid.uuid4().hex[:8]}"
    _publish(rabbitmq_url, queue)
    seen: list[tuple[int, int, int]] = []  # per checkpoint: write buffer bytes, records journaled, durable
    with capture() as cap:
        sink = MemorySink()
        sink.down = True  # everything stays in the journal, where durability can be read
        attachment = attach(cap.runtime, sink=sink, flush_interval_s=3600)
        writer = attachment.writer
        assert writer is not None and writer.spool is not None
        spool = writer.spool
        connection: list[Any] = []

        def after_checkpoint(cp: Checkpoint) -> None:  # subscribed after the trail: it answered first
            transport = getattr(connection[0], "_transport", None)
            seen.append((transport.get_write_buffer_size() if transport is not None else -1,
                         spool.appended, spool.durable))

        unsubscribe = cap.runtime.hub.subscribe(Checkpoint, after_checkpoint)
        try:
            acked = ack_all(adapter, rabbitmq_url, queue, N, 25, opened=connection.append)
        finally:
            unsubscribe()
            attachment()
    assert acked == N
    assert seen, "no checkpoint before the acks"
    assert all(buffered > 0 for buffered, _, _ in seen), seen  # the round's acks were not sent yet
    assert all(durable == appended for _, appended, durable in seen), seen
    assert seen[-1][1] == N  # every handling journaled, and durable before its ack left
    assert len(seen) < N, "one checkpoint per data round, not per ack"
    check = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    ch = check.channel()
    assert ch.queue_declare(queue, passive=True).method.message_count == 0  # every ack reached the broker
    # (a message not acked when the connection closed would be back in the queue)
    ch.queue_delete(queue)
    check.close()

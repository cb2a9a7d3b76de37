"""pika's asynchronous adapters, on the REAL broker: the records of acked messages are
durable before the acks leave the process, with one checkpoint per data round.

An ack on ``SelectConnection`` / ``AsyncioConnection`` only appends its frame to the
transport's write buffer; the I/O loop sends it after the callbacks return. So at
each checkpoint the round's acks must still sit in that buffer (not on the wire),
and the journal must already hold every handling they cover. The kill -9 half
(separate processes, SIGKILL right after handling and right after an ack) is in
``tests/audit/test_kill9.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest

from commerce_observe.agent.audit import attach
from commerce_observe.agent.audit.sinks import MemorySink
from commerce_observe.agent.messaging.facts import Checkpoint
from commerce_observe.testing import capture

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


def _consume(url: str, queue: str, adapter: str, on_checkpoint: Callable[[Any], None]) -> tuple[int, Any]:
    """Handle and ack every message of ``queue`` in the callback; returns (acked, connection)."""
    acked = 0
    holder: dict[str, Any] = {}

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        nonlocal acked
        channel.basic_ack(method.delivery_tag)
        acked += 1
        if acked == N:
            holder["conn"].ioloop.call_later(0.3, holder["conn"].close)  # time to send the last acks

    def on_channel(ch: Any) -> None:
        holder["channel"] = ch
        ch.basic_qos(prefetch_count=25, callback=lambda _f: ch.basic_consume(queue, on_message))

    def on_open(connection: Any) -> None:
        connection.channel(on_open_callback=on_channel)

    params = pika.URLParameters(url)
    if adapter == "select":
        conn = pika.SelectConnection(params, on_open_callback=on_open,
                                     on_close_callback=lambda *_a: conn.ioloop.stop())
        holder.update(conn=conn)
        on_checkpoint(conn)
        conn.ioloop.call_later(30, conn.ioloop.stop)
        conn.ioloop.start()
    else:
        from pika.adapters.asyncio_connection import AsyncioConnection

        loop = asyncio.new_event_loop()
        conn = AsyncioConnection(params, on_open_callback=on_open, on_close_callback=lambda *_a: loop.stop(),
                                 custom_ioloop=loop)
        holder.update(conn=conn)
        on_checkpoint(conn)
        loop.call_later(30, loop.stop)
        loop.run_forever()
        loop.close()
    return acked, conn


@pytest.mark.parametrize("adapter", ["select", "asyncio"])
def test_async_adapter_acks_wait_in_the_buffer_until_their_records_are_durable(
        adapter: str, rabbitmq_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
            acked, _conn = _consume(rabbitmq_url, queue, adapter, connection.append)
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

"""A consumer on one of pika's asynchronous adapters that acks each message in its
callback (tests of the audit trail's acks, and ``benchmarks/pika_async.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pika


def ack_all(adapter: str, url: str, queue: str, n: int, prefetch: int, *,
            opened: Callable[[Any], None] | None = None, started: Callable[[], None] | None = None,
            linger_s: float = 0.3, timeout_s: float = 30.0) -> int:
    """Consume ``queue`` on ``adapter`` (``select``, ``asyncio`` or ``tornado``), acking
    every message in the callback, until ``n`` were acked (then ``linger_s`` for the last
    acks to leave, and a clean close) or ``timeout_s``. ``opened`` gets the connection
    object once built, ``started`` is called right before ``basic_consume``. Returns
    how many were acked."""
    acked = 0
    conn: Any = None

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        nonlocal acked
        channel.basic_ack(method.delivery_tag)
        acked += 1
        if acked == n:
            conn.ioloop.call_later(linger_s, conn.close)

    def on_channel(ch: Any) -> None:
        def consume(_frame: Any) -> None:
            if started is not None:
                started()
            ch.basic_consume(queue, on_message)

        ch.basic_qos(prefetch_count=prefetch, callback=consume)

    params = pika.URLParameters(url)
    callbacks: dict[str, Any] = {"on_open_callback": lambda c: c.channel(on_open_callback=on_channel)}
    if adapter == "asyncio":
        from pika.adapters.asyncio_connection import AsyncioConnection

        loop = asyncio.new_event_loop()
        conn = AsyncioConnection(params, on_close_callback=lambda *_a: loop.stop(), custom_ioloop=loop, **callbacks)
        if opened is not None:
            opened(conn)
        loop.call_later(timeout_s, loop.stop)
        loop.run_forever()
        loop.close()
        return acked
    if adapter == "tornado":
        from pika.adapters.tornado_connection import TornadoConnection

        conn = TornadoConnection(params, on_close_callback=lambda *_a: conn.ioloop.stop(), **callbacks)
    else:
        conn = pika.SelectConnection(params, on_close_callback=lambda *_a: conn.ioloop.stop(), **callbacks)
    if opened is not None:
        opened(conn)
    conn.ioloop.call_later(timeout_s, conn.ioloop.stop)
    conn.ioloop.start()
    return acked

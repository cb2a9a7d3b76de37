"""A service process for the kill -9 tests: produces or consumes with one client,
under the library's default settings (``import commerce_observe.auto``), and tells
the parent on stdout what it did, so the parent knows the truth when it kills it.

    python -m tests.audit.crash_child produce CLIENT ADDRESS TOPIC TAG N [hold]
    python -m tests.audit.crash_child consume CLIENT ADDRESS TOPIC GROUP PARTITIONS MODE
    python -m tests.audit.crash_child replay

Lines written (each flushed at once: in the pipe, they outlive a kill):

* ``ACKED`` - the producer's ``flush()`` returned: the broker acknowledged every send;
* ``B id`` - a handler started on ``id``; ``E id`` - its ``handling`` block ended
  (the HANDLED record is reported); a ``B`` without ``E`` is a handling cut short
  somewhere in between, which the parent counts as either;
* ``C`` - a commit (or ack) returned; ``W`` - a batch was handled and the child now
  waits (before committing) to be killed.

Consumer modes: ``auto`` - the client's defaults (auto-commit) with each record in a
``handling`` block; ``commit`` - auto-commit off, records handled implicitly and
committed after each batch (``C`` once the commit returned, with the batch's ids
as ``E`` lines); ``nocommit`` - handle one batch explicitly, then wait to be killed;
``atmostonce`` - commit first (the batch deferred), then handle each record.
Partitions are assigned, not subscribed: a process living under a second would
otherwise spend its life waiting for the group to rebalance past its killed
predecessor. ``replay`` installs with the sink named by the environment, lets the
trail replay what killed processes left in the spool, and exits.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from typing import Any

import commerce_observe.auto  # noqa: F401  (the library's defaults, as a service would)
from commerce_observe.agent.messaging import defer, handling


def say(*lines: str) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


def ce_id_kafka(headers: Iterable[tuple[str, bytes]] | None) -> str:
    return next((bytes(v).decode() for k, v in headers or () if k == "ce_id"), "?")


def handle(eid: str) -> None:
    say(f"B {eid}")
    time.sleep(0.002)  # the work: kills land inside handlers too


# --- producers -------------------------------------------------------------------------

def produce(client: str, address: str, topic: str, tag: str, n: int) -> None:
    ids = [f"{tag}-{i:05d}" for i in range(n)]
    if client == "kafka-python":
        import kafka

        p = kafka.KafkaProducer(bootstrap_servers=address, linger_ms=5)
        for eid in ids:
            p.send(topic, b"{}", headers=[("ce_id", eid.encode())])
        p.flush(60)
    elif client == "confluent-kafka":
        import confluent_kafka

        cp = confluent_kafka.Producer({"bootstrap.servers": address, "linger.ms": 5})
        for eid in ids:
            cp.produce(topic, b"{}", headers=[("ce_id", eid.encode())])
        if cp.flush(60):
            raise SystemExit("confluent-kafka: sends not delivered")
    elif client == "aiokafka":
        import aiokafka

        async def run() -> None:
            ap = aiokafka.AIOKafkaProducer(bootstrap_servers=address, linger_ms=5)
            await ap.start()
            for eid in ids:
                await ap.send(topic, b"{}", headers=[("ce_id", eid.encode())])
            await ap.flush()
            say("ACKED")
            await asyncio.sleep(3600) if "hold" in sys.argv else await ap.stop()

        asyncio.run(run())
        return
    else:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(address))
        ch = conn.channel()
        ch.queue_declare(topic)
        ch.confirm_delivery()
        for eid in ids:
            ch.basic_publish("", topic, b"{}", pika.BasicProperties(headers={"ce_id": eid}))
    say("ACKED")
    if "hold" in sys.argv:
        time.sleep(3600)


# --- consumers ---------------------------------------------------------------------------

def consume_kafka_python(address: str, topic: str, group: str, partitions: int, mode: str) -> None:
    import kafka

    c = kafka.KafkaConsumer(bootstrap_servers=address, group_id=group, auto_offset_reset="earliest",
                            enable_auto_commit=(mode == "auto"), max_poll_records=20)
    c.assign([kafka.TopicPartition(topic, p) for p in range(partitions)])
    if mode == "auto":
        for msg in c:
            eid = ce_id_kafka(msg.headers)
            with handling(msg):
                handle(eid)
            say(f"E {eid}")
    while True:
        batch = [r for rs in c.poll(timeout_ms=200).values() for r in rs]
        if not batch:
            continue
        batch_loop(batch, [ce_id_kafka(r.headers) for r in batch], mode, c.commit)


def batch_loop(batch: list[Any], ids: list[str], mode: str, commit: Any) -> None:
    """One polled batch under ``mode`` (the three non-default modes)."""
    if mode == "commit":
        for eid in ids:
            handle(eid)  # implicit: the commit says they are handled
        commit()
        say(*(f"E {eid}" for eid in ids), "C")
    elif mode == "nocommit":
        for r, eid in zip(batch, ids):
            with handling(r):
                handle(eid)
            say(f"E {eid}")
        say("W")
        time.sleep(3600)
    else:  # atmostonce
        for r in batch:
            defer(r)
        commit()
        say("C")
        for r, eid in zip(batch, ids):
            with handling(r):
                handle(eid)
            say(f"E {eid}")


def consume_confluent(address: str, topic: str, group: str, partitions: int, mode: str) -> None:
    import confluent_kafka

    conf: dict[str, Any] = {"bootstrap.servers": address, "group.id": group, "auto.offset.reset": "earliest"}
    if mode != "auto":
        conf["enable.auto.commit"] = False
    c = confluent_kafka.Consumer(conf)
    c.assign([confluent_kafka.TopicPartition(topic, p) for p in range(partitions)])
    while True:
        if mode == "auto":
            msg = c.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            eid = ce_id_kafka(msg.headers())
            with handling(msg):
                handle(eid)
            say(f"E {eid}")
            continue
        batch = [m for m in c.consume(20, 0.2) if m.error() is None]
        if batch:
            batch_loop(batch, [ce_id_kafka(m.headers()) for m in batch], mode,
                       lambda: c.commit(asynchronous=False))


def consume_aiokafka(address: str, topic: str, group: str, partitions: int, mode: str) -> None:
    import aiokafka

    async def run() -> None:
        c = aiokafka.AIOKafkaConsumer(bootstrap_servers=address, group_id=group, auto_offset_reset="earliest",
                                      enable_auto_commit=(mode == "auto"))
        await c.start()
        c.assign([aiokafka.TopicPartition(topic, p) for p in range(partitions)])
        if mode == "auto":
            async for msg in c:
                eid = ce_id_kafka(msg.headers)
                with handling(msg):
                    handle(eid)
                    await asyncio.sleep(0)  # a handler that awaits: the auto-commit task may run
                say(f"E {eid}")
        while True:
            batches = await c.getmany(timeout_ms=200, max_records=20)
            batch = [r for rs in batches.values() for r in rs]
            if not batch:
                continue
            ids = [ce_id_kafka(r.headers) for r in batch]
            if mode == "commit":
                for eid in ids:
                    handle(eid)
                await c.commit()
                say(*(f"E {eid}" for eid in ids), "C")
            elif mode == "nocommit":
                for r, eid in zip(batch, ids):
                    with handling(r):
                        handle(eid)
                    say(f"E {eid}")
                say("W")
                await asyncio.sleep(3600)
            else:
                for r in batch:
                    defer(r)
                await c.commit()
                say("C")
                for r, eid in zip(batch, ids):
                    with handling(r):
                        handle(eid)
                    say(f"E {eid}")

    asyncio.run(run())


def consume_pika(address: str, queue: str, mode: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(address))
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.basic_qos(prefetch_count=20)

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        eid = str((properties.headers or {}).get("ce_id", "?"))
        if isinstance(eid, bytes):
            eid = eid.decode()
        if mode == "nocommit":
            with handling(method):
                handle(eid)
            say(f"E {eid}", "W")
            time.sleep(3600)
        handle(eid)
        channel.basic_ack(method.delivery_tag)  # the ack says it is handled (sent after the round's checkpoint)
        say(f"E {eid}")

    if mode == "commit":  # basic_get, handled implicitly, acked (the ack settles it): then wait
        while True:
            method, properties, _body = ch.basic_get(queue)
            if method is None:
                conn.sleep(0.05)
                continue
            eid = str((properties.headers or {}).get("ce_id", "?"))
            handle(eid)
            ch.basic_ack(method.delivery_tag)
            say(f"E {eid}", "C")
            time.sleep(3600)
    ch.basic_consume(queue, on_message)
    ch.start_consuming()


def consume_pika_async(address: str, queue: str, mode: str, adapter: str) -> None:
    """pika's asynchronous adapters (``pika-select``: SelectConnection, ``pika-asyncio``:
    AsyncioConnection, ``pika-tornado``: TornadoConnection): the callback handles and acks (``auto``), acks then stops
    taking work (``commit``: ``C`` once the I/O loop had a turn to send the ack), or
    handles one message without acking (``nocommit``). Deliveries after a stop are
    deferred: not handled, not acked (redelivered after the kill)."""
    import pika

    stopped = False

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        nonlocal stopped
        if stopped:
            defer(method)
            return
        eid = str((properties.headers or {}).get("ce_id", "?"))
        if mode == "nocommit":
            with handling(method):
                handle(eid)
            say(f"E {eid}", "W")
            stopped = True
            return
        handle(eid)
        channel.basic_ack(method.delivery_tag)  # inside the data round: sent after the round's checkpoint
        say(f"E {eid}")
        if mode == "commit":
            stopped = True
            conn.ioloop.call_later(0.05, lambda: say("C"))

    def on_channel(ch: Any) -> None:
        ch.queue_declare(queue, callback=lambda _f: ch.basic_qos(
            prefetch_count=20, callback=lambda _g: ch.basic_consume(queue, on_message)))

    def on_open(connection: Any) -> None:
        connection.channel(on_open_callback=on_channel)

    params = pika.URLParameters(address)
    if adapter == "pika-select":
        conn: Any = pika.SelectConnection(params, on_open_callback=on_open)
        conn.ioloop.start()
    elif adapter == "pika-tornado":
        from pika.adapters.tornado_connection import TornadoConnection

        conn = TornadoConnection(params, on_open_callback=on_open)
        conn.ioloop.start()
    else:
        from pika.adapters.asyncio_connection import AsyncioConnection

        loop = asyncio.new_event_loop()
        conn = AsyncioConnection(params, on_open_callback=on_open, custom_ioloop=loop)
        loop.run_forever()


def main(argv: list[str]) -> None:
    role = argv[0]
    if role == "produce":
        client, address, topic, tag, n = argv[1:6]
        produce(client, address, topic, tag, int(n))
    elif role == "consume":
        client, address, topic, group, partitions, mode = argv[1:7]
        say("READY")
        if client == "kafka-python":
            consume_kafka_python(address, topic, group, int(partitions), mode)
        elif client == "confluent-kafka":
            consume_confluent(address, topic, group, int(partitions), mode)
        elif client == "aiokafka":
            consume_aiokafka(address, topic, group, int(partitions), mode)
        elif client == "pika":
            consume_pika(address, topic, mode)
        else:
            consume_pika_async(address, topic, mode, client)
    else:  # replay: the trail at start does the work; exit flushes it
        runtime = commerce_observe.current()
        assert runtime is not None
        runtime.flush(30_000)
        say("REPLAYED")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Per-message CPU cost of instrumented Kafka and RabbitMQ produce and consume, side by side.

    python benchmarks/messaging.py --bootstrap 127.0.0.1:9092 [-n 20000] [--rounds 3]
    python benchmarks/messaging.py --clients aiokafka,pika --amqp amqp://guest:guest@127.0.0.1:5672/

``--clients`` picks from kafka-python, confluent-kafka, aiokafka and pika (default:
kafka-python,confluent-kafka); pika talks to the RabbitMQ at ``--amqp`` (default: the
``COMMERCE_OBSERVE_TEST_RABBITMQ_URL`` environment variable), the others to the
Kafka at ``--bootstrap``.

Variants, in ONE process against the REAL broker, each round in turn (in reverse
order every other round):

* ``none``    — the client alone (commerce_observe installed, its messaging wrappers off);
* ``contrib`` — OpenTelemetry contrib's instrumentor for that client (kafka-python,
  confluent-kafka, aiokafka, pika) on the same tracer provider and export pipeline;
* ``ours``    — commerce_observe: span, W3C + b3 + Elastic headers, six
  CloudEvents headers, sequence, and a MessageFact per stage to a hub listener.

Cost is ``time.process_time()`` (all threads: the client's I/O thread, where acks
end producer spans, the export pipeline's threads and the audit writer's) divided by
messages; each phase's window closes after ``Runtime.flush()`` has exported every
span and written every audit record of the phase, in all variants. The audit trail
uses the product's default sink (``--audit-sink auto``: a topic on the Kafka broker
in use, through librdkafka; SQLite for pika) unless told otherwise, and it is the
crash-safe trail (docs/audit.md): each HANDLED record journaled to the spool as it
happens, a checkpoint before every commit, ack and producer ``flush``. Every client
runs at its default commit pattern: auto-commit for the three Kafka consumers (for
confluent-kafka the wrapper then stores offsets itself, once their records are
durable), an ack per message in the pika callback (held and sent per dispatch
round, after one checkpoint). Produce
is measured from the first ``send`` to the end of ``flush`` so every span is
ended inside the window; consume iterates N records with ``for msg in consumer``
from a fresh group (``async for`` on aiokafka: both instrumentations trace its
``getone``). aiokafka runs one event loop per client call and one task per phase,
timed inside the task after the producer / consumer has started and before it stops.

pika publishes N messages with ``basic_publish`` on a ``BlockingChannel`` to a
fresh queue (non-durable, not auto-deleted), publisher confirms OFF — the default,
and with them on every variant would wait a broker round trip per message alike.
Consume starts once the broker counts all N: a ``basic_consume`` callback that
acks each message and stops the loop after N (both instrumentations trace
callbacks and the ``consume()`` generator; with a callback both see handling end).
Contrib pika decorates the ``BlockingChannel`` and its inner ``Channel`` alike, so
it opens two PRODUCER spans per publish; that is what its users get, and counted.

Broker round trips are in all variants alike, so the
*overhead* column (variant minus ``none``) is the instrumentation's own cost; the
last column compares overheads, ours / contrib. Median of ``--rounds``.

The closing ``floor`` lines put both in proportion: the CPU of one bare SDK span
(``start_span`` + ``end`` through the same export pipeline, no Kafka, no headers)
with contrib's four attributes and with ours' eleven — what any instrumentation
pays before it does anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import commerce_observe
from commerce_observe.agent.export.memory import InMemoryExporter
from commerce_observe.agent.messaging import MessageFact
from commerce_observe.store.kafka_io import subscribe_when_known

OURS = ("kafka_python", "confluent_kafka", "aiokafka", "pika")
_TMP = tempfile.mkdtemp(prefix="bench-messaging-")


class _Null(InMemoryExporter):
    """Accepts and forgets: export cost without memory growth."""

    def export(self, batch: Any) -> bool:
        return True


_PROPAGATORS = ""
_AUDIT_SINK = "auto"


def _install(ours: bool) -> Any:
    commerce_observe.shutdown()
    env = {"COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS": "" if ours else ",".join(OURS),
           "OTEL_SERVICE_NAME": "bench",
           # the audit trail stays on (part of what ours costs): the product's default sink
           # (``auto``: a topic on the broker in use, SQLite for RabbitMQ) unless
           # --audit-sink says otherwise; files outside the working tree
           "COMMERCE_OBSERVE_AUDIT_SINK": _AUDIT_SINK, "COMMERCE_OBSERVE_AUDIT_TOPIC": "bench-audit",
           "COMMERCE_OBSERVE_AUDIT_PATH": os.path.join(_TMP, "audit.sqlite"),
           "COMMERCE_OBSERVE_SPOOL_DIR": os.path.join(_TMP, "spool")}
    if ours and _PROPAGATORS:
        env["OTEL_PROPAGATORS"] = _PROPAGATORS
    runtime = commerce_observe.install(exporters=[_Null()], env=env)
    assert runtime is not None
    runtime.hub.subscribe(MessageFact, lambda fact: None)
    return runtime


_CONTRIB = {
    "kafka-python": ("opentelemetry.instrumentation.kafka", "KafkaInstrumentor"),
    "confluent-kafka": ("opentelemetry.instrumentation.confluent_kafka", "ConfluentKafkaInstrumentor"),
    "aiokafka": ("opentelemetry.instrumentation.aiokafka", "AIOKafkaInstrumentor"),
    "pika": ("opentelemetry.instrumentation.pika", "PikaInstrumentor"),
}


def _contrib(client: str, runtime: Any) -> Callable[[], None]:
    module, name = _CONTRIB[client]
    Contrib = getattr(importlib.import_module(module), name)
    from opentelemetry import propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    # What a contrib user has: OpenTelemetry's default propagators (W3C trace context
    # and baggage, one header), not the all-formats propagator our install() sets.
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    instrumentor = Contrib()
    instrumentor.instrument(tracer_provider=runtime.tracer_provider, skip_dep_check=True)
    return lambda: instrumentor.uninstrument()


def _cpu(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    fn()
    return _since(start, n)


def _since(start: float, n: int) -> float:
    """CPU nanoseconds per message since ``start`` (a ``time.process_time()``), once the
    runtime has delivered every span and audit record of the phase: background work
    still queued at the end of a phase belongs to it."""
    runtime = commerce_observe.current()
    if runtime is not None:
        runtime.flush(60_000)
    return (time.process_time() - start) * 1e9 / n


def _kafka_python(bootstrap: str, n: int, topic: str) -> tuple[float, float]:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    producer.send(topic, b"warm").get(timeout=30)
    payload = b"x" * 200

    def produce() -> None:
        for i in range(n):
            producer.send(topic, payload, key=str(i % 64).encode())
        producer.flush(60)

    produce_ns = _cpu(produce, n)
    producer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id="b-" + uuid.uuid4().hex,
                                   auto_offset_reset="earliest", consumer_timeout_ms=10000, max_poll_records=2000)
    subscribe_when_known(consumer, [topic])

    def consume() -> None:
        seen = 0
        for _ in consumer:
            seen += 1
            if seen == n:
                break
        if seen < n:
            raise RuntimeError(f"kafka-python consumed {seen} of {n} messages from {topic} (consumer_timeout_ms passed)")

    consume_ns = _cpu(consume, n)
    consumer.close()
    return produce_ns, consume_ns


def _confluent(bootstrap: str, n: int, topic: str) -> tuple[float, float]:
    import confluent_kafka

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    payload = b"x" * 200

    def produce() -> None:
        for i in range(n):
            producer.produce(topic, payload, key=str(i % 64).encode())
            if i % 1000 == 0:
                producer.poll(0)
        if left := producer.flush(60):
            raise RuntimeError(f"confluent-kafka: {left} of {n} messages to {topic} not delivered after flush(60)")

    produce_ns = _cpu(produce, n)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "b-" + uuid.uuid4().hex,
                                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])

    def consume() -> None:
        seen, deadline = 0, time.monotonic() + 60
        while seen < n and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                seen += 1
        if seen < n:
            raise RuntimeError(f"confluent-kafka consumed {seen} of {n} messages from {topic} in 60 s")

    consume_ns = _cpu(consume, n)
    consumer.close()
    return produce_ns, consume_ns


def _aiokafka(bootstrap: str, n: int, topic: str) -> tuple[float, float]:
    import aiokafka

    payload = b"x" * 200

    # One coroutine (one task) per phase, timed inside it: client start and stop stay
    # outside the window and run in the task that used the client, as in an application.
    async def produce() -> float:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"warm")
            start = time.process_time()
            # What a throughput-minded application does: ``send`` only buffers (its future
            # resolves on the broker's ack), so N sends then one ``flush``; awaiting each
            # future (``send_and_wait``) would make it a round trip per message.
            for i in range(n):
                await producer.send(topic, payload, key=str(i % 64).encode())
            await producer.flush()
            return _since(start, n)
        finally:
            await producer.stop()

    async def consume() -> float:
        consumer = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="b-" + uuid.uuid4().hex,
                                             auto_offset_reset="earliest", max_poll_records=2000)
        await consumer.start()
        try:
            start, seen = time.process_time(), 0
            async for _ in consumer:
                seen += 1
                if seen == n:
                    break
            return _since(start, n)
        finally:
            await consumer.stop()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(produce()), loop.run_until_complete(asyncio.wait_for(consume(), 60))
    finally:
        loop.close()


def _pika(url: str, n: int, queue: str) -> tuple[float, float]:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()  # after contrib's instrument(): it wraps channels as they are opened
        channel.queue_declare(queue, durable=False, auto_delete=False)
        payload = b"x" * 200

        def produce() -> None:
            for _ in range(n):
                channel.basic_publish("", queue, payload)

        produce_ns = _cpu(produce, n)
        deadline = time.monotonic() + 60
        while channel.queue_declare(queue, passive=True).method.message_count < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ did not count {n} messages in {queue}")
            connection.sleep(0.05)
        channel.basic_qos(prefetch_count=1000)
        seen = 0

        def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            nonlocal seen
            ch.basic_ack(method.delivery_tag)
            seen += 1
            if seen == n:
                ch.stop_consuming()

        def consume() -> None:
            channel.basic_consume(queue, on_message)
            channel.start_consuming()

        consume_ns = _cpu(consume, n)
        channel.queue_delete(queue)
    finally:
        connection.close()
    return produce_ns, consume_ns


def _floor(n: int, attributes: int) -> float:
    """CPU per bare span (start + end, same pipeline) carrying ``attributes`` string attributes."""
    from opentelemetry.trace import SpanKind

    runtime = _install(False)
    try:
        tracer = runtime.tracer_provider.get_tracer("bench.floor")
        attrs = {f"messaging.attr{i}": "value" for i in range(attributes)}

        def spans() -> None:
            for _ in range(n):
                tracer.start_span("send bench", kind=SpanKind.PRODUCER, attributes=attrs).end()

        spans()  # warm
        return _cpu(spans, n)
    finally:
        commerce_observe.shutdown()


CLIENTS: dict[str, Callable[[str, int, str], tuple[float, float]]] = {
    "kafka-python": _kafka_python, "confluent-kafka": _confluent, "aiokafka": _aiokafka, "pika": _pika}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--amqp", help="RabbitMQ URL (pika)",
                        default=os.environ.get("COMMERCE_OBSERVE_TEST_RABBITMQ_URL", "amqp://127.0.0.1:5672/"))
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="kafka-python,confluent-kafka",
                        help="comma-separated: " + ", ".join(CLIENTS))
    parser.add_argument("--propagators", default="",
                        help="OTEL_PROPAGATORS for our variant (default: all formats), e.g. tracecontext")
    parser.add_argument("--audit-sink", default="auto", choices=("auto", "kafka", "sqlite", "none"),
                        help="COMMERCE_OBSERVE_AUDIT_SINK for every variant (default: auto, the product default)")
    args = parser.parse_args()
    print(f"{'client':16} {'op':8} {'variant':8} {'ns/msg':>9} {'overhead':>9} {'ours/contrib':>12}")
    global _PROPAGATORS, _AUDIT_SINK
    _PROPAGATORS = args.propagators
    _AUDIT_SINK = args.audit_sink
    for client in args.clients.split(","):
        results: dict[str, list[tuple[float, float]]] = {"none": [], "contrib": [], "ours": []}
        for round_ in range(args.rounds):
            for variant in results if round_ % 2 == 0 else reversed(results):
                runtime = _install(variant == "ours")
                undo = _contrib(client, runtime) if variant == "contrib" else (lambda: None)
                try:
                    topic = f"bench-{variant}-{uuid.uuid4().hex[:8]}"
                    address = args.amqp if client == "pika" else args.bootstrap
                    results[variant].append(CLIENTS[client](address, args.n, topic))
                finally:
                    undo()
                    commerce_observe.shutdown()
        for op, index in (("produce", 0), ("consume", 1)):
            cost = {v: statistics.median(r[index] for r in rs) for v, rs in results.items()}
            base = cost["none"]
            for variant in results:
                over = cost[variant] - base
                ratio = f"{over / (cost['contrib'] - base):.2f}" if variant == "ours" and cost["contrib"] > base else ""
                print(f"{client:16} {op:8} {variant:8} {cost[variant]:9.0f} {over:9.0f} {ratio:>12}")
    for attributes in (4, 11):
        floor = statistics.median(_floor(min(args.n, 5000), attributes) for _ in range(args.rounds))
        print(f"{'floor':16} {'span':8} {f'{attributes} attr':8} {floor:9.0f}")


if __name__ == "__main__":
    main()

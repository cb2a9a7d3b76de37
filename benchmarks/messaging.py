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
next column compares overheads, ours / contrib. Median of ``--rounds``. The right
half repeats the three columns for the CPU of the application's thread alone
(``time.thread_time()`` around its loop, before the final flush): what the user's
produce or consume loop pays, without the client's I/O threads, the export pipeline
and the audit writer.

CPU time moves by tens of percent on a machine shared with other work, so the run
ends with the steadier figure: **instructions** per message, counted by callgrind
(``--instructions N``, default 2000 messages per phase; 0 skips it; needs valgrind,
its ``callgrind.h`` and ``cc``, see ``_callgrind.py``). The script runs itself twice
more under callgrind, at once, one round after a warm-up of the bare client: once
counting every thread of the process (the window closes after the flush, as above)
and once only the main thread, the one running the application's loop. Counts
repeat within about 1 % whatever the load; they leave out time in the kernel (system
calls, fsync) and callgrind slows the process ~50x, which changes how records are
batched a little. Every wait for the broker is 20 times longer there.

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
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _callgrind  # noqa: E402  (benchmarks/ is not a package)

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
#: Multiplies every wait for the broker: callgrind runs the process some 50 times slower.
_PATIENCE = 1.0


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


class Cost(NamedTuple):
    """One phase's cost per message: CPU of the whole process (every thread), and of
    the thread that ran the application's loop (what the user's produce or consume
    loop pays)."""

    process: float
    app: float


#: "client|variant" of the phase being measured: names its callgrind windows.
_LABEL = ""


class _Window:
    """A measured phase, opened just before the application's loop.

    Process CPU runs until the runtime has delivered every span and audit record of
    the phase (background work still queued at the end of a phase belongs to it);
    the application thread's CPU stops when its loop ends (``runtime.flush`` only
    waits). Under callgrind (``--instructions``) the same two points end windows
    ``LABEL|op|loop`` and ``LABEL|op|flush``; the mark here discards what came before.
    """

    def __init__(self, op: str) -> None:
        self.op = op
        _callgrind.mark(f"{_LABEL}|{op}|before")
        self.process = time.process_time()
        self.thread = time.thread_time()

    def stop(self, n: int) -> Cost:
        app = time.thread_time() - self.thread
        _callgrind.mark(f"{_LABEL}|{self.op}|loop")
        runtime = commerce_observe.current()
        if runtime is not None:
            runtime.flush(int(60_000 * _PATIENCE))
        process = time.process_time() - self.process
        _callgrind.mark(f"{_LABEL}|{self.op}|flush")
        return Cost(process * 1e9 / n, app * 1e9 / n)


def _cpu(fn: Callable[[], None], n: int, op: str) -> Cost:
    window = _Window(op)
    fn()
    return window.stop(n)


def _kafka_python(bootstrap: str, n: int, topic: str) -> tuple[Cost, Cost]:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    producer.send(topic, b"warm").get(timeout=30)
    payload = b"x" * 200

    def produce() -> None:
        for i in range(n):
            producer.send(topic, payload, key=str(i % 64).encode())
        producer.flush(60 * _PATIENCE)

    produce_ns = _cpu(produce, n, "produce")
    producer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id="b-" + uuid.uuid4().hex,
                                   auto_offset_reset="earliest", consumer_timeout_ms=int(10000 * _PATIENCE), max_poll_records=2000)
    subscribe_when_known(consumer, [topic])

    def consume() -> None:
        seen = 0
        for _ in consumer:
            seen += 1
            if seen == n:
                break
        if seen < n:
            raise RuntimeError(f"kafka-python consumed {seen} of {n} messages from {topic} (consumer_timeout_ms passed)")

    consume_ns = _cpu(consume, n, "consume")
    consumer.close()
    return produce_ns, consume_ns


def _confluent(bootstrap: str, n: int, topic: str) -> tuple[Cost, Cost]:
    import confluent_kafka

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    payload = b"x" * 200

    def produce() -> None:
        for i in range(n):
            producer.produce(topic, payload, key=str(i % 64).encode())
            if i % 1000 == 0:
                producer.poll(0)
        if left := producer.flush(60 * _PATIENCE):
            raise RuntimeError(f"confluent-kafka: {left} of {n} messages to {topic} not delivered after flush")

    produce_ns = _cpu(produce, n, "produce")
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "b-" + uuid.uuid4().hex,
                                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])

    def consume() -> None:
        seen, deadline = 0, time.monotonic() + 60 * _PATIENCE
        while seen < n and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                seen += 1
        if seen < n:
            raise RuntimeError(f"confluent-kafka consumed {seen} of {n} messages from {topic} in {60 * _PATIENCE:.0f} s")

    consume_ns = _cpu(consume, n, "consume")
    consumer.close()
    return produce_ns, consume_ns


def _aiokafka(bootstrap: str, n: int, topic: str) -> tuple[Cost, Cost]:
    import aiokafka

    payload = b"x" * 200

    # One coroutine (one task) per phase, timed inside it: client start and stop stay
    # outside the window and run in the task that used the client, as in an application.
    async def produce() -> Cost:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"warm")
            window = _Window("produce")
            # What a throughput-minded application does: ``send`` only buffers (its future
            # resolves on the broker's ack), so N sends then one ``flush``; awaiting each
            # future (``send_and_wait``) would make it a round trip per message.
            for i in range(n):
                await producer.send(topic, payload, key=str(i % 64).encode())
            await producer.flush()
            return window.stop(n)
        finally:
            await producer.stop()

    async def consume() -> Cost:
        consumer = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="b-" + uuid.uuid4().hex,
                                             auto_offset_reset="earliest", max_poll_records=2000)
        await consumer.start()
        try:
            window, seen = _Window("consume"), 0
            async for _ in consumer:
                seen += 1
                if seen == n:
                    break
            return window.stop(n)
        finally:
            await consumer.stop()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(produce()), loop.run_until_complete(asyncio.wait_for(consume(), 60 * _PATIENCE))
    finally:
        loop.close()


def _pika(url: str, n: int, queue: str) -> tuple[Cost, Cost]:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()  # after contrib's instrument(): it wraps channels as they are opened
        channel.queue_declare(queue, durable=False, auto_delete=False)
        payload = b"x" * 200

        def produce() -> None:
            for _ in range(n):
                channel.basic_publish("", queue, payload)

        produce_ns = _cpu(produce, n, "produce")
        deadline = time.monotonic() + 60 * _PATIENCE
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

        consume_ns = _cpu(consume, n, "consume")
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
        return _cpu(spans, n, "floor").process
    finally:
        commerce_observe.shutdown()


CLIENTS: dict[str, Callable[[str, int, str], tuple[Cost, Cost]]] = {
    "kafka-python": _kafka_python, "confluent-kafka": _confluent, "aiokafka": _aiokafka, "pika": _pika}


VARIANTS = ("none", "contrib", "ours")
Results = dict[str, list[tuple[Cost, Cost]]]


def _measure(client: str, address: str, n: int, rounds: int, label: str = "") -> Results:
    """Every variant of ``client`` once per round (in reverse order every other round)."""
    global _LABEL
    results: Results = {v: [] for v in VARIANTS}
    for round_ in range(rounds):
        for variant in VARIANTS if round_ % 2 == 0 else reversed(VARIANTS):
            _LABEL = f"{label or client}|{variant}"
            runtime = _install(variant == "ours")
            undo = _contrib(client, runtime) if variant == "contrib" else (lambda: None)
            try:
                results[variant].append(CLIENTS[client](address, n, f"bench-{variant}-{uuid.uuid4().hex[:8]}"))
            finally:
                undo()
                commerce_observe.shutdown()
    return results


def _columns(cost: dict[str, float], variant: str, width: int) -> str:
    """``cost`` of ``variant``, its overhead over ``none`` and, for ours, overhead ours / contrib."""
    base = cost["none"]
    over = cost[variant] - base
    ratio = f"{over / (cost['contrib'] - base):.2f}" if variant == "ours" and cost["contrib"] > base else ""
    return f"{cost[variant]:{width}.0f} {over:{width}.0f} {ratio:>12}"


def _print_cpu(client: str, results: Results) -> None:
    for op, index in (("produce", 0), ("consume", 1)):
        process = {v: statistics.median(r[index].process for r in rs) for v, rs in results.items()}
        app = {v: statistics.median(r[index].app for r in rs) for v, rs in results.items()}
        for variant in VARIANTS:
            print(f"{client:16} {op:8} {variant:8} {_columns(process, variant, 9)}   {_columns(app, variant, 10)}")


def _count_child(args: argparse.Namespace) -> None:
    """Under callgrind: one warm-up of the bare client, then each variant once. A client
    that fails is reported on stderr and its windows are missing; the others go on."""
    global _PATIENCE
    _PATIENCE = 20.0
    for client in args.clients.split(","):
        address = args.amqp if client == "pika" else args.bootstrap
        try:
            _measure(client, address, min(args.n, 200), 1, label="warm")  # imports, first-use paths
            _measure(client, address, args.n, 1)
        except Exception:
            traceback.print_exc()


def _counts(args: argparse.Namespace) -> None:
    """Instructions per message of every window, all threads and the application's thread."""
    from concurrent.futures import ThreadPoolExecutor

    why = _callgrind.unavailable()
    if why is not None:
        print(f"instruction counts skipped: {why}")
        return
    _callgrind.prepare()
    out = tempfile.mkdtemp(prefix="callgrind-", dir=_TMP)
    argv = [os.path.abspath(__file__), "--count-child", "--clients", args.clients, "-n", str(args.instructions),
            "--bootstrap", args.bootstrap, "--amqp", args.amqp, f"--propagators={args.propagators}",
            "--audit-sink", args.audit_sink]
    with ThreadPoolExecutor(2) as pool:  # counts do not depend on the load: both at once
        every, main_thread = pool.map(lambda threads: _callgrind.run(argv, threads, out), ("all", "main"))
    n = args.instructions
    print(f"\ninstructions per message (callgrind, -n {n}, one round after a warm-up; profiles in {out}):")
    print(f"{'client':16} {'op':8} {'variant':8} {'Ir/msg':>9} {'overhead':>9} {'ours/contrib':>12}   "
          f"{'app Ir/msg':>10} {'overhead':>10} {'ours/contrib':>12}")
    for client in args.clients.split(","):
        for op in ("produce", "consume"):
            try:
                total = {v: (every[f"{client}|{v}|{op}|loop"] + every[f"{client}|{v}|{op}|flush"]) / n
                         for v in VARIANTS}
                app = {v: main_thread[f"{client}|{v}|{op}|loop"] / n for v in VARIANTS}
            except KeyError as missing:
                print(f"{client:16} {op:8} window {missing} not found in the callgrind dumps")
                continue
            for variant in VARIANTS:
                print(f"{client:16} {op:8} {variant:8} {_columns(total, variant, 9)}   {_columns(app, variant, 10)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--amqp", help="RabbitMQ URL (pika)",
                        default=os.environ.get("COMMERCE_OBSERVE_TEST_RABBITMQ_URL", "amqp://127.0.0.1:5672/"))
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3, help="CPU-time rounds (0: instruction counts only)")
    parser.add_argument("--clients", default="kafka-python,confluent-kafka",
                        help="comma-separated: " + ", ".join(CLIENTS))
    parser.add_argument("--propagators", default="",
                        help="OTEL_PROPAGATORS for our variant (default: all formats), e.g. tracecontext")
    parser.add_argument("--audit-sink", default="auto", choices=("auto", "kafka", "sqlite", "none"),
                        help="COMMERCE_OBSERVE_AUDIT_SINK for every variant (default: auto, the product default)")
    parser.add_argument("--instructions", type=int, default=2000, metavar="N",
                        help="also count instructions per message under callgrind, N messages per phase "
                             "(0: skip; needs valgrind, its callgrind.h and cc)")
    parser.add_argument("--count-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _PROPAGATORS, _AUDIT_SINK
    _PROPAGATORS = args.propagators
    _AUDIT_SINK = args.audit_sink
    if args.count_child:
        _count_child(args)
        return
    if args.rounds:
        print(f"{'client':16} {'op':8} {'variant':8} {'ns/msg':>9} {'overhead':>9} {'ours/contrib':>12}   "
              f"{'app ns/msg':>10} {'overhead':>10} {'ours/contrib':>12}")
        for client in args.clients.split(","):
            address = args.amqp if client == "pika" else args.bootstrap
            _print_cpu(client, _measure(client, address, args.n, args.rounds))
        for attributes in (4, 11):
            floor = statistics.median(_floor(min(args.n, 5000), attributes) for _ in range(args.rounds))
            print(f"{'floor':16} {'span':8} {f'{attributes} attr':8} {floor:9.0f}")
    if args.instructions:
        _counts(args)


if __name__ == "__main__":
    main()

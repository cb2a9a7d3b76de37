"""What the crash-safe audit trail costs a pika ``SelectConnection`` consumer.

    python benchmarks/pika_async.py [--amqp URL] [-n 5000] [--rounds 3] [--prefetch 1,100]

A ``basic_consume`` callback that acks each message (the ack inside the callback:
the default pattern), on ``SelectConnection``, against the REAL RabbitMQ at
``--amqp`` (default ``COMMERCE_OBSERVE_TEST_RABBITMQ_URL``). Variants in ONE process,
each round in turn (reversed every other round): ``none`` (commerce_observe
installed, its messaging wrappers off), ``ours`` (span, HANDLED record journaled,
one checkpoint - an fsync of the journal - at the end of every socket read that
carried acks; the trail on the product's SQLite sink for RabbitMQ).

Printed per prefetch window: CPU per message (``time.process_time()``, all threads,
until the runtime flushed every span and record), wall time per message, and the
checkpoints per 1,000 messages (``ours``): counted, so repeatable under load, unlike
the times. Median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import commerce_observe  # noqa: E402
from commerce_observe.agent.export.memory import InMemoryExporter  # noqa: E402
from commerce_observe.agent.messaging.facts import Checkpoint  # noqa: E402
from tests.support.pika_async import ack_all  # noqa: E402

_TMP = tempfile.mkdtemp(prefix="bench-pika-async-")


class _Null(InMemoryExporter):
    def export(self, batch: Any) -> bool:
        return True


def _install(ours: bool) -> Any:
    commerce_observe.shutdown()
    env = {"COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS": "" if ours else "pika", "OTEL_SERVICE_NAME": "bench",
           "COMMERCE_OBSERVE_AUDIT_SINK": "sqlite", "COMMERCE_OBSERVE_AUDIT_PATH": os.path.join(_TMP, "audit.sqlite"),
           "COMMERCE_OBSERVE_SPOOL_DIR": os.path.join(_TMP, "spool")}
    runtime = commerce_observe.install(exporters=[_Null()], env=env)
    assert runtime is not None
    return runtime


def _fill(url: str, queue: str, n: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=False, auto_delete=False)
    for _ in range(n):
        channel.basic_publish("", queue, b"x" * 200)
    while channel.queue_declare(queue, passive=True).method.message_count < n:
        connection.sleep(0.05)
    connection.close()


def _consume(url: str, queue: str, n: int, prefetch: int) -> tuple[float, float]:
    """(CPU s, wall s) to handle and ack ``n`` messages of ``queue``."""
    times: dict[str, float] = {}
    acked = ack_all("select", url, queue, n, prefetch, linger_s=0.0, timeout_s=600,
                    started=lambda: times.update(cpu=time.process_time(), wall=time.perf_counter()))
    runtime = commerce_observe.current()
    if runtime is not None:
        runtime.flush(60_000)
    if acked != n:
        raise RuntimeError(f"handled {acked} of {n}")
    return time.process_time() - times["cpu"], time.perf_counter() - times["wall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp", default=os.environ.get("COMMERCE_OBSERVE_TEST_RABBITMQ_URL", "amqp://127.0.0.1:5672/"))
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefetch", default="1,100")
    args = parser.parse_args()
    print(f"{'prefetch':>8} {'variant':8} {'CPU µs/msg':>11} {'wall µs/msg':>12} {'checkpoints/1000':>17}")
    for prefetch in (int(p) for p in args.prefetch.split(",")):
        results: dict[str, list[tuple[float, float, int]]] = {"none": [], "ours": []}
        for round_ in range(args.rounds):
            for variant in results if round_ % 2 == 0 else reversed(results):
                queue = f"bench-async-{uuid.uuid4().hex[:8]}"
                _install(False)
                _fill(args.amqp, queue, args.n)
                runtime = _install(variant == "ours")
                checkpoints = [0]
                runtime.hub.subscribe(Checkpoint, lambda _cp: checkpoints.__setitem__(0, checkpoints[0] + 1))
                try:
                    cpu, wall = _consume(args.amqp, queue, args.n, prefetch)
                finally:
                    commerce_observe.shutdown()
                results[variant].append((cpu, wall, checkpoints[0]))
                cleanup = pika.BlockingConnection(pika.URLParameters(args.amqp))
                cleanup.channel().queue_delete(queue)
                cleanup.close()
        for variant, rs in results.items():
            cpu = statistics.median(r[0] for r in rs) / args.n * 1e6
            wall = statistics.median(r[1] for r in rs) / args.n * 1e6
            cps = statistics.median(r[2] for r in rs) * 1000 / args.n
            print(f"{prefetch:8d} {variant:8} {cpu:11.1f} {wall:12.1f} {cps:17.1f}")


if __name__ == "__main__":
    main()

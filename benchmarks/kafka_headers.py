"""What kafka-python itself spends on record headers, with no instrumentation at all.

    .venv/bin/python benchmarks/kafka_headers.py [--bootstrap HOST:PORT] [-n 20000] [--rounds 3]

kafka-python encodes and decodes every header in pure Python (varints, a UTF-8 key,
a size estimate per header on send). The contrib instrumentors write one header
(``traceparent``); ours write the six CloudEvents ``ce_*`` headers (the event id and
the per-producer sequence ride there) and, by default, ``b3`` and
``elasticapmtraceparent`` for Zipkin and Elastic peers: nine. This benchmark sends and
reads the same 200-byte messages with exactly those header lists (values as ours
writes them) through a bare ``KafkaProducer`` and ``KafkaConsumer``, so the part of
``benchmarks/messaging.py``'s kafka-python figures that comes from the wire format,
not from tracing or the audit trail, is measured on its own: CPU per message of the
application thread (``thread_time``) and of the process (``process_time``, the
client's I/O thread included), the median of the rounds, each list once per round
in rotating order, against one header in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

import kafka
import kafka.errors

_TRACEPARENT = ("traceparent", b"00-184ba4de21217e126db43d20316b2645-1bfbaf065d5cf565-01")
_CE = [("ce_id", b"d3fd45b974109c9322e92e5d82136b4e"), ("ce_type", b"commerce.message"),
       ("ce_source", b"/bench/kafka-python-producer-1-6a8f26a2"), ("ce_specversion", b"1.0"),
       ("ce_time", b"2026-12-07T13:34:01.217827Z"), ("ce_sequence", b"00000000000000000001")]
_PEERS = [("b3", b"184ba4de21217e126db43d20316b2645-1bfbaf065d5cf565-1"),
          ("elasticapmtraceparent", b"\x00\x00\x18K\xa4\xde!!~\x12m\xb4= 1k&E\x01\x1b\xfb\xaf\x06]\\\xf5e\x02\x01")]
LISTS: dict[str, list[tuple[str, bytes]]] = {
    "none": [],
    "contrib (traceparent)": [_TRACEPARENT],
    "ours, tracecontext only": _CE + [_TRACEPARENT],
    "ours, default": _CE + [_TRACEPARENT] + _PEERS,
}


def one(bootstrap: str, n: int, headers: list[tuple[str, bytes]]) -> tuple[float, float, float, float]:
    """(produce app, produce process, consume app, consume process) ns per message."""
    topic = "hdr-" + uuid.uuid4().hex[:10]
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    producer.send(topic, b"warm").get(timeout=30)
    payload = b"x" * 200
    a0, p0 = time.thread_time(), time.process_time()
    for i in range(n):
        producer.send(topic, payload, key=str(i % 64).encode(), headers=list(headers))
    a1 = time.thread_time()
    producer.flush(60)
    p1 = time.process_time()
    producer.close()
    consumer = kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="g-" + topic,
                                   auto_offset_reset="earliest", consumer_timeout_ms=10_000, max_poll_records=2000)
    records = iter(consumer)
    next(records)  # the warm-up message: connected, assigned, fetching
    seen = 0
    c0, q0 = time.thread_time(), time.process_time()
    for _ in records:
        seen += 1
        if seen == n:
            break
    c1, q1 = time.thread_time(), time.process_time()
    consumer.close()
    if seen < n:
        raise SystemExit(f"kafka_headers: read {seen} of {n} messages from {topic}")
    per = 1e9 / n
    return (a1 - a0) * per, (p1 - p0) * per, (c1 - c0) * per, (q1 - q0) * per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default=os.environ.get("COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("-n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.n < 1 or args.rounds < 1:
        ap.error("-n and --rounds must be at least 1")
    names = list(LISTS)
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    try:
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                rows[name].append(one(args.bootstrap, args.n, LISTS[name]))
    except kafka.errors.KafkaError as exc:
        raise SystemExit(f"kafka_headers: Kafka at {args.bootstrap}: {exc}") from None
    med = {name: [statistics.median(col) for col in zip(*rs)] for name, rs in rows.items()}
    base = med["contrib (traceparent)"]
    print(f"kafka-python {kafka.__version__}, no instrumentation, {args.n} messages of 200 bytes, "
          f"median of {args.rounds} rounds; ns per message (extra over one traceparent header)")
    print(f"{'headers':28} {'n':>2} {'produce app':>18} {'produce process':>18} {'consume app':>18} {'consume process':>18}")
    for name in names:
        cells = " ".join(f"{v:8.0f} ({v - b:+7.0f})" for v, b in zip(med[name], base))
        print(f"{name:28} {len(LISTS[name]):>2} {cells}")


if __name__ == "__main__":
    main()

"""Monitoring figures: shipper throughput (SQLite, Elasticsearch) and dashboard query latency.

    python benchmarks/monitoring.py throughput [--events 200000] [--elasticsearch URL]
    python benchmarks/monitoring.py queries [--sizes 1000000,3000000,10000000] [--db PATH]

``throughput`` measures what one shipper process does per polled batch: decode
the JSON message values and write the documents (idempotent create by
``event.id``), in batches of 5,000 messages; Kafka fetching is left out (the
broker is not the bottleneck here). Events are domain events; an order brings
one document per line on top.

``queries`` grows one embedded store to each size (domain events spread over 7
days, inserted in big transactions through the same trigger-fed rollups) and
times the dashboard's whole summary for the last hour and for all 7 days. Ids
are sequential here to keep generation fast; the throughput run uses random ids.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commerce_observe.agent.events.model import DomainEvent, EventType, LineItem  # noqa: E402
from commerce_observe.store import documents as d  # noqa: E402
from commerce_observe.store.kafka_io import decode  # noqa: E402
from commerce_observe.store.overview import summary  # noqa: E402
from commerce_observe.store.queries import TimeRange  # noqa: E402
from commerce_observe.store.sqlite_schema import COLUMNS  # noqa: E402
from commerce_observe.store.sqlite_store import SqliteStore  # noqa: E402
from commerce_observe.store.store import EventStore  # noqa: E402

PRODUCTS = [f"sku-{i:04d}" for i in range(500)]
REASONS = ("declined", "insufficient_funds", "fraud_suspected", "gateway_timeout")
METHODS = ("card", "paypal", "sepa")
CURRENCIES = ("EUR", "USD")
SPAN_MIN = 7 * 24 * 60
T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def domain_events(n: int, seed: int = 1) -> list[DomainEvent]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        at = T0 + timedelta(seconds=rnd.randrange(0, 3600))
        kind = rnd.random()
        if kind < 0.4:
            items = tuple(LineItem(rnd.choice(PRODUCTS), rnd.randint(1, 3), Decimal(rnd.randint(100, 5000)) / 100)
                          for _ in range(rnd.randint(1, 2)))
            out.append(DomainEvent(EventType.ORDER_CREATED, order_id=f"o{i}", items=items, currency=rnd.choice(CURRENCIES),
                                   occurred_at=at, event_id=uuid.uuid4().hex))
        elif kind < 0.85:
            out.append(DomainEvent(EventType.PAYMENT_AUTHORIZED, payment_id=f"p{i}", payment_method=rnd.choice(METHODS),
                                   occurred_at=at, event_id=uuid.uuid4().hex))
        else:
            out.append(DomainEvent(EventType.PAYMENT_FAILED, payment_id=f"p{i}", payment_method=rnd.choice(METHODS),
                                   reason=rnd.choice(REASONS), occurred_at=at, event_id=uuid.uuid4().hex))
    return out


def ship(store: EventStore, messages: list[bytes], batch: int = 5000) -> float:
    started = time.perf_counter()
    for i in range(0, len(messages), batch):
        docs = [doc for value in messages[i:i + batch] for doc in decode("commerce-observe.events", value)]
        store.write(docs)
    return time.perf_counter() - started


def throughput(args: argparse.Namespace) -> None:
    events = domain_events(args.events)
    messages = [json.dumps(doc, separators=(",", ":")).encode() for e in events for doc in d.event_documents(e, "bench")]
    print(f"{len(events):,} domain events = {len(messages):,} documents")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(os.path.join(tmp, "bench.db"))
        secs = ship(store, messages)
        again = ship(store, messages[: len(messages) // 5])
        print(f"SQLite:        {len(events) / secs:>10,.0f} events/s  {len(messages) / secs:>10,.0f} docs/s"
              f"  (redelivery of 20%: {len(messages) // 5 / again:,.0f} docs/s, all counted as duplicates)")
    if args.elasticsearch:
        from commerce_observe.store.es_store import ElasticsearchStore

        es = ElasticsearchStore(args.elasticsearch, data_stream=f"logs-commerce.events-bench{uuid.uuid4().hex[:6]}",
                                batch_docs=2000, max_in_flight=2)
        secs = ship(es, messages)
        es.refresh()
        print(f"Elasticsearch: {len(events) / secs:>10,.0f} events/s  {len(messages) / secs:>10,.0f} docs/s"
              f"  (bulk 2,000 docs, 2 in flight, data stream {es.data_stream})")
        es.close()


def rows(start: int, count: int, seed: int) -> list[tuple[object, ...]]:
    """Store rows for events start..start+count (orders bring item rows), time-ordered over 7 days."""
    rnd = random.Random(seed)
    base = int(T0.timestamp() * 1000)
    total_ms = SPAN_MIN * 60_000
    out: list[tuple[object, ...]] = []
    for i in range(start, start + count):
        ts = base + i * total_ms // 10_000_000 + rnd.randrange(1000)
        kind = rnd.random()
        if kind < 0.4:
            cur = CURRENCIES[i & 1]
            amount = 0
            for n in range(1 + (i % 3 == 0)):
                qty, price = 1 + i % 3, 100 + (i * 7 + n) % 4900
                amount += qty * price * 10
                out.append((f"e{i:011d}.{n}", ts, "item", "order.item", cur, None, None, None,
                            PRODUCTS[(i * 31 + n) % 500], qty, None, None, f"e{i:011d}", None, f"o{i}", None, None, None))
            out.append((f"e{i:011d}", ts, "event", "order.created", cur, None, None, amount, None, None, None, None,
                        f"e{i:011d}", "order.created", f"o{i}", None, None, None))
        elif kind < 0.85:
            out.append((f"e{i:011d}", ts, "event", "payment.authorized", None, METHODS[i % 3], None, None, None, None,
                        None, None, f"e{i:011d}", "payment.authorized", None, f"p{i}", None, None))
        else:
            out.append((f"e{i:011d}", ts, "event", "payment.failed", None, METHODS[i % 3], REASONS[i % 4], None, None,
                        None, None, None, f"e{i:011d}", "payment.failed", None, f"p{i}", None, None))
    width = len(COLUMNS)  # the columns written above, then the ones events leave empty (series, score, body)
    return [row + (None,) * (width - len(row)) for row in out]


def time_query(store: SqliteStore, r: TimeRange, bucket: int, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        summary(store, r, bucket_minutes=bucket)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def queries(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    path = args.db or os.path.join(tempfile.mkdtemp(), "bench.db")
    store = SqliteStore(path, cache_mb=512)
    have, previous = 0, 0
    base = int(T0.timestamp() * 1000)
    for size in sizes:
        started = time.perf_counter()
        while have < size:
            step = min(200_000, size - have)
            store.write_rows(rows(have, step, have))
            have += step
        load_s = time.perf_counter() - started
        end_ms = base + (have - 1) * SPAN_MIN * 60_000 // 10_000_000
        last_hour = TimeRange(end_ms // 60_000 * 60_000 - 3_600_000, end_ms // 60_000 * 60_000 + 60_000)
        whole = TimeRange(base, end_ms // 60_000 * 60_000 + 60_000)
        print(f"{have:>11,} events  file {os.path.getsize(path) / 2**20:>6,.0f} MiB  "
              f"last hour {time_query(store, last_hour, 1):>7.1f} ms  "
              f"all {whole.minutes / 1440:.1f} days {time_query(store, whole, 60, 3):>8.1f} ms  "
              f"(inserted {(have - previous) / load_s:,.0f} events/s)")
        previous = have
    store.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--events", type=int, default=200_000)
    t.add_argument("--elasticsearch", default=os.environ.get("COMMERCE_OBSERVE_TEST_ELASTICSEARCH_URL"))
    q = sub.add_parser("queries")
    q.add_argument("--sizes", default="1000000,3000000,10000000")
    q.add_argument("--db", default=None)
    args = p.parse_args()
    throughput(args) if args.what == "throughput" else queries(args)


if __name__ == "__main__":
    main()

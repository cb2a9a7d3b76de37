"""``commerce-observe watch``: throughput of its loop on one core, alert latency, first-start learning.

Figures (each beside a baseline measured in the same run):

* ``audit``: audit records/s through the watch loop (SQLite audit file tailed, auditor,
  findings released per audit bucket, checkpoints), against the bare auditor fed the same
  records by ``read_sqlite`` (what ``commerce-observe audit --sqlite`` does). Target 50,000/s.
* ``events``: event documents/s through the loop on its Kafka path (JSON decoded, added up
  per bucket, buckets scored), from an in-memory source so the broker is not what is
  measured, against decoding and adding them up alone. Target 20,000/s.
* ``latency``: seconds from a bucket's close (the clock passing its end + lateness) to its
  alert received by a local webhook, with ``--products`` series scored in that bucket.
  Target < 5 s.
* ``learn``: first start, learning ``--days`` of hourly history for ``--products`` products
  from the embedded store (imported as aggregates), against reading the same history from
  the store alone. Target <= 60 s for 90 days x 10,000 products.

Run: ``python benchmarks/watch.py [audit|events|latency|learn|all] [--records N] [--events N]
[--products N] [--days N]``. The machine's other load shows in every figure: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from commerce_observe.agent.audit.record import encode  # noqa: E402
from commerce_observe.agent.audit.sinks import SqliteSink, read_sqlite  # noqa: E402
from commerce_observe.agent.messaging.facts import MessageFact, Stage  # noqa: E402
from commerce_observe.monitor.alerts import ManualClock, SystemClock, parse_config  # noqa: E402
from commerce_observe.monitor.audit.auditor import Auditor  # noqa: E402
from commerce_observe.monitor.watch.checkpoint import Checkpoints, WatchState  # noqa: E402
from commerce_observe.monitor.watch.loop import Inputs, Watch  # noqa: E402
from commerce_observe.monitor.watch.series import SeriesBuilder, StoreSeries  # noqa: E402
from commerce_observe.monitor.watch.settings import WatchSettings  # noqa: E402
from commerce_observe.store.aggregates import order_aggregate, payment_aggregate  # noqa: E402
from commerce_observe.store.documents import Document, iso_ns  # noqa: E402
from commerce_observe.store.sqlite_store import SqliteStore  # noqa: E402

S = 1_000_000_000
MINUTE, HOUR = 60 * S, 3600 * S
T0 = 1_767_225_600 * S  # 2026-01-01T00:00Z


def _watch(tmp: str, settings: WatchSettings, clock: Any, *, start_ns: int, until_ns: int | None,
           source: Callable[[WatchState], Any] | None = None, rules: Any = None) -> Watch:
    store = SqliteStore(os.path.join(tmp, "store.db"))
    return Watch(settings, Inputs(store, StoreSeries(store, settings.bucket_s), os.path.join(tmp, "audit.sqlite"),
                                  source=source), Checkpoints(os.path.join(tmp, "state")), clock,
                 alert_config=rules, start_ns=start_ns, until_ns=until_ns)


# --- audit records -------------------------------------------------------------------------------

def bench_audit(records: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-watch-audit-")
    sink = SqliteSink(os.path.join(tmp, "audit.sqlite"))
    events = records // 3
    batch: list[bytes] = []
    for i in range(events):  # 1,000 events a second, each published, acked and handled; one in 1,000 lost
        at = T0 + i * 1_000_000
        eid = f"e{i:09d}"
        batch += [encode(MessageFact(Stage.PUBLISHED, "kafka", "orders", eid, "order.created", "checkout", i + 1,
                                     "ab" * 16, "cd" * 8, at)),
                  encode(MessageFact(Stage.ACKED, "kafka", "orders", eid, "order.created", "checkout", i + 1,
                                     "ab" * 16, "cd" * 8, at + 2_000_000, partition=0, offset=i))]
        if i % 1000 != 999:
            batch.append(encode(MessageFact(Stage.HANDLED, "kafka", "orders", eid, "order.created", "checkout", i + 1,
                                            "ab" * 16, "ef" * 8, at + 20_000_000, partition=0, offset=i,
                                            consumer_group="billing", published_ns=at)))
        if len(batch) >= 500:
            sink.write(batch)
            batch = []
    if batch:
        sink.write(batch)
    sink.close()
    n = sum(len(b) for b in read_sqlite(os.path.join(tmp, "audit.sqlite")))
    until = T0 + events * 1_000_000 + 120 * S

    t = time.process_time()
    a = Auditor()
    for b in read_sqlite(os.path.join(tmp, "audit.sqlite")):
        a.feed(b)
    bare_lost = sum(1 for f in a.finish(until) if f.kind.value == "LOST")
    bare = time.process_time() - t

    watch = _watch(tmp, WatchSettings(bucket_s=3600, min_history=72), SystemClock(), start_ns=T0, until_ns=until)
    t = time.process_time()
    watch.run()
    loop = time.process_time() - t
    lost = watch.state.audit.counts.get("LOST", 0)
    return {"records": n, "watch_records_per_s": round(n / loop), "auditor_alone_records_per_s": round(n / bare),
            "loop_over_auditor": round(loop / bare, 2), "lost_found": lost, "lost_found_bare": bare_lost}


# --- event documents -----------------------------------------------------------------------------

class MemorySource:
    """Kafka-shaped input from memory: JSON messages decoded per poll, as KafkaSource does."""

    def __init__(self, messages: list[bytes], per_poll: int = 5000) -> None:
        self.messages, self.per_poll, self.at = messages, per_poll, 0
        self.caught_up = False

    def poll(self, until_ns: int | None = None) -> tuple[list[bytes], list[Document]]:
        chunk = self.messages[self.at:self.at + self.per_poll]
        self.at += len(chunk)
        self.caught_up = self.at >= len(self.messages)
        return [], [json.loads(m) for m in chunk]

    def commit(self, offsets: dict[str, dict[int, int]], resume_ns: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


def _event_messages(n: int, products: int, seconds: int) -> list[bytes]:
    out = []
    for i in range(n):
        ts = iso_ns(T0 + (i * seconds * S) // n)
        if i % 2 == 0:
            doc: Document = {"@timestamp": ts, "event.id": f"o{i}", "commerce.record": "event",
                             "event.action": "order.created", "commerce.amount": 20.0, "commerce.currency": "EUR",
                             "commerce.product.ids": [f"sku-{i % products}"]}
        else:
            doc = {"@timestamp": ts, "event.id": f"p{i}", "commerce.record": "event", "event.action": "payment.authorized",
                   "commerce.payment.method": "card"}
        out.append(json.dumps(doc).encode())
    return out


def bench_events(n: int, products: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-watch-events-")
    messages = _event_messages(n, products, seconds=600)
    t = time.process_time()
    b = SeriesBuilder(60)
    for m in messages:
        b.add(json.loads(m))
    bare = time.process_time() - t
    watch = _watch(tmp, WatchSettings(bucket_s=60, min_history=5), SystemClock(), start_ns=T0,
                   until_ns=T0 + 600 * S, source=lambda state: MemorySource(messages))
    t = time.process_time()
    watch.run()
    loop = time.process_time() - t
    return {"events": n, "watch_events_per_s": round(n / loop), "decode_and_add_alone_per_s": round(n / bare),
            "loop_over_alone": round(loop / bare, 2), "buckets_scored": watch.state.counters.get("buckets_scored", 0)}


# --- bucket close to alert -----------------------------------------------------------------------

class Receiver:
    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.times: list[tuple[float, dict[str, Any]]] = []
        owner = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.times.append((time.perf_counter(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def bench_latency(products: int, rounds: int = 3) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-watch-latency-")
    store = SqliteStore(os.path.join(tmp, "store.db"))
    rng = np.random.default_rng(3)
    rates = np.full(products, 3.0)
    t1 = T0 + 120 * MINUTE
    spikes = {t1 + (2 + 3 * r) * MINUTE: f"sku-{r}" for r in range(rounds)}
    for m in range(-120, 3 * rounds + 2):
        start = t1 + m * MINUTE
        counts = rng.poisson(rates)
        if start in spikes:
            counts[int(spikes[start].split("-")[1])] += 60
        aggs = [order_aggregate(start // 1_000_000, 60, f"sku-{p}", int(c), int(c) * 20000, "EUR")
                for p, c in enumerate(counts) if c]
        aggs.append(payment_aggregate(start // 1_000_000, 60, "card", "payment.authorized", int(counts.sum())))
        store.write_aggregates(aggs)
    store.close()
    rx = Receiver()
    rules = parse_config({"bucket_seconds": 60, "rules": [{"type": "anomaly", "name": "spike", "series": "orders:sku-*",
                                                           "threshold": 75, "direction": "spike"}],
                          "notifiers": [{"type": "webhook", "url": rx.url}], "throttle": {"max": None}})
    clock = ManualClock((t1 + 30 * S) / S)
    settings = WatchSettings(bucket_s=60, min_history=30, lateness_s=1.0, poll_idle_s=0.2)
    watch = _watch(tmp, settings, clock, start_ns=t1, until_ns=None, rules=rules)
    runner = threading.Thread(target=watch.run, daemon=True)
    runner.start()
    delays = []
    for close_ns, sku in sorted(spikes.items()):
        clock.set((close_ns + 30 * S) / S)  # inside the spike bucket: everything before it scored
        while watch.state.next_bucket_ns < close_ns:
            time.sleep(0.01)
        seen = len(rx.times)
        t = time.perf_counter()
        clock.set((close_ns + MINUTE + settings.lateness_ns) / S)  # the bucket closes now
        while not any(a["rule"] == "spike" and sku in json.dumps(a["where"]) for _, b in rx.times[seen:]
                      for a in b["alerts"]):
            time.sleep(0.005)
            if time.perf_counter() - t > 60:
                raise RuntimeError(f"no alert for {sku} within 60 s")
        delays.append(next(at for at, b in rx.times[seen:] if sku in json.dumps(b)) - t)
    watch.stop()
    runner.join(30)
    return {"products": products, "close_to_alert_s": [round(x, 3) for x in delays],
            "median_s": round(float(np.median(delays)), 3), "poll_interval_s": settings.poll_idle_s}


# --- first-start learning ------------------------------------------------------------------------

def bench_learn(products: int, days: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-watch-learn-")
    store = SqliteStore(os.path.join(tmp, "store.db"))
    rng = np.random.default_rng(5)
    rates = 40.0 / np.arange(1, products + 1) ** 0.8  # a long tail: most products sell rarely
    hours = days * 24
    rows = 0
    t = time.perf_counter()
    for h in range(hours):
        ts = (T0 + h * HOUR) // 1_000_000
        counts = rng.poisson(rates * (0.4 + 0.6 * np.sin(np.pi * ((h % 24) / 24)) ** 2))
        nz = np.nonzero(counts)[0]
        aggs = [order_aggregate(ts, 3600, f"sku-{p}", int(counts[p]), int(counts[p]) * 20000, "EUR") for p in nz]
        total = int(counts.sum())
        aggs += [payment_aggregate(ts, 3600, "card", "payment.authorized", total - total // 20),
                 payment_aggregate(ts, 3600, "card", "payment.failed", total // 20)]
        store.write_aggregates(aggs)
        rows += len(aggs)
    setup = time.perf_counter() - t
    start = T0 + hours * HOUR
    series = StoreSeries(store, 3600)
    t, c = time.perf_counter(), time.process_time()
    read = sum(1 for lo in range(T0, start, 24 * HOUR) for _ in series.read(lo, min(start, lo + 24 * HOUR)))
    read_only, read_cpu = time.perf_counter() - t, time.process_time() - c
    settings = WatchSettings(bucket_s=3600, history_days=days + 1)
    t, c = time.perf_counter(), time.process_time()
    watch = _watch(tmp, settings, SystemClock(), start_ns=start, until_ns=start)  # first start: learns, saves
    learned, learned_cpu = time.perf_counter() - t, time.process_time() - c
    model = sum(p.stat().st_size for p in Path(tmp, "state").glob("models-*.npz"))
    return {"products": products, "days": days, "rows_in_store": rows, "store_setup_s": round(setup, 1),
            "buckets_learned": watch.state.learned_buckets, "series": len(watch.scorer.detector),
            "first_start_s": round(learned, 1), "first_start_cpu_s": round(learned_cpu, 1),
            "reading_history_alone_s": round(read_only, 1), "reading_history_alone_cpu_s": round(read_cpu, 1),
            "buckets_read": read, "model_file_mb": round(model / 2**20, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="all", choices=("audit", "events", "latency", "learn", "all"))
    p.add_argument("--records", type=int, default=600_000)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--days", type=int, default=90)
    args = p.parse_args()
    todo = ("audit", "events", "latency", "learn") if args.what == "all" else (args.what,)
    for name in todo:
        if name == "audit":
            out = bench_audit(args.records)
        elif name == "events":
            out = bench_events(args.events, min(args.products, 1000))
        elif name == "latency":
            out = bench_latency(args.products)
        else:
            out = bench_learn(args.products, args.days)
        print(json.dumps({name: out}), flush=True)


if __name__ == "__main__":
    main()

"""How fast `commerce-observe import` loads warehouse CSV history (the target: 1M rows a minute into SQLite).

Writes an orders CSV (hourly buckets x products, Berlin offsets) and a payments CSV
(hourly x methods, five reason columns), then imports each into a fresh SQLite
store through the command's own code (`import_file`), and reports rows per second
and rows per minute. Baselines measured in the same run, on the same file:

* `csv only`: reading the file with the csv module and nothing else (the floor);
* `documents`: the obvious implementation, one JSON-shaped document per aggregate
  through the generic `store.write(docs)` path (what an NDJSON import does).

The machine is shared (2 cores, other jobs): each report line also gives the CPU
seconds the import used (both of its threads), which the load does not inflate.

Also: the same import with `--bucket` given (no first pass to read the bucket), a
second import of the same file (everything already stored), and with
`--elasticsearch URL` the same CSVs into a fresh data stream (deleted afterwards).

    python benchmarks/import_speed.py [--rows 1000000] [--elasticsearch URL] [--es-rows 200000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from commerce_observe.monitor.importer.job import Options, import_file  # noqa: E402
from commerce_observe.monitor.importer.sample import REASONS  # noqa: E402
from commerce_observe.store.aggregates import expand, to_document  # noqa: E402
from commerce_observe.store.sqlite_store import SqliteStore  # noqa: E402
from commerce_observe.store.store import EventStore, open_store  # noqa: E402

START = datetime(2025, 9, 1, tzinfo=timezone.utc)
METHODS = ("card", "paypal", "klarna", "applepay", "sepa", "invoice")


def write_orders(path: str, rows: int, products: int = 2000) -> None:
    tz = ZoneInfo("Europe/Berlin")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("timestamp", "product_id", "orders", "revenue"))
        for i in range(rows):
            hour, p = divmod(i, products)
            stamp = (START + timedelta(hours=hour)).astimezone(tz).isoformat()
            w.writerow((stamp, f"sku-{p:05d}", 1 + (i * 7) % 13, f"{(i * 37) % 9000 / 10:.2f}"))


def write_payments(path: str, rows: int) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("timestamp", "method", "attempts", "failures", *REASONS))
        for i in range(rows):
            hour, m = divmod(i, len(METHODS))
            stamp = (START + timedelta(hours=hour)).isoformat()
            attempts = 50 + i % 400
            w.writerow((stamp, METHODS[m], attempts, attempts // 20, attempts // 50, attempts // 100, 0, "", 1))


Timing = tuple[float, float]  # (wall seconds, CPU seconds of the whole process: both import threads)


def clock() -> Timing:
    return time.perf_counter(), time.process_time()


def since(start: Timing) -> Timing:
    return time.perf_counter() - start[0], time.process_time() - start[1]


def csv_only(path: str) -> Timing:
    started = clock()
    with open(path, newline="") as fh:
        for _ in csv.reader(fh):
            pass
    return since(started)


def fresh_sqlite(directory: str) -> SqliteStore:
    return SqliteStore(os.path.join(directory, f"m-{uuid.uuid4().hex[:8]}.db"))


def timed_import(store: EventStore, path: str, options: Options) -> tuple[Timing, str]:
    started = clock()
    report = import_file(store, path, options, io.StringIO(), progress=False)
    return since(started), report.line()


def read_batches(path: str, bucket_s: int, size: int = 20_000) -> Iterator[tuple[str, list[Any]]]:
    """(kind, batch) as the importer reads them: aggregates (orders) or payment buckets."""
    from commerce_observe.monitor.importer import csv_layout, csv_rows
    from commerce_observe.monitor.importer.validation import Timestamps
    from commerce_observe.agent.privacy import Masker

    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        layout = csv_layout.layout_of(path, next(reader))
        tally, names = csv_rows.Tally(path), csv_rows.Names(Masker())
        batches: Iterator[list[Any]] = (
            csv_rows.order_batches(reader, layout, tally, Timestamps(), names, bucket_s, "EUR", size)
            if layout.kind == csv_layout.ORDERS
            else csv_rows.payment_batches(reader, layout, tally, Timestamps(), names, bucket_s, size))
        for batch in batches:
            yield layout.kind, batch


def documents_path(store: EventStore, path: str, bucket_s: int) -> Timing:
    """Baseline: the same aggregates, as documents through store.write."""
    started = clock()
    for kind, batch in read_batches(path, bucket_s):
        aggs = batch if kind == "orders" else [a for b in batch for a in expand(b)]
        store.write([to_document(a) for a in aggs])
    return since(started)


def aggregates_path(store: SqliteStore, path: str, bucket_s: int) -> Timing:
    """Baseline for payments: one stored aggregate per outcome and reason (the layout before payment buckets)."""
    started = clock()
    for _, batch in read_batches(path, bucket_s, 4_000):
        store.write_aggregates([a for b in batch for a in expand(b)])
    return since(started)


def rate(rows: int, t: Timing) -> str:
    wall, cpu = t
    return (f"{rows / wall:>9,.0f} rows/s = {rows / wall * 60 / 1e6:5.2f} M/min wall;"
            f" {rows / cpu:>9,.0f} rows per CPU-second = {rows / cpu * 60 / 1e6:5.2f} M/min")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="orders CSV rows")
    parser.add_argument("--payment-rows", type=int, default=200_000)
    parser.add_argument("--elasticsearch", metavar="URL")
    parser.add_argument("--es-rows", type=int, default=200_000, help="orders rows into Elasticsearch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        orders, payments = os.path.join(tmp, "orders.csv"), os.path.join(tmp, "payments.csv")
        write_orders(orders, args.rows)
        write_payments(payments, args.payment_rows)
        print(f"files: orders {args.rows:,} rows ({os.path.getsize(orders) / 2**20:.0f} MiB), "
              f"payments {args.payment_rows:,} rows ({os.path.getsize(payments) / 2**20:.0f} MiB)")
        for name, path, rows in (("orders", orders, args.rows), ("payments", payments, args.payment_rows)):
            floor = csv_only(path)
            store = fresh_sqlite(tmp)
            took, line = timed_import(store, path, Options())
            again, _ = timed_import(store, path, Options())
            given, _ = timed_import(fresh_sqlite(tmp), path, Options(bucket_s=3600))
            docs = documents_path(fresh_sqlite(tmp), path, 3600)
            print(f"\n{name} CSV into SQLite")
            print(f"  import (bucket read from the data) {rate(rows, took)}")
            print(f"  import, --bucket 1h given          {rate(rows, given)}")
            print(f"  import again (all already stored)  {rate(rows, again)}")
            print(f"  baseline: documents via write()    {rate(rows, docs)}")
            if name == "payments":
                aggs = aggregates_path(fresh_sqlite(tmp), path, 3600)
                print(f"  baseline: one aggregate a reason   {rate(rows, aggs)}  (buckets: x{aggs[1] / given[1]:.2f} less CPU)")
            print(f"  floor: csv module only             {rate(rows, floor)}")
            print(f"  import vs documents: x{docs[1] / took[1]:.2f} less CPU; import costs x{took[1] / floor[1]:.0f}"
                  " the CPU of reading the file alone")
            print(f"  report: {line}")
        if args.elasticsearch:
            es_orders = os.path.join(tmp, "es-orders.csv")
            write_orders(es_orders, args.es_rows)
            for name, path, rows in (("orders", es_orders, args.es_rows), ("payments", payments, args.payment_rows)):
                stream = f"logs-commerce.events-bench{uuid.uuid4().hex[:8]}"
                es = open_store(args.elasticsearch, data_stream=stream, max_in_flight=4)
                try:
                    took, line = timed_import(es, path, Options(bucket_s=3600))
                    print(f"\n{name} CSV into Elasticsearch: {rows / took[0]:,.0f} rows/s wall "
                          f"(this process used {took[1]:.1f} CPU s; the node's work is not counted)\n  report: {line}")
                finally:
                    http = es.http  # type: ignore[attr-defined]
                    if http.raw("DELETE", f"/_data_stream/{stream}")[0] != 200:  # no data stream module: an index
                        http.raw("DELETE", f"/{stream}")
                    es.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

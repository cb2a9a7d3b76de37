"""CPU per audit record through AuditWriter -> SqliteSink (or KafkaSink), old path vs current, same run.

    .venv/bin/python benchmarks/audit_writer.py [--facts 200000] [--rounds 3] [--out /tmp/co-audit-writer]
    .venv/bin/python benchmarks/audit_writer.py --sink kafka --bootstrap HOST:PORT [--facts 100000]

What is timed (``time.process_time``: CPU of every thread of the process) is
exactly the per-record cost the audit trail adds to a messaging service: the
hub listener ``on_fact`` on the application thread, then batching, line
encoding and the SQLite insert on the writer thread, up to ``flush()`` returning.
Building the :class:`MessageFact` objects is not timed (the messaging wrappers
build them for the hub whether or not the audit trail listens). The facts are a
Kafka-producer mix: a PUBLISHED and an ACKED fact per message, as
``benchmarks/messaging.py`` produces them. ``max_queue`` is raised so nothing is
dropped (a drop would make a run look cheaper); batch size (``--batch-size``) and
flush interval are the defaults.

"old" is a verbatim copy of the writer's listener/drain and the SQLite sink (a row
per line in table ``audit``, with its time index) before the hot-path rework, with
the per-fact encoder ``record.encode`` that the rework left as it was, kept here so
both are measured on the same machine in the same run;
each round runs both, alternating, on a fresh SQLite file each, and the best round
of each is reported. Both files are read back through ``read_sqlite`` (which reads
either layout): the stored lines must be byte-identical.

``--sink kafka`` measures the Kafka sink instead, with the current writer for both:
"old" is a verbatim copy of its per-line ``write`` (a message per line, keyed by
event id), "new" the sink as it is (a message per write and partition). Each run
writes a fresh topic (created, and the producer connected, before the timing; the
CPU of librdkafka's threads is counted, up to every delivery being acknowledged);
both topics are read back through ``read_kafka`` and must hold the same lines (as
sets: partitions interleave differently on reading), then deleted.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from commerce_observe._internal.selfstats import stats  # noqa: E402
from commerce_observe.agent.audit.kafka_sink import KafkaSink, read_kafka  # noqa: E402
from commerce_observe.agent.audit.record import encode  # noqa: E402
from commerce_observe.agent.audit.sinks import SinkUnavailable, SqliteSink, read_sqlite  # noqa: E402
from commerce_observe.agent.audit.writer import AuditWriter  # noqa: E402
from commerce_observe.agent.messaging.facts import MessageFact, Stage  # noqa: E402

# --- the old path, verbatim (writer.py / sinks.py before the rework) ----------------
# Its per-line encoder is record.encode, which the rework kept unchanged as the batch
# encoder's fallback, so the old writer below calls it rather than a copy of it.


class OldSqliteSink(SqliteSink):
    """Its own schema (a row per line, with the time index the old version had);
    only ``__init__`` and ``close`` come from :class:`SqliteSink`."""

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS audit ("
                         " id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, event_id BLOB NOT NULL, record BLOB NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ns)")
            self._conn = conn
        return self._conn

    def write(self, lines: Sequence[bytes]) -> None:
        rows = []
        for line in lines:
            f = line.split(b"\t", 3)
            rows.append((int(f[1]), f[2], line))
        try:
            with self._lock:
                conn = self._connect()
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO audit(time_ns, event_id, record) VALUES (?, ?, ?)", rows)
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise SinkUnavailable(f"sqlite {self.path}: {exc}", lines) from exc


class OldWriter(AuditWriter):
    def on_fact(self, fact: MessageFact) -> None:
        q = self._queue
        if len(q) >= self.max_queue:
            self.dropped += 1
            stats.record_failure("audit.dropped", "audit queue full (%d): record dropped", self.max_queue)
            return
        q.append(fact)
        if len(q) >= self.batch_size:
            self._wake.set()

    def _drain(self) -> None:
        q = self._queue
        self._maybe_replay()
        while q:
            facts = [q.popleft() for _ in range(min(self.batch_size, len(q)))]
            lines = [encode(f) for f in facts if f.event_id]
            if len(lines) != len(facts):
                stats.incr("audit.unidentified", len(facts) - len(lines))
            self._deliver(lines)


class OldKafkaSink(KafkaSink):
    """``KafkaSink.write`` before a message held a batch: a message per line, keyed by
    event id. The per-line loop verbatim; getting the producer and waiting for the
    deliveries are the sink's own (unchanged but for a failure's message)."""

    def write(self, lines: Sequence[bytes]) -> None:
        producer = self._ready(lines)
        produce, cb, topic = producer.produce, self._on_delivery, self.topic
        for line in lines:
            f = line.split(b"\t", 3)  # key: event id; timestamp: the record's own time (seek by time)
            while True:
                try:
                    produce(topic, line, f[2], on_delivery=cb, timestamp=int(f[1]) // 1_000_000)
                    break
                except BufferError:
                    producer.poll(0.05)
        self._await_delivery(producer, lines)


# --- the run ----------------------------------------------------------------------------

#: The writer's default batch size (facts per sink write).
BATCH: int = inspect.signature(AuditWriter).parameters["batch_size"].default


def make_facts(n: int) -> list[MessageFact]:
    """n facts: PUBLISHED then ACKED per message, as the Kafka producer wrapper emits them."""
    t0 = time.time_ns()
    out: list[MessageFact] = []
    for i in range(n // 2):
        eid = f"3f2b8c1e-0000-4000-8000-{i:012d}"
        trace, span = f"{i:032x}", f"{i:016x}"
        t = t0 + i * 1000
        out.append(MessageFact(Stage.PUBLISHED, "kafka", "commerce.orders", eid, "commerce.order.created",
                               "checkout-service", i, trace, span, t, order_id=f"ord-{i}"))
        out.append(MessageFact(Stage.ACKED, "kafka", "commerce.orders", eid, "commerce.order.created",
                               "checkout-service", i, trace, span, t + 900, partition=i % 12, offset=i // 12,
                               order_id=f"ord-{i}"))
    return out


def run_once(old: bool, facts: list[MessageFact], target: str, bootstrap: str | None = None,
             batch_size: int = BATCH) -> tuple[float, float]:
    """(CPU µs per record for all threads, CPU µs per record of the listener alone);
    ``target`` is the SQLite file, or with ``bootstrap`` the Kafka topic."""
    sink: SqliteSink | KafkaSink
    writer_cls = AuditWriter
    if bootstrap:
        sink = OldKafkaSink(bootstrap, target) if old else KafkaSink(bootstrap, target)
    else:
        for p in (target, target + "-wal", target + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        sink = OldSqliteSink(target) if old else SqliteSink(target)
        writer_cls = OldWriter if old else AuditWriter
    w = writer_cls(sink, max_queue=len(facts) + 1, batch_size=batch_size).start()
    sink.write([])  # open the connection / create the topic and the producer outside the timing
    on_fact = w.on_fact
    c0, t0 = time.process_time(), time.thread_time()
    for f in facts:
        on_fact(f)
    t1 = time.thread_time()
    ok = w.flush(120.0)
    c1 = time.process_time()
    w.close()
    assert ok and w.written == len(facts) and w.dropped == 0, (ok, w.written, w.dropped)
    return (c1 - c0) * 1e6 / len(facts), (t1 - t0) * 1e6 / len(facts)


def stored(path: str) -> list[bytes]:
    """The lines of either layout, as the auditor reads them."""
    return [line for batch in read_sqlite(path) for line in batch]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facts", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="/tmp/co-audit-writer")
    ap.add_argument("--sink", choices=("sqlite", "kafka"), default="sqlite")
    ap.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (with --sink kafka)")
    ap.add_argument("--batch-size", type=int, default=BATCH,
                    help=f"the writer's batch_size, for old and new alike (default {BATCH}, the writer's default)")
    a = ap.parse_args()
    if a.sink == "kafka" and not a.bootstrap:
        ap.error("--sink kafka needs --bootstrap")
    kafka = a.bootstrap if a.sink == "kafka" else None
    os.makedirs(a.out, exist_ok=True)
    facts = make_facts(a.facts)
    best: dict[str, tuple[float, float]] = {}
    targets: dict[str, list[str]] = {"old": [], "new": []}
    for r in range(a.rounds):
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            target = f"bench-audit-{name}-{uuid.uuid4().hex[:8]}" if kafka else os.path.join(a.out, f"{name}.sqlite")
            targets[name].append(target)
            total, listener = run_once(name == "old", facts, target, kafka, a.batch_size)
            print(f"round {r + 1} {name}: {total:6.2f} µs/record (all threads), listener {listener:5.3f} µs")
            if name not in best or total < best[name][0]:
                best[name] = (total, listener)
    if kafka:
        old_lines, new_lines = (sorted(x for b in read_kafka(kafka, targets[n][-1]) for x in b) for n in ("old", "new"))
        same = old_lines == new_lines and len(new_lines) == a.facts
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": kafka})  # kept referenced until the deletions are done
        for done in admin.delete_topics(targets["old"] + targets["new"]).values():
            done.result(30)
        what = "KafkaSink (acks=all, idempotent, lz4): old a message per line, new a message per write and partition"
    else:
        same = stored(os.path.join(a.out, "old.sqlite")) == stored(os.path.join(a.out, "new.sqlite"))
        what = "SqliteSink (WAL, synchronous=NORMAL)"
    print(f"\n{a.facts} facts, batch {a.batch_size}, {what}; best of {a.rounds}:")
    for name in ("old", "new"):
        total, listener = best[name]
        print(f"  {name}: {total:6.2f} µs CPU per record (all threads)   listener alone {listener:5.3f} µs")
    kept = "the same" if kafka else "byte-identical"
    print(f"  speed-up {best['old'][0] / best['new'][0]:.2f}x; stored lines {kept}: {same}")
    shutil.rmtree(a.out, ignore_errors=True)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()

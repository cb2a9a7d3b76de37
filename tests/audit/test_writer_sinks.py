"""Writer, SQLite sink and disk spool: nothing blocks, nothing silently lost, order kept."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from commerce_observe.agent.audit.record import decode, encode, encode_batch, is_valid, trail_gap_line, valid_lines
from commerce_observe.agent.audit.sinks import MemorySink, SinkUnavailable, SqliteSink, read_sqlite
from commerce_observe.agent.audit.spool import Spool, SpoolBusy
from commerce_observe.agent.audit.writer import AuditWriter
from commerce_observe.agent.messaging.facts import MessageFact, Stage


def fact(i: int, stage: Stage = Stage.PUBLISHED, eid: str | None = None, time_ns: int | None = None) -> MessageFact:
    return MessageFact(stage, "kafka", "orders", eid if eid is not None else f"e{i}", "order.created", "checkout", i,
                       "a" * 32, "b" * 16, 1_750_000_000_000_000_000 + i if time_ns is None else time_ns,
                       order_id=f"o{i}")


def ids(lines: Sequence[bytes]) -> list[str]:
    return [decode(x).event_id for x in lines]


def test_record_round_trip_escapes_tabs_and_newlines() -> None:
    f = MessageFact(Stage.HANDLE_FAILED, "kafka", "or\tders", "id\\1", "t", "s", 5, "a" * 32, "b" * 16, 9,
                    partition=2, offset=7, consumer_group="g", published_ns=3, error="line1\nline2\tx")
    r = decode(encode(f))
    assert (r.destination, r.event_id, r.error, r.role, r.partition, r.offset, r.published_ns) == ("or\tders", "id\\1", "line1\nline2\tx", "consumer", 2, 7, 3)


def test_batch_encoding_is_byte_for_byte_the_per_fact_encoding() -> None:
    """The writer's fast ``encode_batch`` keeps its own copy of the field order;
    ``encode`` is the reference (and its fallback for fields that need escaping)."""
    plain = [fact(i) for i in range(5)]
    sparse = MessageFact(Stage.ACKED, "rabbitmq", "ex/rk", "e-none", None, None, None, "a" * 32, "b" * 16, 7)
    full = MessageFact(Stage.HANDLED, "kafka", "orders", "e-full", "payment.failed", "pay", 0, "c" * 32, "d" * 16, 8,
                       partition=0, offset=0, consumer_group="", published_ns=0, order_id="o", payment_id="p",
                       error="")
    escaped = [
        MessageFact(Stage.HANDLE_FAILED, "kafka", "or\tders", "id\\1", "t", "s", 5, "a" * 32, "b" * 16, 9, error=e)
        for e in ("line1\nline2\tx", "cr\r", "back\\slash")
    ]
    unicode = MessageFact(Stage.PUBLISHED, "kafka", "bestellungen", "é-1", "Größe", "zahlung", 1, "a" * 32, "b" * 16, 10)
    batch = [*plain[:2], sparse, escaped[0], full, *escaped[1:], unicode, *plain[2:]]

    assert encode_batch(batch) == [encode(f) for f in batch]
    assert encode_batch([]) == []


def test_valid_lines_keeps_exactly_what_is_valid_keeps() -> None:
    """The replay's inlined check (``valid_lines``) and ``is_valid`` agree line by line."""
    good = encode(fact(1))
    lines = [good, trail_gap_line(1, 2, 3, "svc"), good[:40], good + b"\tx", b"Z" + good[1:], b"\0" * 10 + good,
             b"", b"\t" * 16, b"H" + b"\t" * 16, b"D" + b"\t" * 16, b"Q" + b"\t" * 16, good.replace(b"\t", b" ", 1),
             encode(fact(2, Stage.HANDLED)), encode(fact(3, Stage.SEND_FAILED))]
    assert valid_lines(lines) == [x for x in lines if is_valid(x)]
    assert len(valid_lines(lines)) == 6


def test_sqlite_sink_round_trip_and_from_time(tmp_path: Path) -> None:
    sink = SqliteSink(str(tmp_path / "a.sqlite"))
    sink.write([encode(fact(i)) for i in range(100)])
    sink.write([encode(fact(i)) for i in range(100, 150)])
    sink.close()
    assert ids([x for b in read_sqlite(str(tmp_path / "a.sqlite"), batch=7) for x in b]) == [f"e{i}" for i in range(150)]
    later = [x for b in read_sqlite(str(tmp_path / "a.sqlite"), from_ns=1_750_000_000_000_000_000 + 120) for x in b]
    assert ids(later) == [f"e{i}" for i in range(120, 150)]


def test_sqlite_from_time_bisects_ids_despite_disorder(tmp_path: Path) -> None:
    """Without a time index the start batch is found by bisecting ids; lines stored
    up to a minute late (several writer processes), and batches spanning longer than
    TIME_DISORDER_NS, must not move the first line read."""
    import random

    rng = random.Random(7)
    base = 1_750_000_000_000_000_000
    times = [base + i * 10**9 + rng.randrange(-60, 60) * 10**9 for i in range(5000)]  # 1 s apart, ±1 min
    lines = [encode(fact(i, time_ns=times[i])) for i in range(5000)]
    sink = SqliteSink(str(tmp_path / "t.sqlite"))
    for start in range(0, 5000, 500):  # a batch spans 500 s
        sink.write(lines[start:start + 500])
    sink.close()
    starts = [base - 10**12, base + 1234 * 10**9, base + 4990 * 10**9, base + 10**13]
    starts += [base + rng.randrange(-100, 5100) * 10**9 for _ in range(100)]
    for from_ns in starts:
        first = next((i for i, t in enumerate(times) if t >= from_ns), len(times))
        got = [x for b in read_sqlite(str(tmp_path / "t.sqlite"), from_ns=from_ns, batch=700) for x in b]
        assert got == lines[first:], from_ns


def test_sqlite_stores_one_row_per_write(tmp_path: Path) -> None:
    lines = [encode(fact(i)) for i in range(301)]
    sink = SqliteSink(str(tmp_path / "b.sqlite"))
    sink.write([])
    sink.write(lines[:300])
    sink.write(lines[300:])
    sink.close()
    conn = sqlite3.connect(str(tmp_path / "b.sqlite"))
    rows = conn.execute("SELECT time_ns, lines FROM audit_batch ORDER BY id").fetchall()
    conn.close()
    assert rows == [(1_750_000_000_000_000_000, b"\n".join(lines[:300])), (1_750_000_000_000_000_300, lines[300])]


def test_sqlite_sink_refusal_carries_the_lines(tmp_path: Path) -> None:
    lines = [encode(fact(i)) for i in range(3)]
    with pytest.raises(SinkUnavailable) as caught:
        SqliteSink(str(tmp_path / "missing-dir" / "c.sqlite")).write(lines)
    assert caught.value.lines == lines


def _old_version_file(path: str, lines: Sequence[bytes]) -> None:
    """A file as the previous version wrote it: a row per line in table ``audit``."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, event_id BLOB NOT NULL,"
                 " record BLOB NOT NULL)")
    conn.execute("CREATE INDEX audit_time ON audit(time_ns)")
    conn.executemany("INSERT INTO audit(time_ns, event_id, record) VALUES (?, ?, ?)",
                     [(int(x.split(b"\t")[1]), x.split(b"\t")[2], x) for x in lines])
    conn.commit()
    conn.close()


def test_sqlite_reads_and_appends_to_a_file_of_the_previous_version(tmp_path: Path) -> None:
    path = str(tmp_path / "old.sqlite")
    lines = [encode(fact(i)) for i in range(250)]
    _old_version_file(path, lines[:100])

    def read(from_ns: int = 0) -> list[bytes]:
        return [x for b in read_sqlite(path, from_ns=from_ns, batch=30) for x in b]

    assert read() == lines[:100]
    assert read(1_750_000_000_000_000_000 + 40) == lines[40:100]
    sink = SqliteSink(path)
    sink.write(lines[100:200])
    sink.close()
    sink = SqliteSink(path)  # a second connection appends to the same new table
    sink.write(lines[200:])
    sink.close()
    assert read() == lines
    assert read(1_750_000_000_000_000_000 + 40) == lines[40:]
    assert read(1_750_000_000_000_000_000 + 150) == lines[150:]
    assert read(1_750_000_000_000_000_000 + 250) == []


def test_read_sqlite_refuses_a_file_without_an_audit_table(tmp_path: Path) -> None:
    path = str(tmp_path / "other.sqlite")
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(sqlite3.OperationalError, match="no audit table"):
        list(read_sqlite(path))


def test_writer_delivers_in_order_and_skips_facts_without_id() -> None:
    sink = MemorySink()
    w = AuditWriter(sink, batch_size=64, flush_interval_s=0.05).start()
    for i in range(1000):
        w.on_fact(fact(i))
    w.on_fact(fact(5000, eid=""))
    assert w.flush(10)
    w.close()
    assert ids(sink.lines) == [f"e{i}" for i in range(1000)]


class SlowSink(MemorySink):
    def write(self, lines: Sequence[bytes]) -> None:
        time.sleep(0.2)
        super().write(lines)


def test_on_fact_never_blocks_and_counts_drops() -> None:
    w = AuditWriter(SlowSink(), max_queue=100, batch_size=50, flush_interval_s=0.01).start()
    t0 = time.perf_counter()
    for i in range(20_000):
        w.on_fact(fact(i))
    per_call = (time.perf_counter() - t0) / 20_000
    assert per_call < 50e-6, per_call
    assert w.dropped > 0
    w.flush(10)
    w.close()
    assert len(w.sink.lines) + w.dropped == 20_000  # type: ignore[attr-defined]


def test_sink_down_spools_then_replays_in_order(tmp_path: Path) -> None:
    sink = MemorySink()
    spool = Spool(str(tmp_path / "spool"), segment_bytes=4096)
    w = AuditWriter(sink, spool, batch_size=40, flush_interval_s=0.02, retry_interval_s=0.1).start()
    for i in range(100):
        w.on_fact(fact(i))
    w.flush(10)
    sink.down = True
    for i in range(100, 700):
        w.on_fact(fact(i))
    w.flush(10)
    assert w.spooled >= 600 and len(spool.segments()) > 1  # rotated
    sink.down = False
    for i in range(700, 800):
        w.on_fact(fact(i))
    deadline = time.monotonic() + 10
    while len(sink.lines) < 800 and time.monotonic() < deadline:
        w.flush(1)
    w.close()
    assert ids(sink.lines) == [f"e{i}" for i in range(800)]
    assert not Spool(str(tmp_path / "spool")).segments()


def test_journal_left_by_a_failed_shipping_is_retried_without_new_records(tmp_path: Path) -> None:
    """A consumer that goes idle right after its journal failed to ship: the retry
    still ships it (it used to wait for the next record, or the next process)."""
    sink = MemorySink()
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), flush_interval_s=0.02, retry_interval_s=0.1).start()
    sink.down = True
    for i in range(50):
        w.on_fact(fact(i, Stage.HANDLED))
    w.flush(1)  # the shipping is tried and fails
    assert not sink.lines and w.journaled == 50
    sink.down = False  # and nothing is reported from now on
    deadline = time.monotonic() + 10
    while len(sink.lines) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    w.close()
    assert ids(sink.lines) == [f"e{i}" for i in range(50)]


def test_spool_is_exclusive_ignores_torn_tail_and_resumes_from_cursor(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    spool = Spool(d)
    with pytest.raises(SpoolBusy):
        Spool(d)
    spool.append([encode(fact(i)) for i in range(10)])
    spool.close()
    seg = Path(d) / sorted(n for n in os.listdir(d) if n.startswith("seg-"))[0]
    with open(seg, "ab") as fh:
        fh.write(encode(fact(10))[:30])  # a write torn by a crash
    spool = Spool(d)
    assert ids([x for b in spool.read_all() for x in b]) == [f"e{i}" for i in range(10)]

    class FailAfter(MemorySink):
        def write(self, lines: Sequence[bytes]) -> None:
            if len(self.lines) >= 6:
                raise SinkUnavailable("down", lines)
            super().write(lines)

    sink = FailAfter()
    with pytest.raises(SinkUnavailable):
        spool.replay(sink, batch=3)
    again = MemorySink()
    assert spool.replay(again, batch=3) == 4
    assert ids(sink.lines + again.lines) == [f"e{i}" for i in range(10)]


def test_writer_replays_a_spool_left_by_an_earlier_run(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    old = Spool(d)
    old.append([encode(fact(i)) for i in range(5)])
    old.close()
    sink = MemorySink()
    w = AuditWriter(sink, Spool(d), flush_interval_s=0.02).start()
    w.on_fact(fact(5))
    deadline = time.monotonic() + 5
    while len(sink.lines) < 6 and time.monotonic() < deadline:
        w.flush(1)
    w.close()
    assert ids(sink.lines) == [f"e{i}" for i in range(6)]


def test_writer_survives_fork_in_child(tmp_path: Path) -> None:
    sink_path = str(tmp_path / "f.sqlite")
    w = AuditWriter(SqliteSink(sink_path), flush_interval_s=0.02).start()
    w.on_fact(fact(1))
    w.flush(5)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            w.sink = SqliteSink(sink_path)
            w.on_fact(fact(2))
            os._exit(0 if w.flush(5) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    w.close()
    assert ids([x for b in read_sqlite(sink_path) for x in b]) == ["e1", "e2"]
    assert threading.active_count() >= 1

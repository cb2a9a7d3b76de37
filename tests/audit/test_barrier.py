"""The writer's durability barrier (what a commit, ack or producer flush waits for)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.audit.sinks import MemorySink, SinkUnavailable
from commerce_observe.agent.audit.spool import Spool
from commerce_observe.agent.audit.writer import AuditWriter
from commerce_observe.agent.messaging.facts import Checkpoint, MessageFact, Stage


def fact(stage: Stage, i: int) -> MessageFact:
    return MessageFact(stage, "kafka", "orders", f"e{i}", "order.created", "/svc/p1", i, "a" * 32, "b" * 16,
                       time.time_ns(), 0, i, "billing" if stage is Stage.HANDLED else None)


def spooled(spool_dir: Path) -> list[bytes]:
    """Lines on disk now; an open segment ends in its reserved, still unwritten NUL bytes."""
    return sorted(line for seg in sorted(spool_dir.glob("seg-*.log"))
                  for line in seg.read_bytes().rstrip(b"\0").splitlines())


def test_consumer_records_are_on_disk_as_reported_and_a_barrier_adds_the_queued_producer_ones(tmp_path: Path) -> None:
    sink = MemorySink()
    # a round only when asked: nothing below is written by the writer thread on its own
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), flush_interval_s=3600).start()
    w.on_fact(fact(Stage.HANDLED, 1))
    assert [line[:1] for line in spooled(tmp_path / "spool")] == [b"H"]  # before any round or barrier
    w.on_fact(fact(Stage.PUBLISHED, 2))
    w.on_fact(fact(Stage.ACKED, 2))
    assert len(spooled(tmp_path / "spool")) == 1  # producer records wait in memory...
    cp = Checkpoint("kafka")
    w.on_checkpoint(cp)  # ...until a barrier
    assert sorted(line[:1] for line in spooled(tmp_path / "spool")) == [b"A", b"H", b"P"]
    assert cp.durable is not None and cp.durable()
    assert w.spool is not None and w.spool.durable == w.spool.appended == 3
    w.close(5)
    assert sorted(line[:1] for line in sink.lines) == [b"A", b"H", b"P"]  # shipped at close


class StuckSink(MemorySink):
    """A sink whose write hangs until released (a broker that stopped answering)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, lines: Sequence[bytes]) -> None:
        self.entered.set()
        self.release.wait(30)
        super().write(lines)


def test_a_barrier_never_waits_longer_than_its_bound_and_still_fsyncs_the_journal(tmp_path: Path) -> None:
    sink = StuckSink()
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), flush_interval_s=0.01, barrier_timeout_s=0.3).start()
    w.on_fact(fact(Stage.PUBLISHED, 1))
    assert sink.entered.wait(10)  # the writer thread is stuck in the sink with that record
    w.on_fact(fact(Stage.HANDLED, 2))
    started = time.monotonic()
    assert w.barrier() is False  # timed out waiting for the stuck write: counted, the commit proceeds
    assert time.monotonic() - started < 5
    assert w.spool is not None and w.spool.durable == w.spool.appended  # the consumer record is fsynced anyway
    sink.release.set()
    w.close(10)
    assert sorted(line[:1] for line in sink.lines) == [b"H", b"P"]


def test_a_durability_mark_turns_true_after_the_writers_next_round(tmp_path: Path) -> None:
    w = AuditWriter(MemorySink(), Spool(str(tmp_path / "spool")), flush_interval_s=0.05).start()
    w.on_fact(fact(Stage.HANDLED, 1))
    mark = w.durable_mark()
    deadline = time.monotonic() + 10
    while not mark() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mark()
    w.close(5)


class OffHostSink(MemorySink):
    """A sink whose lines survive this machine's crash, as the Kafka topic's (acks=all)."""

    outlives_host = True


class StuckOffHostSink(StuckSink):
    outlives_host = True


def fsynced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file fsynced from now on, by path (the real fsync still runs)."""
    paths: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return paths


def test_journal_shipped_off_host_is_not_fsynced_but_what_stays_here_is(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    synced = fsynced_paths(monkeypatch)
    spool = Spool(str(tmp_path / "spool"))
    sink = OffHostSink()
    spool.append_line(encode(fact(Stage.HANDLED, 1)))
    assert spool.replay(sink) == 1
    assert synced == [] and spool.durable == spool.appended == 1  # durable in the sink, never written here
    spool.append_line(encode(fact(Stage.HANDLED, 2)))
    sink.down = True
    with pytest.raises(SinkUnavailable):
        spool.replay(sink)
    assert len(synced) == 1 and spool.durable == spool.appended == 2  # it waits here for the sink: fsynced
    spool.append_line(encode(fact(Stage.HANDLED, 3)))
    local = MemorySink()  # SQLite and the like live on this host: the journal is fsynced before shipping
    assert spool.replay(local) == 2
    assert len(synced) == 2 and [line.split(b"\t")[2] for line in local.lines] == [b"e2", b"e3"]
    spool.close()


def test_a_barrier_while_the_journal_ships_fsyncs_the_closed_segment(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    synced = fsynced_paths(monkeypatch)
    sink = StuckOffHostSink()
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), flush_interval_s=0.01).start()
    w.on_fact(fact(Stage.HANDLED, 1))
    assert sink.entered.wait(10)  # the writer closed the segment (no fsync) and is stuck shipping it
    assert synced == []
    segment = next((tmp_path / "spool").glob("seg-*.log"))
    assert w.barrier() is True  # a commit now: the line is neither in the sink nor fsynced yet
    assert str(segment) in synced
    assert w.spool is not None and w.spool.durable == w.spool.appended == 1
    sink.release.set()
    w.close(10)
    assert [line[:1] for line in sink.lines] == [b"H"]


def test_a_barrier_fsyncs_the_segments_journal_lines_filled_since_the_last_one(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    synced = fsynced_paths(monkeypatch)
    spool = Spool(str(tmp_path / "spool"), segment_bytes=64)  # every line fills a segment of its own
    for i in range(3):
        spool.append_line(encode(fact(Stage.HANDLED, i)))
    segments = sorted(str(p) for p in (tmp_path / "spool").glob("seg-*.log"))
    assert len(segments) == 3
    spool.sync()
    assert sorted(synced) == segments and spool.durable == spool.appended == 3
    spool.close()


class CountingSink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    def write(self, lines: Sequence[bytes]) -> None:
        self.writes.append(len(lines))
        super().write(lines)


def test_the_journal_ships_in_writes_of_replay_batch_lines_not_batch_size(tmp_path: Path) -> None:
    sink = CountingSink()
    # a round only when asked: the journal below ships at close, in one round
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), batch_size=100, replay_batch=1000, flush_interval_s=3600).start()
    for i in range(1500):
        w.on_fact(fact(Stage.HANDLED, i))
    w.close(10)
    assert sink.writes == [1000, 500] and len(sink.lines) == 1500


def _wait(cond: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_the_journal_waits_for_an_off_host_sink_until_it_lingered_filled_a_batch_or_a_flush(tmp_path: Path) -> None:
    """Shipping rounds have a fixed cost: to the Kafka topic the journal ships once its
    oldest line waited ``journal_linger_s``, once ``replay_batch`` lines wait, or on a flush;
    to a sink on this host every round, as before."""
    sink = CountingSink()
    sink.outlives_host = True  # type: ignore[attr-defined]
    w = AuditWriter(sink, Spool(str(tmp_path / "spool")), flush_interval_s=0.01, batch_size=10, replay_batch=50,
                    journal_linger_s=0.5).start()
    start = time.monotonic()
    w.on_fact(fact(Stage.HANDLED, 0))
    assert _wait(lambda: sink.lines)
    assert time.monotonic() - start >= 0.5  # some forty rounds went by without shipping it
    assert sink.writes == [1]
    for i in range(1, 51):  # a full batch does not wait
        w.on_fact(fact(Stage.HANDLED, i))
    start = time.monotonic()
    assert _wait(lambda: len(sink.lines) == 51)
    assert time.monotonic() - start < 0.4
    w.on_fact(fact(Stage.HANDLED, 51))
    assert w.flush(5) and len(sink.lines) == 52  # a flush ships at once
    assert w.spool is not None and w.spool.durable == w.spool.appended == 52  # shipped, so durable
    w.close(5)

    local = CountingSink()  # SQLite and the like: fsynced and shipped every round
    w = AuditWriter(local, Spool(str(tmp_path / "spool2")), flush_interval_s=0.01, journal_linger_s=30).start()
    w.on_fact(fact(Stage.HANDLED, 0))
    assert _wait(lambda: local.lines, 2.0)
    w.close(5)

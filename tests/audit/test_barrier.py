"""The writer's durability barrier (what a commit, ack or producer flush waits for)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from commerce_observe.agent.audit.sinks import MemorySink
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

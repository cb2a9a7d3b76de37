"""The audit writer: a hub listener that never waits long, and a background shipper.

Two paths, by who can be killed at the worst moment:

* **Consumer records** (HANDLED, HANDLE_FAILED) are journaled at once by the thread
  that reported them: encoded and copied into the spool's mapped segment (no system
  call, about 1-2 µs). From then on a ``kill -9`` cannot lose them (they are in the kernel's page
  cache); an fsync makes them survive an OS crash too, and it is *grouped*: once per
  commit or ack (:meth:`AuditWriter.barrier`). A shipping round fsyncs them only when
  they stay here (the sink is down, or on this host like SQLite): lines the Kafka topic
  took are durable there, and a segment shipped and removed is never written to disk.
* **Producer records** (PUBLISHED, ACKED, SEND_FAILED) are appended to a bounded
  deque (a full queue drops the fact and counts ``audit.dropped``) and written by the
  background thread every ``flush_interval_s`` or ``batch_size`` facts (500: what is
  still queued at a barrier is encoded on the application's thread, so the queue is
  kept short), so a send
  pays no system call. Bound: a producer killed loses at most the records of its
  last ``flush_interval_s`` plus one write; ``flush()`` of the Kafka clients and
  process exit are barriers.

The background thread writes queued batches to the sink every round and ships the
journal (closed spool segments, oldest first); when the sink fails, batches go to the
spool and everything waits there until a retry every ``retry_interval_s`` replays it.
To a sink that outlives the host (the Kafka topic) the journal ships once
``replay_batch`` lines wait, or its oldest waiting line is ``journal_linger_s`` (1 s)
old, or a flush asks: a shipping round has a fixed cost (the segment closed and a new
one reserved and mapped, the cursor file, a Kafka message and its compression context
per partition, a wait for the acknowledgements) that a consumer of a few hundred
messages a second paid every 0.2 s round for a handful of lines. Lines waiting there
are already crash-safe (journaled, and fsynced by the barrier before any commit that
covers them); the wait only delays when the topic shows them. To a sink on this host
(SQLite) the journal still ships, fsynced, every round.

:meth:`barrier` ("about to commit or ack"): moves the queued producer facts into the
journal and fsyncs it, once, on the calling thread. Bounded: it waits at most
``barrier_timeout_s`` for a batch the background thread is writing; if the spool
cannot be written it counts ``audit.barrier_failed`` and returns, and the commit
proceeds.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.audit.record import encode_batch, encode_one
from commerce_observe.agent.audit.sinks import Sink, SinkUnavailable
from commerce_observe.agent.audit.spool import Spool
from commerce_observe.agent.messaging.facts import Checkpoint, MessageFact, Stage
from commerce_observe.agent.privacy.records import FactMasker, TextMasker

_JOURNALED = frozenset((Stage.HANDLED, Stage.HANDLE_FAILED))


class AuditWriter:
    def __init__(
        self,
        sink: Sink,
        spool: Spool | None = None,
        *,
        max_queue: int = 100_000,
        batch_size: int = 500,
        replay_batch: int = 4096,
        flush_interval_s: float = 0.2,
        retry_interval_s: float = 2.0,
        masker: TextMasker | None = None,
        barrier_timeout_s: float = 5.0,
        journal_linger_s: float = 1.0,
    ) -> None:
        self.sink = sink
        #: Facts are masked just before encoding (privacy.records): on the writer thread,
        #: or for a journaled consumer record on the thread that reported it.
        self.masker = masker
        self._mask: FactMasker | None = FactMasker(masker) if masker is not None else None
        self.spool = spool
        self.max_queue = max_queue
        self.batch_size = batch_size
        #: Lines per sink write when shipping the journal and the spool: a write to the
        #: Kafka sink costs ~0.4 ms of CPU and ~40 context switches whatever its size.
        self.replay_batch = max(batch_size, replay_batch)
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.barrier_timeout_s = barrier_timeout_s
        self.journal_linger_s = journal_linger_s
        #: The journal waits (see the module doc) only for a sink that outlives the host.
        self._journal_lingers = bool(getattr(sink, "outlives_host", False)) and journal_linger_s > 0
        #: When a round first found journal lines waiting to ship (None: none waiting), and
        #: how many lines the spool had taken when the journal last shipped.
        self._journal_since: float | None = None
        self._shipped_mark = 0
        #: A flush asked for everything to reach the sink: the next round ships at once.
        self._urgent = False
        self._queue: deque[MessageFact] = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        #: Held while facts are out of the queue and not yet in the sink or the spool.
        self._moving = threading.Lock()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._sink_down = False
        self._spool_pending = bool(spool)  # left over from an earlier run: replay it first
        self._next_retry = 0.0
        # A topic sink's own topic: facts about it are dropped, so the audit topic is
        # never audited, even if some client of it is instrumented.
        self._own_topic: str | None = getattr(sink, "topic", None) or None
        #: A sink chosen later (``SinkChosenLater``) says when it can take records.
        self._sink_ready: Callable[[], bool] = getattr(sink, "ready", _always)
        self.written = 0
        self.spooled = 0
        self.journaled = 0
        self.replayed = 0
        self.dropped = 0
        if hasattr(os, "register_at_fork"):
            after_fork_in_child(self._after_fork)

    # --- application threads -------------------------------------------------------

    def on_fact(self, fact: MessageFact) -> None:
        """Hub listener: journal a consumer record, queue a producer record; never wait.

        Queueing is one length check and a ``deque.append`` (atomic under the GIL). At
        or above ``batch_size`` the writer is woken only if its event is not already
        set: ``Event.set`` takes a lock, ``is_set`` reads a flag, and a set flag means
        the writer has not yet cleared it, so it will see this fact.
        """
        spool = self.spool
        if spool is not None and fact.stage in _JOURNALED:
            self._journal(spool, fact)
            return
        q = self._queue
        if len(q) < self.max_queue:
            q.append(fact)
            if len(q) >= self.batch_size and not self._wake.is_set():
                self._wake.set()
            return
        self.dropped += 1
        stats.record_failure("audit.dropped", "audit queue full (%d): record dropped", self.max_queue)

    def _journal(self, spool: Spool, fact: MessageFact) -> None:
        if not (fact.event_id or fact.offset is not None):  # the auditor keys a record by its id, or by offset
            stats.incr("audit.unidentified")
            return
        if fact.destination == self._own_topic and self._own_topic is not None:
            return
        if self._mask is not None:
            fact = self._mask(fact)
        try:
            spool.append_line(encode_one(fact))
            self.journaled += 1
        except OSError as exc:  # disk full, spool removed: the record goes the queued way
            stats.record_failure("audit.journal_failed", "audit journal %s not writable: %r", spool.directory, exc)
            if len(self._queue) < self.max_queue:
                self._queue.append(fact)

    def on_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Hub listener for :class:`Checkpoint`: a barrier now, or a way to tell later."""
        if checkpoint.wait:
            self.barrier()
            checkpoint.durable = _always
        else:
            checkpoint.durable = self.durable_mark()

    def barrier(self) -> bool:
        """Make every record reported so far durable (journal fsynced), on this thread.

        Producer facts still queued are encoded and journaled first; a batch the
        background thread is writing is waited for (at most ``barrier_timeout_s``).
        Returns False (counted) when that wait timed out or the spool failed.
        """
        spool = self.spool
        if spool is None:
            return self.flush(self.barrier_timeout_s)
        moved = self._moving.acquire(timeout=self.barrier_timeout_s)
        if not moved:  # the journal (consumer records) is still fsynced below
            stats.record_failure("audit.barrier_timeout", "audit barrier: the writer did not finish a write in %.1fs",
                                 self.barrier_timeout_s)
        try:
            if moved:
                lines = self._take_queued(len(self._queue))
                if lines:
                    spool.append(lines, sync=False)
                    self.journaled += len(lines)
            spool.sync()
            return moved
        except OSError as exc:
            stats.record_failure("audit.barrier_failed", "audit barrier: spool %s not writable: %r", spool.directory, exc)
            return False
        finally:
            if moved:
                self._moving.release()

    def durable_mark(self) -> Callable[[], bool]:
        """A cheap test, true once everything journaled up to now is durable (fsynced
        by a barrier or by the writer's next round, or shipped)."""
        spool = self.spool
        if spool is None:
            return _always
        mark = spool.appended
        return lambda: spool.durable >= mark

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> AuditWriter:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="commerce-observe-audit", daemon=True)
            self._thread.start()
        return self

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything reported so far reached the sink (or the spool, if it is down)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._idle.clear()
            self._urgent = True
            self._wake.set()
            if self._idle.wait(max(0.0, deadline - time.monotonic())) and not self._queue and not self._journal_pending():
                return True
        return not self._queue and not self._journal_pending()

    def _journal_pending(self) -> bool:
        return self.spool is not None and self.spool.pending and not self._sink_down

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.sink.close()
        if self.spool is not None:
            self.spool.close()

    def wake(self) -> None:
        """Start a round now (the sink may have become ready)."""
        self._wake.set()

    def _after_fork(self) -> None:
        # The child gets no copy of the parent's records (they are the parent's to write)
        # nor of its thread; it starts its own on the same sink settings.
        self._queue = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._moving = threading.Lock()
        if self._thread is not None:
            self._thread = None
            self.start()

    # --- background thread -------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._drain()
            except Exception as exc:  # never let the thread die: count and go on
                stats.record_failure("audit.writer_error", "audit writer failed: %r", exc)
            self._idle.set()

    def _take_queued(self, n: int) -> list[bytes]:
        """Pop ``n`` queued facts and encode the ones worth a record."""
        pop = self._queue.popleft
        facts = [pop() for _ in range(n)]
        ided = [f for f in facts if f.event_id or f.offset is not None]  # a record the auditor can key
        if len(ided) != len(facts):
            stats.incr("audit.unidentified", len(facts) - len(ided))
        own = self._own_topic
        if own is not None:
            ided = [f for f in ided if f.destination != own]
        mask = self._mask
        return encode_batch([mask(f) for f in ided] if mask is not None else ided)

    def _drain(self) -> None:
        q = self._queue
        if not self._sink_ready():  # no sink yet: everything waits in the spool
            self._hold(q)
            return
        while q:
            with self._moving:
                lines = self._take_queued(min(self.batch_size, len(q)))
                self._deliver(lines)
        self._maybe_replay()

    def _hold(self, q: deque[MessageFact]) -> None:
        if self.spool is None:
            return  # the queue keeps them (bounded) until the sink is chosen
        while q:
            with self._moving:
                lines = self._take_queued(min(self.batch_size, len(q)))
                if lines:
                    self.spool.append(lines, sync=False)
                    self._spool_pending = True
        self.spool.rotate()

    def _deliver(self, lines: list[bytes]) -> None:
        if not lines:
            return
        if not self._sink_down and not self._spool_pending:
            try:
                self.sink.write(lines)
                self.written += len(lines)
                return
            except SinkUnavailable as exc:
                lines = exc.lines
                self._mark_down(exc)
            except Exception as exc:
                self._mark_down(exc)
        self._to_spool(lines)

    def _to_spool(self, lines: list[bytes]) -> None:
        if self.spool is None:
            self.dropped += len(lines)
            stats.record_failure("audit.dropped", "audit sink down and no spool: %d records dropped", len(lines))
            return
        self.spool.append(lines)
        self._spool_pending = True
        self.spooled += len(lines)
        stats.incr("audit.spooled", len(lines))

    def _mark_down(self, exc: Exception) -> None:
        self._sink_down = True
        self._next_retry = time.monotonic() + self.retry_interval_s
        stats.record_failure("audit.sink_error", "audit sink %s unavailable, spooling: %r", self.sink.name, exc)

    def _maybe_replay(self) -> None:
        """Ship the journal and whatever was spooled; while the sink is down, only
        every ``retry_interval_s`` (the journal is still fsynced every round)."""
        spool = self.spool
        if spool is None:
            return
        if (self._sink_down or self._spool_pending) and time.monotonic() < self._next_retry:
            spool.rotate()  # what waits for the sink is at least on disk
            return
        urgent, self._urgent = self._urgent, False
        if not (spool.pending or self._spool_pending):
            self._journal_since = None
            return
        if self._journal_lingers and not (urgent or self._spool_pending or self._sink_down) and self._lingering(spool):
            return
        mark = spool.appended
        try:
            self.replayed += spool.replay(self.sink, self.replay_batch)
        except Exception as exc:
            self._mark_down(exc)
            self._spool_pending = True  # its closed segments wait: retried even if no line comes
            return
        self._journal_since = None
        self._shipped_mark = mark
        self._spool_pending = False
        self._sink_down = False

    def _lingering(self, spool: Spool) -> bool:
        """Whether the journal's waiting lines may wait another round (see the module doc)."""
        if spool.appended - self._shipped_mark >= self.replay_batch:
            return False
        now = time.monotonic()
        since = self._journal_since
        if since is None:
            self._journal_since = now
            return True
        return now - since < self.journal_linger_s


def _always() -> bool:
    return True

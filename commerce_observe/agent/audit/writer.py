"""The audit writer: a hub listener that never blocks, and a background batcher.

On the application thread, :meth:`AuditWriter.on_fact` only appends the fact to a
bounded deque (a full queue drops the fact and counts ``audit.dropped``); encoding,
batching and I/O happen on one daemon thread. That thread sends a batch when
``batch_size`` facts are waiting or ``flush_interval_s`` has passed. When the sink
fails, the batch goes to the disk spool and so does everything after it (order is
kept), until a retry every ``retry_interval_s`` replays the spool successfully.

Crash-loss bound: a ``kill -9`` loses what is in memory - at most ``max_queue``
queued facts plus the one batch (``batch_size``) being written - and, in time,
at most what was emitted during the last ``flush_interval_s`` plus one write when
the queue is not full. Everything the sink acknowledged or the spool fsynced
survives. ``tests/audit/test_crash_bound.py`` kills a writing child to check it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.audit.record import encode_batch
from commerce_observe.agent.audit.sinks import Sink, SinkUnavailable
from commerce_observe.agent.audit.spool import Spool
from commerce_observe.agent.messaging.facts import MessageFact
from commerce_observe.agent.privacy.records import TextMasker, mask_facts


class AuditWriter:
    def __init__(
        self,
        sink: Sink,
        spool: Spool | None = None,
        *,
        max_queue: int = 100_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        retry_interval_s: float = 2.0,
        masker: TextMasker | None = None,
    ) -> None:
        self.sink = sink
        #: Facts are masked on the writer thread, just before encoding (privacy.records).
        self.masker = masker
        self.spool = spool
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self._queue: deque[MessageFact] = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._sink_down = False
        self._spool_pending = bool(spool)  # left over from an earlier run: replay it first
        self._next_retry = 0.0
        # A topic sink's own topic: facts about it are dropped on the writer thread, so
        # the audit topic is never audited, even if some client of it is instrumented.
        self._own_topic: str | None = getattr(sink, "topic", None) or None
        self.written = 0
        self.spooled = 0
        self.replayed = 0
        self.dropped = 0
        if hasattr(os, "register_at_fork"):
            after_fork_in_child(self._after_fork)

    # --- application thread ------------------------------------------------------

    def on_fact(self, fact: MessageFact) -> None:
        """Hub listener: enqueue or drop, never wait.

        One length check and a ``deque.append`` (atomic under the GIL, no lock, no
        allocation but the deque's own). At or above ``batch_size`` the writer is
        woken only if its event is not already set: ``Event.set`` takes a lock, and
        calling it for every fact above the mark (as when the writer falls behind)
        cost more than the append, while ``is_set`` reads a flag. Skipping is safe:
        a set flag means the writer has not yet cleared it, and it drains (until the
        queue is empty) only after clearing, so it will see this fact. (Not "only
        when the length *equals* ``batch_size``": with several emitting threads the
        length can step over that value between check and append.)
        """
        q = self._queue
        if len(q) < self.max_queue:
            q.append(fact)
            if len(q) >= self.batch_size and not self._wake.is_set():
                self._wake.set()
            return
        self.dropped += 1
        stats.record_failure("audit.dropped", "audit queue full (%d): record dropped", self.max_queue)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> AuditWriter:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="commerce-observe-audit", daemon=True)
            self._thread.start()
        return self

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued so far reached the sink or the spool."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._idle.clear()
            self._wake.set()
            if self._idle.wait(max(0.0, deadline - time.monotonic())) and not self._queue:
                return True
        return not self._queue

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

    def _after_fork(self) -> None:
        # The child gets no copy of the parent's records (they are the parent's to write)
        # nor of its thread; it starts its own on the same sink settings.
        self._queue = deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
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

    def _drain(self) -> None:
        q = self._queue
        pop = q.popleft
        batch_size, own = self.batch_size, self._own_topic
        self._maybe_replay()
        while q:
            facts = [pop() for _ in range(min(batch_size, len(q)))]
            # a record the auditor can key: by event id, or (a Kafka message without a usable
            # ce_id: another producer's) by topic, partition and offset
            ided = [f for f in facts if f.event_id or f.offset is not None]
            if len(ided) != len(facts):
                stats.incr("audit.unidentified", len(facts) - len(ided))
            if own is not None:
                ided = [f for f in ided if f.destination != own]
            self._deliver(encode_batch(mask_facts(self.masker, ided)))

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
        """Every ``retry_interval_s`` while the sink is down: replay the spool, or probe."""
        if not (self._sink_down or self._spool_pending) or time.monotonic() < self._next_retry:
            return
        if self.spool is not None and self._spool_pending:
            try:
                self.replayed += self.spool.replay(self.sink, self.batch_size)
            except Exception as exc:
                self._mark_down(exc)
                return
            self._spool_pending = False
        self._sink_down = False

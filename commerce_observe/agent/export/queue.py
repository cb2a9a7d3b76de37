"""A bounded queue drained in batches by one daemon thread.

The pipeline uses one of these to convert spans and one per exporter to deliver
them, so that a slow or dead backend only ever fills its own queue. The design
choices all serve the application thread:

* :meth:`BatchWorker.put` is O(1): one short lock (a length check and an append,
  needed so the bound and the drop count are exact), never a wait, never I/O;
* when the queue is full the item is dropped and counted, not queued elsewhere;
* the worker wakes when a batch is ready or after the schedule delay, whichever
  comes first; flushes and shutdown are deadline-bound;
* after ``fork`` the child gets fresh locks, an empty queue and a new thread
  (:meth:`reinit_after_fork`), because the parent's thread does not exist there.

Accounting is exact per worker: every item ``put`` is, at any moment, in exactly
one of ``queued``, ``in_flight``, ``done``, ``failed`` or ``dropped``, and all
transitions happen under the worker's lock, so :meth:`counts` is consistent. The
hand-over to a next stage (``on_commit``) happens under ``commit_lock``, which the
producer side never takes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from opentelemetry import context as otel_context

from commerce_observe._internal.selfstats import stats

T = TypeVar("T")

#: The batch handler returns how many items of the batch succeeded; the rest count
#: as failed. It runs on the worker thread and may block (bounded by its own timeout).
Handler = Callable[[Sequence[T]], int]


class BatchWorker(Generic[T]):
    def __init__(
        self,
        name: str,
        handler: Handler[T],
        max_queue_size: int,
        max_batch_size: int,
        schedule_delay_s: float,
        on_drop: Callable[[int], None],
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._handler = handler
        self.max_queue_size = max_queue_size
        self._max_batch = max(1, min(max_batch_size, max_queue_size))
        self._delay = schedule_delay_s
        self._on_drop = on_drop
        self._on_commit = on_commit
        self.commit_lock = threading.Lock()
        self._init_state()
        self.done = self.failed = self.dropped = 0

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self.commit_lock = threading.Lock()
        self._queue: deque[T] = deque()
        self._wake = threading.Event()
        self._flush_waiters: list[threading.Event] = []
        self._stopping = False
        self._abandoned = False
        self.in_flight = 0
        self._thread = threading.Thread(target=self._run, name=f"commerce_observe.agent.export.{self.name}", daemon=True)
        self._thread.start()

    # --- producer side ---------------------------------------------------------

    def put(self, item: T) -> bool:
        """Queue ``item``, or drop and count it when the queue is full. Never waits."""
        with self._lock:
            queue = self._queue
            accepted = len(queue) < self.max_queue_size and not self._stopping
            if accepted:
                queue.append(item)
                ready = len(queue) == self._max_batch
            else:
                self.dropped += 1
        if not accepted:
            self._on_drop(1)
            return False
        if ready:
            self._wake.set()
        return True

    def put_many(self, items: Sequence[T]) -> int:
        """Queue as many of ``items`` as fit; the rest are dropped. Returns how many fit."""
        with self._lock:
            room = 0 if self._stopping else self.max_queue_size - len(self._queue)
            fit = min(room, len(items))
            if fit == len(items):
                self._queue.extend(items)
            else:
                self._queue.extend(items[:fit])
                self.dropped += len(items) - fit
            ready = len(self._queue) >= self._max_batch
        if ready:
            self._wake.set()
        if fit < len(items):
            self._on_drop(len(items) - fit)
        return fit

    # --- worker side -----------------------------------------------------------

    def _take(self, limit: int) -> list[T]:
        with self._lock:
            queue = self._queue
            n = min(limit, len(queue), self._max_batch)
            batch = [queue.popleft() for _ in range(n)]
            self.in_flight = n
        return batch

    def _process(self, batch: list[T]) -> None:
        ok = 0
        try:
            ok = max(0, min(len(batch), self._handler(batch)))
        except Exception as exc:  # the handler guards itself; this is the last net
            stats.record_failure(f"export.{self.name}.error", "%s export worker failed: %r", self.name, exc)
        # ``on_commit`` hands results to the next stage in the same critical section
        # that ends "in flight", so a snapshot taken under ``commit_lock`` never sees
        # an item in two stages (or in none).
        with self.commit_lock:
            if self._on_commit is not None:
                self._on_commit()
            with self._lock:
                if self._abandoned:  # already counted as dropped by abandon()
                    return
                self.in_flight = 0
                self.done += ok
                self.failed += len(batch) - ok

    def _drain(self) -> None:
        """Process what is queued now (not what arrives meanwhile), then answer flushes."""
        with self._lock:
            waiters, self._flush_waiters = self._flush_waiters, []
            pending = len(self._queue)
        while pending > 0:
            batch = self._take(pending)
            if not batch:
                break
            pending -= len(batch)
            self._process(batch)
        for waiter in waiters:
            waiter.set()

    def _run(self) -> None:
        # Spans about our own export I/O would feed back into the queue.
        otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        while True:
            with self._lock:
                busy = len(self._queue) >= self._max_batch or bool(self._flush_waiters) or self._stopping
            if not busy:
                self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()
            with self._lock:
                if self._stopping and not self._queue:
                    waiters, self._flush_waiters = self._flush_waiters, []
                    break
        for waiter in waiters:
            waiter.set()

    # --- control ---------------------------------------------------------------

    def request_flush(self) -> threading.Event:
        """Ask the worker to process everything queued now; the event is set when done."""
        done = threading.Event()
        with self._lock:
            if not self._thread.is_alive():
                done.set()
                return done
            self._flush_waiters.append(done)
        self._wake.set()
        return done

    def stop(self, deadline: float) -> bool:
        """Stop accepting, drain until ``deadline`` (monotonic), then drop the rest."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self.dropped += left
        if left:
            self._on_drop(left)
        return not self._thread.is_alive()

    def abandon(self) -> int:
        """Give up now (a shutdown deadline passed): what is queued or in flight is dropped and counted.

        The worker thread may still be blocked in a backend call; whatever it returns
        later changes no count. Returns how many items were dropped.
        """
        with self._lock:
            if self._abandoned:
                return 0
            self._abandoned = self._stopping = True
            lost = len(self._queue) + self.in_flight
            self._queue.clear()
            self.in_flight = 0
            self.dropped += lost
        if lost:
            self._on_drop(lost)
        self._wake.set()
        return lost

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "queued": len(self._queue),
                "in_flight": self.in_flight,
                "done": self.done,
                "failed": self.failed,
                "dropped": self.dropped,
            }

    def reinit_after_fork(self) -> None:
        """In a forked child: forget the parent's queue and counts, start a new thread."""
        self.done = self.failed = self.dropped = 0
        self._init_state()

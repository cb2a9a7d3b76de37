"""Bounded, non-blocking hand-off from the application thread to a background batch writer.

The hub calls listeners on the application's thread, inside the request that
created the order; that thread must never wait for Elasticsearch, SQLite or
Kafka. ``offer`` is a ``put_nowait`` on a bounded queue: when the queue is full
the document is dropped and counted (``monitoring.dropped``), never waited for.
One daemon thread drains up to ``batch_size`` items (or whatever arrived within
``linger_s``) and hands them to the sink; a failing sink is retried with backoff
a few times, then the batch is dropped and counted (``monitoring.sink_failed``).
After ``fork`` the child starts with an empty queue and its own thread.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats

Sink = Callable[[Sequence[Any]], object]
_STOP = object()


class BackgroundBatcher:
    def __init__(self, sink: Sink, *, name: str = "commerce-monitoring", max_queue: int = 10_000,
                 batch_size: int = 500, linger_s: float = 0.2, retries: int = 3, backoff_s: float = 0.5) -> None:
        self.sink, self.name = sink, name
        self.max_queue, self.batch_size, self.linger_s = max_queue, batch_size, linger_s
        self.retries, self.backoff_s = retries, backoff_s
        self.dropped = 0
        self.written_batches = 0
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._start()
        if hasattr(os, "register_at_fork"):
            after_fork_in_child(self._restart_in_child)

    def _restart_in_child(self) -> None:
        # The parent's thread does not exist in the child; a closed batcher stays closed.
        if not self._closed:
            self._idle = threading.Condition()
            self._start()

    def _start(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(self.max_queue)
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def offer(self, item: Any) -> bool:
        """Queue one item without blocking; False (and counted) when the queue is full."""
        try:
            with self._idle:
                self._pending += 1
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            with self._idle:
                self._pending -= 1
            self.dropped += 1
            stats.record_failure("monitoring.dropped", "monitoring queue full (%d): documents dropped", self.max_queue)
            return False

    def _take(self) -> list[Any]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.batch_size and batch[-1] is not _STOP:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            stop = batch[-1] is _STOP
            items = [x for x in batch if x is not _STOP]
            if items:
                self._deliver(items)
            with self._idle:
                self._pending -= len(items)
                self._idle.notify_all()
            if stop:
                return

    def _deliver(self, items: list[Any]) -> None:
        for attempt in range(self.retries + 1):
            try:
                self.sink(items)
                self.written_batches += 1
                return
            except Exception as exc:
                if attempt == self.retries:
                    self.dropped += len(items)
                    stats.record_failure("monitoring.sink_failed", "monitoring sink %s failed, %d documents dropped: %r",
                                         self.name, len(items), exc)
                    return
                time.sleep(self.backoff_s * 2 ** attempt)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything offered so far was handed to the sink (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self._closed = True
        self.flush(timeout_s)
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

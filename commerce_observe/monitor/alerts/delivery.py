"""Bounded queues and background senders: a receiver that is down never blocks detection.

The engine calls :meth:`Dispatcher.submit`, which only appends to one bounded
queue per notifier (no I/O, no waiting). One sender thread per notifier delivers
in order; a failed attempt is retried with exponential backoff (``RetryPolicy``),
so an hour of webhook outage costs nothing but a backlog that is delivered when
the receiver is back. The documented bounds, each counted in ``selfstats``:

* ``retry.max_attempts`` attempts per notification (default 12: about 25 minutes
  of outage with the default backoff), then ``alerts.gave_up``;
* a permanent failure (HTTP 4xx, SMTP 5xx) is given up at once (``alerts.gave_up``);
* a full queue (``queue_size``, default 1000) refuses the newest (``alerts.queue_full``).

The head of a queue waits for its retry before later notifications are tried:
order is kept, and when a receiver is down every attempt would fail anyway.
Delivery is at least once: a lost HTTP response means a redelivery, which the
receiver can drop by the notification ``id``.

Tests drive everything synchronously with :meth:`Dispatcher.pump` and a manual clock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from commerce_observe._internal.selfstats import stats

from .clock import Clock, SystemClock
from .model import Notification
from .notifiers import DeliveryError, Notifier
from .throttle import Throttle


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 12
    base_s: float = 2.0
    max_backoff_s: float = 300.0

    def delay(self, failures: int) -> float:
        """Wait after the ``failures``-th failed attempt: 2, 4, 8 ... capped at 5 minutes."""
        return float(min(self.max_backoff_s, self.base_s * 2 ** (failures - 1)))


@dataclass
class _Item:
    n: Notification
    failures: int = 0
    next_at: float = 0.0


class Channel:
    """One notifier's queue, throttle, retry state and counters."""

    def __init__(self, notifier: Notifier, clock: Clock, *, queue_size: int, retry: RetryPolicy, throttle: Throttle | None) -> None:
        self.notifier = notifier
        self.clock = clock
        self.queue_size = queue_size
        self.retry = retry
        self.throttle = throttle
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._queue: deque[_Item] = deque()
        self.counts = {"sent": 0, "failed_attempts": 0, "gave_up": 0, "queue_full": 0, "throttled": 0}
        self.last_error: str | None = None

    def submit(self, n: Notification) -> bool:
        with self._lock:
            if self.throttle is not None and not self.throttle.admit(n, self.clock.now()):
                self._count("throttled")
                return True
            return self._enqueue(n)

    def _enqueue(self, n: Notification) -> bool:
        if len(self._queue) >= self.queue_size:
            self._count("queue_full", f"alert queue of {self.notifier.name} is full, notification {n.id} refused")
            return False
        self._queue.append(_Item(n, next_at=self.clock.now()))
        return True

    def next_due(self) -> float | None:
        """When the next attempt or throttle summary is due (None: nothing to do)."""
        with self._lock:
            due = [self._queue[0].next_at] if self._queue else []
            if self.throttle is not None and (summary_at := self.throttle.summary_at()) is not None:
                due.append(summary_at)
            return min(due) if due else None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def pump(self) -> int:
        """Attempt everything due now, in order; returns how many were delivered."""
        delivered = 0
        with self._send_lock:
            while True:
                with self._lock:
                    now = self.clock.now()
                    if self.throttle is not None:
                        summary = self.throttle.summary_due(now)
                        if summary is not None:
                            self._enqueue(summary)
                    if not self._queue or self._queue[0].next_at > now:
                        return delivered
                    item = self._queue[0]
                try:
                    self.notifier.send(item.n)
                except DeliveryError as exc:
                    if not self._failed(item, exc):
                        return delivered  # head waits for its backoff; later items wait behind it
                    continue
                with self._lock:
                    self._queue.popleft()
                self._count("sent")
                delivered += 1

    def _failed(self, item: _Item, exc: DeliveryError) -> bool:
        """Record a failed attempt; True when the item was given up (and removed)."""
        self.last_error = str(exc)
        item.failures += 1
        self._count("failed_attempts")
        if exc.permanent or item.failures >= self.retry.max_attempts:
            with self._lock:
                self._queue.popleft()
            self._count("gave_up", f"gave up notification {item.n.id} to {self.notifier.name} after {item.failures} attempts: {exc}")
            return True
        item.next_at = self.clock.now() + self.retry.delay(item.failures)
        stats.warn(f"alerts.retry.{self.notifier.name}", "%s unreachable, will retry: %s", self.notifier.name, exc)
        return False

    def _count(self, what: str, warning: str | None = None) -> None:
        self.counts[what] += 1
        if warning is not None:
            stats.record_failure(f"alerts.{what}", "%s", warning)
        else:
            stats.incr(f"alerts.{what}")


class Dispatcher:
    """Fan-out of notifications to notifiers; ``start()`` runs one sender thread per notifier."""

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        clock: Clock | None = None,
        *,
        queue_size: int = 1000,
        retry: RetryPolicy | None = None,
        throttle_max: int | None = 10,
        throttle_interval_s: float = 600.0,
        idle_poll_s: float = 1.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.channels = [
            Channel(nt, self.clock, queue_size=queue_size, retry=retry or RetryPolicy(),
                    throttle=Throttle(throttle_max, throttle_interval_s) if throttle_max else None)
            for nt in notifiers
        ]
        self.idle_poll_s = idle_poll_s
        self._wakes = [threading.Event() for _ in self.channels]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def submit(self, n: Notification) -> None:
        """Queue ``n`` for every notifier; never blocks, never raises (the engine's ``sink``)."""
        for ch in self.channels:
            ch.submit(n)
        self.wake()

    def pump(self) -> int:
        """Deliver everything due now on the caller's thread (tests, the CLI)."""
        return sum(ch.pump() for ch in self.channels)

    def pending(self) -> int:
        return sum(ch.pending() for ch in self.channels)

    def wake(self) -> None:
        """Make the sender threads look again now (e.g. after a manual clock moved)."""
        for ev in self._wakes:
            ev.set()

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for ch, wake in zip(self.channels, self._wakes):
            t = threading.Thread(target=self._run, args=(ch, wake), name=f"commerce-observe-alerts-{ch.notifier.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the senders; what is still queued stays in ``pending()`` (counted, not sent)."""
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout_s)
        self._threads = []

    def _run(self, ch: Channel, wake: threading.Event) -> None:
        while not self._stop.is_set():
            wake.clear()  # before pumping: a submit during the pump is not missed
            try:
                ch.pump()
            except Exception as exc:  # a notifier bug must not kill the sender
                stats.record_failure("alerts.sender_error", "alert sender %s failed: %r", ch.notifier.name, exc)
            due = ch.next_due()
            wait = self.idle_poll_s if due is None else max(0.0, min(self.idle_poll_s, due - self.clock.now()))
            if wait > 0:
                wake.wait(wait)

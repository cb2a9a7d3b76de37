"""Injectable time for the alert engine and the sender.

Throttle windows, retry backoff and "since when" all depend on the current time.
Reading ``time.time()`` directly would force tests to sleep and to assert on
timings; instead every component takes a :class:`Clock`, and tests drive a
:class:`ManualClock` forward by hand.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch (a float, like ``time.time()``)."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; thread-safe so a sender thread may read it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds

    def set(self, when: float) -> None:
        with self._lock:
            self._now = when

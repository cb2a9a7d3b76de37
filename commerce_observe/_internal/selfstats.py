"""Self-observability: counters of what the library dropped, ignored or failed at.

Instrumentation must never raise into the application and must never log one line
per span. Every place that swallows a problem therefore does two things here: it
bumps a named counter (so tests and the demo can show exactly what was lost) and it
asks for a *rate-limited* warning (at most one line per name per interval).

Strict mode (``COMMERCE_OBSERVE_STRICT=true``, on in the test suite) turns the
swallowing off: :func:`guard` re-raises, so tests see every internal error.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

logger = logging.getLogger("commerce_observe")

P = ParamSpec("P")
R = TypeVar("R")


class SelfStats:
    """Named monotonic counters plus a rate-limited warning channel.

    Counting is a dict update under a lock: cheap enough for drop paths, which are
    by definition not the hot path.
    """

    def __init__(self, warn_interval_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last_warned: dict[str, float] = {}
        self.warn_interval_s = warn_interval_s
        self.strict = False

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at fork time; the child
        # has only the forking thread, so a fresh lock is the only safe one.
        self._lock = threading.Lock()

    def incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._last_warned.clear()

    def warn(self, name: str, message: str, *args: object) -> None:
        """Log ``message`` at most once per ``warn_interval_s`` for ``name``."""
        now = time.monotonic()
        with self._lock:
            last = self._last_warned.get(name)
            if last is not None and now - last < self.warn_interval_s:
                return
            self._last_warned[name] = now
        from commerce_observe.agent.privacy.detect import mask_text  # our own warnings leak nothing either

        text = mask_text(message % args if args else message)
        logger.warning("%s (counter %s=%d)", text, name, self.get(name))

    def record_failure(self, name: str, message: str, *args: object) -> None:
        """Count one failure named ``name`` and warn about it, rate-limited."""
        self.incr(name)
        self.warn(name, message, *args)

    def swallow(self, name: str, message: str, *args: object) -> None:
        """The one strict-mode guard, called inside an ``except`` block: count and
        warn like :meth:`record_failure`; in strict mode re-raise the exception being
        handled (a bare ``raise`` here re-raises it), so tests see every internal error."""
        self.record_failure(name, message, *args)
        if self.strict:
            raise  # noqa: PLE0704 - re-raises the caller's handled exception


#: The process-wide instance. The runtime configures ``strict``; everything that
#: drops or ignores something reports here.
stats = SelfStats()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=stats._after_fork_in_child)


@contextmanager
def guard(counter: str, what: str) -> Iterator[None]:
    """Run telemetry code that must not raise into the application.

    An exception is counted under ``counter`` and warned about (rate-limited); in
    strict mode it propagates so tests see it.
    """
    try:
        yield
    except Exception as exc:
        stats.swallow(counter, "%s failed: %r", what, exc)


def guarded(counter: str, default: R) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of :func:`guard` returning ``default`` on a swallowed error."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                stats.swallow(counter, "%s failed: %r", fn.__qualname__, exc)
                return default

        return inner

    return wrap

"""What the agent finds at start-up never stops or blocks the application.

An Elasticsearch store that does not answer, a SQLite file in a directory that is
not there yet, a Prometheus port another process holds: ``install()`` must return
at once anyway (an unreachable store used to hold the import for minutes). Each
such condition is logged once, counted, and retried in the background:

* :class:`LazyStore` opens the event store on the reporting thread at its first
  write, and again at each later write until it succeeds; meanwhile the batcher
  retries and finally drops (and counts) what it could not write;
* :func:`retry_in_background` calls an attempt (binding a port) until it succeeds,
  on a daemon thread with a growing interval, until stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from commerce_observe._internal.redact import redact_credentials
from commerce_observe._internal.selfstats import logger, stats
from commerce_observe.store.store import EventStore, StoreUnavailable, WriteResult


class LazyStore:
    """The event store ``spec`` names, opened at the first write (off the application's path)."""

    def __init__(self, spec: str, opener: Callable[[str], EventStore] | None = None) -> None:
        self.spec = spec
        self._opener = opener
        self._store: EventStore | None = None
        self._lock = threading.Lock()
        self._warned = False

    def _open(self) -> EventStore:
        with self._lock:
            if self._store is None:
                from commerce_observe.store.store import open_store

                try:
                    self._store = (self._opener or open_store)(self.spec)
                except Exception as exc:
                    stats.incr("startup.store_unavailable")
                    if not self._warned:
                        self._warned = True
                        logger.warning("commerce_observe: event store %s not available, retrying in the background: %s",
                                       redact_credentials(self.spec), exc)
                    raise StoreUnavailable(f"event store not available: {exc}") from None
            return self._store

    def write(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult:
        return self._open().write(docs)

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


def retry_in_background(name: str, attempt: Callable[[], bool], *, interval_s: float = 1.0,
                        max_interval_s: float = 30.0) -> Callable[[], None]:
    """Call ``attempt`` now and, while it returns False, again later on a daemon thread.

    The first failure is logged by the caller's ``attempt`` (once); each is counted
    as ``startup.<name>.retries``. Returns ``stop``, which ends the retries.
    """
    stop = threading.Event()
    if attempt():
        return stop.set

    def loop() -> None:
        wait = interval_s
        while not stop.wait(wait):
            stats.incr(f"startup.{name}.retries")
            try:
                if attempt():
                    return
            except Exception as exc:
                stats.record_failure(f"startup.{name}.failed", "%s: retry failed: %r", name, exc)
            wait = min(max_interval_s, wait * 2)

    threading.Thread(target=loop, name=f"commerce_observe.startup.{name}", daemon=True).start()
    return stop.set

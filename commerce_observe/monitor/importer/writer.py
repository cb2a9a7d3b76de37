"""Batches into the store on a thread of their own, while the next batch is read.

Why a thread: reading CSV is Python work, writing is SQLite's (or
Elasticsearch's) and releases the GIL, so the two overlap on two cores. The queue
holds at most ``depth`` batches: a slow store slows the reader instead of
filling memory. The first write error stops the import: it is raised to the
reader on its next batch and again by :meth:`BatchWriter.close`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from commerce_observe.store.store import WriteResult

#: One of a store's writes: ``write`` (documents), ``write_aggregates``, ``write_payment_buckets``.
Write = Callable[[Sequence[Any]], WriteResult]


class BatchWriter:
    """Writes batches (documents, aggregates, payment buckets) with one of a store's writes, in order, on one thread."""

    def __init__(self, write: Write, *, depth: int = 2) -> None:
        self._write = write
        self._queue: queue.Queue[Sequence[Any] | None] = queue.Queue(maxsize=depth)
        self.result = WriteResult()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="commerce-import-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Sequence[Any]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the reader learns of the error on its next put
            try:
                self.result += self._write(batch)
            except BaseException as exc:  # handed to the reader's thread
                self._error = exc

    def close(self) -> WriteResult:
        """Wait for every batch put so far; raise the write error if there was one."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.result

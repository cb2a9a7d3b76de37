"""An exporter that keeps spans in memory, for tests and for users' own tests.

It receives exactly what the network exporters receive (converted, masked
:class:`SpanRecord` objects), so a test asserting on it checks what Zipkin and
Elastic APM would have been sent. ``commerce_observe.testing`` re-exports it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from commerce_observe.agent.export.record import SpanRecord


class InMemoryExporter:
    """Collects every exported span; thread-safe."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._spans: list[SpanRecord] = []
        self._stopped = False

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self._spans.extend(batch)
        return True

    def get_finished(self) -> list[SpanRecord]:
        """A copy of the spans exported so far, in export order."""
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        with self._lock:
            self._stopped = True

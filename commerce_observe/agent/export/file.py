"""The embedded default: Zipkin v2 JSON files the Zipkin UI can open.

Zipkin Lens's "Upload JSON" reads a file as *one* JSON array of v2 spans and
treats it as a single trace (it takes the trace id of the first span). So this
exporter writes two things, each rewritten atomically (temporary file, then
``os.replace``) on every batch, so a reader never sees half a file:

* ``PATH``: every retained span, grouped by trace, as one JSON array. That is
  what ``POST /api/v2/spans`` accepts, so ``curl -H 'Content-Type: application/json'
  --data-binary @PATH http://zipkin:9411/api/v2/spans`` loads all of it into a Zipkin;
* ``PATH_STEM.traces/<trace id>.json``: one file per trace, the form Lens's
  "Upload JSON" opens directly.

Bounded: at most ``max_spans`` spans are kept; past that the oldest traces are
evicted whole, least recently written first (and their per-trace files
deleted); a single trace over the cap loses its oldest spans. Both are counted
in ``export.file.evicted``. Writing is thread-safe (one lock).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.record import SpanRecord
from commerce_observe.agent.export.zipkin_encode import EndpointCache, to_json_dict


def _write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FileExporter:
    """Keeps the last ``max_spans`` spans in Zipkin v2 JSON files."""

    def __init__(self, path: str, max_spans: int = 10_000, name: str = "file") -> None:
        self.name = name
        self.path = os.path.abspath(path)
        stem = self.path[:-5] if self.path.endswith(".json") else self.path
        self.traces_dir = stem + ".traces"
        self.max_spans = max(1, max_spans)
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._count = 0
        self._endpoints = EndpointCache()

    def trace_path(self, trace_id_hex: str) -> str:
        return os.path.join(self.traces_dir, f"{trace_id_hex}.json")

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        try:
            with self._lock:
                touched = self._add(batch)
                evicted = self._evict()
                self._write(touched, evicted)
            stats.incr(f"export.{self.name}.exported", len(batch))
            return True
        except Exception as exc:
            stats.swallow(f"export.{self.name}.failed", "writing traces to %s failed: %r", self.path, exc)
            return False

    def _add(self, batch: Sequence[SpanRecord]) -> set[str]:
        touched: set[str] = set()
        for record in batch:
            trace_id = record.trace_id_hex
            spans = self._traces.get(trace_id)
            if spans is None:
                spans = self._traces[trace_id] = []
            else:
                self._traces.move_to_end(trace_id)
            spans.append(to_json_dict(record, self._endpoints))
            self._count += 1
            touched.add(trace_id)
        return touched

    def _evict(self) -> list[str]:
        evicted: list[str] = []
        while self._count > self.max_spans and len(self._traces) > 1:
            trace_id, spans = self._traces.popitem(last=False)
            self._count -= len(spans)
            evicted.append(trace_id)
            stats.incr(f"export.{self.name}.evicted", len(spans))
        if self._count > self.max_spans:  # one trace alone is over the cap: trim it
            spans = next(iter(self._traces.values()))
            extra = self._count - self.max_spans
            del spans[:extra]
            self._count -= extra
            stats.incr(f"export.{self.name}.evicted", extra)
        return evicted

    def _write(self, touched: set[str], evicted: list[str]) -> None:
        os.makedirs(self.traces_dir, exist_ok=True)
        for trace_id in evicted:
            try:
                os.unlink(self.trace_path(trace_id))
            except FileNotFoundError:
                pass
        for trace_id in touched:
            spans = self._traces.get(trace_id)
            if spans is not None:
                _write_atomic(self.trace_path(trace_id), json.dumps(spans, separators=(",", ":")).encode())
        every = [span for spans in self._traces.values() for span in spans]
        _write_atomic(self.path, json.dumps(every, separators=(",", ":")).encode())

    def shutdown(self) -> None:
        """Nothing to close: every batch is already on disk."""

"""The span processor that feeds every backend from one conversion.

Shape (see docs/export.md)::

    span.end() --put--> [ingest queue] --convert+mask--> [zipkin queue] --> ZipkinExporter
      (app thread,        (bounded)      (1 thread)   \\-> [elastic queue] --> ElasticApmExporter
       O(1), no wait)                                      (bounded, 1 thread each)

Why three stages: ``on_end`` must cost the application almost nothing, so it only
appends the finished span to a bounded queue. Conversion (and masking) happens once,
for all backends. Each backend then has its own queue and thread, so a slow or dead
Zipkin fills only Zipkin's queue and never delays Elastic APM or the application.
Memory is bounded by ``max_queue_size`` per queue whatever the backends do; what does
not fit is dropped and counted.

Counters in :data:`commerce_observe._internal.selfstats.stats` (names stable, the
demo prints them):

* ``export.pipeline.dropped``: spans dropped because the ingest queue was full (or
  the pipeline was shut down); they reached no exporter;
* ``export.convert.failed``: spans whose conversion raised;
* ``export.<name>.dropped``: spans lost for that exporter: its queue was full, its
  ``export`` gave up on their batch (the :class:`Exporter` contract), or they were
  still queued when shutdown's deadline passed;
* ``export.<name>.error``: an exporter broke its contract and raised.

Exporters count their own successes (``export.<name>.exported``) and failure
details. :meth:`ExportPipeline.stats` gives exact per-pipeline numbers, separating
``failed`` (batch given up) from ``dropped`` (no room).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe.agent._lightspan import LightSpan
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.base import Exporter
from commerce_observe.agent.export.convert import AttributeMasker, SpanConverter, TransactionTracker
from commerce_observe.agent.export.queue import BatchWorker
from commerce_observe.agent.export.record import SpanRecord

_Queued = tuple[ReadableSpan | LightSpan, int]
#: Spans converted per wake-up of the conversion thread (exporters still send
#: max_export_batch_size at a time): a finished SDK span holds a dozen objects the
#: garbage collector walks on every pass while it waits; converted early, it is freed
#: early and a queued record is three.
CONVERT_BATCH = 64


def _drop_counter(name: str, what: str) -> Callable[[int], None]:
    def on_drop(n: int) -> None:
        stats.incr(name, n)
        stats.warn(name, "%s: queue full or shut down, spans dropped", what)

    return on_drop


class ExportPipeline(SpanProcessor):
    """An OpenTelemetry ``SpanProcessor`` exporting to several backends at once."""

    def __init__(
        self,
        exporters: Sequence[Exporter],
        masker: AttributeMasker | None = None,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_ms: int = 1000,
        shutdown_timeout_ms: int = 5000,
    ) -> None:
        self._exporters = tuple(exporters)
        self._txn = TransactionTracker()
        self._converter = SpanConverter(masker)
        #: The masker conversion applies (None: none); light spans vetted against it
        #: skip its attribute pass (``LightSpan.vetted``).
        self.masker = masker
        self._shutdown_timeout_s = shutdown_timeout_ms / 1000
        self._is_shut_down = False
        delay = schedule_delay_ms / 1000
        self._converted: list[SpanRecord] = []
        self._ingest: BatchWorker[_Queued] = BatchWorker(
            "convert", self._convert_batch, max_queue_size, min(max_export_batch_size, CONVERT_BATCH), delay,
            _drop_counter("export.pipeline.dropped", "export pipeline"), on_commit=self._hand_over,
        )
        self._outputs: list[BatchWorker[SpanRecord]] = [
            BatchWorker(
                exporter.name, self._deliver_to(exporter), max_queue_size, max_export_batch_size,
                delay, _drop_counter(f"export.{exporter.name}.dropped", f"{exporter.name} exporter"),
            )
            for exporter in self._exporters
        ]
        after_fork_in_child(self._after_fork_in_child)  # fresh queues and threads in a child

    # --- application thread ------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._txn.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        self._ingest.put((span, self._txn.on_end(ctx.span_id)))

    def submit(self, span: LightSpan) -> None:
        """A light span that ended: sampled by construction, its transaction id on it."""
        self._ingest.put((span, span.transaction_id))

    # --- conversion thread -------------------------------------------------------

    def _convert_batch(self, batch: Sequence[_Queued]) -> int:
        convert = self._converter.convert
        records: list[SpanRecord] = []
        for span, txn in batch:
            try:
                records.append(convert(span, txn))
            except Exception as exc:
                stats.swallow("export.convert.failed", "span conversion failed: %r", exc)
        self._converted = records
        return len(records)

    def _hand_over(self) -> None:
        """Fan the converted batch out to every exporter queue (under the commit lock)."""
        records, self._converted = self._converted, []
        for output in self._outputs:
            output.put_many(records)

    # --- exporter threads --------------------------------------------------------

    @staticmethod
    def _deliver_to(exporter: Exporter) -> Callable[[Sequence[SpanRecord]], int]:
        dropped = f"export.{exporter.name}.dropped"

        def deliver(batch: Sequence[SpanRecord]) -> int:
            try:
                ok = exporter.export(batch)
            except Exception as exc:  # the protocol says it must not raise; count it
                ok = False
                stats.record_failure(f"export.{exporter.name}.error", "%s exporter raised: %r", exporter.name, exc)
            if ok:
                return len(batch)
            stats.incr(dropped, len(batch))
            why = getattr(exporter, "failure", None)
            stats.warn(dropped, "%s exporter gave up on a batch of %d spans%s", exporter.name, len(batch),
                       f": {why}" if why else "")
            return 0

        return deliver

    # --- control -----------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Deliver everything ended so far, or give up at the deadline (returns False)."""
        deadline = time.monotonic() + timeout_millis / 1000
        if not self._ingest.request_flush().wait(max(0.0, deadline - time.monotonic())):
            return False
        waiting = [output.request_flush() for output in self._outputs]
        return all(done.wait(max(0.0, deadline - time.monotonic())) for done in waiting)

    def shutdown(self) -> None:
        """Drain within ``shutdown_timeout_ms``, then stop threads and exporters."""
        if self._is_shut_down:
            return
        self._is_shut_down = True
        deadline = time.monotonic() + self._shutdown_timeout_s
        self._ingest.stop(deadline)
        for output in self._outputs:
            output.stop(deadline)
        for exporter in self._exporters:
            try:
                exporter.shutdown()
            except Exception as exc:
                stats.record_failure(f"export.{exporter.name}.error", "%s shutdown failed: %r", exporter.name, exc)

    def abandon(self) -> int:
        """Shutdown's deadline passed: drop and count every span not yet delivered.

        Returns the most spans any one exporter lost (each exporter counts its own
        under ``export.<name>.dropped``, spans still awaiting conversion under
        ``export.pipeline.dropped``).
        """
        self._is_shut_down = True
        before = self._ingest.abandon()
        with self._ingest.commit_lock:
            return before + max((output.abandon() for output in self._outputs), default=0)

    def _after_fork_in_child(self) -> None:
        if self._is_shut_down:
            return
        self._txn.clear()
        self._converted = []
        self._ingest.reinit_after_fork()
        for output in self._outputs:
            output.reinit_after_fork()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-stage counts for this pipeline (this process only).

        ``pipeline``: ``queued``/``in_flight`` spans awaiting conversion, ``dropped``
        at the ingest queue, ``convert_failed``. Per exporter name: ``queued``,
        ``in_flight``, ``exported``, ``failed``, ``dropped``. For every exporter,
        spans ended = pipeline dropped + convert_failed + pipeline queued + in_flight
        + that exporter's queued + in_flight + exported + failed + dropped, exactly,
        at any moment: the snapshot is taken under the conversion stage's commit lock.
        """
        with self._ingest.commit_lock:
            ingest = self._ingest.counts()
            outputs = [output.counts() for output in self._outputs]
        out = {"pipeline": {"queued": ingest["queued"], "in_flight": ingest["in_flight"],
                            "dropped": ingest["dropped"], "convert_failed": ingest["failed"]}}
        for exporter, c in zip(self._exporters, outputs):
            out[exporter.name] = {"queued": c["queued"], "in_flight": c["in_flight"], "exported": c["done"],
                                  "failed": c["failed"], "dropped": c["dropped"]}
        return out

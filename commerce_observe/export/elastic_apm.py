"""Elastic APM exporter: the shared span records as intake v2 events.

The pipeline's worker thread calls :meth:`ElasticApmExporter.export` with a batch.
Mapping happens here (``commerce_observe.export.elastic.mapping``); delivery is
elastic-apm's own transport (see ``elastic.transport`` for why no Client). After
queueing a batch the exporter asks the transport to flush and waits, at most
``timeout_s`` plus a small grace, so it can tell the pipeline honestly whether the
batch arrived. That wait is on the exporter's worker thread, never the app's.

Nothing here raises for a backend or encoding problem; each is counted:

- ``export.elastic_apm.failed``: batches not delivered, whatever the reason
  (the pipeline counts their spans as dropped);
- ``export.elastic_apm.send_failed``: intake requests that failed (connection,
  HTTP >= 400), counted by the transport thread;
- ``export.elastic_apm.backoff``: batches refused unsent while the transport backs
  off after failures (0, 1, 4, 9 ... 36 s, elastic-apm's schedule);
- ``export.elastic_apm.timeout``: flushes not finished in time;
- ``export.elastic_apm.mapping_failed``: spans that could not be encoded (skipped);
- ``export.elastic_apm.error``: anything else unexpected;
- ``export.elastic_apm.exported``: spans in delivered batches.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import elasticapm
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import stats
from commerce_observe.export.elastic.mapping import error_events, service_name, span_event, transaction_event
from commerce_observe.export.elastic.metadata import build_metadata
from commerce_observe.export.elastic.transport import IntakeTransport, make_transport
from commerce_observe.export.record import SpanRecord

__all__ = ["ElasticApmExporter"]

FAILED = "export.elastic_apm.failed"
BACKOFF = "export.elastic_apm.backoff"
TIMEOUT = "export.elastic_apm.timeout"
MAPPING_FAILED = "export.elastic_apm.mapping_failed"
ERROR = "export.elastic_apm.error"
EXPORTED = "export.elastic_apm.exported"

#: Transactions whose children were seen but which were not exported yet; bounded so
#: transactions that never come (dropped, unsampled) cannot grow it without end.
_MAX_PENDING_COUNTS = 10_000


def _own_version() -> str:
    try:
        return importlib.metadata.version("commerce-observe")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class ElasticApmExporter:
    """Exports :class:`SpanRecord` batches to an APM Server's ``/intake/v2/events``."""

    name = "elastic_apm"

    def __init__(
        self,
        server_url: str,
        service_name: str,
        *,
        secret_token: str | None = None,
        api_key: str | None = None,
        environment: str | None = None,
        verify_server_cert: bool = True,
        resource: Mapping[str, AttributeValue] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._service_raw = service_name
        self._foreign_services: dict[str, str] = {}
        self._child_counts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._transport: IntakeTransport = make_transport(
            server_url,
            secret_token=secret_token,
            api_key=api_key,
            verify_server_cert=verify_server_cert,
            timeout_s=timeout_s,
            user_agent=f"commerce-observe/{_own_version()} apm-agent-python/{elasticapm.VERSION}",
            metadata=lambda: build_metadata(service_name, environment, resource),
        )

    # --- Exporter protocol --------------------------------------------------------

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        """Encode, queue and flush one batch; ``True`` once APM Server accepted it."""
        if not batch:
            return True
        try:
            with self._lock:
                if self._closed:
                    stats.record_failure(FAILED, "Elastic APM exporter used after shutdown")
                    return False
                if self._transport.in_backoff():
                    stats.record_failure(BACKOFF, "Elastic APM intake backing off after failures; batch dropped")
                    stats.incr(FAILED)
                    return False
                events = self._encode(batch)
                self._transport.ensure_started()
                before_ok, before_failed = self._transport.outcomes()
                for event_type, data in events:
                    self._transport.queue(event_type, data)
                return self._flushed(before_ok, before_failed, len(batch))
        except Exception as exc:
            stats.record_failure(ERROR, "Elastic APM export failed: %r", exc)
            stats.incr(FAILED)
            if stats.strict:
                raise
            return False

    def shutdown(self) -> None:
        """Flush what is queued and stop the transport thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._transport.stop()
            except Exception as exc:
                stats.record_failure(ERROR, "Elastic APM transport close failed: %r", exc)
                if stats.strict:
                    raise

    # --- internals ----------------------------------------------------------------

    def _flushed(self, before_ok: int, before_failed: int, n_spans: int) -> bool:
        if not self._transport.flush_and_wait():
            stats.record_failure(TIMEOUT, "Elastic APM flush timed out")
            stats.incr(FAILED)
            return False
        ok, failed = self._transport.outcomes()
        if failed > before_failed or ok == before_ok:
            stats.incr(FAILED)
            return False
        stats.incr(EXPORTED, n_spans)
        return True

    def _encode(self, batch: Sequence[SpanRecord]) -> list[tuple[str, dict[str, Any]]]:
        counts = self._child_counts
        for record in batch:
            if not record.is_entry:
                counts[record.transaction_id] = counts.get(record.transaction_id, 0) + 1
        while len(counts) > _MAX_PENDING_COUNTS:
            del counts[next(iter(counts))]
        out: list[tuple[str, dict[str, Any]]] = []
        for record in batch:
            try:
                service = None if record.service_name == self._service_raw else self._other_service(record.service_name)
                if record.is_entry:
                    out.append(("transaction", transaction_event(record, counts.pop(record.span_id, 0), service)))
                else:
                    out.append(("span", span_event(record, service)))
                if record.events:
                    out.extend(("error", e) for e in error_events(record))
            except Exception as exc:
                stats.record_failure(MAPPING_FAILED, "span %r not encodable for Elastic APM: %r", record.name, exc)
                if stats.strict:
                    raise
        return out

    def _other_service(self, raw: str) -> str:
        clean = self._foreign_services.get(raw)
        if clean is None:
            clean = self._foreign_services[raw] = service_name(raw)
        return clean

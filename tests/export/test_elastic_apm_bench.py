"""Per-span CPU cost of the Elastic APM exporter's own work: mapping and queueing.

Prints the numbers (``pytest -s tests/export/test_elastic_apm_bench.py``) and fails
only on a gross regression. Sending is left out on purpose: it happens on
elastic-apm's transport thread, and the local receiver's schema validation would
dominate any wall-clock figure. The events queued here are not sent, so nothing
needs validating against the intake schemas (the other tests do that, since no
APM Server can run here).
"""

from __future__ import annotations

import gzip
import io
import sys
import time
from pathlib import Path
from typing import Any

from elasticapm.utils import json_encoder
from opentelemetry.trace import SpanKind

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from commerce_observe.export.elastic_apm import ElasticApmExporter  # noqa: E402
from commerce_observe.export.record import EventRecord  # noqa: E402
from tests.support.apm_intake import T0_NS, span_record  # noqa: E402

KINDS = (SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CLIENT)
EXTRA: dict[SpanKind, dict[str, Any]] = {
    SpanKind.SERVER: {"http.request.method": "POST", "url.path": "/orders", "http.response.status_code": 201},
    SpanKind.INTERNAL: {},
    SpanKind.PRODUCER: {"messaging.system": "kafka", "messaging.destination.name": "orders",
                        "messaging.operation.type": "publish"},
    SpanKind.CLIENT: {"db.system": "postgresql", "db.name": "shop", "db.statement": "SELECT 1"},
}


def _batch(n: int = 512) -> list[Any]:
    """Checkout-shaped traces of four spans, three commerce attributes each."""
    out = []
    for i in range(n):
        root, kind = 10_000 + (i // 4) * 4 + 1, KINDS[i % 4]
        attrs = {"commerce.order.id": f"ord-{i}", "commerce.event.type": "order.created", "commerce.amount": 12.5}
        attrs.update(EXTRA[kind])
        out.append(span_record(
            span_id=root + i % 4, transaction_id=root, parent_span_id=None if i % 4 == 0 else root, kind=kind,
            attributes=attrs, events=(EventRecord("commerce.order.created", T0_NS, {}),) if i % 4 == 1 else (),
        ))
    return out


def test_mapping_and_queueing_cost_per_span() -> None:
    """Mapping + queueing stay in the tens of microseconds per span."""
    exporter = ElasticApmExporter("http://127.0.0.1:9", "bench")
    batch, rounds = _batch(), 20
    try:
        start = time.process_time()
        for _ in range(rounds):
            events = exporter._encode(batch)
        mapping = (time.process_time() - start) / (rounds * len(batch))

        transport = exporter._transport  # thread not started: queue() only enqueues
        start = time.process_time()
        for event_type, data in events:
            transport.queue(event_type, data)
        queueing = (time.process_time() - start) / len(events)

        start = time.process_time()
        buffer = gzip.GzipFile(fileobj=io.BytesIO(), mode="w", compresslevel=5)
        for event_type, data in events:
            line = json_encoder.dumps({event_type: data})  # type: ignore[no-untyped-call]
            buffer.write((line + "\n").encode())
        buffer.close()
        encoding = (time.process_time() - start) / len(events)
    finally:
        exporter.shutdown()
    print(f"\nElastic APM per span: mapping {mapping * 1e6:.1f} us, queueing {queueing * 1e6:.1f} us "
          f"(exporter thread); JSON+gzip {encoding * 1e6:.1f} us (elastic-apm transport thread)")
    assert mapping < 500e-6 and queueing < 100e-6

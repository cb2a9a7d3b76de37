"""ExportPipeline behaviour with in-process exporters: ids, masking, bounds, drops,
flush, fork. Backend faults on the real Zipkin are in test_zipkin_faults.py."""

from __future__ import annotations

import logging
import os
import threading

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.memory import InMemoryExporter
from commerce_observe.agent.export.pipeline import ExportPipeline
from tests.export.helpers import GatedExporter, RedactingMasker, accounted, provider


def test_transaction_ids_parents_and_masking() -> None:
    mem = InMemoryExporter()
    pipeline = ExportPipeline([mem], RedactingMasker(), max_queue_size=64, max_export_batch_size=8, schedule_delay_ms=50)
    tp, tracer = provider(pipeline)
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("validate", attributes={"email": "a@b.c", "note": "card 4111111111111111"}) as mid:
            mid.add_event("commerce.order.created", {"commerce.order.id": "o-1", "card_number": "4111111111111111"})
            with tracer.start_as_current_span("inner") as inner:
                inner.set_status(Status(StatusCode.ERROR, "declined for 4111111111111111"))
    # a remote parent makes an entry span even for INTERNAL kind
    remote = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(0xABC, 0xDEF, True, trace.TraceFlags(1))))
    with tracer.start_as_current_span("from-remote", context=remote):
        pass
    assert pipeline.force_flush(10_000)
    by_name = {s.name: s for s in mem.get_finished()}
    root_id = root.get_span_context().span_id
    assert by_name["POST /orders"].transaction_id == root_id and by_name["POST /orders"].is_entry
    assert by_name["validate"].transaction_id == root_id and by_name["validate"].parent_span_id == root_id
    assert by_name["inner"].transaction_id == root_id
    assert by_name["inner"].parent_span_id == mid.get_span_context().span_id
    assert by_name["from-remote"].is_entry and by_name["from-remote"].parent_is_remote
    assert by_name["from-remote"].trace_id == 0xABC
    # masked before any exporter saw it
    assert by_name["validate"].attributes == {"email": "[REDACTED]", "note": "[REDACTED]"}
    assert by_name["validate"].events[0].attributes["card_number"] == "[REDACTED]"
    assert by_name["validate"].events[0].attributes["commerce.order.id"] == "o-1"
    assert by_name["inner"].error and by_name["inner"].status_description == "[REDACTED]"
    tp.shutdown()


def test_full_queue_drops_exactly_counts_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    gated = GatedExporter()
    pipeline = ExportPipeline([gated], None, max_queue_size=20, max_export_batch_size=5, schedule_delay_ms=20)
    tp, tracer = provider(pipeline)
    caplog.set_level(logging.WARNING, logger="commerce_observe")
    produced = 500
    for i in range(produced):
        with tracer.start_as_current_span(f"s{i}"):
            pass
        counts = pipeline.stats()
        assert counts["pipeline"]["queued"] <= 20 and counts["gated"]["queued"] <= 20
    # the application thread never entered the exporter
    assert threading.get_ident() not in gated.threads
    # every span is accounted for the moment span.end() returned: nothing waits
    assert accounted(pipeline, "gated") == produced
    from tests.support.waiting import wait_for

    wait_for("conversion", lambda: pipeline.stats()["pipeline"]["queued"] + pipeline.stats()["pipeline"]["in_flight"] == 0, 60)
    s = pipeline.stats()
    dropped = s["pipeline"]["dropped"] + s["gated"]["dropped"]
    buffered = s["gated"]["queued"] + s["gated"]["in_flight"]
    assert dropped == produced - s["gated"]["exported"] - buffered > 0
    assert stats.get("export.pipeline.dropped") + stats.get("export.gated.dropped") == dropped
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert 1 <= len(warnings) <= 2  # at most one per counter name per interval
    gated.gate.set()
    assert pipeline.force_flush(30_000)
    assert len(gated.received) == produced - dropped
    tp.shutdown()


def test_flush_gives_up_at_deadline_and_shutdown_counts_leftovers() -> None:
    gated, mem = GatedExporter(), InMemoryExporter()
    pipeline = ExportPipeline([gated, mem], None, max_queue_size=100, max_export_batch_size=10,
                              schedule_delay_ms=20, shutdown_timeout_ms=200)
    tp, tracer = provider(pipeline)
    for i in range(30):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    assert not pipeline.force_flush(200)  # the gated backend cannot finish...
    assert len(mem.get_finished()) == 30  # ...but the other one was not held up
    tp.shutdown()
    s = pipeline.stats()["gated"]
    assert s["queued"] == 0 and s["dropped"] == 30 - s["exported"] - s["in_flight"]
    assert stats.get("export.gated.dropped") == s["dropped"]


def test_failed_batches_count_as_dropped() -> None:
    class Refusing:
        name = "refusing"

        def export(self, batch: object) -> bool:
            return False

        def shutdown(self) -> None:
            pass

    pipeline = ExportPipeline([Refusing()], None, max_queue_size=100, max_export_batch_size=10, schedule_delay_ms=20)
    tp, tracer = provider(pipeline)
    for i in range(25):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    assert pipeline.force_flush(10_000)
    assert pipeline.stats()["refusing"]["failed"] == 25
    assert stats.get("export.refusing.dropped") == 25
    tp.shutdown()


def test_exports_after_fork_in_child() -> None:
    mem = InMemoryExporter()
    pipeline = ExportPipeline([mem], None, max_queue_size=100, max_export_batch_size=10, schedule_delay_ms=20)
    tp, tracer = provider(pipeline)
    with tracer.start_as_current_span("parent-before-fork"):
        pass
    pid = os.fork()
    if pid == 0:  # child: new threads must deliver spans ended here
        code = 1
        try:
            mem.clear()
            with tracer.start_as_current_span("in-child"):
                pass
            ok = pipeline.force_flush(10_000)
            names = [s.name for s in mem.get_finished()]
            code = 0 if ok and names == ["in-child"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pipeline.force_flush(10_000)
    assert [s.name for s in mem.get_finished()] == ["parent-before-fork"]
    tp.shutdown()


def test_encoders_leave_the_shared_records_unchanged() -> None:
    """Records are read-only by contract (not frozen: see record.py), and a record's
    attributes are the finished SDK span's own dict, not a copy: every encoder reads
    them, none may write."""
    import copy
    import dataclasses

    from commerce_observe.agent.export.elastic_apm import ElasticApmExporter
    from commerce_observe.agent.export.otlp import OtlpExporter, OtlpSettings
    from commerce_observe.agent.export.zipkin import ZipkinExporter

    mem = InMemoryExporter()
    pipeline = ExportPipeline([mem], None, max_queue_size=64, max_export_batch_size=8, schedule_delay_ms=50)
    tp, tracer = provider(pipeline)
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes={"http.route": "/orders"}):
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT,
                                          attributes={"peer.service": "psp", "commerce.items": 3}) as child:
            child.add_event("commerce.payment.failed", {"commerce.failure.reason": "declined"})
            child.record_exception(ValueError("declined"))
            child.set_status(Status(StatusCode.ERROR, "declined"))
    assert pipeline.force_flush(10_000)
    records = mem.get_finished()
    before = copy.deepcopy([dataclasses.astuple(r) for r in records])
    ZipkinExporter("http://127.0.0.1:9/api/v2/spans").encode(records)
    ZipkinExporter("http://127.0.0.1:9/api/v2/spans", encoder="py_zipkin").encode(records)
    ElasticApmExporter("http://127.0.0.1:9", "checkout")._bodies(records)
    OtlpExporter(OtlpSettings("http://127.0.0.1:9/v1/traces")).encode(records)
    assert [dataclasses.astuple(r) for r in records] == before
    assert dict(child.attributes or {}) == {"peer.service": "psp", "commerce.items": 3}
    tp.shutdown()

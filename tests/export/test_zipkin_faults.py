"""Backend faults in front of a REAL Zipkin: the application never waits, memory
stays bounded, drops are counted exactly and warned about at most once per
interval, another exporter is not held up, and spans sent after recovery arrive.

Slow/refusing/resetting/503 faults come from tests/support/faultproxy.py placed
in front of the real server; the stop/restart fault stops the real server itself.
No timed assertions: the checks read queues, counters and threads.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.memory import InMemoryExporter
from commerce_observe.agent.export.pipeline import ExportPipeline
from commerce_observe.agent.export.zipkin import ZipkinExporter
from tests.export.helpers import accounted, provider
from tests.support.waiting import wait_for
from tests.support.faultproxy import FaultProxy
from testbed.base import free_port
from tests.support.zipkin import read_trace

MAX_QUEUE = 50
PRODUCED = 400


def _watch_network_threads(exporter: ZipkinExporter) -> set[int]:
    """Record every thread that reaches the exporter's network code."""
    seen: set[int] = set()
    post = exporter._post

    def spy(*args: Any) -> Any:
        seen.add(threading.get_ident())
        return post(*args)

    exporter._post = spy  # type: ignore[method-assign]
    return seen


def _produce(pipeline: ExportPipeline, tracer: Any, n: int) -> None:
    for i in range(n):
        with tracer.start_as_current_span(f"order {i}") as span:
            span.add_event("commerce.order.created", {"commerce.order.id": f"o-{i}"})
        s = pipeline.stats()
        assert s["pipeline"]["queued"] <= MAX_QUEUE and s["zipkin"]["queued"] <= MAX_QUEUE


def _run_fault(zipkin_url: str, url: str, recover: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="commerce_observe")
    zipkin = ZipkinExporter(f"{url}/api/v2/spans", timeout_s=10, max_retries=2, backoff_s=0.05)
    network_threads = _watch_network_threads(zipkin)
    mem = InMemoryExporter()
    pipeline = ExportPipeline([zipkin, mem], None, max_queue_size=MAX_QUEUE, max_export_batch_size=10, schedule_delay_ms=20)
    tp, tracer = provider(pipeline)

    _produce(pipeline, tracer, PRODUCED)
    # span.end() returned PRODUCED times and every span is already somewhere: queued or dropped
    assert accounted(pipeline, "zipkin") == PRODUCED
    assert threading.get_ident() not in network_threads
    # the healthy exporter is not held up by the sick one
    def memory_done() -> bool:
        s = pipeline.stats()
        return len(mem.get_finished()) + s["memory"]["dropped"] + s["pipeline"]["dropped"] == PRODUCED

    wait_for("memory exporter", memory_done, 60)
    wait_for("conversion", lambda: pipeline.stats()["pipeline"]["queued"] + pipeline.stats()["pipeline"]["in_flight"] == 0, 60)
    s = pipeline.stats()
    z, p = s["zipkin"], s["pipeline"]
    lost = p["dropped"] + z["dropped"] + z["failed"]
    assert lost == PRODUCED - z["exported"] - z["queued"] - z["in_flight"]
    assert lost > 0
    for name in ("export.pipeline.dropped", "export.zipkin.dropped"):
        assert len([r for r in caplog.records if f"counter {name}=" in r.getMessage()]) <= 1

    recover()
    # the backlog drains first (spans ended while the queue is still full are dropped, by design)
    wait_for("backlog", lambda: pipeline.stats()["zipkin"]["queued"] + pipeline.stats()["zipkin"]["in_flight"] == 0, 180)
    with tracer.start_as_current_span("after recovery") as later:
        later.add_event("commerce.order.paid", {"commerce.order.id": "o-late"})
    trace_id = format(later.get_span_context().trace_id, "032x")
    assert pipeline.force_flush(120_000)
    spans = read_trace(zipkin_url, trace_id, 1)
    assert spans[0]["name"] == "after recovery"
    s = pipeline.stats()
    z, p = s["zipkin"], s["pipeline"]
    assert z["queued"] == z["in_flight"] == 0
    assert stats.get("export.pipeline.dropped") + stats.get("export.zipkin.dropped") == PRODUCED + 1 - z["exported"]
    assert threading.get_ident() not in network_threads
    tp.shutdown()


@pytest.mark.parametrize("mode", ["refuse", "reset", "http503", "delay"])
def test_fault_between_app_and_real_zipkin(mode: str, zipkin_url: str, caplog: pytest.LogCaptureFixture) -> None:
    host, port = zipkin_url.rsplit("/", 1)[-1].split(":")
    proxy = FaultProxy(host, int(port), delay_s=2.0)
    proxy.mode = mode  # type: ignore[assignment]

    def recover() -> None:
        proxy.mode = "pass"

    try:
        _run_fault(zipkin_url, proxy.url, recover, caplog)
    finally:
        proxy.close()
    if mode == "http503":
        assert proxy.answered_503 > 0


def test_zipkin_stopped_and_restarted(zipkin_url: str, testbed_control: Any, caplog: pytest.LogCaptureFixture) -> None:
    testbed_control.stop("zipkin")
    stopped = True
    try:
        def recover() -> None:
            nonlocal stopped
            testbed_control.start("zipkin")
            stopped = False

        _run_fault(zipkin_url, zipkin_url, recover, caplog)
    finally:
        if stopped:
            testbed_control.start("zipkin")


def test_nothing_listening_never_blocks_and_gives_up() -> None:
    port = free_port()  # free a moment ago: nothing listens there
    zipkin = ZipkinExporter(f"http://127.0.0.1:{port}/api/v2/spans", timeout_s=2, max_retries=1, backoff_s=0.01)
    network_threads = _watch_network_threads(zipkin)
    pipeline = ExportPipeline([zipkin], None, max_queue_size=MAX_QUEUE, max_export_batch_size=10, schedule_delay_ms=20)
    tp, tracer = provider(pipeline)
    _produce(pipeline, tracer, PRODUCED)
    assert accounted(pipeline, "zipkin") == PRODUCED
    assert threading.get_ident() not in network_threads
    assert pipeline.force_flush(60_000)  # it gives up on each batch, so the flush completes
    z = pipeline.stats()["zipkin"]
    assert z["exported"] == 0 and z["queued"] == z["in_flight"] == 0
    assert stats.get("export.pipeline.dropped") + stats.get("export.zipkin.dropped") == PRODUCED
    assert stats.get("export.zipkin.failed") > 0
    tp.shutdown()

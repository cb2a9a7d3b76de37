"""CPU per span and memory per buffered span: ours against the usual setups.

    .venv/bin/python benchmarks/span_export.py [--spans 20000] [--repeat 3]

One workload per span, like a service recording a commerce event: start a span with
8 attributes, add the event ``commerce.order.created`` with 8 attributes, end it,
and export it. Variants, each in a fresh interpreter (no shared import or GC state)
and sending to the same local HTTP sink, which runs in a SEPARATE process so its
CPU is not counted and answers 202 at once:

* ``sdk``: the SDK with no processor (the floor: what creating spans costs);
* ``a-otel-zipkin``: SDK + BatchSpanProcessor + opentelemetry's Zipkin JSON
  exporter (the baseline);
* ``b-elasticapm``: elastic-apm alone: one transaction holding one
  ``capture_span``, both labelled, per iteration (two intake events);
* ``c-ours-dual``: SDK + ExportPipeline + ZipkinExporter + ElasticApmExporter;
* ``c-ours-dual-pyzipkin``: the same with py-zipkin's own encoder;
* ``c-ours-zipkin``: ours, Zipkin only.

CPU is ``time.process_time()`` of the whole process (worker threads included)
from before the first span to after the final flush; every variant checks that
nothing was dropped. Memory: ``tracemalloc`` with the exporter blocked so spans
stay queued, per queued ``SpanRecord`` and, for comparison, per ``ReadableSpan``.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ATTRS = {f"commerce.attr{i}": f"value-{i}" for i in range(6)} | {"commerce.quantity": 3, "commerce.express": True}
EVENT = {
    "commerce.event.type": "order.created", "commerce.event.id": "evt-1", "commerce.order.id": "o-1",
    "commerce.amount": "19.90", "commerce.currency": "EUR", "commerce.item_count": 2,
    "commerce.customer_ref": "c-77", "commerce.payment_method": "card",
}


# --- the sink (its own process) ------------------------------------------------------


class _Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        self._answer(202)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(200, b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def run_sink() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


# --- variants (each runs in its own interpreter) -----------------------------------


def _sdk(processor: Any) -> tuple[Any, Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    tp = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    if processor is not None:
        tp.add_span_processor(processor)
    return tp, tp.get_tracer("bench")


def _otel_loop(tracer: Any, n: int) -> None:
    for _ in range(n):
        span = tracer.start_span("order.create", attributes=ATTRS)
        span.add_event("commerce.order.created", EVENT)
        span.end()


def _ours(sink: str, n: int, zipkin: str | None, elastic: bool) -> Callable[[], dict[str, Any]]:
    from commerce_observe.export.pipeline import ExportPipeline
    from commerce_observe.export.zipkin import ZipkinExporter

    exporters: list[Any] = []
    if zipkin:
        exporters.append(ZipkinExporter(f"{sink}/api/v2/spans", timeout_s=10, encoder=zipkin))
    if elastic:
        try:
            from commerce_observe.export.elastic_apm import ElasticApmExporter
        except ImportError:
            sys.stderr.write("ElasticApmExporter not available: Zipkin only\n")
        else:
            exporters.append(ElasticApmExporter(sink, "bench"))
    pipeline = ExportPipeline(exporters, None, max_queue_size=n + 1, max_export_batch_size=512, schedule_delay_ms=1000)
    tp, tracer = _sdk(pipeline)

    def run() -> dict[str, Any]:
        _otel_loop(tracer, n)
        ok = pipeline.force_flush(120_000)
        stats = pipeline.stats()
        tp.shutdown()
        exported = {name: s["exported"] for name, s in stats.items() if name != "pipeline"}
        return {"flushed": ok, "exported": exported, "all_in": ok and all(v == n for v in exported.values())}

    return run


def variant(name: str, sink: str, n: int) -> Callable[[], dict[str, Any]]:
    if name == "sdk":
        tp, tracer = _sdk(None)
        return lambda: (_otel_loop(tracer, n), {"all_in": True})[1]
    if name == "a-otel-zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

        exporter = ZipkinExporter(endpoint=f"{sink}/api/v2/spans")
        counted = {"n": 0}
        original = exporter.export

        def counting(spans: Sequence[Any]) -> SpanExportResult:
            result = original(spans)
            if result is SpanExportResult.SUCCESS:
                counted["n"] += len(spans)
            return result

        exporter.export = counting  # type: ignore[method-assign]
        bsp = BatchSpanProcessor(exporter, max_queue_size=n + 1, max_export_batch_size=512, schedule_delay_millis=1000)
        tp, tracer = _sdk(bsp)

        def run_a() -> dict[str, Any]:
            _otel_loop(tracer, n)
            tp.force_flush(120_000)
            tp.shutdown()
            return {"exported": counted["n"], "all_in": counted["n"] == n}

        return run_a
    if name == "b-elasticapm":
        import elasticapm

        client = elasticapm.Client(
            service_name="bench", server_url=sink, central_config=False, metrics_interval="0ms",
            cloud_provider="none", disable_log_record_factory=True, instrument=False,
            transaction_max_spans=100000, max_queue_size=n * 2 + 10, api_request_time="1s",
        )
        labels = {k.replace(".", "_"): v for k, v in (ATTRS | EVENT).items()}

        def run_b() -> dict[str, Any]:
            for _ in range(n):
                client.begin_transaction("request")
                with elasticapm.capture_span("order.create", labels=labels):
                    pass
                elasticapm.label(**labels)
                client.end_transaction("order.create", "success")
            client.close()
            return {"all_in": None}

        return run_b
    table = {
        "c-ours-dual": ("lean", True), "c-ours-dual-pyzipkin": ("py_zipkin", True), "c-ours-zipkin": ("lean", False),
    }
    zipkin, elastic = table[name]
    return _ours(sink, n, zipkin, elastic)


def run_variant(name: str, sink: str, n: int) -> None:
    run = variant(name, sink, n)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    info = run()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sys.stdout.write(json.dumps({"variant": name, "ns_per_span": cpu / n * 1e9, "wall_s": wall, **info}) + "\n")


def run_memory(n: int) -> None:
    """Bytes per buffered span: exporter blocked, spans converted and queued."""
    from opentelemetry.sdk.trace import SpanProcessor

    from commerce_observe.export.pipeline import ExportPipeline

    gate = threading.Event()

    class Blocked:
        name = "blocked"

        def export(self, batch: Sequence[Any]) -> bool:
            gate.wait()
            return True

        def shutdown(self) -> None:
            gate.set()

    pipeline = ExportPipeline([Blocked()], None, max_queue_size=n + 1000, max_export_batch_size=10, schedule_delay_ms=100_000)
    tp, tracer = _sdk(pipeline)
    _otel_loop(tracer, 200)  # warm caches
    pipeline.force_flush(1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _otel_loop(tracer, n)
    pipeline._ingest.request_flush().wait(60)  # converted: now queued for the blocked exporter
    counts = pipeline.stats()["blocked"]
    assert counts["dropped"] == 0 and counts["queued"] + counts["in_flight"] == n + 200
    queued = n
    record_bytes = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    gate.set()
    tp.shutdown()

    kept: list[Any] = []

    class Keep(SpanProcessor):
        def on_end(self, span: Any) -> None:
            kept.append(span)

    tp2, tracer2 = _sdk(Keep())
    _otel_loop(tracer2, 200)
    kept.clear()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _otel_loop(tracer2, n)
    span_bytes = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    tracemalloc.stop()
    sys.stdout.write(json.dumps({"variant": "memory", "queued": queued, "bytes_per_queued_record": record_bytes,
                                 "bytes_per_readable_span": span_bytes}) + "\n")


VARIANTS = ["sdk", "a-otel-zipkin", "b-elasticapm", "c-ours-dual", "c-ours-dual-pyzipkin", "c-ours-zipkin"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "sink":
        run_sink()
        return
    if args.child == "memory":
        run_memory(args.spans)
        return
    if args.child:
        run_variant(args.child, args.sink, args.spans)
        return

    me = os.path.abspath(__file__)
    sink_proc = subprocess.Popen([sys.executable, me, "--child", "sink"], stdout=subprocess.PIPE, text=True)
    try:
        assert sink_proc.stdout is not None
        sink = f"http://127.0.0.1:{sink_proc.stdout.readline().strip()}"
        results: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.repeat):
            for name in args.variants.split(","):
                out = subprocess.run([sys.executable, me, "--child", name, "--sink", sink, "--spans", str(args.spans)],
                                     check=True, capture_output=True, text=True).stdout
                results.setdefault(name, []).append(json.loads(out.strip().splitlines()[-1]))
        mem = json.loads(subprocess.run([sys.executable, me, "--child", "memory", "--spans", "5000"],
                                        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    finally:
        sink_proc.terminate()
        sink_proc.wait()

    best = {name: min(r["ns_per_span"] for r in runs) for name, runs in results.items()}
    base = best.get("a-otel-zipkin")
    print(f"CPU per span, best of {args.repeat} runs of {args.spans} spans (process_time, worker threads included)")
    for name, runs in results.items():
        ratio = f"{best[name] / base:5.2f}x (a)" if base else ""
        all_in = {str(r.get("all_in")) for r in runs}
        print(f"  {name:22s} {best[name] / 1000:7.1f} us/span  {ratio}   all in: {','.join(sorted(all_in))}")
    print(f"Memory per buffered span (tracemalloc, exporter blocked, {mem['queued']} queued):")
    print(f"  queued SpanRecord      {mem['bytes_per_queued_record']:7.0f} B")
    print(f"  ReadableSpan (for reference) {mem['bytes_per_readable_span']:7.0f} B")


if __name__ == "__main__":
    main()

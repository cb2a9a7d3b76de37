"""CPU per span and memory per buffered span: ours against the usual setups.

    .venv/bin/python benchmarks/span_export.py [--spans 20000] [--repeat 3] [--before REV] [--instructions]

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
* ``c-ours-triple``: the same plus the OTLP exporter (HTTP/protobuf): all three on;
* ``c-ours-triple-pb``: the same, the OTLP request built with opentelemetry-proto's
  message classes (``otlp_pb.py``) instead of our byte writer (``otlp_encode.py``):
  why the default is a hand encoder, measured in the same run;
* ``c-ours-dual-pyzipkin``: the same with py-zipkin's own encoder;
* ``c-ours-zipkin``: ours, Zipkin only.

``--before REV`` adds ``c-ours-triple@REV``: the same three exporters with the
package as it was at git revision REV (``benchmarks/_baseline.py``), measured in the
same run, so a change is judged against its own "before" under the same load.

CPU is ``time.process_time()`` of the whole process (worker threads included)
from before the first span to after the final flush. The sink counts the Zipkin
spans and intake events it receives (gunzipped, the metadata line left out), and a
variant fails unless all of its spans / events arrived. Memory: ``tracemalloc`` with the exporter blocked so spans
stay queued, per queued ``SpanRecord`` and, for comparison, per ``ReadableSpan``.

CPU time on a shared machine moves by 10 % from run to run with the load of other
work. ``--instructions`` adds a steadier figure: instructions per span counted by
valgrind's callgrind (user space, every thread; the kernel not counted) for
``a-otel-zipkin`` and ``c-ours-triple`` (and ``@REV``). Each runs twice under
callgrind, with ``--instr-spans`` spans and with three times as many; the difference
divided by the difference in spans is the cost per span, start-up and shutdown
cancelled out. Repeated, the counts agree within about 1 %. They are not CPU time:
cache misses, the kernel and thread hand-overs are not in them, and they fall on ours
and the baseline unequally (more threads on ours), so the two ratios differ; both are
printed.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.environ.get("SPAN_EXPORT_PACKAGE_TREE"):  # a ``--before`` child: the package as it was
    sys.path.insert(0, os.environ["SPAN_EXPORT_PACKAGE_TREE"])

from benchmarks._baseline import baseline_tree  # noqa: E402
from benchmarks._timing import run_child  # noqa: E402

ATTRS = {f"commerce.attr{i}": f"value-{i}" for i in range(6)} | {"commerce.quantity": 3, "commerce.express": True}
EVENT = {
    "commerce.event.type": "order.created", "commerce.event.id": "evt-1", "commerce.order.id": "o-1",
    "commerce.amount": "19.90", "commerce.currency": "EUR", "commerce.item_count": 2,
    "commerce.customer_ref": "c-77", "commerce.payment_method": "card",
}


# --- the sink (its own process) ------------------------------------------------------


class _Sink(http.server.BaseHTTPRequestHandler):
    """Answers 202 at once and counts what arrives: Zipkin spans (a JSON array) and
    intake events (NDJSON, the metadata line excluded), each body gunzipped if need be.
    ``GET /count`` returns the counts so far."""

    protocol_version = "HTTP/1.1"
    counts = {"zipkin": 0, "intake": 0, "otlp": 0}
    lock = threading.Lock()

    def _answer(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path.startswith("/v1/traces"):
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

            request = ExportTraceServiceRequest.FromString(body)
            kind, count = "otlp", sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
        elif self.path.startswith("/intake/"):
            kind, count = "intake", sum(1 for line in body.splitlines() if line and "metadata" not in json.loads(line))
        else:
            kind, count = "zipkin", len(json.loads(body))
        with self.lock:
            self.counts[kind] += count
        self._answer(202)

    def do_GET(self) -> None:  # noqa: N802
        with self.lock:
            self._answer(200, json.dumps(self.counts if self.path == "/count" else {}).encode())

    def log_message(self, *args: Any) -> None:
        pass


def run_sink() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


def sink_counts(sink: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{sink}/count", timeout=10) as response:
        counts: dict[str, int] = json.load(response)
        return counts


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


def _ours(sink: str, n: int, zipkin: str, elastic: bool, otlp: str | None = None) -> Callable[[], None]:
    from commerce_observe.agent.export.elastic_apm import ElasticApmExporter
    from commerce_observe.agent.export.otlp import OtlpExporter, OtlpSettings
    from commerce_observe.agent.export.pipeline import ExportPipeline
    from commerce_observe.agent.export.zipkin import ZipkinExporter

    exporters: list[Any] = [ZipkinExporter(f"{sink}/api/v2/spans", timeout_s=10, encoder=zipkin)]
    if elastic:
        exporters.append(ElasticApmExporter(sink, "bench"))
    if otlp:
        exporters.append(OtlpExporter(OtlpSettings(f"{sink}/v1/traces"), **({"encoder": otlp} if otlp != "lean" else {})))
    pipeline = ExportPipeline(exporters, None, max_queue_size=n + 1, max_export_batch_size=512, schedule_delay_ms=1000)
    tp, tracer = _sdk(pipeline)

    def run() -> None:
        _otel_loop(tracer, n)
        pipeline.force_flush(120_000)
        tp.shutdown()

    return run


def variant(name: str, sink: str, n: int) -> tuple[Callable[[], None], dict[str, int]]:
    """The workload of ``name`` and what the sink must receive from it."""
    if name == "sdk":
        tp, tracer = _sdk(None)
        return lambda: _otel_loop(tracer, n), {}
    if name == "a-otel-zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter = ZipkinExporter(endpoint=f"{sink}/api/v2/spans")
        bsp = BatchSpanProcessor(exporter, max_queue_size=n + 1, max_export_batch_size=512, schedule_delay_millis=1000)
        tp, tracer = _sdk(bsp)

        def run_a() -> None:
            _otel_loop(tracer, n)
            tp.force_flush(120_000)
            tp.shutdown()

        return run_a, {"zipkin": n}
    if name == "b-elasticapm":
        import elasticapm

        client = elasticapm.Client(
            service_name="bench", server_url=sink, central_config=False, metrics_interval="0ms",
            cloud_provider="none", disable_log_record_factory=True, instrument=False,
            transaction_max_spans=100000, api_request_time="1s",
        )
        labels = {k.replace(".", "_"): v for k, v in (ATTRS | EVENT).items()}

        def run_b() -> None:
            for i in range(n):
                if i and i % 2000 == 0:
                    # elastic-apm's queue holds 10,000 events and drops silently when
                    # full: the sender must keep up (flush() returns once it is empty)
                    client._transport.flush()
                client.begin_transaction("request")
                with elasticapm.capture_span("order.create", labels=labels):
                    pass
                elasticapm.label(**labels)
                client.end_transaction("order.create", "success")  # type: ignore[no-untyped-call]
            client.close()
            # close() returns at the first flush after it was called, which may leave
            # events queued; the transport thread ends once it has sent them all
            client._transport._thread.join(120)

        return run_b, {"intake": 2 * n}
    table: dict[str, tuple[str, bool, str | None]] = {
        "c-ours-dual": ("lean", True, None), "c-ours-dual-pyzipkin": ("py_zipkin", True, None),
        "c-ours-zipkin": ("lean", False, None), "c-ours-triple": ("lean", True, "lean"),
        "c-ours-triple-pb": ("lean", True, "protobuf"),
    }
    zipkin, elastic, otlp = table[name]
    return (_ours(sink, n, zipkin, elastic, otlp),
            {"zipkin": n} | ({"intake": n} if elastic else {}) | ({"otlp": n} if otlp else {}))


def run_variant(name: str, sink: str, n: int) -> None:
    run, expected = variant(name.split("@")[0], sink, n)
    before = sink_counts(sink)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    received = {kind: count - before[kind] for kind, count in sink_counts(sink).items()}
    if received != dict.fromkeys(received, 0) | expected:
        raise SystemExit(f"{name}: the sink received {received}, expected {expected}: events were dropped")
    sys.stdout.write(json.dumps({"variant": name, "ns_per_span": cpu / n * 1e9, "wall_s": wall, "received": received}) + "\n")


def run_memory(n: int) -> None:
    """Bytes per buffered span: exporter blocked, spans converted and queued."""
    from opentelemetry.sdk.trace import SpanProcessor

    from commerce_observe.agent.export.pipeline import ExportPipeline

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
    sys.stdout.write(json.dumps({"variant": "memory", "queued": n, "bytes_per_queued_record": record_bytes,
                                 "bytes_per_readable_span": span_bytes}) + "\n")


VARIANTS = ["sdk", "a-otel-zipkin", "b-elasticapm", "c-ours-dual", "c-ours-dual-pyzipkin", "c-ours-zipkin", "c-ours-triple",
            "c-ours-triple-pb"]
INSTRUCTION_VARIANTS = ["a-otel-zipkin", "c-ours-triple"]
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def child_env(name: str) -> dict[str, str]:
    """The environment of a variant's child: ``c-ours-triple@REV`` imports the package from REV."""
    env = dict(os.environ)
    env.pop("SPAN_EXPORT_PACKAGE_TREE", None)
    if "@" in name:
        env["SPAN_EXPORT_PACKAGE_TREE"] = str(baseline_tree(name.split("@", 1)[1]))
    return env


def run_variant_child(me: str, name: str, sink: str, spans: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, me, "--child", name, "--sink", sink, "--spans", str(spans)],
                          capture_output=True, text=True, env=child_env(name))
    if done.returncode:
        raise RuntimeError(f"{name} exited {done.returncode}:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def instructions(me: str, name: str, sink: str, spans: int) -> int:
    """Instructions callgrind counted in one whole child run of ``name`` (every thread)."""
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--dump-instr=no",
            sys.executable, me, "--child", name, "--sink", sink, "--spans", str(spans)]
    done = subprocess.run(argv, capture_output=True, text=True, env=child_env(name))
    found = _COLLECTED.findall(done.stderr)
    if done.returncode or not found:
        raise RuntimeError(f"callgrind run of {name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return int(found[-1])


def instructions_per_span(me: str, name: str, sink: str, spans: int) -> float:
    """(count at 3n spans - count at n spans) / 2n: start-up and shutdown cancel out."""
    small, large = instructions(me, name, sink, spans), instructions(me, name, sink, 3 * spans)
    return (large - small) / (2 * spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--before", metavar="REV", help="also run c-ours-triple with the package at git revision REV")
    parser.add_argument("--instructions", action="store_true", help="also count instructions per span (callgrind)")
    parser.add_argument("--instr-spans", type=int, default=2000, help="spans of the smaller callgrind run")
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
    names = args.variants.split(",")
    instr_names = list(INSTRUCTION_VARIANTS)
    if args.before:
        names.append(f"c-ours-triple@{args.before}")
        instr_names.append(f"c-ours-triple@{args.before}")
    load = os.getloadavg()
    sink_proc = subprocess.Popen([sys.executable, me, "--child", "sink"], stdout=subprocess.PIPE, text=True)
    try:
        assert sink_proc.stdout is not None
        sink = f"http://127.0.0.1:{sink_proc.stdout.readline().strip()}"
        results: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.repeat):
            for name in names:
                results.setdefault(name, []).append(run_variant_child(me, name, sink, args.spans))
        mem = run_child(me, "--child", "memory", "--spans", "5000")
        counted = {name: instructions_per_span(me, name, sink, args.instr_spans)
                   for name in (instr_names if args.instructions else [])}
    finally:
        sink_proc.terminate()
        sink_proc.wait()

    best = {name: min(r["ns_per_span"] for r in runs) for name, runs in results.items()}
    base = best.get("a-otel-zipkin")
    print(f"CPU per span, best of {args.repeat} runs of {args.spans} spans (process_time, worker threads included;"
          " every run's spans and events all counted at the sink)")
    for name in results:
        ratio = f"{best[name] / base:5.2f}x (a)" if base else ""
        print(f"  {name:22s} {best[name] / 1000:7.1f} us/span  {ratio}")
    if counted:
        print(f"Instructions per span (callgrind, every thread, runs of {args.instr_spans} and"
              f" {3 * args.instr_spans} spans differenced)")
        for name, per_span in counted.items():
            print(f"  {name:22s} {per_span / 1000:7.1f} k/span   {per_span / counted['a-otel-zipkin']:5.2f}x (a)")
    print(f"Load average at the start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; at the end: "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"Memory per buffered span (tracemalloc, exporter blocked, {mem['queued']} queued):")
    print(f"  queued SpanRecord      {mem['bytes_per_queued_record']:7.0f} B")
    print(f"  ReadableSpan (for reference) {mem['bytes_per_readable_span']:7.0f} B")


if __name__ == "__main__":
    main()

"""Per-call cost of inject-all and extract-any against OpenTelemetry's plain W3C
propagator, measured in the same run so the ratios are comparable across machines.

    .venv/bin/python benchmarks/propagation.py

The baseline does strictly less work (one format instead of five), so a ratio is
the price of "extract from any, inject all", not a like-for-like race.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import trace  # noqa: E402
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from benchmarks._timing import per_call_us  # noqa: E402
from commerce_observe.agent.propagation import Format, HttpHeaders, KafkaHeaders, extract, inject

CTX = trace.set_span_in_context(
    NonRecordingSpan(SpanContext(0x80F198EE56343BA864FE8B2A57D3EFF7, 0xE457B5A2E4D86BD1, False, TraceFlags(1)))
)
TP = "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01"
W3C = TraceContextTextMapPropagator()


def main() -> None:
    rows = {
        "otel w3c inject (dict)": per_call_us(lambda: W3C.inject({}, CTX)),
        "otel w3c extract (dict)": per_call_us(lambda: W3C.extract({"traceparent": TP})),
        "inject all, http dict": per_call_us(lambda: inject(HttpHeaders({}), CTX)),
        "inject w3c only, http dict": per_call_us(lambda: inject(HttpHeaders({}), CTX, Format.W3C)),
        "inject all, kafka list": per_call_us(lambda: inject(KafkaHeaders([]), CTX)),
        "extract w3c, http dict": per_call_us(lambda: extract(HttpHeaders({"traceparent": TP}))),
        "extract w3c, kafka list": per_call_us(lambda: extract(KafkaHeaders([("traceparent", TP.encode())]))),
        "extract b3 multi (fallback)": per_call_us(
            lambda: extract(
                HttpHeaders({"X-B3-TraceId": TP[3:35], "X-B3-SpanId": TP[36:52], "X-B3-Sampled": "1"})
            )
        ),
        "extract nothing, 5 headers": per_call_us(
            lambda: extract(KafkaHeaders([("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4"), ("e", b"5")]))
        ),
    }
    base_inject = rows["otel w3c inject (dict)"]
    base_extract = rows["otel w3c extract (dict)"]
    print(f"{'case':32} {'us/call':>8} {'ratio':>7}")
    for name, us in rows.items():
        base = base_inject if "inject" in name else base_extract
        print(f"{name:32} {us:8.2f} {us / base:7.2f}x")


if __name__ == "__main__":
    main()

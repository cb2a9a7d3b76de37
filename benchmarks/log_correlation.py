"""CPU per log record of the trace-id correlation (target: at most 1 µs a record).

    .venv/bin/python benchmarks/log_correlation.py [--records 100000] [--repeat 5]

Every variant logs ``logger.info("order %s paid", order_id)`` inside one span, to a
handler whose ``emit`` does nothing (records are made and handled, nothing is written),
in this one process, best of ``--repeat``:

* ``stdlib``: no commerce_observe (the floor);
* ``masked``: installed with ``COMMERCE_OBSERVE_LOG_CORRELATION=false`` (masking only);
* ``correlated``: installed with correlation on (masking too).

The correlation's own cost is ``correlated - masked``; it is what the target bounds.
A second figure logs 5 records per span over fresh spans (the cache of the last
span's ids misses once per span).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Discard(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


def _run(env: dict[str, str] | None, records: int, per_span: int) -> float:
    import commerce_observe
    from opentelemetry import trace

    commerce_observe.shutdown()
    if env is not None:
        commerce_observe.install(env={"OTEL_TRACES_EXPORTER": "none", **env})
    logger = logging.getLogger("bench.orders")
    tracer = trace.get_tracer("bench")
    began = time.process_time()
    for _ in range(records // per_span):
        with tracer.start_as_current_span("pay"):
            for _ in range(per_span):
                logger.info("order %s paid", "o-1")
    spent = time.process_time() - began
    # the span's own cost, measured without any log line, is taken out below
    began = time.process_time()
    for _ in range(records // per_span):
        with tracer.start_as_current_span("pay"):
            pass
    spent -= time.process_time() - began
    commerce_observe.shutdown()
    return spent / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = logging.getLogger()
    root.addHandler(_Discard())
    root.setLevel(logging.INFO)
    variants = {"stdlib": None, "masked": {"COMMERCE_OBSERVE_LOG_CORRELATION": "false"}, "correlated": {}}
    for per_span in (args.records, 5):
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):  # interleaved, so a burst of load hits every variant
            for name, env in variants.items():
                runs[name].append(_run(env, args.records, per_span))
        best = {name: min(values) for name, values in runs.items()}
        label = "all records in one span" if per_span == args.records else f"{per_span} records per span"
        print(f"CPU per log record, best of {args.repeat} x {args.records} records, {label}:")
        for name, us in best.items():
            print(f"  {name:11s} {us:6.2f} us")
        print(f"  correlation alone (correlated - masked): {best['correlated'] - best['masked']:5.2f} us per record")


if __name__ == "__main__":
    main()

"""``commerce-observe demo``: an order-to-payment flow through the real instrumentation.

An order service answers ``POST /orders`` (SERVER span), records ``order.created``
and publishes a payment request (PRODUCER span, trace context injected with every
format); a payment service consumes it (CONSUMER span joined from the headers) and
authorizes and captures the payment, or records ``payment.failed`` with a
realistic reason. Spans go to Zipkin and Elastic APM when ``--zipkin``/``--apm``
(or the ``OTEL_*``/``ELASTIC_APM_*`` variables) name them, else to the embedded
default file. The summary says where they went and what, if anything, was dropped.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from commerce_observe.agent import events
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.events.model import FailureReason
from commerce_observe.monitor.cli.errors import UsageError, count, output_file, ratio, url

PRODUCTS = [(f"sku-{n:04d}", Decimal(price)) for n, price in enumerate(
    ["19.99", "5.49", "129.00", "42.50", "9.90", "74.95", "3.20", "250.00", "15.00", "61.10"], start=1)]
METHODS = ["card", "paypal", "klarna", "apple_pay"]
REASONS = [FailureReason.DECLINED, FailureReason.INSUFFICIENT_FUNDS, FailureReason.FRAUD_SUSPECTED,
           FailureReason.GATEWAY_TIMEOUT]


@dataclass
class DemoResult:
    orders: int = 0
    paid: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    #: Revenue as the dashboard, Kibana and the anomaly series mean it: the value of orders placed.
    revenue: Decimal = Decimal(0)
    paid_revenue: Decimal = Decimal(0)  # the part of it whose payment was captured
    trace_ids: list[str] = field(default_factory=list)


def _order_service(tracer: trace.Tracer, rng: random.Random, n: int, result: DemoResult) -> tuple[str, Decimal, dict[str, str]]:
    order_id = f"ord-{n:06d}"
    items = [(pid, rng.randint(1, 3), price) for pid, price in rng.sample(PRODUCTS, rng.randint(1, 3))]
    total = sum((price * qty for _, qty, price in items), Decimal(0))
    headers: dict[str, str] = {}
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER, attributes={
        "http.request.method": "POST", "http.route": "/orders", "url.path": "/orders",
        "server.address": "order-service", "customer.email": f"buyer{n}@example.com",
    }) as span:
        events.order_created(order_id, amount=total, currency="EUR", items=items, customer_ref=f"cust-{n % 97:03d}")
        with tracer.start_as_current_span("send payment-requests", kind=SpanKind.PRODUCER, attributes={
            "messaging.system": "kafka", "messaging.destination.name": "payment-requests",
            "messaging.operation.type": "send", "server.address": "127.0.0.1",
        }):
            propagate.inject(headers)
        span.set_attribute("http.response.status_code", 201)
        result.trace_ids.append(format(span.get_span_context().trace_id, "032x"))
    result.orders += 1
    result.revenue += total
    return order_id, total, headers


def _payment_service(tracer: trace.Tracer, rng: random.Random, order_id: str, total: Decimal,
                     headers: dict[str, str], failure_rate: float, result: DemoResult) -> None:
    payment_id = "pay-" + order_id[4:]
    method = rng.choice(METHODS)
    with tracer.start_as_current_span("process payment-requests", context=propagate.extract(headers),
                                      kind=SpanKind.CONSUMER, attributes={
        "messaging.system": "kafka", "messaging.destination.name": "payment-requests",
        "messaging.operation.type": "process", "messaging.consumer.group.name": "payment-service",
        # A careless log field: the privacy masker must keep it out of every backend.
        "payment.card_number": "4111 1111 1111 1111",
    }):
        if rng.random() < failure_rate:
            reason = rng.choice(REASONS).value
            events.payment_failed(payment_id, order_id=order_id, reason=reason, amount=total, currency="EUR", method=method)
            result.failures[reason] += 1
            return
        events.payment_authorized(payment_id, order_id=order_id, amount=total, currency="EUR", method=method)
        with tracer.start_as_current_span("POST /v1/captures", kind=SpanKind.CLIENT, attributes={
            "http.request.method": "POST", "server.address": "psp.example", "http.response.status_code": 200,
        }):
            events.payment_captured(payment_id, order_id=order_id, amount=total, currency="EUR", method=method)
        events.order_paid(order_id, amount=total, currency="EUR", payment_id=payment_id)
        result.paid += 1
        result.paid_revenue += total


def run_flow(orders: int, seed: int = 7, failure_rate: float = 0.12) -> DemoResult:
    """Drive ``orders`` orders through both services; returns what happened."""
    tracer = trace.get_tracer("commerce_observe.demo")
    rng = random.Random(seed)
    result = DemoResult()
    for n in range(1, orders + 1):
        order_id, total, headers = _order_service(tracer, rng, n, result)
        _payment_service(tracer, rng, order_id, total, headers, failure_rate, result)
    return result


def _spans_url(url: str) -> str:
    return url if url.rstrip("/").endswith("/api/v2/spans") else url.rstrip("/") + "/api/v2/spans"


def run(args: argparse.Namespace) -> int:
    import commerce_observe

    overrides: dict[str, Any] = {"service_name": "commerce-demo"}
    if args.zipkin:
        overrides["zipkin_endpoint"] = _spans_url(args.zipkin)
    if args.apm:
        overrides["apm_server_url"] = args.apm
    if args.output:
        overrides["output_file"] = args.output
    runtime = commerce_observe.install(**overrides)
    if runtime is None:
        print("commerce_observe is disabled (COMMERCE_OBSERVE_ENABLED=false): nothing to show")
        return 1
    result = run_flow(args.orders, seed=args.seed, failure_rate=args.failure_rate)
    runtime.flush(timeout_millis=10_000)
    counts = stats.snapshot()
    received = runtime.pipeline.stats()
    commerce_observe.shutdown()
    print(f"orders: {result.orders}  paid: {result.paid}  failed: {sum(result.failures.values())}  "
          f"revenue: {result.revenue} EUR (value of orders placed, as on the dashboard; paid: {result.paid_revenue} EUR)")
    for reason, count in result.failures.most_common():
        print(f"  payment.failed reason={reason}: {count}")
    print("traces went to:")
    for where in runtime.destinations:
        print(f"  {where}")
    print(f"example trace id: {result.trace_ids[0] if result.trace_ids else '-'}")
    masked = sum(v for k, v in counts.items() if k.startswith("privacy.masked"))
    print(f"sensitive values masked before export: {masked}")
    problems = {k: v for k, v in sorted(counts.items())
                if v and not k.startswith("privacy.masked") and not k.endswith(".exported")}
    print("dropped/ignored: " + (", ".join(f"{k}={v}" for k, v in problems.items()) or "nothing"))
    empty = [f"{exporter.name} ({where})" for exporter, where in zip(runtime.exporters, runtime.destinations)
             if result.orders and not received.get(exporter.name, {}).get("exported")]
    if empty:
        raise UsageError("received nothing: " + "; ".join(empty) + " (is the URL right and the server up?)")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run an order-to-payment flow and show where its traces went",
                                   description=__doc__)
    parser.add_argument("--orders", type=count, default=300, help="orders to place")
    parser.add_argument("--failure-rate", type=ratio, default=0.12, help="share of payments that fail, 0 to 1")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same orders)")
    parser.add_argument("--zipkin", type=url, metavar="URL", help="Zipkin base or /api/v2/spans URL")
    parser.add_argument("--apm", type=url, metavar="URL", help="Elastic APM Server URL")
    parser.add_argument("--output", type=output_file, metavar="FILE",
                        help="embedded default file (when no backend is given)")
    parser.set_defaults(func=run)

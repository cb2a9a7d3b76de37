"""Payment service (Flask): charges orders, and fails now and then for real reasons.

Orders arrive on ``<prefix>.orders`` (with Kafka) or as ``POST /payments`` (without).
Each charge asks the card gateway to authorise (a CLIENT span of its own); most
succeed (``payment.authorized`` then ``payment.captured``), some fail as cards do:
declined, insufficient funds, fraud suspected, or the gateway timing out
(``payment.failed`` with that reason, and the timeout as an exception on the
gateway span). The outcome is published on ``<prefix>.payments`` for the
notification consumer, and can be read at ``GET /payments/by-order/<order_id>``.

    python -m examples.payment_service --port 8002 [--kafka 127.0.0.1:9092] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from decimal import Decimal
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import commerce_observe.auto  # noqa: F401  (first: wires tracing for everything below)

import flask
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import commerce_observe
from commerce_observe import FailureReason
from commerce_observe.agent.messaging import handling, publishing
from commerce_observe.store.kafka_io import subscribe_when_known
from examples.common import ORDERS, PAYMENTS, exit_on_sigterm, from_bytes, to_bytes, topic

tracer = trace.get_tracer("examples.payment_service")

#: (outcome, weight): about one payment in four fails, for one of four reasons.
OUTCOMES = [("captured", 75), (FailureReason.DECLINED.value, 8), (FailureReason.INSUFFICIENT_FUNDS.value, 7),
            (FailureReason.FRAUD_SUSPECTED.value, 4), (FailureReason.GATEWAY_TIMEOUT.value, 6)]


class Payments:
    """The payments made so far, by order id, and the card gateway's verdicts."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.by_order: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def verdict(self, order_id: str) -> str:
        rng = random.Random(f"{self.seed}:{order_id}")  # the same order always gets the same verdict
        return rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]

    def authorize(self, order_id: str, amount: Decimal) -> str:
        with tracer.start_as_current_span("card-gateway authorize", kind=SpanKind.CLIENT,
                                          attributes={"peer.service": "card-gateway"}) as span:
            outcome = self.verdict(order_id)
            time.sleep(0.005)
            if outcome == FailureReason.GATEWAY_TIMEOUT.value:
                time.sleep(0.05)
                span.record_exception(TimeoutError("card gateway did not answer within 50 ms"))
                span.set_status(Status(StatusCode.ERROR, "gateway timeout"))
            span.set_attribute("gateway.verdict", outcome)
            return outcome

    def charge(self, request: dict[str, Any]) -> tuple[dict[str, Any], commerce_observe.DomainEvent | None]:
        order_id, currency, method = request["order_id"], request["currency"], request.get("method", "card")
        amount = Decimal(request["amount"])
        payment_id = f"pay-{uuid.uuid4().hex[:10]}"
        outcome = self.authorize(order_id, amount)
        if outcome == "captured":
            commerce_observe.payment_authorized(payment_id, order_id=order_id, amount=amount, currency=currency, method=method)
            event = commerce_observe.payment_captured(payment_id, order_id=order_id, amount=amount, currency=currency,
                                                      method=method)
            result: dict[str, Any] = {"status": "captured"}
        else:
            event = commerce_observe.payment_failed(payment_id, order_id=order_id, reason=outcome, amount=amount,
                                                    currency=currency, method=method)
            result = {"status": "failed", "reason": outcome}
        result.update(payment_id=payment_id, order_id=order_id, customer_ref=request.get("customer_ref"))
        with self.lock:
            self.by_order[order_id] = result
        return result, event


def create_app(payments: Payments) -> flask.Flask:
    app = flask.Flask("payment-service")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/payments")
    def pay() -> dict[str, Any]:
        result, _ = payments.charge(flask.request.get_json())
        return result

    @app.get("/payments/by-order/<order_id>")
    def by_order(order_id: str) -> tuple[dict[str, Any], int]:
        with payments.lock:
            found = payments.by_order.get(order_id)
        return (found, 200) if found else ({"status": "pending"}, 404)

    return app


def consume(kafka: str, prefix: str, payments: Payments, stop: threading.Event) -> None:
    """Charge every order published on ``<prefix>.orders``; publish the outcome."""
    from kafka import KafkaConsumer, KafkaProducer

    consumer = KafkaConsumer(bootstrap_servers=kafka, group_id=f"{prefix}.payment-service",
                             client_id="payment-service", auto_offset_reset="earliest")
    subscribe_when_known(consumer, [topic(prefix, ORDERS)])  # see its note on kafka-python
    producer = KafkaProducer(bootstrap_servers=kafka, client_id="payment-service", linger_ms=5)
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    with handling(record):  # the order's trace continues here
                        result, event = payments.charge(from_bytes(record.value))
                        with publishing(event):
                            producer.send(topic(prefix, PAYMENTS), value=to_bytes(result),
                                          key=result["order_id"].encode())
            producer.flush(10)
    finally:
        producer.close(5)
        consumer.close()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kafka", help="bootstrap servers; without it only POST /payments charges")
    parser.add_argument("--topic-prefix", default="shop")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    payments = Payments(args.seed)
    stop = threading.Event()
    exit_on_sigterm(stop)
    server = make_server("127.0.0.1", args.port, create_app(payments), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    worker = None
    if args.kafka:
        worker = threading.Thread(target=consume, args=(args.kafka, args.topic_prefix, payments, stop))
        worker.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        stop.set()
    server.shutdown()
    if worker is not None:
        worker.join(15)


if __name__ == "__main__":
    main()

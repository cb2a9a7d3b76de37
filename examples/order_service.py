"""Order service (FastAPI): ``POST /orders`` creates an order and asks for payment.

With Kafka the request is published on ``<prefix>.orders`` for the payment service
to consume; without Kafka the payment service is called over HTTP. Either way the
call carries the trace context (commerce_observe's kafka-python and httpx
integrations), so the order's journey is one trace. The answer includes that
trace id, the handle a support engineer would search Zipkin or Kibana with.

    python -m examples.order_service --port 8001 --payment-url http://127.0.0.1:8002 [--kafka 127.0.0.1:9092]
"""

from __future__ import annotations

import argparse
import uuid
from decimal import Decimal
from typing import Any

import commerce_observe.auto  # noqa: F401  (first: wires tracing for everything below)

import fastapi
import httpx
import uvicorn
from pydantic import BaseModel

import commerce_observe
from commerce_observe.agent.messaging import publishing
from examples.common import ORDERS, exit_on_sigterm, to_bytes, topic


class Item(BaseModel):
    product_id: str
    quantity: int
    unit_price: str


class NewOrder(BaseModel):
    customer_ref: str
    currency: str = "EUR"
    method: str = "card"
    items: list[Item]


def create_app(payment_url: str, kafka: str | None, prefix: str) -> fastapi.FastAPI:
    app = fastapi.FastAPI(title="order-service")
    producer: Any = None
    if kafka:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka, client_id="order-service", linger_ms=5)
    payments = httpx.Client(base_url=payment_url, timeout=10)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders")
    def place_order(order: NewOrder) -> dict[str, Any]:
        order_id = f"ord-{uuid.uuid4().hex[:10]}"
        items = [(i.product_id, i.quantity, Decimal(i.unit_price)) for i in order.items]
        amount = sum((Decimal(i.unit_price) * i.quantity for i in order.items), Decimal("0"))
        event = commerce_observe.order_created(order_id, amount=amount, currency=order.currency,
                                               items=items, customer_ref=order.customer_ref)
        request = {"order_id": order_id, "amount": str(amount), "currency": order.currency,
                   "method": order.method, "customer_ref": order.customer_ref}
        answer: dict[str, Any] = {"order_id": order_id, "trace_id": event.trace_id if event else None}
        if producer is not None:
            with publishing(event):  # the message carries the order.created event's id
                producer.send(topic(prefix, ORDERS), value=to_bytes(request), key=order_id.encode())
            producer.flush(10)
            answer["payment"] = "requested"
        else:
            result = payments.post("/payments", json=request).json()
            answer["payment"] = result["status"]
            answer["payment_id"] = result["payment_id"]
        return answer

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payment-url", required=True)
    parser.add_argument("--kafka", help="bootstrap servers; without it payments are requested over HTTP")
    parser.add_argument("--topic-prefix", default="shop")
    args = parser.parse_args()
    app = create_app(args.payment_url, args.kafka, args.topic_prefix)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default
    # handler that kills the process before atexit flushes the last spans.
    exit_on_sigterm()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

"""Notification consumer (kafka-python): tells the customer how the payment went.

Consumes ``<prefix>.payments``; a captured payment sends an order confirmation
e-mail, a failed one a push message asking for another card. Each record is
handled inside ``handling(record)``, so the sending joins the order's trace, and
each notification is appended to ``--log`` (JSON lines) for the runner's summary.
There is no HTTP side: without Kafka this service has nothing to do.

    python -m examples.notification_consumer --kafka 127.0.0.1:9092 --log notifications.jsonl
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import commerce_observe.auto  # noqa: F401  (first: wires tracing for everything below)

from kafka import KafkaConsumer
from opentelemetry import trace

from commerce_observe.agent.events import conventions as cv
from commerce_observe.agent.messaging import handling
from commerce_observe.store.kafka_io import subscribe_when_known
from examples.common import PAYMENTS, exit_on_sigterm, from_bytes, topic

tracer = trace.get_tracer("examples.notification_consumer")


def notify(payment: dict[str, object]) -> dict[str, object]:
    captured = payment.get("status") == "captured"
    channel = "email" if captured else "push"
    with tracer.start_as_current_span(f"send {channel}") as span:
        span.set_attribute(cv.ORDER_ID, str(payment["order_id"]))
        span.set_attribute(cv.OUTCOME, str(payment.get("status")))
        time.sleep(0.002)  # the mail or push provider
    text = "Your order is confirmed" if captured else f"Payment failed ({payment.get('reason')}): try another card"
    return {"order_id": payment["order_id"], "channel": channel, "text": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--topic-prefix", default="shop")
    parser.add_argument("--log", required=True, help="JSON lines file, one line per notification sent")
    args = parser.parse_args()
    stop = threading.Event()
    exit_on_sigterm(stop)
    consumer = KafkaConsumer(bootstrap_servers=args.kafka, group_id=f"{args.topic_prefix}.notification-service",
                             client_id="notification-service", auto_offset_reset="earliest")
    subscribe_when_known(consumer, [topic(args.topic_prefix, PAYMENTS)])  # see its note on kafka-python
    with open(args.log, "a", encoding="utf-8") as log:
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        with handling(record):
                            sent = notify(from_bytes(record.value))
                        log.write(json.dumps(sent) + "\n")
                        log.flush()
        except KeyboardInterrupt:
            pass
        finally:
            consumer.close()


if __name__ == "__main__":
    main()

"""Cost of masking a typical commerce span's attributes, against a plain dict copy
measured in the same run (the least any exporter does with attributes).

    .venv/bin/python benchmarks/masking.py
"""

from __future__ import annotations

import itertools
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.util.types import AttributeValue  # noqa: E402

from benchmarks._timing import per_call_us  # noqa: E402
from commerce_observe.agent.privacy import Masker  # noqa: E402

CLEAN: dict[str, AttributeValue] = {
    "messaging.system": "kafka",
    "messaging.destination.name": "orders.paid",
    "messaging.operation": "process",
    "messaging.kafka.partition": 3,
    "messaging.kafka.offset": 1_234_567,
    "messaging.message.id": "550e8400-e29b-41d4-a716-446655440000",
    "order.id": "ord-000123",
    "order.amount": 1234.56,
    "order.currency": "EUR",
    "payment.method": "card",
    "payment.provider": "acme-pay",
    "event.time": "2024-01-15T12:30:45.123Z",
    "event.epoch_ms": 1_705_321_845_123,
    "retry": False,
}
DIRTY = dict(CLEAN, **{"customer.email": "bob@shop.example", "note": "card 4111 1111 1111 1111 declined"})


def _messages(n: int) -> list[dict[str, AttributeValue]]:
    """``n`` spans like CLEAN whose per-message values differ (ids, offset, amount, times),
    as a stream of messages has them: the clean-string memo only helps the repeated ones."""
    out: list[dict[str, AttributeValue]] = []
    for i in range(n):
        out.append(dict(CLEAN, **{
            "messaging.kafka.offset": 1_234_567 + i, "messaging.message.id": str(uuid.UUID(int=i * 7919 + 1, version=4)),
            "order.id": f"ord-{i:06d}", "order.amount": 10.0 + i / 100, "event.time": f"2024-01-15T12:{i // 60 % 60:02d}:{i % 60:02d}.123Z",
            "event.epoch_ms": 1_705_321_845_123 + i,
        }))
    return out


def _consumer_spans(n: int) -> list[dict[str, AttributeValue]]:
    """A Kafka CONSUMER span's attributes as ours carry them, per-message values varying."""
    return [{
        "messaging.system": "kafka", "messaging.destination.name": "orders-v2", "messaging.operation.type": "process",
        "messaging.operation.name": "process", "messaging.consumer.group.name": "billing-7f3a9c21",
        "server.address": "10.0.12.7", "server.port": 9092, "messaging.message.id": f"{i * 0x9E3779B97F4A7C15:032x}"[-32:],
        "cloudevents.event_source": "/checkout/kafka-python-e9e1bfea", "cloudevents.event_type": "commerce.order.paid",
        "commerce.message.sequence": i + 1, "messaging.destination.partition.id": str(i % 12),
        "messaging.kafka.offset": 1_000_000 + i, "messaging.kafka.message.key": f"ord-{i % 5000:06d}",
        "commerce.message.latency_ms": 3.25,
    } for i in range(n)]


class _NoMemo(set):  # type: ignore[type-arg]
    """Turns the masker's clean-string memo off (to show what it saves)."""

    def add(self, item: object) -> None:
        pass


def main() -> None:
    masker = Masker()
    masker.mask_attributes(CLEAN)  # warm the key cache
    stream = itertools.cycle(_messages(50_000))
    consumer = itertools.cycle(_consumer_spans(50_000))
    no_memo = Masker()
    no_memo._clean = _NoMemo()  # noqa: SLF001
    base = per_call_us(lambda: dict(CLEAN))
    rows = {
        f"dict copy baseline ({len(CLEAN)} attrs)": base,
        f"mask_attributes, clean ({len(CLEAN)} attrs), same dict": per_call_us(lambda: masker.mask_attributes(CLEAN)),
        "mask_attributes, clean, per-message values": per_call_us(lambda: masker.mask_attributes(next(stream))),
        "Kafka consumer span (15 attrs), memo off": per_call_us(lambda: no_memo.mask_attributes(next(consumer))),
        "Kafka consumer span (15 attrs)": per_call_us(lambda: masker.mask_attributes(next(consumer))),
        f"mask_attributes, 2 sensitive ({len(DIRTY)} attrs)": per_call_us(lambda: masker.mask_attributes(DIRTY)),
        "mask_text, 120-char log line, clean": per_call_us(
            lambda: masker.mask_text("order ord-000123 paid 1234.56 EUR trace 4bf92f3577b34da6a3ce929d0e0e4736 at 2024-01-15T12:30:45Z ok")
        ),
    }
    print(f"{'case':50} {'us/call':>8} {'vs copy':>8}")
    for name, us in rows.items():
        # a log line is not a span's attributes: no dict copy to compare it with
        ratio = "" if name.startswith("mask_text") else f"{us / base:7.1f}x"
        print(f"{name:50} {us:8.2f} {ratio:>8}")


if __name__ == "__main__":
    main()

"""Cost of masking a typical commerce span's attributes, against a plain dict copy
measured in the same run (the least any exporter does with attributes).

    .venv/bin/python benchmarks/masking.py
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.util.types import AttributeValue  # noqa: E402

from commerce_observe.privacy import Masker  # noqa: E402

N = 20_000

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


def per_call_us(fn: object) -> float:
    return min(timeit.Timer(fn).repeat(repeat=9, number=N)) / N * 1e6  # type: ignore[arg-type]


def main() -> None:
    masker = Masker()
    masker.mask_attributes(CLEAN)  # warm the key cache
    base = per_call_us(lambda: dict(CLEAN))
    rows = {
        f"dict copy baseline ({len(CLEAN)} attrs)": base,
        f"mask_attributes, clean ({len(CLEAN)} attrs)": per_call_us(lambda: masker.mask_attributes(CLEAN)),
        f"mask_attributes, 2 sensitive ({len(DIRTY)} attrs)": per_call_us(lambda: masker.mask_attributes(DIRTY)),
        "mask_text, 120-char log line, clean": per_call_us(
            lambda: masker.mask_text("order ord-000123 paid 1234.56 EUR trace 4bf92f3577b34da6a3ce929d0e0e4736 at 2024-01-15T12:30:45Z ok")
        ),
    }
    print(f"{'case':44} {'us/call':>8} {'vs copy':>8}")
    for name, us in rows.items():
        print(f"{name:44} {us:8.2f} {us / base:7.1f}x")


if __name__ == "__main__":
    main()

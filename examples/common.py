"""What the three example services share: topic names, JSON over Kafka, and a
SIGTERM that ends the process through ``atexit`` so commerce_observe flushes."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

ORDERS = "orders"
PAYMENTS = "payments"


def topic(prefix: str, name: str) -> str:
    """``shop.orders``: the runner gives every run its own prefix when asked.

    Consumer groups are named under the same prefix, so two runs (or two test
    sessions) never share a group and never wait on each other's rebalances."""
    return f"{prefix}.{name}"


def to_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def from_bytes(value: bytes) -> dict[str, Any]:
    data = json.loads(value.decode())
    assert isinstance(data, dict)
    return data


def exit_on_sigterm(stop: threading.Event | None = None) -> None:
    """SIGTERM → ``sys.exit`` (or ``stop.set()``): a killed process skips ``atexit``
    and would lose the spans still buffered for export."""

    def handle(signum: int, frame: Any) -> None:
        if stop is not None:
            stop.set()
        else:
            sys.exit(0)

    signal.signal(signal.SIGTERM, handle)

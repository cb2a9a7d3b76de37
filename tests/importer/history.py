"""A small imported history (aggregates) with its figures computed by hand, for both stores."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from commerce_observe.store.aggregates import Aggregate, PaymentBucket, order_aggregate, payment_aggregate, payment_bucket

H0 = datetime(2024, 3, 4, tzinfo=timezone.utc)
H0_MS = int(H0.timestamp() * 1000)
HOUR_MS = 3_600_000
#: hour -> product -> (orders, revenue in milli)
ORDERS = {0: {"sku-a": (3, 30_000), "sku-b": (1, 5_500)},
          1: {"sku-a": (2, 20_000)},
          3: {"sku-b": (4, 22_000), "sku-c": (7, 1_001)}}
#: hour -> method -> (attempts, failures, {reason: failures})
PAYMENTS = {0: {"card": (10, 3, {"declined": 2}), "paypal": (4, 0, {})},
            2: {"card": (5, 5, {"declined": 1, "fraud_suspected": 4})}}


def aggregates(currency: str = "EUR") -> list[Aggregate]:
    out: list[Aggregate] = []
    for h, products in ORDERS.items():
        for p, (n, milli) in products.items():
            out.append(order_aggregate(H0_MS + h * HOUR_MS, 3600, p, n, milli, currency))
    for h, methods in PAYMENTS.items():
        ts = H0_MS + h * HOUR_MS
        for m, (attempts, failures, reasons) in methods.items():
            out.append(payment_aggregate(ts, 3600, m, "payment.authorized", attempts - failures))
            for reason, k in reasons.items():
                out.append(payment_aggregate(ts, 3600, m, "payment.failed", k, reason))
            rest = failures - sum(reasons.values())
            if rest:
                out.append(payment_aggregate(ts, 3600, m, "payment.failed", rest))
    return out


def payment_buckets() -> list[PaymentBucket]:
    """The payments of :func:`aggregates` as the embedded store takes a payments CSV: one per method and hour."""
    return [payment_bucket(H0_MS + h * HOUR_MS, 3600, m, attempts - failures, reasons, failures - sum(reasons.values()))
            for h, methods in PAYMENTS.items() for m, (attempts, failures, reasons) in methods.items()]


def expected_series(by: str) -> list[tuple[int, str, int, float, int, int]]:
    """What ``series(by, whole day, 60)`` must return for :func:`aggregates` alone."""
    acc: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [0, 0.0, 0, 0])
    for h, products in ORDERS.items():
        for p, (n, milli) in products.items():
            key = {"product": p, "currency": "EUR", "site": ""}.get(by)
            if key is not None:
                acc[h, key][0] += n
                acc[h, key][1] += milli / 1000
    for h, methods in PAYMENTS.items():
        for m, (attempts, failures, _) in methods.items():
            key = {"method": m, "site": ""}.get(by)
            if key is not None:
                acc[h, key][2] += attempts
                acc[h, key][3] += failures
    return [(H0_MS + h * HOUR_MS, k, v[0], round(v[1], 3), v[2], v[3]) for (h, k), v in sorted(acc.items())]


def day() -> tuple[datetime, datetime]:
    return H0, H0 + timedelta(days=1)

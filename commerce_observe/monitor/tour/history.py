"""Three months of hourly sales as a warehouse exports them (``timestamp,product_id,orders,revenue``).

Daily and weekly cycles with Poisson noise; the broken product sells as usual until
``broken_hours`` before the end, then nothing: the incident the tour's watcher finds.

The cycles follow the shop's clock, on which the export always ends on a Wednesday at
23:00 (its evening peak is three hours before), whatever the hour and day the tour runs:
the same history and the same story every time. On the wall clock a product's night
trough could fall on the broken hours, and six empty night hours of a product selling
one an hour are not an incident (the tour found no anomaly when run in the morning).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np


def write_orders_csv(path: Path, products: dict[str, Decimal], end: datetime, *, days: int = 90,
                     broken: str | None = None, broken_hours: int = 0, seed: int = 11) -> int:
    """Write the CSV ending at ``end`` (exclusive, whole hours); return its row count."""
    rng = np.random.default_rng(seed)  # numpy's Poisson sampler, as anomaly/synthetic.py uses
    base = {sku: 4.0 + 10.0 * rng.random() for sku in products}
    start = end - timedelta(days=days)
    shop_end = datetime(2026, 1, 7, 23, tzinfo=timezone.utc)  # a Wednesday, 23:00 on the shop's clock
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("timestamp,product_id,orders,revenue\n")
        hour = start
        while hour < end:
            shop = shop_end - (end - hour)
            daily = 1.0 + 0.8 * math.cos(2 * math.pi * (shop.hour - 19) / 24)  # evening peak, night trough
            weekly = 1.2 if shop.weekday() >= 5 else 1.0
            stamp = hour.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            for sku, price in products.items():
                n = int(rng.poisson(base[sku] * daily * weekly))
                if sku == broken and hour >= end - timedelta(hours=broken_hours):
                    n = 0
                fh.write(f"{stamp},{sku},{n},{price * n}\n")
                rows += 1
            hour += timedelta(hours=1)
    return rows

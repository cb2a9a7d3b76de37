"""A realistic three-month history as a warehouse would export it: orders.csv and payments.csv.

Made from the synthetic shop the anomaly detector is measured on
(:mod:`commerce_observe.monitor.anomaly.synthetic`: daily and weekly shapes in the
shop's time zone, paydays, trends, promotions, a long tail of sparse products,
past incidents), moved in time by whole weeks so that it ends at the last full
hour before ``end`` (default: now) with weekdays where they belong. Timestamps
carry the shop's UTC offset (``+01:00`` in winter, ``+02:00`` in summer for
Europe/Berlin), as an export from a shop's own database would.

Orders list only products that sold in the hour (a warehouse leaves zeros out);
payments list every method every hour, failures split over reason columns.

    python -m commerce_observe.monitor.importer.sample DIR [--products 200] [--weeks 13]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

REASONS = ("insufficient_funds", "declined", "card_expired", "fraud_suspected", "gateway_timeout")  # FailureReason codes
#: share of each reason among failures; a gateway outage fails with gateway_timeout instead
REASON_SHARE = (0.38, 0.3, 0.12, 0.08, 0.12)


def write_sample(directory: str, *, products: int = 200, weeks: int = 13, seed: int = 7,
                 end: datetime | None = None, timezone_name: str = "Europe/Berlin",
                 incidents: bool = True) -> tuple[str, str]:
    """Write ``orders.csv`` and ``payments.csv`` into ``directory``; returns their paths.

    At least 10 products: the synthetic shop's incidents strike some of its busier ones.
    """
    if products < 10:
        raise ValueError(f"the sample needs at least 10 products, not {products}")
    import numpy as np

    from commerce_observe.monitor.anomaly import synthetic

    shop = synthetic.generate(n_products=products, weeks=max(weeks + 2, 10), seed=seed, timezone=timezone_name,
                              incidents=incidents)
    tz = ZoneInfo(timezone_name)
    last = (end or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = last - timedelta(weeks=weeks)
    shift = timedelta(weeks=-(-(last - shop.timestamps[-1]) // timedelta(weeks=1)))
    rng = np.random.default_rng(seed + 1)
    price = np.round(np.exp(rng.normal(3.0, 0.8, products)), 2)  # ~20 EUR median, a long tail of dear ones
    os.makedirs(directory, exist_ok=True)
    orders_path, payments_path = os.path.join(directory, "orders.csv"), os.path.join(directory, "payments.csv")
    with open(orders_path, "w", newline="") as orders, open(payments_path, "w", newline="") as payments:
        ow, pw = csv.writer(orders, lineterminator="\n"), csv.writer(payments, lineterminator="\n")  # not csv's \r\n
        ow.writerow(("timestamp", "product_id", "orders", "revenue"))
        pw.writerow(("timestamp", "method", "attempts", "failures", *REASONS))
        outage = {(i.start, i.end, i.series) for i in shop.incidents if i.kind == "gateway_outage"}
        for t, ts in enumerate(shop.timestamps):
            at = ts.astimezone(timezone.utc) + shift  # absolute time: hourly steps stay hourly across DST
            if not first <= at < last:
                continue
            stamp = at.astimezone(tz).isoformat()
            counts = shop.counts[t]
            for j in np.flatnonzero(counts):
                n = int(counts[j])
                units = max(rng.gamma(8.0 * n, 1 / 8.0), 1.0)  # units per order vary around one
                ow.writerow((stamp, shop.products[j], n, f"{price[j] * units:.2f}"))
            for k, method in enumerate(shop.methods):
                failures = int(shop.fail[t, k])
                down = any(s <= t < e and f"payment_failures:{method}" in series for s, e, series in outage)
                share = (0, 0, 0, 0, 1.0) if down else REASON_SHARE
                split = rng.multinomial(failures, share)
                pw.writerow((stamp, method, int(shop.attempts[t, k]), failures, *(int(x) for x in split)))
    return orders_path, payments_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commerce_observe.monitor.importer.sample",
                                     description="Write a realistic sample history (orders.csv, payments.csv).")
    parser.add_argument("directory")
    parser.add_argument("--products", type=int, default=200, help="products sold (at least 10)")
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for path in write_sample(args.directory, products=args.products, weeks=args.weeks, seed=args.seed):
        sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

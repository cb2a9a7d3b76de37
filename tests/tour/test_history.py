"""The tour's history reads the same whichever hour and day the tour runs.

CI once ran the tour in the morning: the broken product's six empty hours fell on its
night trough, where a product selling one an hour is not missed, and no anomaly came.
The cycles now follow the shop's clock, anchored to the export's end.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

from commerce_observe.monitor.tour.history import write_orders_csv
from commerce_observe.monitor.tour.shop import BROKEN, PRODUCTS


def _counts(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8") as fh:
        return [(row["product_id"], int(row["orders"])) for row in csv.DictReader(fh)]


def test_the_history_does_not_depend_on_the_hour_or_the_day_it_ends(tmp_path: Path) -> None:
    morning = datetime(2026, 12, 7, 11, tzinfo=timezone.utc)  # a Monday morning
    written = []
    for n, end in enumerate((morning, morning + timedelta(hours=9), morning + timedelta(days=5, hours=3))):
        path = tmp_path / f"h{n}.csv"
        write_orders_csv(path, PRODUCTS, end, broken=BROKEN, broken_hours=6)
        written.append(_counts(path))
    assert written[0] == written[1] == written[2]
    # the broken hours are the evening's: the product sold well in the hours before them
    last_day = [n for sku, n in written[0][-24 * len(PRODUCTS):] if sku == BROKEN]
    assert last_day[-6:] == [0] * 6 and sum(last_day[-12:-6]) >= 20

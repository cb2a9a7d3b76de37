"""The labelled incidents of the synthetic shop, placed at any minute of the evaluation weeks.

Kinds (issue 14) and how many per run (21): ``decline`` (one of the 6 busiest products' (60-500 a day)
sales fall 60 % over three days and stay down; x3), ``site_outage`` (every product x0.03
for 40-75 minutes; x3), ``payment_outage`` (card's or PayPal's failures at 60 % for 20-55
minutes; x3), ``sparse_burst`` (a product selling one to a few an hour, 12-100 a day, gets 8-15
extra orders within one to two hours; x3), ``sparse_drop`` (such a product sells nothing
for 6-12 hours; x3), ``page_broken`` (a mid-popular product sells nothing for 2-8 hours; x2),
``bot_spike`` (x10 for 1-2 hours; x2), ``price_error`` (x5 for 3-5 hours; x2); these last three
on products among the 20 busiest.
Each incident gets its own product (``OWN_PRODUCTS`` in all) and its own stretch of time;
where a kind's products are all taken already (or launched too late to be live in the
evaluation weeks), the free product nearest to them in popularity stands in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
METHODS = ("card", "paypal", "klarna", "applepay")
FINE = 12  # 5-minute steps per hour
HOUR = FINE
DAY = 24 * FINE
#: products the incidents take, each its own: declines 3, sparse bursts and drops 3 + 3,
#: broken pages, bot spikes and price errors 2 + 2 + 2
OWN_PRODUCTS = 15


@dataclass(frozen=True)
class Incident:
    kind: str
    series: tuple[str, ...]
    start: int  # 5-minute step, inclusive
    end: int  # 5-minute step, exclusive
    at_30: int = -1  # declines: the step where sales are 30 % down


def place(rng: np.random.Generator, rate: FloatArray, fail_rate: FloatArray, daily: FloatArray,
          products: list[str], lo: int, hi: int, hod: FloatArray) -> list[Incident]:
    """Inject the incidents into ``rate`` / ``fail_rate`` (in place) and return their labels."""
    out: list[Incident] = []
    used: set[int] = set()
    busy = np.argsort(-daily)
    rank = np.argsort(busy)  # each product's place in popularity
    live = np.asarray(~np.isnan(rate[lo:hi]).any(axis=0), dtype=bool)

    def product(pool: npt.NDArray[np.int64]) -> int:
        free = [int(j) for j in pool if int(j) not in used and live[int(j)]]
        if not free:  # the nearest free product in popularity (the more popular of two as near)
            first, last = int(rank[pool].min()), int(rank[pool].max())
            spare = [int(j) for j in busy if int(j) not in used and live[int(j)]]
            free = [min(spare, key=lambda j: max(first - int(rank[j]), int(rank[j]) - last))]
        j = int(rng.choice(free))
        used.add(j)
        return j

    def when(length: int, daytime: bool = True) -> int:
        for _ in range(1000):
            a = int(rng.integers(lo + DAY, hi - length - DAY))
            if not daytime or 9 <= hod[a] < 21:
                return a
        raise RuntimeError("no slot")

    def name(j: int) -> str:
        return f"orders:{products[j]}"

    for _ in range(3):
        j = product(busy[:6])
        a = when(4 * DAY, daytime=False)
        ramp = np.clip((np.arange(hi - a)) / (3 * DAY), 0.0, 1.0)
        rate[a:hi, j] *= 1.0 - 0.6 * ramp
        out.append(Incident("decline", (name(j),), a, hi, at_30=a + int(1.5 * DAY)))
    for _ in range(3):
        length = int(rng.integers(8, 16))  # 40-75 minutes
        a = when(length)
        rate[a : a + length] *= 0.03
        out.append(Incident("site_outage", tuple(["orders:__all__"] + [name(j) for j in range(len(products))]), a, a + length))
    for _ in range(3):
        m = int(rng.integers(0, 2))  # card or paypal: the methods with volume to see it
        length = int(rng.integers(4, 12))  # 20-55 minutes
        a = when(length)
        fail_rate[a : a + length, m] = 0.6
        out.append(Incident("payment_outage", (f"payment_failures:{METHODS[m]}",), a, a + length))
    few_an_hour = np.nonzero((daily >= 12) & (daily <= 100))[0]
    for _ in range(3):
        j = product(few_an_hour)
        length = int(rng.integers(HOUR, 2 * HOUR))
        a = when(length)
        rate[a : a + length, j] += float(rng.uniform(8, 15)) / length
        out.append(Incident("sparse_burst", (name(j),), a, a + length))
    for _ in range(3):
        j = product(few_an_hour)
        length = int(rng.integers(6 * HOUR, 12 * HOUR))
        a = when(length)
        rate[a : a + length, j] = 0.0
        out.append(Incident("sparse_drop", (name(j),), a, a + length))
    for kind, pool, lengths, lift in (("page_broken", busy[2:12], (2, 8), 0.0), ("bot_spike", busy[:10], (1, 2), 10.0),
                                      ("price_error", busy[4:20], (3, 5), 5.0)):
        for _ in range(2):
            j = product(pool)
            length = int(rng.integers(lengths[0] * HOUR, lengths[1] * HOUR + 1))
            a = when(length)
            rate[a : a + length, j] *= lift
            out.append(Incident(kind, (name(j),), a, a + length))
    return out

"""Synthetic shop: hourly orders per product and payment failure ratios, with labels.

Generates ``weeks`` of hourly data in the shop's time zone with lunch and evening
peaks, a different weekend shape, paydays (1st and 15th), per-product trend,
sparse long-tail products, negative-binomial noise, announced promotions (given
as a calendar) and injected, labelled incidents:

* ``page_broken``    one product's orders drop to zero
* ``bot_spike``      one product gets ~10x orders for two hours
* ``price_error``    one product gets ~6x orders for a few hours
* ``gateway_outage`` one payment method's failure ratio jumps to ~40%
* ``app_outage``     every product (and every payment method's attempts) drops

Series names: ``orders:<product>``, ``orders:__all__`` and ``payment_failures:<method>``
(ratio: failures / attempts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

METHODS = ("card", "paypal", "klarna", "applepay")


@dataclass(frozen=True)
class Incident:
    kind: str
    series: tuple[str, ...]
    start: int  # bucket index, inclusive
    end: int  # bucket index, exclusive


@dataclass
class SyntheticShop:
    timestamps: list[datetime]
    products: list[str]
    counts: FloatArray  # (T, P)
    total: FloatArray  # (T,)
    fail: FloatArray  # (T, M)
    attempts: FloatArray  # (T, M)
    incidents: list[Incident]
    calendar: list[dict[str, str]]
    promo_mask: npt.NDArray[np.bool_]  # (T, P) promotion active
    train_until: int  # first bucket that is evaluated
    methods: tuple[str, ...] = METHODS
    sparse: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def rows(self) -> list[tuple[datetime, str, float, float | None]]:
        """All points in time order: (timestamp, series, value, denominator or None)."""
        out: list[tuple[datetime, str, float, float | None]] = []
        for t, ts in enumerate(self.timestamps):
            for j, p in enumerate(self.products):
                out.append((ts, f"orders:{p}", float(self.counts[t, j]), None))
            out.append((ts, "orders:__all__", float(self.total[t]), None))
            for k, mth in enumerate(self.methods):
                out.append((ts, f"payment_failures:{mth}", float(self.fail[t, k]), float(self.attempts[t, k])))
        return out


def _daily_profile(weekend: bool) -> FloatArray:
    h = np.arange(24, dtype=np.float64)
    if weekend:
        shape = 0.15 + 1.0 * np.exp(-0.5 * ((h - 11.5) / 3.0) ** 2) + 1.2 * np.exp(-0.5 * ((h - 20.0) / 2.2) ** 2)
    else:
        shape = (
            0.1
            + 0.6 * np.exp(-0.5 * ((h - 9.0) / 2.0) ** 2)
            + 1.3 * np.exp(-0.5 * ((h - 12.5) / 0.9) ** 2)  # lunch peak
            + 1.1 * np.exp(-0.5 * ((h - 20.0) / 1.8) ** 2)
        )
    out: FloatArray = shape / shape.mean()
    return out


def generate(
    n_products: int = 300,
    weeks: int = 13,
    seed: int = 7,
    timezone: str = "Europe/Berlin",
    train_weeks: int = 9,
    incidents: bool = True,
) -> SyntheticShop:
    rng = np.random.default_rng(seed)
    tz = ZoneInfo(timezone)
    start = datetime(2024, 1, 1, tzinfo=tz)
    T = weeks * 7 * 24
    # hourly steps in absolute time (UTC arithmetic), shown in the shop's zone
    start_utc = start.astimezone(ZoneInfo("UTC"))
    timestamps = [(start_utc + timedelta(hours=t)).astimezone(tz) for t in range(T)]
    hod = np.array([ts.hour for ts in timestamps])
    dow = np.array([ts.weekday() for ts in timestamps])
    dom = np.array([ts.day for ts in timestamps])
    weekend = dow >= 5

    season = np.where(weekend, _daily_profile(True)[hod] * 1.25, _daily_profile(False)[hod])
    payday = np.where((dom == 1) | (dom == 15) | (dom == 2) | (dom == 16), 1.25, 1.0)

    P = n_products
    products = [f"sku-{i:04d}" for i in range(P)]
    # popularity: a head of busy products and a long tail of sparse ones
    base = np.exp(rng.normal(0.0, 1.3, P)) * 2.0
    sparse = rng.random(P) < 0.3
    base[sparse] = rng.uniform(0.02, 0.3, sparse.sum())
    growth = rng.uniform(-0.25, 0.5, P)
    trend = 1.0 + np.outer(np.arange(T) / T, growth)  # (T, P)
    rate = base[None, :] * trend * season[:, None] * payday[:, None]

    # announced promotions (in the calendar): uplift x2.5..x4 for 1..3 days
    promo_mask = np.zeros((T, P), dtype=bool)
    calendar: list[dict[str, str]] = []
    n_promos = max(4, P // 40)
    for k in range(n_promos):
        j = int(rng.integers(0, P))
        t0 = int(rng.integers(24 * 14, T - 72))
        dur = int(rng.integers(24, 72))
        promo_mask[t0 : t0 + dur, j] = True
        rate[t0 : t0 + dur, j] *= rng.uniform(2.5, 4.0)
        calendar.append(
            {
                "start": timestamps[t0].isoformat(),
                "end": timestamps[min(t0 + dur, T - 1)].isoformat(),
                "scope": f"orders:{products[j]}",
                "name": f"promo-{k}",
            }
        )
    # a shop-wide sale, announced: every product x1.8 for a day, scope by glob
    t_sale = 24 * 7 * 6 + 24 * 4
    rate[t_sale : t_sale + 24] *= 1.8
    promo_mask[t_sale : t_sale + 24] = True
    calendar.append(
        {"start": timestamps[t_sale].isoformat(), "end": timestamps[t_sale + 24].isoformat(), "scope": "*", "name": "spring-sale"}
    )

    # payment method shares and base failure rates
    share = np.array([0.55, 0.25, 0.12, 0.08])
    fail_rate = np.array([0.03, 0.02, 0.05, 0.015])
    fail_rate_t = np.tile(fail_rate, (T, 1))
    incidents_out: list[Incident] = []
    train_until = train_weeks * 7 * 24

    if incidents:
        eval_len = T - train_until
        busy = np.argsort(-base)

        def slot(frac: float) -> int:
            return train_until + int(frac * eval_len)

        # product page broken -> zero, on a mid-popular product
        j = int(busy[5])
        t0 = slot(0.1) + 10 - hod[slot(0.1)]  # around 10:00
        rate[t0 : t0 + 8, j] = 0.0
        incidents_out.append(Incident("page_broken", (f"orders:{products[j]}",), t0, t0 + 8))
        # bot spike on a popular product
        j = int(busy[2])
        t0 = slot(0.3)
        rate[t0 : t0 + 2, j] *= 10.0
        incidents_out.append(Incident("bot_spike", (f"orders:{products[j]}",), t0, t0 + 2))
        # price error on a moderately popular product
        j = int(busy[min(15, P // 6)])
        t0 = slot(0.45) + 14 - hod[slot(0.45)]
        rate[t0 : t0 + 4, j] *= 6.0
        incidents_out.append(Incident("price_error", (f"orders:{products[j]}",), t0, t0 + 4))
        # payment gateway outage on one method
        t0 = slot(0.6) + 19 - hod[slot(0.6)]
        fail_rate_t[t0 : t0 + 3, 1] = 0.4
        incidents_out.append(Incident("gateway_outage", ("payment_failures:paypal",), t0, t0 + 3))
        # app outage: everything drops
        t0 = slot(0.8) + 12 - hod[slot(0.8)]
        rate[t0 : t0 + 2] *= 0.05
        incidents_out.append(
            Incident("app_outage", tuple(["orders:__all__"] + [f"orders:{p}" for p in products]), t0, t0 + 2)
        )

    # negative-binomial noise (gamma-Poisson, shape 30)
    shape_k = 30.0
    lam = rng.gamma(shape_k, np.maximum(rate, 0.0) / shape_k)
    counts = rng.poisson(lam).astype(np.float64)
    total = counts.sum(axis=1)
    attempts = rng.poisson(np.maximum(total[:, None] * share[None, :] * 1.05, 0.0)).astype(np.float64)
    pr = rng.beta(200 * fail_rate_t, 200 * (1 - fail_rate_t))
    fail = rng.binomial(attempts.astype(np.int64), pr).astype(np.float64)
    return SyntheticShop(
        timestamps=timestamps,
        products=products,
        counts=counts,
        total=total,
        fail=fail,
        attempts=attempts,
        incidents=incidents_out,
        calendar=calendar,
        promo_mask=promo_mask,
        train_until=train_until,
        sparse=sparse,
    )

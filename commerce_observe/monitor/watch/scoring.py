"""Scoring closed buckets with the detector ``commerce-observe anomaly`` runs.

Every series seen so far is scored in every bucket (a product with no order in a
bucket scores a zero: that is how a product page that stopped selling shows), in
one vectorised call for counts and values and one for the payment failure ratios
(a method with no attempts in the bucket has nothing to judge and is left out).
Series names are those of :mod:`commerce_observe.monitor.anomaly.from_events`, which
the alert rules describe (``orders:<product>``, ``revenue:<currency>``,
``payment_failures:<method>``, ``orders:__all__``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone

import numpy as np

from commerce_observe.monitor.anomaly import AnomalyDetector, Score
from commerce_observe.monitor.watch.series import ALL_ORDERS, BucketValues


class Scorer:
    """The detector plus the names of every series it has seen, in a stable order."""

    def __init__(self, detector: AnomalyDetector) -> None:
        self.detector = detector
        self.products: set[str] = set()
        self.currencies: set[str] = set()
        self._names: list[str] = []  # count/value series, sorted once per new name
        self._keys: list[tuple[int, str]] = []  # (0 all orders | 1 product | 2 currency, key) per name
        self.buckets = 0

    def _learn_names(self, v: BucketValues) -> None:
        new_p = v.orders.keys() - self.products
        new_c = v.revenue_milli.keys() - self.currencies
        if not new_p and not new_c and self._names:
            return
        self.products |= new_p
        self.currencies |= new_c
        keys = [(0, "")] + [(1, p) for p in sorted(self.products)] + [(2, c) for c in sorted(self.currencies)]
        self._keys = keys
        self._names = [ALL_ORDERS if k == 0 else (f"orders:{x}" if k == 1 else f"revenue:{x}") for k, x in keys]

    def score(self, v: BucketValues) -> list[Score]:
        """Score bucket ``v`` (then learn from it); one Score per series, final when returned."""
        self._learn_names(v)
        ts = datetime.fromtimestamp(v.start_ns / 1e9, timezone.utc)
        orders, revenue = v.orders, v.revenue_milli
        values = np.fromiter(
            (v.all_orders if k == 0 else (orders.get(x, 0) if k == 1 else revenue.get(x, 0) / 1000.0)
             for k, x in self._keys), dtype=np.float64, count=len(self._keys))
        out = self.detector.update_batch(ts, self._names, values)
        methods = sorted(m for m, (_, attempts) in v.payments.items() if attempts > 0)
        if methods:
            out += self.detector.update_batch(
                ts, [f"payment_failures:{m}" for m in methods],
                np.array([float(v.payments[m][0]) for m in methods]), np.array([float(v.payments[m][1]) for m in methods]))
        self.buckets += 1
        return out

    def learn(self, buckets: Iterable[BucketValues], start_ns: int, end_ns: int, bucket_ns: int,
              progress: Callable[[int, int], None] | None = None) -> int:
        """Score-and-learn every bucket in ``[start_ns, end_ns)`` (empty ones as zeros); returns how many.

        ``buckets``: the ones holding data, in time order (``StoreSeries.read``).
        """
        done = 0
        total = max(0, (end_ns - start_ns) // bucket_ns)
        t = start_ns
        for v in buckets:
            while t < v.start_ns:
                self.score(BucketValues(t))
                t += bucket_ns
                done += 1
            if v.start_ns >= end_ns:
                break
            self.score(v)
            t = v.start_ns + bucket_ns
            done += 1
            if progress is not None and done % 24 == 0:
                progress(done, total)
        while t < end_ns:
            self.score(BucketValues(t))
            t += bucket_ns
            done += 1
        return done

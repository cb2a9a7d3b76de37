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
import numpy.typing as npt

from commerce_observe.monitor.anomaly import AnomalyDetector, Score
from commerce_observe.monitor.watch.series import ALL_ORDERS, BucketValues, every_bucket


class Scorer:
    """The detector plus the names of every series it has seen.

    Series keep the order they were first seen in (so a new product costs one append,
    not a re-sort of ten thousand names), and :meth:`score` returns its scores sorted by
    series name: what the alert rules see does not depend on that order, which differs
    between a run that never stopped and one restored from a checkpoint.
    """

    def __init__(self, detector: AnomalyDetector, site: bool = True) -> None:
        self.detector = detector
        self.products: set[str] = set()
        self.currencies: set[str] = set()
        #: whether ``orders:__all__`` is scored here (a scale-out shard may not hold it)
        self.site = site
        self._names: list[str] = [ALL_ORDERS] if site else []  # count/value series, in the order first seen
        self._pos: dict[tuple[int, str], int] = {}  # (1 product | 2 currency, key) -> index in _names
        self._idx: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)  # detector indices of _names (learning)
        self.buckets = 0

    def restore(self, products: set[str], currencies: set[str]) -> None:
        """Share the checkpoint's sets of names (they grow as new ones appear)."""
        self.products, self.currencies = products, currencies
        self._add(sorted(products), sorted(currencies))

    def _add(self, products: Iterable[str], currencies: Iterable[str]) -> list[str]:
        new = []
        for tag, keys, prefix in ((1, products, "orders:"), (2, currencies, "revenue:")):
            for k in keys:
                if (tag, k) not in self._pos:
                    self._pos[(tag, k)] = len(self._names)
                    self._names.append(prefix + k)
                    new.append(prefix + k)
        return new

    def _learn_names(self, v: BucketValues) -> list[str]:
        """Register the bucket's new products and currencies; returns the new series names."""
        new_p = v.orders.keys() - self.products
        new_c = v.revenue_milli.keys() - self.currencies
        if not new_p and not new_c:
            return []
        self.products |= new_p
        self.currencies |= new_c
        return self._add(sorted(new_p), sorted(new_c))

    def _values(self, v: BucketValues) -> npt.NDArray[np.float64]:
        out = np.zeros(len(self._names))
        if self.site:
            out[0] = v.all_orders
        pos = self._pos
        for p, n in v.orders.items():
            out[pos[(1, p)]] = n
        for c, milli in v.revenue_milli.items():
            out[pos[(2, c)]] = milli / 1000.0
        return out

    @staticmethod
    def _ratios(v: BucketValues) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        methods = sorted(m for m, (_, attempts) in v.payments.items() if attempts > 0)
        return ([f"payment_failures:{m}" for m in methods], np.array([float(v.payments[m][0]) for m in methods]),
                np.array([float(v.payments[m][1]) for m in methods]))

    def score(self, v: BucketValues) -> list[Score]:
        """Score bucket ``v`` (then learn from it); one Score per series, sorted by name, final when returned."""
        self._learn_names(v)
        ts = datetime.fromtimestamp(v.start_ns / 1e9, timezone.utc)
        out = self.detector.update_batch(ts, self._names, self._values(v)) if self._names else []
        names, failures, attempts = self._ratios(v)
        if names:
            out += self.detector.update_batch(ts, names, failures, attempts)
        self.buckets += 1
        out.sort(key=lambda x: x.series)
        return out

    def learn_one(self, v: BucketValues) -> None:
        """:meth:`score` without building Score objects (history: nobody reads those scores).

        The detector's vectorised core with the series indices kept between buckets:
        for 10,000 products a bucket costs a fraction of what :meth:`score` costs."""
        self._learn_names(v)
        if len(self._idx) != len(self._names):
            self._idx = np.concatenate([self._idx, self.detector.series_index(self._names[len(self._idx):])])
        ts = datetime.fromtimestamp(v.start_ns / 1e9, timezone.utc)
        if self._names:
            self.detector.update_batch_idx(ts, self._idx, self._values(v))
        ratio_names, failures, attempts = self._ratios(v)
        if ratio_names:
            self.detector.update_batch_idx(ts, self.detector.series_index(ratio_names), failures, attempts)
        self.buckets += 1

    def learn(self, buckets: Iterable[BucketValues], start_ns: int, end_ns: int, bucket_ns: int,
              progress: Callable[[int, int], None] | None = None) -> int:
        """Score-and-learn every bucket in ``[start_ns, end_ns)`` (empty ones as zeros); returns how many.

        ``buckets``: the ones holding data, in time order (``StoreSeries.read``).
        """
        done = 0
        total = max(0, (end_ns - start_ns) // bucket_ns)
        for v in every_bucket(buckets, start_ns, end_ns, bucket_ns):
            self.learn_one(v)
            done += 1
            if progress is not None and done % 24 == 0:
                progress(done, total)
        return done

"""The metric model's seasonal context member: the period read from the learning period, and a
missing daily bump (every value in range, only its time wrong) scored by it."""

from __future__ import annotations

import numpy as np

from commerce_observe.monitor.anomaly.season import find_period

from commerce_observe.monitor.anomaly.metric import MetricDetector, MetricSettings

PERIOD = 48


def test_period_is_the_first_autocorrelation_peak_or_none() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(300)
    assert abs(find_period(list(np.sin(2 * np.pi * t / 44) + rng.normal(0, 0.2, 300)), 0.3) - 44) <= 1
    assert find_period(list(rng.normal(0, 1, 300)), 0.3) == 0
    assert find_period([5.0] * 300, 0.3) == 0


def _daily_bumps(cycles: int, missing: int, seed: int) -> list[float]:
    """A flat series with an 8-point bump each 48 points; the bump of cycle ``missing`` is absent."""
    rng = np.random.default_rng(seed)
    x = 1.0 + rng.normal(0.0, 0.1, cycles * PERIOD)
    for c in range(cycles):
        if c != missing:
            x[c * PERIOD + 20 : c * PERIOD + 28] += 5.0
    return [float(v) for v in x]


def _raw(values: list[float], settings: MetricSettings) -> np.ndarray:
    det = MetricDetector(settings)
    return np.array([det.raw_update(v) or 0.0 for v in values])


def test_missing_bump_is_found_by_the_seasonal_member_only() -> None:
    vals = _daily_bumps(20, missing=15, seed=5)
    gap = slice(15 * PERIOD + 20, 15 * PERIOD + 34)
    with_season = _raw(vals, MetricSettings(learn_points=300, ensemble=()))
    without = _raw(vals, MetricSettings(learn_points=300, ensemble=(), w_season=0.0))
    assert with_season[gap].max() >= 0.8 > without[gap].max() + 0.2
    # before the gap the member stays below the alert level
    assert with_season[300 + PERIOD : gap.start].max() < 0.75


def test_state_saved_before_the_member_restores_with_it_silent() -> None:
    vals = _daily_bumps(12, missing=-1, seed=2)
    settings = MetricSettings(learn_points=300)
    det = MetricDetector(settings)
    for v in vals[:400]:
        det.update(v)
    assert det.season.period == PERIOD
    old = det.state()
    del old["season"]
    again = MetricDetector(settings)
    again.restore(old)
    assert again.season.period == 0
    assert all(0.0 <= (again.update(v) or 0.0) <= 1.0 for v in vals[400:])

"""The synthetic metric the detector tests share: a daily-ish sine with noise and a
level shift at 60 % of the series; and the detector's scores over it."""

from __future__ import annotations

import numpy as np

from commerce_observe.monitor.anomaly.metric import MetricDetector, MetricSettings


def shifted_sine(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10.0 + 3.0 * np.sin(t / 7.0) + rng.normal(0.0, 0.5, n)
    x[int(n * 0.6) :] += 4.0  # level shift
    return x


def shifted_sine_values(n: int, seed: int) -> list[float]:
    """:func:`shifted_sine` as Python floats."""
    return [float(v) for v in shifted_sine(n, seed)]


def scores(values: list[float], *, raw: bool = False, **kw: object) -> list[float]:
    """A detector's scores (0 while learning, 120 points) with settings ``kw``;
    ``raw``: without the rest period (``raw_update``)."""
    det = MetricDetector(MetricSettings(learn_points=120, **kw))  # type: ignore[arg-type]
    step = det.raw_update if raw else det.update
    return [s or 0.0 for s in map(step, values)]

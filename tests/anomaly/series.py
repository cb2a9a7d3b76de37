"""The synthetic metric the detector tests share: a daily-ish sine with noise and a
level shift at 60 % of the series."""

from __future__ import annotations

import numpy as np


def shifted_sine(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10.0 + 3.0 * np.sin(t / 7.0) + rng.normal(0.0, 0.5, n)
    x[int(n * 0.6) :] += 4.0  # level shift
    return x

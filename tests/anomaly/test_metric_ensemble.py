"""Ensemble member on a later-anchored grid and the continuous tie-breaker in the metric detector."""

from __future__ import annotations

import numpy as np

from commerce_observe.monitor.anomaly.metric import MetricDetector, MetricSettings

from .series import scores, shifted_sine_values


def test_ensemble_is_max_of_members_before_the_rest_period() -> None:
    vals = shifted_sine_values(800, seed=13)
    member = (("context_len", 3.0), ("levels", 6.0), ("skip", 0.4))
    alone = np.array(scores(vals, ensemble=(), raw=True))
    # a member has no seasonal part of its own (the series-level detector's only)
    other = np.array(scores(vals, ensemble=(), context_len=3, levels=6, skip=0.4, w_season=0.0, raw=True))
    both = np.array(scores(vals, ensemble=(member,), raw=True))
    assert np.allclose(both, np.maximum(alone, other))
    assert np.any(other > alone)


def test_skip_delays_learning_and_scoring() -> None:
    det = MetricDetector(MetricSettings(learn_points=100, skip=0.5, ensemble=()))
    out = [det.update(v) for v in shifted_sine_values(300, seed=1)]
    assert all(s is None for s in out[:150]) and all(s is not None for s in out[150:])


def test_tie_breaker_orders_within_a_level_and_keeps_range() -> None:
    vals = shifted_sine_values(900, seed=4)
    plain = np.array(scores(vals, tie=0.0, ensemble=(), calibrate=0.0, raw=True))
    tied = np.array(scores(vals, tie=0.05, ensemble=(), calibrate=0.0, raw=True))
    assert np.all(tied >= plain - 1e-12) and np.all(tied <= 1.0)
    assert np.all(tied - plain <= 0.05 + 1e-12)
    assert len(np.unique(np.round(tied[tied > 0.5], 9))) > len(np.unique(np.round(plain[plain > 0.5], 9)))


def test_default_detector_still_causal_with_members() -> None:
    vals = shifted_sine_values(700, seed=8)
    full = scores(vals, raw=True)
    assert scores(vals[:400], raw=True) == full[:400]

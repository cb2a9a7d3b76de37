"""Shifted-grid voting, graded pair novelty and calibration in the metric detector."""

from __future__ import annotations

import numpy as np

from .series import scores, shifted_sine_values


def test_median_of_three_grids_is_between_min_and_max() -> None:
    vals = shifted_sine_values(800, seed=11)
    kw = {"calibrate": 0.0, "rest_level": 2.0}  # raw fused scores, rest period off
    lo = np.array(scores(vals, vote="min", **kw))
    mid = np.array(scores(vals, vote="median", **kw))
    hi = np.array(scores(vals, vote="max", **kw))
    assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12)
    assert hi.sum() > lo.sum()


def test_single_grid_shift_by_whole_bins_changes_nothing() -> None:
    vals = shifted_sine_values(600, seed=2)
    assert scores(vals, offsets=1) == scores(vals, offsets=1, shift=1.0)


def test_level_shift_found_with_every_option() -> None:
    vals = shifted_sine_values(900, seed=4)
    shift = int(900 * 0.6)
    for kw in ({}, {"pair_fine": 4}, {"pair_near": 0.5}, {"calibrate": 1.0}, {"offsets": 5}):
        sc = scores(vals, **kw)
        assert max(sc[shift : shift + 60]) >= 0.6, kw


def test_calibration_scales_down_only() -> None:
    vals = shifted_sine_values(700, seed=9)
    raw = np.array(scores(vals, calibrate=0.0, rest_level=2.0))
    cal = np.array(scores(vals, calibrate=1.0, rest_level=2.0))
    assert np.all(cal <= raw + 1e-12)
    assert np.all((cal > 0) == (raw > 0))

"""The metric model is saveable: a model saved and loaded scores the next points identically."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from commerce_observe.monitor.anomaly import AnomalyDetector, Settings
from commerce_observe.monitor.anomaly.metric import MetricSettings

from .series import shifted_sine

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
STEP = timedelta(minutes=5)


def _values(n: int, seed: int) -> list[float]:
    x = shifted_sine(n, seed)
    x[int(n * 0.7)] += 20.0  # a spike after the save points
    return [float(v) for v in x]


def test_metric_model_round_trip_scores_identically(tmp_path: Path) -> None:
    series = {"cpu": _values(900, 1), "latency": _values(900, 2)}
    settings = Settings(model="metric", metric=MetricSettings(learn_points=120))
    # save while still learning (point 80), once scoring (point 400, the member too) and
    # right after the spike's alert (point 632: the rest period after it is state too)
    for cut in (80, 400, 632):
        a = AnomalyDetector(settings)
        for i in range(cut):
            for name, xs in series.items():
                a.update(name, T0 + i * STEP, xs[i])
        path = tmp_path / f"metric-{cut}.npz"
        a.save(path)
        b = AnomalyDetector.load(path)
        assert b.settings == a.settings and b.names == a.names
        scored = []
        for i in range(cut, 900):
            for name, xs in series.items():
                sa = a.update(name, T0 + i * STEP, xs[i])
                sb = b.update(name, T0 + i * STEP, xs[i])
                assert sa == sb
                scored.append(sa.score or 0.0)
        if cut < 630:
            assert max(scored) >= 75  # the spike: the comparison covers real alerts, not only zeros


def test_loaded_metric_model_refuses_out_of_order_points(tmp_path: Path) -> None:
    a = AnomalyDetector(Settings(model="metric", metric=MetricSettings(learn_points=20)))
    for i in range(30):
        a.update("m", T0 + i * STEP, float(i % 7))
    a.save(tmp_path / "m.npz")
    b = AnomalyDetector.load(tmp_path / "m.npz")
    late = b.update("m", T0, 3.0)
    assert late.rejected is not None and late.score is None
    assert np.isfinite(b.update("m", T0 + 30 * STEP, 3.0).score or 0.0)

"""The NAB-style metric detector is causal and deterministic."""

from __future__ import annotations

from commerce_observe.monitor.anomaly.metric import MetricDetector, MetricSettings

from .series import shifted_sine


def _series(n: int, seed: int) -> list[float]:
    x = shifted_sine(n, seed)
    x[int(n * 0.4)] += 20.0  # spike (well before the shift: repeats inside the rest period are muted)
    return [float(v) for v in x]


def _scores(values: list[float], learn: int) -> list[float | None]:
    det = MetricDetector(MetricSettings(learn_points=learn))
    return [det.update(v) for v in values]


def test_prefix_scores_do_not_depend_on_the_future() -> None:
    full = _series(900, seed=3)
    for cut in (60, 200, 540, 700):
        assert _scores(full[:cut], 90) == _scores(full, 90)[:cut]


def test_deterministic_and_learning_period() -> None:
    vals = _series(600, seed=5)
    a, b = _scores(vals, 90), _scores(vals, 90)
    assert a == b
    assert all(s is None for s in a[:90])
    assert all(s is not None and 0.0 <= s <= 1.0 for s in a[90:])


def test_finds_spike_and_shift() -> None:
    vals = _series(900, seed=7)
    sc = _scores(vals, 135)
    spike = int(900 * 0.4)
    shift = int(900 * 0.6)
    assert max(s or 0.0 for s in sc[spike : spike + 2]) >= 0.75
    assert max(s or 0.0 for s in sc[shift : shift + 40]) >= 0.75


def test_tiny_learning_period() -> None:
    sc = _scores([1.0, 2.0, 3.0, 100.0], 0)
    assert all(s is not None for s in sc)

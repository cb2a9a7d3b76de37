"""The hour-of-week profile pooled across a family's count series (issue 14, sparse products)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from commerce_observe.monitor.anomaly import AnomalyDetector, Settings

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)
WEEKS = 6


def _shape() -> np.ndarray:
    """One weekly shape (168 hours) every product of the shop shares, mean 1."""
    h = np.arange(168) % 24
    weekend = np.arange(168) // 24 >= 5
    f = 0.1 + 1.3 * np.exp(-0.5 * ((h - 12.5) / 1.2) ** 2) + np.exp(-0.5 * ((h - 20.0) / 2.0) ** 2)
    f = np.where(weekend, 1.3 * f, f)
    return f / f.mean()


def _shop(products: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hourly counts of ``products`` products (the first sells 1 an hour, the others 1-30) and their true rates."""
    rng = np.random.default_rng(seed)
    per_hour = np.concatenate([[1.0], rng.uniform(1.0, 30.0, products - 1)])
    rate = np.tile(_shape(), WEEKS)[:, None] * per_hour[None, :]
    return rng.poisson(rate).astype(float), rate


def _run(det: AnomalyDetector, x: np.ndarray, names: list[str], one_by_one: bool = False) -> np.ndarray:
    expected = np.full(x.shape, np.nan)
    idx = det.series_index(names)
    for t in range(x.shape[0]):
        if one_by_one:
            for j, name in enumerate(names):
                expected[t, j] = det.update(name, T0 + t * H, x[t, j]).expected or np.nan
        else:
            expected[t] = det.update_batch_idx(T0 + t * H, idx, x[t]).expected
    return expected


def _deviance(x: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-9)
    return float(np.mean(2.0 * (np.where(x > 0, x * np.log(np.maximum(x, 1e-12) / mu), 0.0) - (x - mu))))


def test_a_sparse_product_expects_closer_to_its_true_rate_with_the_pool() -> None:
    x, rate = _shop(20, seed=5)
    names = [f"orders:sku-{j}" for j in range(20)]
    late = slice(3 * 168, None)  # once every slot has been seen three times
    dev = {}
    for pooled in (False, True):
        exp = _run(AnomalyDetector(Settings(pool_seasons=pooled)), x, names)
        dev[pooled] = _deviance(x[late, 0], exp[late, 0])
    truth = _deviance(x[late, 0], rate[late, 0])
    # its own hour-of-week factors come from three to five visits of one sale each; the
    # pool's from twenty products' sales
    assert dev[True] < truth * 1.04 < dev[False]


def test_the_pool_is_the_same_whether_series_come_one_by_one_or_in_a_batch() -> None:
    x, _ = _shop(5, seed=2)
    x = x[: 3 * 168]
    names = [f"orders:sku-{j}" for j in range(5)]
    batch = _run(AnomalyDetector(Settings()), x, names)
    single = _run(AnomalyDetector(Settings()), x, names, one_by_one=True)
    np.testing.assert_allclose(single, batch, rtol=1e-12)


def test_a_family_of_one_series_keeps_its_own_profile() -> None:
    x, _ = _shop(1, seed=3)
    x = x[: 3 * 168]
    alone = _run(AnomalyDetector(Settings()), x, ["orders:sku-0"])
    unpooled = _run(AnomalyDetector(Settings(pool_seasons=False)), x, ["orders:sku-0"])
    np.testing.assert_allclose(alone, unpooled, rtol=1e-12)


def _saved(path: Path, seed: int) -> tuple[np.ndarray, list[str], AnomalyDetector]:
    """Six products' counts, their names, and a detector that saw 500 hours of them, saved at ``path``."""
    x, _ = _shop(6, seed=seed)
    names = [f"orders:sku-{j}" for j in range(6)]
    a = AnomalyDetector(Settings())
    _run(a, x[:500], names)
    a.save(path)
    return x, names, a


def test_save_restore_keeps_the_pool(tmp_path: Path) -> None:
    x, names, a = _saved(tmp_path / "m.npz", seed=4)
    b = AnomalyDetector.load(tmp_path / "m.npz")
    rest = x[500:700]
    ea = np.array([a.update_batch_idx(T0 + (500 + t) * H, a.series_index(names), rest[t]).score for t in range(200)])
    eb = np.array([b.update_batch_idx(T0 + (500 + t) * H, b.series_index(names), rest[t]).score for t in range(200)])
    np.testing.assert_array_equal(ea, eb)


@pytest.mark.parametrize("version", [4, 5])
def test_a_state_file_from_before_the_pool_starts_it_from_the_series_profiles(tmp_path: Path, version: int) -> None:
    x, _, _ = _saved(tmp_path / "new.npz", seed=6)
    with np.load(tmp_path / "new.npz") as data:
        # as version 5 wrote it: no pool, no family, and the stretches without the run of zeros
        old = {k: data[k] for k in data.files if not k.startswith("__pool_") and k not in ("group", "pooled", "pool_fit")}
    old["run"] = old["run"][:, :, :2]
    meta = json.loads(bytes(old["__meta__"]).decode("utf-8"))
    meta["version"] = version
    del meta["families"]
    old["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(tmp_path / "v4.npz", **old)
    b = AnomalyDetector.load(tmp_path / "v4.npz")
    pool = b.bank.pool
    assert pool.names == ["orders"]
    lunch, night = 12, 3  # Monday 12:00 and 03:00 UTC
    assert pool.cx[0, lunch] / pool.cm[0, lunch] > 3 * pool.cx[0, night] / pool.cm[0, night]
    s = b.update("orders:sku-0", T0 + 500 * H, x[500, 0])
    assert s.score is not None

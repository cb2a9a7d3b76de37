"""The synthetic shop of ``benchmarks/commerce_synthetic.py``: any seed, down to the smallest shop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.shop.generate import MIN_PRODUCTS, generate
from benchmarks.shop.incidents import OWN_PRODUCTS

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("site_outage", "payment_outage")  # incidents on the shop total and payment methods


# seeds whose later incidents found their products all taken (a ValueError from an empty
# choice) before the nearest free product stood in: 40 and 44 at the smallest shop, 12 at 40
@pytest.mark.parametrize(("seed", "n_products"), [(40, MIN_PRODUCTS), (44, MIN_PRODUCTS), (12, 40), (0, MIN_PRODUCTS)])
def test_every_incident_gets_a_live_product_of_its_own(seed: int, n_products: int) -> None:
    shop = generate(seed, n_products)
    assert len(shop.products) == n_products
    own = [i.series for i in shop.incidents if i.kind not in SHARED]
    assert len(own) == OWN_PRODUCTS and all(len(s) == 1 for s in own)
    names = [s[0] for s in own]
    assert len(set(names)) == OWN_PRODUCTS, names
    column = {f"orders:{p}": j for j, p in enumerate(shop.products)}
    evaluated = shop.counts5[shop.train_until:]
    for name in names:  # launched before the evaluation weeks: counted all through them
        assert not np.isnan(evaluated[:, column[name]]).any(), name


def test_a_shop_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_PRODUCTS} products"):
        generate(0, MIN_PRODUCTS - 1)


def test_the_benchmark_refuses_too_few_products_with_a_usage_line() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "commerce_synthetic.py"), "--products",
                          str(MIN_PRODUCTS - 1)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "argument --products" in last and f"at least {MIN_PRODUCTS} products" in last, run.stderr

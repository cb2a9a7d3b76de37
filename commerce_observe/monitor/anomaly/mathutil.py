"""Vectorised tail probabilities and the probability -> 0..100 score mapping.

Everything works in ``log10`` space so that extreme tails never underflow.
No SciPy: the normal tail uses the classic Chebyshev-fitted complementary error
function (fractional error below 1.2e-7 everywhere), kept in log form.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_LN10 = float(np.log(10.0))

#: Score points per decade of tail probability: p=1e-2 -> 25, 1e-4 -> 50, 1e-6 -> 75, 1e-8 -> 100.
POINTS_PER_DECADE = 12.5


def log10_norm_sf(z: FloatArray) -> FloatArray:
    """``log10 P(Z > z)`` for a standard normal ``Z``, accurate far into the tail."""
    z = np.asarray(z, dtype=np.float64)
    x = z / np.sqrt(2.0)
    ax = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * ax)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    ln_erfc_abs = np.log(t) - ax * ax + poly  # ln erfc(|x|)
    ln_sf_pos = ln_erfc_abs - np.log(2.0)  # ln P(Z > |z|)
    # for z < 0: P(Z > z) = 1 - P(Z > |z|)
    ln_sf = np.where(z >= 0, ln_sf_pos, np.log1p(-np.exp(np.minimum(ln_sf_pos, -1e-300))))
    out: FloatArray = ln_sf / _LN10
    return out


def surprise(z: FloatArray) -> FloatArray:
    """One-sided surprise ``-log10 P(Z > z)`` (0 for z <= 0)."""
    return np.maximum(-log10_norm_sf(np.maximum(z, 0.0)), 0.0)


def to_score(surprise_decades: FloatArray) -> FloatArray:
    """Map a surprise in decades of probability to the 0..100 score."""
    return np.clip(np.asarray(surprise_decades) * POINTS_PER_DECADE, 0.0, 100.0)


def poisson_z(x: FloatArray, mu: FloatArray) -> FloatArray:
    """Signed root deviance of count ``x`` against Poisson mean ``mu`` (~N(0,1) under the model)."""
    mu = np.maximum(mu, 1e-9)
    x = np.maximum(x, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / mu), 0.0)
    dev = np.maximum(2.0 * (term - (x - mu)), 0.0)
    return np.sign(x - mu) * np.sqrt(dev)


def binomial_z(k: FloatArray, n: FloatArray, p: FloatArray) -> FloatArray:
    """Signed root deviance of ``k`` successes out of ``n`` against rate ``p``."""
    p = np.clip(p, 1e-9, 1.0 - 1e-9)
    n = np.maximum(n, 0.0)
    k = np.clip(k, 0.0, n)
    mk = n * p
    mn = n * (1.0 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(k > 0, k * np.log(np.where(k > 0, k, 1.0) / np.maximum(mk, 1e-300)), 0.0)
        nk = n - k
        t2 = np.where(nk > 0, nk * np.log(np.where(nk > 0, nk, 1.0) / np.maximum(mn, 1e-300)), 0.0)
    dev = np.maximum(2.0 * (t1 + t2), 0.0)
    return np.sign(k - mk) * np.sqrt(dev)


def negbin_z(x: FloatArray, mu: FloatArray, var: FloatArray) -> FloatArray:
    """Signed root deviance of count ``x`` against a negative binomial of mean ``mu`` and
    variance ``var`` (size ``r = mu^2 / (var - mu)``; Poisson when ``var <= mu``).

    Fatter tails than a Poisson scaled to the same variance: a small product selling
    three in an hour where it sells one a day is less surprising to a negative binomial
    fitted to its history than to a Poisson, and a busy product's swings are judged by
    its own measured dispersion.
    """
    mu = np.maximum(mu, 1e-9)
    x = np.maximum(x, 0.0)
    r = mu * mu / np.maximum(var - mu, 1e-12 * mu * mu + 1e-300)
    r = np.minimum(r, 1e12)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / mu), 0.0)
        # (x + r) log((x + r) / (mu + r)), written with log1p so a huge r stays exact
        tail = (x + r) * np.log1p((x - mu) / (mu + r))
    dev = np.maximum(2.0 * (term - tail), 0.0)
    return np.sign(x - mu) * np.sqrt(dev)

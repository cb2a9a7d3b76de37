"""An hour-of-week profile pooled across the count series of a family (issue 14, sparse products).

A product selling a few an hour learns its own hour-of-week factors from a handful of
visits of each slot, and its expectation is off by more than its noise. Products of one
shop share most of their weekly shape (lunch and evening peaks, a different weekend), so
the counts of every series of a family (the part of the name before the first ``:``,
``orders`` for ``orders:sku-1`` and ``orders:__all__``) are pooled per slot:
``shape = sum(counts / payday factor) / sum(de-seasonalised level)``, exponentially
weighted per visit of the slot (``Settings.weekly_alpha``). A series' own factor is
shrunk towards it by how much it knows (:func:`blend`): a busy product keeps its own, a
sparse one leans on the pool, a new slot takes the pool's.

The pool is learned by whatever detector runs the series (the CLI, the Python API, each
shard of the always-on service from the series of its shard): sums, not averages of
batches, so series updated one at a time or in one batch give the same profile. State:
five numbers per family and slot (the sums, this bucket's own sums and the last visit)
and a member count per family, saved with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .settings import Settings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SLOTS = 168
NEVER = -(2**62)
#: relative model error of one visit of the pooled profile (series do not share it exactly)
POOL_FLOOR = 0.0025


def family(name: str) -> str:
    """The family a series is pooled with: its name up to the first ``:`` (the whole name without one)."""
    return name.split(":", 1)[0]


def _keep(s: Settings) -> float:
    """Share of a slot's older sums a new visit keeps (a visit of an hour slot of sub-hour
    buckets is spread over its buckets)."""
    return float((1.0 - s.weekly_alpha) ** min(1.0, s.hours))


def _rows(n: int = 0) -> FloatArray:
    return np.zeros((n, SLOTS))


@dataclass
class Pool:
    """Per family and hour-of-week slot: weighted counts ``x`` and levels ``m`` of the visits
    before the last one, the last visit's own (``cx``, ``cm``) and when it was (``last``)."""

    names: list[str] = field(default_factory=list)
    x: FloatArray = field(default_factory=_rows)
    m: FloatArray = field(default_factory=_rows)
    cx: FloatArray = field(default_factory=_rows)
    cm: FloatArray = field(default_factory=_rows)
    last: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, SLOTS), dtype=np.int64))
    #: count series that have added to each family's sums (a family of one has no others to lean on)
    members: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def group(self, name: str) -> int:
        """Index of ``name``'s family (registered on first sight)."""
        fam = family(name)
        if fam in self.names:
            return self.names.index(fam)
        self.names.append(fam)
        for k in ("x", "m", "cx", "cm"):
            setattr(self, k, np.vstack([getattr(self, k), _rows(1)]))
        self.last = np.vstack([self.last, np.full((1, SLOTS), NEVER, dtype=np.int64)])
        self.members = np.append(self.members, 0)
        return len(self.names) - 1

    def _sums(self, g: IntArray, how: int, t: int, keep: float) -> tuple[FloatArray, FloatArray]:
        """The sums of every visit before ``t`` (a series scored after another of the same
        bucket sees the same profile as one scored before it)."""
        now = self.last[g, how] == t
        x = np.where(now, self.x[g, how], keep * self.x[g, how] + self.cx[g, how])
        m = np.where(now, self.m[g, how], keep * self.m[g, how] + self.cm[g, how])
        return x, m

    def prior(self, g: IntArray, how: int, t: int, s: Settings, level: FloatArray, own: FloatArray,
              visits: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
        """The factor of slot ``how`` pooled over each series' family (``g``) and its relative
        variance as an estimate of one series' factor, from the counts of the *other* series
        (``level``, ``own``, ``visits``: each series' level, own factor of the slot and visits
        of it, its share of the sums). NaN where the family has one series or the others have
        sold nothing in the slot: the series keeps its own."""
        if not self.names:
            nan = np.full(g.size, np.nan)
            return nan, nan
        keep = _keep(s)
        fam_x, fam_m = self._sums(np.arange(len(self.names)), how, t, keep)  # per family, then per series
        x_all, m_all = fam_x[g], fam_m[g]
        weight = (1.0 - keep ** visits.astype(np.float64)) / (1.0 - keep)  # the series' buckets in the sums
        others = np.maximum(x_all - weight * level * own, 0.0)
        ok = (m_all > 0.0) & (others > 0.0) & (self.members > 1)[g]
        a = s.weekly_alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            # a series that dominates its family finds its own profile in the pool (no harm);
            # ratio of exponentially weighted sums: relative variance ~ 1 / ((2 - a) counts)
            shape = np.where(ok, x_all / m_all, np.nan)
            var = 1.0 / ((2.0 - a) * others) + POOL_FLOOR * a / (2.0 - a) + s.season_spread**2
        return shape, np.where(ok, var, np.nan)

    def learn(self, g: IntArray, how: int, t: int, s: Settings, counts: FloatArray, level: FloatArray,
              joined: IntArray) -> None:
        """Add one bucket's (payday-adjusted) counts and de-seasonalised levels of series of
        families ``g``; ``joined``: families of the series among them that add for the first time."""
        if not g.size or not self.names:
            return
        n = len(self.names)
        self.members += np.bincount(joined, minlength=n)
        seen = np.bincount(g, minlength=n) > 0
        # a new bucket of the slot: the last visit joins the older ones, which forget a share
        fresh = np.flatnonzero(seen & (self.last[:, how] != t))
        self.x[fresh, how], self.m[fresh, how] = self._sums(fresh, how, t, _keep(s))
        self.cx[fresh, how] = 0.0
        self.cm[fresh, how] = 0.0
        self.last[seen, how] = t
        self.cx[:, how] += np.bincount(g, weights=counts, minlength=n)
        self.cm[:, how] += np.bincount(g, weights=level, minlength=n)

    # ------------------------------------------------------------ persistence
    def payload(self) -> dict[str, Any]:
        return {f"__pool_{k}": getattr(self, k) for k in ("x", "m", "cx", "cm", "last", "members")}

    def restore(self, names: list[str], data: Any) -> None:
        self.names = list(names)
        for k in ("x", "m", "cx", "cm"):
            setattr(self, k, np.array(data[f"__pool_{k}"], dtype=np.float64).reshape(len(names), SLOTS))
        self.last = np.array(data["__pool_last"], dtype=np.int64).reshape(len(names), SLOTS)
        self.members = np.array(data["__pool_members"], dtype=np.int64).reshape(len(names))

    def seed(self, g: IntArray, counts: FloatArray, level: FloatArray) -> None:
        """Start from series' learned profiles (a state saved before the pool): ``counts`` (n, 168)
        their factors times their levels, ``level`` (n,) their levels; weighted as one visit."""
        n = len(self.names)
        for j in range(SLOTS):
            self.cx[:, j] = np.bincount(g, weights=counts[:, j], minlength=n)
        self.cm[:] = np.bincount(g, weights=level, minlength=n)[:, None]
        self.members = np.bincount(g, weights=level > 0, minlength=n).astype(np.int64)

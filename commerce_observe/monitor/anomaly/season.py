"""Seasonal context member of the metric model: how unexpected a value is given the value one period ago.

The period is read once, from the learning period's autocorrelation: the first local
peak of at least ``season_acf`` after the autocorrelation has fallen below 0.2 (no
such peak: no period, and the member stays silent). Then, on each of the detector's
shifted grids, counts of (bin one period ago -> bin now) give a surprise ``-log p(bin
| bin one period ago)`` minus ``season_excess`` times the bin's unconditional surprise
(a value rare at every time of the cycle is the other signals' business). The median
over the grids is the point's surprise; its mean over the last ``season_short`` points
is compared with the mean and spread of all earlier such means, and the Gaussian tail
probability ``p`` gives the score ``min(1, -log10(p) / season_scale)``. A context
detector borrowing CAD OSE's idea (contexts of quantised values, scored by how
unexpected the current one is) with the lagged value as the context, and HTM's anomaly
likelihood for the windowing. Memory is bounded: bins are clipped to three grid spans.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

ALPHA = 0.5  # pseudo-count of a never-seen transition
DROP = 0.2  # the autocorrelation must first fall below this before a peak counts


def find_period(values: list[float], min_acf: float) -> int:
    """The first autocorrelation peak (lag >= 2, at least ``min_acf``) after it fell below DROP; 0 if none."""
    x = np.asarray(values, dtype=np.float64)
    x = x - x.mean()
    den = float(x @ x)
    half = x.size // 2
    if not den > 0 or half < 4:
        return 0
    acf = np.correlate(x, x, mode="full")[x.size - 1 : x.size - 1 + half] / den  # acf[lag]
    dropped = False
    for lag in range(2, half - 1):
        dropped = dropped or acf[lag] < DROP
        if dropped and acf[lag] >= min_acf and acf[lag] >= acf[lag - 1] and acf[lag] >= acf[lag + 1]:
            return lag
    return 0


class SeasonalContext:
    """Fed every quantised point (learning replay included); ``score`` once learning ended."""

    def __init__(self, grids: int, levels: int, excess: float, short: int, scale: float, min_count: int) -> None:
        self.grids = grids
        self.lo, self.hi = -levels, 2 * levels  # bins kept (three grid spans): bounded memory
        self.excess = excess
        self.scale = scale
        self.min_count = min_count
        self.period = 0
        self.ring: deque[tuple[int, ...]] = deque()
        self.pairs: dict[tuple[int, int, int], int] = {}  # (grid, bin a period ago, bin now)
        self.context: dict[tuple[int, int], int] = {}  # (grid, bin a period ago)
        self.single: dict[tuple[int, int], int] = {}  # (grid, bin)
        self.seen = 0
        self.recent: deque[float] = deque(maxlen=short)
        self.count = 0  # Welford over the earlier short means
        self.mean = 0.0
        self.m2 = 0.0

    def start(self, period: int) -> None:
        self.period = period
        self.ring = deque(maxlen=period)

    def _surprise(self, g: int, before: int, now: int) -> float:
        c = self.context.get((g, before), 0)
        p = self.pairs.get((g, before, now), 0)
        u = self.single.get((g, now), 0)
        s = -math.log((p + ALPHA) / (c + 1.0)) + self.excess * math.log((u + ALPHA) / (self.seen + 1.0))
        self.context[(g, before)] = c + 1
        self.pairs[(g, before, now)] = p + 1
        self.single[(g, now)] = u + 1
        return s

    def update(self, bins: tuple[int, ...]) -> float:
        """Learn this point's bins (one per grid); its score in [0, 1] (0 without a period)."""
        if self.period == 0:
            return 0.0
        now = tuple(min(self.hi, max(self.lo, b)) for b in bins)
        full = len(self.ring) == self.period
        before = self.ring[0] if full else ()
        self.ring.append(now)
        if not full:
            return 0.0
        srt = sorted(self._surprise(g, before[g], now[g]) for g in range(self.grids))
        self.seen += 1
        mid = len(srt) // 2
        self.recent.append(srt[mid] if len(srt) % 2 else 0.5 * (srt[mid - 1] + srt[mid]))
        short = sum(self.recent) / len(self.recent)
        score = 0.0
        if self.count >= self.min_count:
            sd = math.sqrt(max(self.m2 / self.count, 1e-12))
            tail = 0.5 * math.erfc((short - self.mean) / sd / math.sqrt(2.0))
            score = min(1.0, max(0.0, -math.log10(max(tail, 1e-300)) / self.scale))
        self.count += 1
        delta = short - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (short - self.mean)
        return score

    def state(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "ring": [list(b) for b in self.ring],
            "pairs": [[*k, v] for k, v in self.pairs.items()],
            "context": [[*k, v] for k, v in self.context.items()],
            "single": [[*k, v] for k, v in self.single.items()],
            "seen": self.seen,
            "recent": list(self.recent),
            "stats": [self.count, self.mean, self.m2],
        }

    def restore(self, st: dict[str, Any]) -> None:
        self.start(int(st["period"]))
        self.ring.extend(tuple(int(v) for v in b) for b in st["ring"])
        self.pairs = {(int(g), int(a), int(b)): int(n) for g, a, b, n in st["pairs"]}
        self.context = {(int(g), int(a)): int(n) for g, a, n in st["context"]}
        self.single = {(int(g), int(a)): int(n) for g, a, n in st["single"]}
        self.seen = int(st["seen"])
        self.recent.clear()
        self.recent.extend(float(v) for v in st["recent"])
        self.count, self.mean, self.m2 = int(st["stats"][0]), float(st["stats"][1]), float(st["stats"][2])

"""Online detector for generic real-valued metrics (no known bucket size or seasonality).

Used for machine metrics and for the Numenta Anomaly Benchmark. Every score uses
only the past; the model keeps learning after the learning period.

* **quantiser**: at the end of the learning period the range seen so far is
  widened by ``margin`` on each side and cut into ``levels`` equal bins; values
  outside fall into further bins of the same width (the grid is never rescaled,
  so what was learned keeps its meaning). The learning-period values are then
  replayed into the memories below (no score is returned while learning).
* **contextual novelty**: the detector remembers every short sequence
  (1..``context_len`` points) of quantised values it has seen; the score is the
  fraction of the current point's sequences never seen before.
* **level-pair novelty**: the pair (mean of the last ``short_mean`` points, mean
  of the last ``long_mean`` points), quantised on a finer grid, never seen before
  (a level shift or a change of shape that no past pair explains).
* **range excursion**: a value beyond the range learned so far, or beyond the
  last ``long_window`` points' range, graded by the excursion size.

The evidence is combined by a maximum (each component weighted), then shaped for
alerting: a score is returned only when no returned score reached
``rest_level`` in the last ``rest_fraction x learn_points`` points (one alert
per incident). Memory is bounded: fixed-length windows, and the context memory
is capped (least recently seen evicted first).
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSettings:
    learn_points: int = 150
    # quantiser
    levels: int = 8
    pair_levels: int = 16
    margin: float = 0.5
    # memories
    context_len: int = 5
    short_mean: int = 4
    long_mean: int = 128
    long_window: int = 1000
    max_contexts: int = 200_000
    # fusion weights (global, chosen on the NAB corpus; see docs/anomaly.md)
    w_novelty: float = 1.0
    w_pair: float = 0.9
    w_excursion: float = 0.9
    exc_base: float = 0.5
    # alert shaping
    rest_fraction: float = 0.25
    rest_level: float = 0.75


class _SortedWindow:
    """Fixed-length window with O(log n) min / max / quantiles."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def add(self, x: float) -> None:
        self.fifo.append(x)
        bisect.insort(self.sorted, x)
        if len(self.fifo) > self.size:
            old = self.fifo.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def quantile(self, q: float) -> float:
        s = self.sorted
        if not s:
            return math.nan
        return s[min(len(s) - 1, max(0, int(q * (len(s) - 1) + 0.5)))]

    def __len__(self) -> int:
        return len(self.fifo)


class _RunningMean:
    """Mean of the last ``size`` values."""

    def __init__(self, size: int) -> None:
        self.buf: deque[float] = deque(maxlen=size)
        self.total = 0.0

    def add(self, x: float) -> float:
        if len(self.buf) == self.buf.maxlen:
            self.total -= self.buf[0]
        self.buf.append(x)
        self.total += x
        return self.total / len(self.buf)


class MetricDetector:
    """One series; ``update(value) -> score`` in [0, 1] (None while learning)."""

    def __init__(self, settings: MetricSettings | None = None) -> None:
        self.s = settings or MetricSettings()
        s = self.s
        self.n = 0
        self.learn_until = max(2, s.learn_points)
        self.pending: list[float] | None = []  # learning-period values, replayed at its end
        self.origin = 0.0
        self.width = 1.0
        self.pair_width = 1.0
        self.lo = math.inf
        self.hi = -math.inf
        self.window = _SortedWindow(s.long_window)
        self.bins: deque[int] = deque(maxlen=s.context_len)
        self.short = _RunningMean(s.short_mean)
        self.long = _RunningMean(s.long_mean)
        self.contexts: OrderedDict[tuple[int, ...], None] = OrderedDict()
        self.rest = max(1, int(s.rest_fraction * s.learn_points))
        self.recent_out: deque[float] = deque(maxlen=self.rest)

    # -- memories ---------------------------------------------------------------------
    def _seen(self, key: tuple[int, ...]) -> bool:
        """Remember ``key``; True if it was already known."""
        known = key in self.contexts
        if known:
            self.contexts.move_to_end(key)
        else:
            self.contexts[key] = None
            if len(self.contexts) > self.s.max_contexts:
                self.contexts.popitem(last=False)
        return known

    def _learn(self, x: float) -> tuple[float, float]:
        """Feed one value to the quantised memories; returns (novelty, pair novelty)."""
        self.bins.append(math.floor((x - self.origin) / self.width))
        seq = tuple(self.bins)
        novel = 0
        for k in range(1, len(seq) + 1):
            if not self._seen((0, *seq[-k:])):
                novel += 1
        m_short = self.short.add(x)
        m_long = self.long.add(x)
        pair = (
            1,
            math.floor((m_short - self.origin) / self.pair_width),
            math.floor((m_long - self.origin) / self.pair_width),
        )
        return novel / len(seq), 0.0 if self._seen(pair) else 1.0

    def _fix_quantiser(self, values: list[float]) -> None:
        lo, hi = min(values), max(values)
        span = hi - lo
        if not span > 0:
            span = abs(hi) if hi != 0 else 1.0
        full = span * (1.0 + 2.0 * self.s.margin)
        self.origin = lo - self.s.margin * span
        self.width = full / self.s.levels
        self.pair_width = full / self.s.pair_levels
        for v in values:
            self._learn(v)

    # -- scoring ----------------------------------------------------------------------
    def _excursion(self, x: float) -> float:
        exc = 0.0
        span = self.hi - self.lo
        if math.isfinite(span) and span > 0:
            if x > self.hi:
                exc = (x - self.hi) / span
            elif x < self.lo:
                exc = (self.lo - x) / span
        if len(self.window) >= 30:
            wlo, whi = self.window.sorted[0], self.window.sorted[-1]
            wspan = max(whi - wlo, 1e-9)
            if x > whi:
                exc = max(exc, (x - whi) / wspan)
            elif x < wlo:
                exc = max(exc, (wlo - x) / wspan)
        return min(1.0, self.s.exc_base + exc) if exc > 0 else 0.0

    def update(self, x: float) -> float | None:
        s = self.s
        excursion = self._excursion(x)
        self.window.add(x)
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)
        self.n += 1
        if self.pending is not None:
            self.pending.append(x)
            if self.n >= self.learn_until:
                self._fix_quantiser(self.pending)
                self.pending = None
            if self.n <= s.learn_points:
                return None
            return 0.0  # learn_points < 2: the quantiser needs two points
        novelty, pair = self._learn(x)
        raw = max(s.w_novelty * novelty, s.w_pair * pair, s.w_excursion * excursion)
        # alert shaping: one alert per incident
        out = raw if not self.recent_out or max(self.recent_out) < s.rest_level else 0.0
        self.recent_out.append(out)
        return out

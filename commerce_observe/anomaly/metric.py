"""Online detector for generic real-valued metrics (no known bucket size or seasonality).

Used for machine metrics and for the Numenta Anomaly Benchmark. An ensemble of
three cheap online detectors, each seeing only the past:

* **contextual novelty**: values are quantised on the range seen so far; the
  detector remembers every short sequence (context) of quantised levels and of
  level changes it has seen; a point whose context was never seen is novel.
* **robust level test**: a short-window median against a long-window median,
  in units of the long window's robust spread (catches level shifts, drops,
  spikes and flat-lining).
* **range excursion**: a value beyond the range learned so far.

The combined evidence is then shaped for alerting: after a point scores high,
repeats within a refractory period are damped, so one incident gives one alert.
Memory is bounded: windows are fixed-length deques and the context memory is
capped (oldest-first eviction).
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSettings:
    levels: int = 24
    context_len: int = 3
    long_window: int = 1000
    short_window: int = 6
    refractory: int = 200
    max_contexts: int = 50_000
    learn_points: int = 150
    # weights found best on the NAB corpus (one setting for all files); novelty and
    # the level test are kept switchable but off: on NAB they cost more false
    # positives than they found windows
    w_novelty: float = 0.0
    w_level: float = 0.0
    w_excursion: float = 1.0
    level_threshold: float = 3.0
    level_scale: float = 3.0
    alert_level: float = 0.5
    exc_base: float = 0.5
    exc_gain: float = 1.0
    w_window_excursion: float = 1.0


class _SortedWindow:
    """Fixed-length window with O(log n) median / quantiles."""

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


class MetricDetector:
    """One series; ``update(value) -> score`` in [0, 1] (None while learning)."""

    def __init__(self, settings: MetricSettings | None = None) -> None:
        self.s = settings or MetricSettings()
        self.n = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.long = _SortedWindow(self.s.long_window)
        self.recent: deque[float] = deque(maxlen=self.s.short_window)
        self.bins: deque[int] = deque(maxlen=self.s.context_len)
        self.contexts: OrderedDict[tuple[int, ...], int] = OrderedDict()
        self.since_alert = 10**9
        self.last_alert_score = 0.0

    def _bin(self, x: float) -> int:
        span = self.hi - self.lo
        if not math.isfinite(span) or span <= 0:
            return 0
        return int(min(self.s.levels, max(-1, math.floor((x - self.lo) / span * self.s.levels))))

    def _context_novelty(self, b: int) -> float:
        seq = (*self.bins, b)
        novel = 0.0
        total = 0
        # contexts of increasing length: every unseen one adds novelty
        for k in range(1, len(seq) + 1):
            key = (k, *seq[-k:])
            total += 1
            cnt = self.contexts.get(key)
            if cnt is None:
                novel += 1.0
            self.contexts[key] = (cnt or 0) + 1
            self.contexts.move_to_end(key)
        while len(self.contexts) > self.s.max_contexts:
            self.contexts.popitem(last=False)
        return novel / total if total else 0.0

    def update(self, x: float) -> float | None:
        s = self.s
        learning = self.n < s.learn_points
        b = self._bin(x)
        novelty = self._context_novelty(b)
        self.bins.append(b)

        # robust level test
        level_z = 0.0
        self.recent.append(x)
        if len(self.long) >= 30:
            med = self.long.quantile(0.5)
            spread = (self.long.quantile(0.9) - self.long.quantile(0.1)) / 2.56
            span = self.hi - self.lo
            spread = max(spread, 0.01 * span if math.isfinite(span) else 0.0, 1e-9)
            short_med = sorted(self.recent)[len(self.recent) // 2]
            level_z = abs(short_med - med) / spread / math.sqrt(1.0 + 1.0 / len(self.recent))
            level_z = max(level_z, abs(x - med) / spread / 3.0)

        # range excursion (relative to the span seen so far)
        excursion = 0.0
        span = self.hi - self.lo
        if math.isfinite(span) and span > 0:
            if x > self.hi:
                excursion = (x - self.hi) / span
            elif x < self.lo:
                excursion = (self.lo - x) / span

        wexc = 0.0
        if len(self.long) >= 30:
            wlo, whi = self.long.sorted[0], self.long.sorted[-1]
            wspan = max(whi - wlo, 1e-9)
            if x > whi:
                wexc = (x - whi) / wspan
            elif x < wlo:
                wexc = (wlo - x) / wspan

        self.long.add(x)
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)
        self.n += 1
        if learning:
            return None

        raw = max(
            s.w_novelty * novelty,
            s.w_level * (1.0 - math.exp(-max(level_z - s.level_threshold, 0.0) / s.level_scale)),
            s.w_excursion * min(1.0, s.exc_base + s.exc_gain * excursion) if excursion > 0 else 0.0,
            s.w_window_excursion * min(1.0, s.exc_base + s.exc_gain * wexc) if wexc > 0 else 0.0,
        )
        # alert shaping: damp repeats within the refractory period
        self.since_alert += 1
        out = raw
        if self.since_alert <= s.refractory:
            out = raw * 0.5 * (self.since_alert / s.refractory)
        if out >= s.alert_level:
            self.since_alert = 0
        return out

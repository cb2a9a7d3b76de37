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
* **shifted grids**: both quantised memories are kept on ``offsets`` grids whose
  origins are 1/offsets of a bin apart, and the per-grid novelties are voted
  (median by default), so a score does not hinge on where one grid's edges fall.
* **seasonal context** (:mod:`.season`): when the learning period shows a period,
  how unexpected each value is given the value one period before, averaged over the
  last ``season_short`` points and scored by its tail probability against the earlier
  averages (the series-level detector only, not its ensemble members).
* **calibration**: each signal is weighted by its rank among its own past
  outputs in this series (a series that is often novel is trusted less).

The evidence is combined by a maximum (each component weighted), then shaped for
alerting: a score is returned only when no returned score reached
``rest_level`` in the last ``rest_fraction x learn_points`` points (one alert
per incident), and until ``mask_fraction x learn_points`` points after an alert
only when it nearly reaches that alert's score (a bar falling back to
``rest_level``: NAB rewards the first detection of an incident and charges
every later one outside it). Memory is bounded: fixed-length windows, and the context memory
is capped (least recently seen evicted first).
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Any

from .season import SeasonalContext, find_period


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
    # shifted grids: each quantiser is used at ``offsets`` origins spaced 1/offsets of a
    # bin apart; per-grid novelty is combined by ``vote`` ("min", "median", "mean")
    offsets: int = 3
    vote: str = "median"
    shift: float = 0.0  # grid origin shift, in bins (robustness checks)
    # a never-seen level pair next to a seen one (one bin away) scores this much
    pair_near: float = 1.0
    # graded level-pair novelty: pairs kept on a grid ``pair_fine`` times finer; the
    # score is the distance to the nearest seen pair, in pair bins, capped at 1
    pair_fine: int = 0
    # fusion weights (global, chosen on the NAB corpus; see docs/anomaly.md)
    w_novelty: float = 1.0
    w_pair: float = 0.9
    w_excursion: float = 0.9
    exc_base: float = 0.5
    # calibration: each signal v becomes v x ((1 - calibrate) + calibrate x rank), rank =
    # the share of this signal's own past outputs (after learning) that were lower
    calibrate: float = 0.5
    # continuous tie-breaker, u = z / (1 + z), z = |x - median| / (interquartile range) of
    # the last ``long_window`` points (robust excursion size): the fused score v becomes
    # v + tie x u x (1 - v)
    tie: float = 0.05
    # seasonal context member (see .season): weight (0: off), the period's least
    # autocorrelation, the share of the unconditional surprise taken off, the points
    # averaged and the -log10 tail probability that scores 1
    w_season: float = 0.9
    season_acf: float = 0.3
    season_excess: float = 0.5
    season_short: int = 10
    season_scale: float = 8.0
    # ensemble: further detectors, each these settings with the given overrides (name,
    # value pairs); the raw scores are fused by maximum before the rest period
    ensemble: tuple[tuple[tuple[str, float], ...], ...] = ((("context_len", 3.0), ("levels", 6.0), ("skip", 0.4)),)
    # a detector (ensemble member) ignores its first ``skip x learn_points`` points: its
    # own learning period (and fixed grid) then follows the series' learning period
    skip: float = 0.0
    # alert shaping
    rest_fraction: float = 0.3
    rest_level: float = 0.75
    # re-alert mask after the rest period, until ``mask_fraction x learn_points`` points
    # after the alert: a score is returned only if it reaches ``mask_ratio`` x the alert's
    # score, a bar that falls linearly to ``rest_level`` by the mask's end (0: no mask)
    mask_fraction: float = 0.9
    mask_ratio: float = 0.95


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

    def state(self) -> list[float]:
        return list(self.fifo)

    def restore(self, values: list[float]) -> None:
        self.fifo = deque(float(v) for v in values)
        self.sorted = sorted(self.fifo)


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

    def state(self) -> dict[str, Any]:
        # the running total is kept as it is (not re-summed) so a restored mean is bit-identical
        return {"buf": list(self.buf), "total": self.total}

    def restore(self, st: dict[str, Any]) -> None:
        self.buf = deque((float(v) for v in st["buf"]), maxlen=self.buf.maxlen)
        self.total = float(st["total"])


class MetricDetector:
    """One series; ``update(value) -> score`` in [0, 1] (None while learning)."""

    def __init__(self, settings: MetricSettings | None = None) -> None:
        self.s = settings or MetricSettings()
        s = self.s
        self.n = 0
        self.skipped = 0
        self.learn_until = max(2, s.learn_points)
        self.pending: list[float] | None = []  # learning-period values, replayed at its end
        self.origin = 0.0
        self.width = 1.0
        self.pair_width = 1.0
        self.lo = math.inf
        self.hi = -math.inf
        self.window = _SortedWindow(s.long_window)
        self.bins: list[deque[int]] = [deque(maxlen=s.context_len) for _ in range(max(1, s.offsets))]
        self.short = _RunningMean(s.short_mean)
        self.long = _RunningMean(s.long_mean)
        self.contexts: OrderedDict[tuple[int, ...], None] = OrderedDict()
        self.hist: list[list[int]] = [[0] * 101 for _ in range(3)]
        self.fine_pairs: set[tuple[int, int]] = set()
        self.rest = max(1, int(s.rest_fraction * s.learn_points))
        self.mask = max(self.rest, int(s.mask_fraction * s.learn_points))
        self.since_alert = self.mask + 1  # scored points since the last alert (capped)
        self.alert_score = 0.0
        self.members = [MetricDetector(replace(s, ensemble=(), w_season=0.0, **{k: type(getattr(s, k))(v) for k, v in ov}))
                        for ov in s.ensemble]
        self.season = SeasonalContext(len(self.bins), s.levels, s.season_excess, s.season_short, s.season_scale,
                                      s.learn_points // 2)

    # -- persistence ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything learned, as JSON-able values (settings excluded: restore into a
        detector built with the same settings)."""
        return {
            "n": self.n,
            "skipped": self.skipped,
            "pending": self.pending,
            "grid": [self.origin, self.width, self.pair_width, self.lo, self.hi],
            "window": self.window.state(),
            "bins": [list(b) for b in self.bins],
            "short": self.short.state(),
            "long": self.long.state(),
            "contexts": [list(k) for k in self.contexts],  # in LRU order
            "hist": self.hist,
            "fine_pairs": sorted(list(p) for p in self.fine_pairs),
            "alert": [self.since_alert, self.alert_score],
            "members": [m.state() for m in self.members],
            "season": self.season.state(),
        }

    def restore(self, st: dict[str, Any]) -> None:
        """Continue exactly where the detector that gave ``st`` (:meth:`state`) stopped."""
        if len(st["members"]) != len(self.members) or len(st["bins"]) != len(self.bins):
            raise ValueError("metric model state does not match these settings")
        self.n = int(st["n"])
        self.skipped = int(st["skipped"])
        self.pending = None if st["pending"] is None else [float(v) for v in st["pending"]]
        self.origin, self.width, self.pair_width, self.lo, self.hi = (float(v) for v in st["grid"])
        self.window.restore(st["window"])
        for b, vals in zip(self.bins, st["bins"]):
            b.clear()
            b.extend(int(v) for v in vals)
        self.short.restore(st["short"])
        self.long.restore(st["long"])
        self.contexts = OrderedDict((tuple(int(v) for v in k), None) for k in st["contexts"])
        self.hist = [[int(v) for v in h] for h in st["hist"]]
        self.fine_pairs = {(int(a), int(b)) for a, b in st["fine_pairs"]}
        self.since_alert, self.alert_score = int(st["alert"][0]), float(st["alert"][1])
        for m, ms in zip(self.members, st["members"]):
            m.restore(ms)
        if "season" in st:  # a state saved before the seasonal member: it stays silent (no period)
            self.season.restore(st["season"])

    # -- memories ---------------------------------------------------------------------
    def _seen(self, key: tuple[int, ...]) -> bool:
        """Remember ``key``; True if it was already known."""
        known = key in self.contexts
        if known:
            self.contexts.move_to_end(key)
        else:
            self.contexts[key] = None
            if len(self.contexts) > self.s.max_contexts * len(self.bins):
                self.contexts.popitem(last=False)
        return known

    def _combine(self, vals: list[float]) -> float:
        if len(vals) == 1:
            return vals[0]
        v = self.s.vote
        if v == "min":
            return min(vals)
        if v == "mean":
            return sum(vals) / len(vals)
        if v == "max":
            return max(vals)
        srt = sorted(vals)
        return srt[len(srt) // 2] if len(srt) % 2 else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])

    def _pair_novelty(self, g: int, a: int, b: int) -> float:
        if self._seen((1, g, a, b)):
            return 0.0
        if self.s.pair_near >= 1.0:
            return 1.0
        for da in (-1, 0, 1):
            for db in (-1, 0, 1):
                if (da or db) and (1, g, a + da, b + db) in self.contexts:
                    return self.s.pair_near
        return 1.0

    def _pair_distance(self, a: int, b: int) -> float:
        f = self.s.pair_fine
        seen = self.fine_pairs
        d = f
        if (a, b) in seen:
            d = 0
        else:
            for r in range(1, f):
                hit = False
                for i in range(-r, r + 1):
                    if (a + i, b - r) in seen or (a + i, b + r) in seen or (a - r, b + i) in seen or (a + r, b + i) in seen:
                        hit = True
                        break
                if hit:
                    d = r
                    break
            seen.add((a, b))
        return d / f

    def _learn(self, x: float) -> tuple[float, float, float]:
        """Feed one value to the quantised memories; returns (novelty, pair novelty, seasonal score)."""
        m_short = self.short.add(x)
        m_long = self.long.add(x)
        k_grids = len(self.bins)
        nov: list[float] = []
        pairs: list[float] = []
        for g, bins in enumerate(self.bins):
            shift = g / k_grids + self.s.shift
            bins.append(math.floor((x - self.origin) / self.width + shift))
            seq = tuple(bins)
            novel = 0
            for k in range(1, len(seq) + 1):
                if not self._seen((0, g, *seq[-k:])):
                    novel += 1
            nov.append(novel / len(seq))
            a = math.floor((m_short - self.origin) / self.pair_width + shift)
            b = math.floor((m_long - self.origin) / self.pair_width + shift)
            pairs.append(self._pair_novelty(g, a, b))
        if self.s.pair_fine > 0:
            fw = self.pair_width / self.s.pair_fine
            shift = self.s.shift * self.s.pair_fine
            a = math.floor((m_short - self.origin) / fw + shift)
            b = math.floor((m_long - self.origin) / fw + shift)
            pairs = [self._pair_distance(a, b)]
        season = self.season.update(tuple(b[-1] for b in self.bins))
        return self._combine(nov), self._combine(pairs), season

    def _fix_quantiser(self, values: list[float]) -> None:
        lo, hi = min(values), max(values)
        span = hi - lo
        if not span > 0:
            span = abs(hi) if hi != 0 else 1.0
        full = span * (1.0 + 2.0 * self.s.margin)
        self.origin = lo - self.s.margin * span
        self.width = full / self.s.levels
        self.pair_width = full / self.s.pair_levels
        if self.s.w_season > 0:
            self.season.start(find_period(values, self.s.season_acf))
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

    def _calibrated(self, i: int, v: float) -> float:
        h = self.hist[i]
        b = min(100, max(0, round(v * 100)))
        below = sum(h[:b])
        h[b] += 1
        if v <= 0:
            return 0.0
        rank = (below + 1) / (below + sum(h[b:]) + 1)
        return (1 - self.s.calibrate) * v + self.s.calibrate * v * rank

    def _robust_size(self, x: float) -> float:
        if len(self.window) < 10:
            return 0.0
        med = self.window.quantile(0.5)
        iqr = self.window.quantile(0.75) - self.window.quantile(0.25)
        if not iqr > 0:
            iqr = max(self.window.sorted[-1] - self.window.sorted[0], 1e-9)
        z = abs(x - med) / iqr
        return z / (1.0 + z)

    def update(self, x: float) -> float | None:
        """Score ``x`` (None while learning), with the rest period and the mask applied."""
        raw = self.raw_update(x)
        if raw is None:
            return None
        # alert shaping: one alert per incident
        s = self.s
        d = self.since_alert = min(self.since_alert + 1, self.mask + 1)
        out = raw
        if d <= self.rest:
            out = 0.0
        elif d <= self.mask:
            top = s.mask_ratio * self.alert_score
            if raw < top - (top - s.rest_level) * (d - self.rest) / (self.mask - self.rest):
                out = 0.0
        if out >= s.rest_level:
            self.since_alert, self.alert_score = 0, out
        return out

    def raw_update(self, x: float) -> float | None:
        """Score ``x`` without the rest period (None while learning)."""
        s = self.s
        fused = [m.raw_update(x) for m in self.members]
        if self.skipped < int(s.skip * s.learn_points):
            self.skipped += 1
            return None
        size = self._robust_size(x) if s.tie > 0 else 0.0
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
        novelty, pair, season = self._learn(x)
        if s.calibrate > 0:
            novelty, pair, excursion = (self._calibrated(i, v) for i, v in enumerate((novelty, pair, excursion)))
        raw = max(s.w_novelty * novelty, s.w_pair * pair, s.w_excursion * excursion)
        if s.tie > 0:
            raw = raw + s.tie * size * (1.0 - raw)
        return max([raw, s.w_season * season] + [v or 0.0 for v in fused])

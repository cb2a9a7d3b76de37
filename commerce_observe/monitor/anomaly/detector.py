"""Streaming per-series anomaly detector: ``AnomalyDetector.update(series, ts, value)``.

The detector sees each point once, in time order per series, scores it against
what it learned from the past only, then learns from it. Scores are final.
A vectorised :meth:`AnomalyDetector.update_batch` scores one bucket of many
series in one go (10,000 series in a few milliseconds).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from commerce_observe._internal.selfstats import stats

from . import decline, validate
from .bank import KIND_VALUE, Bank, Slots
from .calendar import Calendar, CalendarEvent
from .metric_bank import MetricBank
from .settings import Settings
from .score import Score

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BAD_INPUT = "anomaly.bad_input"
STATE_VERSION = 6
#: version 3 lacks the count stretches' state, which then starts empty (the watch service resumes);
#: versions 3-4 kept the decline test's reference as seven midnight levels, which stand in for
#: its first seven day levels (:func:`.decline.migrate`);
#: versions 3-5 lack the pooled hour-of-week profiles, which start from the series' own, and the
#: run of zeros, which starts empty
READABLE_VERSIONS = (3, 4, 5, 6)

Value = float | int | tuple[float, float]


class Batch(NamedTuple):
    """Scores of one bucket of many series (arrays in the order the series were given)."""

    score: FloatArray  # NaN when not scored
    expected: FloatArray
    alert: npt.NDArray[np.bool_]
    warming: npt.NDArray[np.bool_]
    excluded: list[str | None]
    rejected: list[str | None]
    lower: FloatArray  # band outside which one bucket alone scores critical
    upper: FloatArray


def _opt(v: float, digits: int | None = None) -> float | None:
    f = float(v)
    if math.isnan(f):
        return None
    return f if digits is None else round(f, digits)


def _epoch(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return int(ts.timestamp())


class AnomalyDetector:
    """Per-series online anomaly detector with the same settings for every series."""

    def __init__(self, settings: Settings | None = None, calendar: Calendar | None = None) -> None:
        self.settings = settings or Settings()
        self.calendar = calendar or Calendar()
        self.tz = ZoneInfo(self.settings.timezone)
        self.bank = Bank(self.settings)
        self.metrics = MetricBank(self.settings.metric) if self.settings.model == "metric" else None
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self._scopes: dict[int, npt.NDArray[np.bool_]] = {}

    # ------------------------------------------------------------ series registry
    def series_index(self, names: Sequence[str]) -> IntArray:
        """Indices of ``names`` (registering new series); reuse them with :meth:`update_batch_idx`."""
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            j = self.index.get(name)
            if j is None:
                j = self.bank.add()
                self.bank.arrays["group"][j] = self.bank.pool.group(name)
                if self.metrics is not None:
                    self.metrics.add()
                self.index[name] = j
                self.names.append(name)
            out[i] = j
        return out

    def __len__(self) -> int:
        return len(self.names)

    @property
    def bytes_per_series(self) -> int:
        """Model memory per series in bytes (fixed; names and dict overhead excluded)."""
        return self.bank.bytes_per_series()

    def _slots(self, ts: datetime) -> Slots:
        s = self.settings
        local = ts.astimezone(self.tz)
        dow = local.weekday()
        hod = local.hour // max(1, s.bucket_seconds // 3600)
        into_day = local.hour * 3600 + local.minute * 60 + local.second
        yesterday = (local.date() - timedelta(days=1)).day - 1
        return Slots(hod, dow, dow * s.day_slots + hod, local.day - 1, into_day < s.bucket_seconds, yesterday)

    # ------------------------------------------------------------ streaming API
    def update(self, series: str, timestamp: datetime, value: Value) -> Score:
        """Score one point of one series, then learn from it. The returned score is final."""
        if isinstance(value, tuple):
            num, den = float(value[0]), float(value[1])
            res = self.update_batch(timestamp, [series], np.array([num]), np.array([den]))
        else:
            res = self.update_batch(timestamp, [series], np.array([float(value)]), None)
        return res[0]

    def update_batch(
        self,
        timestamp: datetime,
        series: Sequence[str],
        values: FloatArray,
        denominators: FloatArray | None = None,
    ) -> list[Score]:
        """Score one bucket of many series (each at most once) and return a Score per series."""
        idx = self.series_index(series)
        res = self.update_batch_idx(timestamp, idx, values, denominators)
        out = []
        vals = np.asarray(values, dtype=np.float64)
        for i, name in enumerate(series):
            out.append(
                Score(
                    series=name,
                    timestamp=timestamp,
                    score=_opt(res.score[i], 3),
                    actual=float(vals[i]),
                    expected=_opt(res.expected[i]),
                    warming_up=bool(res.warming[i]),
                    excluded=res.excluded[i],
                    rejected=res.rejected[i],
                    alert=bool(res.alert[i]),
                    lower=_opt(res.lower[i]),
                    upper=_opt(res.upper[i]),
                )
            )
        return out

    def update_batch_idx(
        self,
        timestamp: datetime,
        idx: IntArray,
        values: FloatArray,
        denominators: FloatArray | None = None,
    ) -> Batch:
        """Vectorised core: one :class:`Batch` of arrays in the order of ``idx``.

        ``score`` is NaN for points that are not scored. Invalid points are
        ignored, counted under ``anomaly.bad_input`` and reported in ``rejected``.
        """
        t = _epoch(timestamp)
        m = idx.size
        x = np.asarray(values, dtype=np.float64).reshape(m)
        den = (
            np.full(m, np.nan)
            if denominators is None
            else np.asarray(denominators, dtype=np.float64).reshape(m)
        )
        A = self.bank.arrays
        if self.metrics is not None:  # a metric is a plain value (a ratio: its quotient)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(np.isnan(den), x, x / den)
            den = np.full(m, np.nan)
            A["kind"][idx] = KIND_VALUE
        kind = A["kind"][idx]

        # ---- validate ------------------------------------------------------------
        rejected: list[str | None] = [None] * m
        reason = validate.reasons(x, den, kind, A["last_t"][idx], t, idx)
        bad = reason > 0
        if bad.any():
            stats.incr(BAD_INPUT, int(bad.sum()))
            for i in np.nonzero(bad)[0]:
                rejected[int(i)] = validate.REASONS[int(reason[i])]
            stats.warn(BAD_INPUT, "anomaly detector ignored invalid input (first reason: %s)", rejected[int(np.nonzero(bad)[0][0])])
        good = ~bad
        new_kind = validate.new_kinds(x, den, kind)
        A["kind"][idx[good]] = new_kind[good]

        # ---- calendar ---------------------------------------------------------------
        excluded: list[str | None] = [None] * m
        # a ratio bucket without attempts says nothing: neither scored nor learned
        exc = good & (den == 0)
        for ev in self.calendar.active(timestamp):
            hit = good & ~exc & self._covered(ev)[idx]
            for i in np.nonzero(hit)[0]:
                excluded[int(i)] = ev.name
            exc |= hit

        if self.metrics is None and m and not bad.any():  # every point goes to the bank: its arrays are the batch's
            res = self.bank.step(idx, t, self._slots(timestamp), x, den, exc)
            return Batch(res.score, res.expected, res.alert, res.warming, excluded, rejected, res.lower, res.upper)
        score = np.full(m, np.nan)
        expected = np.full(m, np.nan)
        alert = np.zeros(m, dtype=bool)
        warming = np.zeros(m, dtype=bool)
        lower = np.full(m, np.nan)
        upper = np.full(m, np.nan)
        gi = np.nonzero(good & ~exc)[0]
        if gi.size and self.metrics is not None:
            score[gi], warming[gi] = self.metrics.step(idx[gi], x[gi])
            alert[gi] = self._metric_alerts(idx[gi], score[gi])
            self.bank.arrays["n"][idx[gi]] += 1
            self.bank.arrays["last_t"][idx[gi]] = t
            gi = gi[:0]
        gi = np.nonzero(good)[0] if self.metrics is None else gi
        if gi.size:
            res = self.bank.step(idx[gi], t, self._slots(timestamp), x[gi], den[gi], exc[gi])
            score[gi] = res.score
            expected[gi] = res.expected
            alert[gi] = res.alert
            warming[gi] = res.warming
            lower[gi] = res.lower
            upper[gi] = res.upper
        return Batch(score, expected, alert, warming, excluded, rejected, lower, upper)

    def _covered(self, ev: CalendarEvent) -> npt.NDArray[np.bool_]:
        """Which registered series a calendar event's scope covers (cached per event)."""
        mask = self._scopes.get(id(ev))
        if mask is None or mask.size < len(self.names):
            mask = np.array([ev.covers_series(n) for n in self.names], dtype=bool)
            self._scopes[id(ev)] = mask
        return mask

    def _metric_alerts(self, idx: IntArray, score: FloatArray) -> npt.NDArray[np.bool_]:
        """The metric model shapes its own scores (one high score per incident): alert on it."""
        crit = np.nan_to_num(score, nan=0.0) >= self.settings.alert_score
        self.bank.arrays["last_alert"][idx[crit]] = self.bank.arrays["n"][idx[crit]]
        return crit

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the whole model state to ``path`` atomically (``.npz``)."""
        path = Path(path)
        meta = {
            "version": STATE_VERSION,
            "settings": self.settings.to_dict(),
            "names": self.names,
            "families": self.bank.pool.names,
            "saved_at": datetime.now(timezone.utc).isoformat(),
        }
        n = self.bank.size
        payload: dict[str, Any] = {k: v[:n] for k, v in self.bank.arrays.items()}
        payload.update(self.bank.pool.payload())
        payload["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        if self.metrics is not None:  # the metric model's memories are not arrays: JSON
            payload["__metric__"] = np.frombuffer(json.dumps(self.metrics.state()).encode("utf-8"), dtype=np.uint8)
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, **payload)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | Path, calendar: Calendar | None = None) -> AnomalyDetector:
        """Restore a detector saved with :meth:`save`; it continues exactly where it stopped."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
            if meta.get("version") not in READABLE_VERSIONS:
                raise ValueError(f"unsupported anomaly state version {meta.get('version')}")
            det = cls(Settings.from_dict(meta["settings"]), calendar)
            names: list[str] = list(meta["names"])
            det.series_index(names)
            n = len(names)
            for k, arr in det.bank.arrays.items():
                if k in data.files:  # else added since (version 4: the adaptive stretches): starts empty
                    old = data[k]
                    # versions 4-5's stretches lack the run of zeros: it starts empty
                    arr[(slice(0, n), *(slice(0, d) for d in old.shape[1:]))] = old
            decline.migrate(det.bank.arrays, data, n)
            if "__pool_x" in data.files:
                det.bank.pool.restore(meta["families"], data)
            else:  # versions 3-5: the pooled profiles start from the series' own
                det.bank.seed_pool()
            if det.metrics is not None:
                if "__metric__" not in data:
                    raise ValueError("the saved metric model has no metric state")
                det.metrics.restore(json.loads(bytes(data["__metric__"]).decode("utf-8")))
        return det

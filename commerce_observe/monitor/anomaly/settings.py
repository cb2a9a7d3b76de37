"""Detector settings: one set for every series of a detector.

Rates are given per hour (or per visit of a seasonal slot) and converted to the
bucket size, so the same settings mean the same memory on 5-minute and on hourly
buckets; window lengths, the warm-up and the alert cool-down count buckets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from commerce_observe.monitor.anomaly.severity import CRITICAL

from .metric import MetricSettings
from .metric_bank import metric_settings_from_dict, metric_settings_to_dict

MODELS = ("commerce", "metric")
DAY = 86400


@dataclass(frozen=True)
class Settings:
    """Detector settings; the same for every series."""

    #: ``commerce``: counts, amounts and failure ratios of a shop (seasonal statistical
    #: model); ``metric``: machine metrics without known seasonality (novelty model, the
    #: one the NAB benchmark measures; its settings are ``metric``)
    model: str = "commerce"
    #: bucket size in seconds, 60 (1 minute) to 86400 (1 day), dividing a day evenly
    bucket_seconds: int = 3600
    timezone: str = "UTC"
    #: buckets a series needs before it is scored (``warming_up`` until then);
    #: None: three days' worth, at least 14 buckets
    min_history: int | None = None
    #: level and trend, per hour
    level_alpha: float = 0.04
    trend_beta: float = 0.004
    trend_damping: float = 0.98
    #: per visit of an hour-of-day slot (a day's worth of visits for sub-hour buckets)
    daily_alpha: float = 0.12
    #: weekday factor, per hour
    weekday_alpha: float = 0.01
    #: per visit of an hour-of-week slot
    weekly_alpha: float = 0.3
    #: day-of-month factor (paydays), per day
    monthly_alpha: float = 0.5
    disp_alpha: float = 0.02
    ratio_alpha: float = 0.03
    #: failure rate of an hour-of-day slot (banks' nightly maintenance), per visit
    ratio_slot_alpha: float = 0.15
    #: largest share by which one bucket may raise a level after its first day (plus one unit's worth)
    level_step: float = 0.1
    #: relative model error of one bucket (unmodelled swings)
    rel_noise: float = 0.08
    #: negative-binomial dispersion 1/r assumed before a series has taught its own
    nb_prior: float = 0.05
    #: shrink a count series' hour-of-week factors towards the profile pooled across its
    #: family (``orders:*``), the more the less the series has sold in that slot (:mod:`.pool`)
    pool_seasons: bool = True
    #: how far (relative) one series' hour-of-week factor may stray from the pooled one
    season_spread: float = 0.15
    windows: tuple[int, ...] = (1, 3, 6, 12)
    #: windows counts are tested on (a subset of ``windows``); their adaptive stretches
    #: (:mod:`.runs`) stand in for the others, so they pay for fewer tests
    count_windows: tuple[int, ...] = (1, 6)
    #: day-scale decline test: relative uncertainty of a day's level against the reference,
    #: the trimmed mean of the two weeks' day levels before (0: off)
    decline_noise: float = 0.015
    #: time constant of the decline test's sums, in hours
    decline_hours: float = 24.0
    learn_score: float = 50.0
    anomaly_weight: float = 0.05
    alert_score: float = CRITICAL
    #: buckets after a critical point in which further critical points are not new alerts
    alert_cooldown: int = 12
    #: failure ratios only alert upwards
    ratio_upper_only: bool = True
    metric: MetricSettings = field(default_factory=MetricSettings)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, not {self.model!r}")
        if not 60 <= self.bucket_seconds <= DAY or DAY % self.bucket_seconds:
            raise ValueError(f"bucket_seconds must be 60..86400 and divide a day, not {self.bucket_seconds}")
        if not set(self.count_windows) <= set(self.windows):
            raise ValueError(f"count_windows {self.count_windows} must be among windows {self.windows}")
        if self.bucket_seconds > 3600 and self.bucket_seconds % 3600:
            raise ValueError(f"bucket_seconds above an hour must be whole hours, not {self.bucket_seconds}")

    # ---------------------------------------------------------------- derived
    @cached_property
    def hours(self) -> float:
        """Hours per bucket."""
        return self.bucket_seconds / 3600.0

    @cached_property
    def day_slots(self) -> int:
        """Seasonal slots per day: hours, or buckets when they are longer than an hour."""
        return 24 // max(1, self.bucket_seconds // 3600)

    @cached_property
    def buckets_per_day(self) -> int:
        return DAY // self.bucket_seconds

    @cached_property
    def warmup(self) -> int:
        if self.min_history is not None:
            return self.min_history
        return max(14, 3 * self.buckets_per_day)

    def per_bucket(self, alpha_per_hour: float) -> float:
        """A per-hour smoothing rate as the rate per bucket with the same memory."""
        return float(1.0 - (1.0 - alpha_per_hour) ** self.hours)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = list(self.windows)
        d["count_windows"] = list(self.count_windows)
        d["metric"] = metric_settings_to_dict(self.metric)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        d = dict(d)
        d["windows"] = tuple(d.get("windows", (1, 3, 6, 12)))
        d["count_windows"] = tuple(d.get("count_windows", (1, 6)))
        d["metric"] = metric_settings_from_dict(d.get("metric", {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

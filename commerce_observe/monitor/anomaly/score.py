"""The result of scoring one point."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from commerce_observe.monitor.anomaly.severity import severity


@dataclass(frozen=True, slots=True)
class Score:
    """Final score of one point; never revised after it is returned.

    ``score`` is 0..100 (25 warning, 50 minor, 75 critical) or None when the point
    is not scored: the series is still ``warming_up``, the point is ``excluded`` by
    a calendar event (its name), or the input was ``rejected`` (the reason).
    ``alert`` is True only on the first critical point of an incident (later
    critical points of the same series within the cool-down are not new alerts).
    ``actual`` is the value seen (the numerator for a ratio series), ``expected`` what the
    model expected, ``lower``..``upper`` the band outside which one bucket alone would score
    critical (a normal approximation of the model's noise; None when not scored).
    """

    series: str
    timestamp: datetime
    score: float | None
    actual: float
    expected: float | None = None
    warming_up: bool = False
    excluded: str | None = None
    rejected: str | None = None
    alert: bool = False
    lower: float | None = None
    upper: float | None = None

    @property
    def severity(self) -> str:
        return severity(self.score)


def report_to_hub(scores: Iterable[Score]) -> None:
    """Tell the installed runtime's hub about points at or above the warning band
    (``AnomalyReported``), so its live metrics count them (``commerce_anomalies_total``)."""
    from commerce_observe.agent.current import hub
    from commerce_observe.agent.reporting.live_metrics import AnomalyReported

    the_hub = hub()
    if the_hub.has_listeners(AnomalyReported):
        for s in scores:
            band = s.severity
            if band in ("warning", "minor", "critical"):
                the_hub.emit(AnomalyReported(band, s.alert))

"""Online anomaly detection for order, revenue and payment-failure series.

Streaming use::

    det = AnomalyDetector(Settings(timezone="Europe/Berlin"), Calendar.load("events.json"))
    s = det.update("orders:sku-1", ts, 12)            # counts
    s = det.update("payment_failures:card", ts, (3, 120))   # ratio: failures / attempts
    if s.alert: ...

See docs/anomaly.md.
"""

from commerce_observe.monitor.anomaly.severity import CRITICAL, MINOR, WARNING, severity

from .settings import Settings
from .calendar import Calendar, CalendarEvent
from .detector import AnomalyDetector
from .score import Score

__all__ = [
    "AnomalyDetector",
    "Calendar",
    "CalendarEvent",
    "CRITICAL",
    "MINOR",
    "Score",
    "Settings",
    "WARNING",
    "severity",
]

"""Elastic-style severity bands of the 0..100 anomaly score.

Free of numpy, so the alert rules can band scores without importing the detector.
"""

from __future__ import annotations

#: Score at which a point counts as warning / minor / critical (Elastic severity bands).
WARNING = 25.0
MINOR = 50.0
CRITICAL = 75.0


def severity(score: float | None, *, below: str = "low") -> str:
    """Elastic-style severity band of a score: ``below`` under the warning band, "none" without a score."""
    if score is None:
        return "none"
    if score >= CRITICAL:
        return "critical"
    if score >= MINOR:
        return "minor"
    if score >= WARNING:
        return "warning"
    return below

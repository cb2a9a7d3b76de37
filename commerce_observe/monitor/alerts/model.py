"""What an alert is, and what a notifier is asked to send.

An alert must let the person on call act without opening three tools first, so
every :class:`Alert` carries the same five answers, whatever rule produced it:

* **what** - ``title`` ("orders dropped", "events lost"),
* **where** - ``where``: ordered labels such as product, payment method, topic,
* **since when** - ``since`` (first bucket of the incident),
* **how bad** - ``severity`` plus ``measure`` (score / ratio / count, in words)
  and ``value`` (the number, for machines),
* **which traces** - ``links`` to Zipkin / Kibana APM when traces are involved.

A :class:`Notification` is one message to one receiver: a single alert firing or
resolving, a *group* (a burst folded into one message) or a throttling *summary*.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime


class Status(str, enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Kind(str, enum.Enum):
    """The kinds of notification a receiver can get."""

    FIRING = "firing"  # one alert started
    RESOLVED = "resolved"  # one alert is over
    GROUP = "group"  # many alerts of one rule started in the same bucket
    GROUP_RESOLVED = "group_resolved"  # ... and ended in the same bucket
    SUMMARY = "summary"  # notifications held back by the throttle, folded into one


#: Severity bands shared with the anomaly detector's 0..100 score (Elastic's bands).
SEVERITIES = ("warning", "minor", "critical")


@dataclass(frozen=True)
class Alert:
    """One incident of one rule at one place (the ``key`` is its de-duplication identity)."""

    key: str
    rule: str
    title: str
    severity: str
    where: tuple[tuple[str, str], ...]
    since: datetime
    measure: str
    value: float
    links: tuple[tuple[str, str], ...] = ()
    details: tuple[str, ...] = ()
    status: Status = Status.FIRING
    ended: datetime | None = None

    def where_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.where) or "everywhere"

    def resolved(self, at: datetime) -> Alert:
        return replace(self, status=Status.RESOLVED, ended=at)


@dataclass(frozen=True)
class Notification:
    """One message. ``id`` is stable for the same content so receivers can drop redeliveries."""

    kind: Kind
    title: str
    alerts: tuple[Alert, ...]
    at: datetime
    suppressed: int = 0  # SUMMARY: how many notifications were folded into this one
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            h = hashlib.sha256(f"{self.kind.value}|{self.at.isoformat()}|".encode())
            for a in self.alerts:
                h.update(f"{a.key}|{a.status.value}|{a.since.isoformat()}\n".encode())
            object.__setattr__(self, "id", h.hexdigest()[:20])

    @property
    def worst(self) -> str:
        """Highest severity among the alerts (what a pager would route on)."""
        ranks = [SEVERITIES.index(a.severity) for a in self.alerts if a.severity in SEVERITIES]
        return SEVERITIES[max(ranks)] if ranks else "warning"

"""At most K notifications per notifier per interval; the rest folded into one summary.

During a real incident a flapping series or a stream of audit findings can produce
dozens of notifications in minutes; after the third page nobody reads the fourth.
The throttle lets the first ``max_per_interval`` through, holds the rest, and when
the interval is over hands back a single SUMMARY notification listing everything
it held. Nothing is dropped: the summary carries every held alert (rendered up to
``render.MAX_LISTED`` with a "+N more" line). So a receiver gets at most
``max_per_interval + 1`` messages per interval.

Windows are fixed, started by the first notification after a quiet period, and
the time comes from an injected clock (see :mod:`.clock`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from .model import Alert, Kind, Notification


class Throttle:
    def __init__(self, max_per_interval: int, interval_s: float) -> None:
        if max_per_interval < 1 or interval_s <= 0:
            raise ValueError("max_per_interval must be >= 1 and interval_s > 0")
        self.max_per_interval = max_per_interval
        self.interval_s = interval_s
        self._start: float | None = None
        self._count = 0
        self._held: list[Notification] = []
        self.held_total = 0

    def admit(self, n: Notification, now: float) -> bool:
        """True: send ``n`` now. False: ``n`` is held for the next summary."""
        if self._start is None or now >= self._start + self.interval_s:
            if self._held:  # the summary of the previous window must come out first
                self._held.append(n)
                self.held_total += 1
                return False
            self._start, self._count = now, 0
        if self._count < self.max_per_interval:
            self._count += 1
            return True
        self._held.append(n)
        self.held_total += 1
        return False

    def summary_at(self) -> float | None:
        """When the summary of the held notifications is due (None: nothing held)."""
        if not self._held or self._start is None:
            return None
        return self._start + self.interval_s

    def summary_due(self, now: float) -> Notification | None:
        """The summary of held notifications once their window is over (it opens a new window)."""
        at = self.summary_at()
        if at is None or now < at:
            return None
        held, self._held = self._held, []
        alerts: list[Alert] = []
        seen: set[tuple[str, str]] = set()
        for n in held:
            for a in n.alerts:
                if (a.key, a.status.value) not in seen:  # a key firing and resolving shows both
                    seen.add((a.key, a.status.value))
                    alerts.append(a)
        self._start, self._count = now, 1
        minutes = self.interval_s / 60
        title = f"{len(held)} more notifications in the last {minutes:g} min (rate limit)"
        return Notification(Kind.SUMMARY, title, tuple(alerts), datetime.fromtimestamp(now, timezone.utc), suppressed=len(held))

"""The alert engine: de-duplication, grouping of bursts and resolving, bucket by bucket.

Why buckets: the anomaly detector scores fixed time buckets (one row per series
per hour), the failure ratio is meaningful only over a bucket's attempts, and the
audit reports findings in batches. The engine therefore collects everything that
breached in the current bucket and decides when the bucket closes (a newer
timestamp arrives, or :meth:`AlertEngine.close_bucket` is called):

* **de-duplication** - a key (rule + where) that is already firing sends nothing;
* **grouping** - ``group_min`` or more *new* alerts of one rule in one bucket become
  one GROUP notification (40 products dropping in the same minute is one outage,
  not 40 pages); the same for alerts that resolve together;
* **resolving** - an active alert that has not breached for its rule's
  ``resolve_after`` consecutive buckets is resolved, and a RESOLVED message sent.

Engine methods run on the detection thread and never block: notifications go to
``sink`` (normally :meth:`Dispatcher.submit`, which only enqueues).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from commerce_observe._internal.selfstats import stats

from .model import Alert, Kind, Notification, Status
from .rules import AnomalyRule, AuditRule, FailureRatioRule, Rule, ScoreLike

if TYPE_CHECKING:
    from commerce_observe.monitor.audit.findings import Finding, Links

SINK_ERROR = "alerts.sink_error"


@dataclass
class _Active:
    alert: Alert
    resolve_after: int
    quiet: int = 0


class AlertEngine:
    """Feed observations with ``observe_*``; notifications come out of ``sink`` per closed bucket."""

    def __init__(
        self,
        rules: Sequence[Rule],
        sink: Callable[[Notification], None],
        *,
        bucket_s: float = 3600.0,
        group_min: int = 5,
        links: Links | None = None,
    ) -> None:
        if bucket_s <= 0 or group_min < 2:
            raise ValueError("bucket_s must be > 0 and group_min >= 2")
        self.rules = tuple(rules)
        self.sink = sink
        self.bucket_s = bucket_s
        self.group_min = group_min
        if links is None:
            from commerce_observe.monitor.audit.findings import Links as _Links

            links = _Links()
        self.links = links
        self._bucket: int | None = None
        self._hits: dict[str, tuple[Alert, int]] = {}
        self._found: dict[tuple[int, str], list[Finding]] = {}
        self._active: dict[str, _Active] = {}

    # --- observations -------------------------------------------------------------

    def observe_score(self, s: ScoreLike) -> None:
        """One anomaly score (``commerce_observe.monitor.anomaly.Score`` or alike)."""
        self._enter(s.timestamp)
        for rule in self.rules:
            if isinstance(rule, AnomalyRule):
                self._hit(rule.evaluate(s), rule.resolve_after)

    def observe_payments(self, ts: datetime, method: str, failures: int, attempts: int) -> None:
        """Failures and attempts of one payment method in the bucket of ``ts``."""
        self._enter(ts)
        for rule in self.rules:
            if isinstance(rule, FailureRatioRule):
                self._hit(rule.evaluate(ts, method, failures, attempts), rule.resolve_after)

    def observe_findings(self, findings: Iterable[Finding], at: datetime | None = None) -> None:
        """Audit findings; all in the bucket of ``at``, or each in that of its publication time."""
        dated = sorted(findings, key=lambda f: f.published_ns or 0) if at is None else list(findings)
        for f in dated:
            if at is not None:
                self._enter(at)
            elif f.published_ns:
                self._enter(datetime.fromtimestamp(f.published_ns / 1e9, timezone.utc))
            for i, rule in enumerate(self.rules):
                if isinstance(rule, AuditRule) and rule.matches(f):
                    self._found.setdefault((i, rule.group_key(f)), []).append(f)

    # --- buckets -------------------------------------------------------------------

    def close_bucket(self) -> list[Notification]:
        """Decide the current bucket: new alerts, grouped bursts, resolves. Returns what was sent."""
        if self._bucket is None:
            return []
        start = datetime.fromtimestamp(self._bucket * self.bucket_s, timezone.utc)
        at = datetime.fromtimestamp((self._bucket + 1) * self.bucket_s, timezone.utc)  # when the bucket is known
        for (i, _), found in self._found.items():
            rule = self.rules[i]
            assert isinstance(rule, AuditRule)
            self._hit(rule.evaluate(start, found, self.links), rule.resolve_after)
        self._found = {}
        new: list[Alert] = []
        for key, (alert, resolve_after) in self._hits.items():
            current = self._active.get(key)
            if current is None:
                self._active[key] = _Active(alert, resolve_after)
                new.append(alert)
            else:  # de-duplicated: keep the incident's start, show the latest numbers
                current.alert = replace(alert, since=current.alert.since)
                current.quiet = 0
        ended: list[Alert] = []
        for key, state in list(self._active.items()):
            if key in self._hits:
                continue
            state.quiet += 1
            if state.quiet >= state.resolve_after:
                ended.append(state.alert.resolved(at))
                del self._active[key]
        self._hits = {}
        self._bucket += 1
        out = self._grouped(new, at) + self._grouped(ended, at)
        for n in out:
            try:
                self.sink(n)
            except Exception as exc:  # the sink must not stop detection
                stats.swallow(SINK_ERROR, "alert sink failed: %r", exc)
        return out

    def advance(self, ts: datetime) -> None:
        """Move to the bucket of ``ts`` with nothing observed: the buckets before it close (quiet
        ones count towards resolving). For a driver that knows time has passed without data."""
        self._enter(ts)

    def flush(self) -> list[Notification]:
        """Close the current bucket (end of input)."""
        out = self.close_bucket()
        self._bucket = None
        return out

    @property
    def active(self) -> list[Alert]:
        return [s.alert for s in self._active.values()]

    def export_state(self) -> dict[str, Any]:
        """The state between two buckets as JSON (what fires, since when): another process
        continues with :meth:`import_state` and sends the same notifications this one would."""
        from .render import alert_dict

        if self._hits or self._found:
            raise ValueError("export_state between buckets only (the current bucket holds observations)")
        return {"bucket": self._bucket,
                "active": [[alert_dict(a.alert), a.resolve_after, a.quiet] for a in self._active.values()]}

    def import_state(self, state: Mapping[str, Any]) -> None:
        from .render import alert_from_dict

        self._bucket = state["bucket"]
        self._hits, self._found = {}, {}
        self._active = {}
        for a, resolve_after, quiet in state["active"]:
            alert = alert_from_dict(a)
            self._active[alert.key] = _Active(alert, int(resolve_after), int(quiet))

    # --- internals -----------------------------------------------------------------

    def _enter(self, ts: datetime) -> None:
        """Move to the bucket of ``ts``, closing the ones before it (empty ones count as quiet)."""
        b = math.floor(ts.timestamp() / self.bucket_s)
        if self._bucket is None:
            self._bucket = b
            return
        # late data stays in the current bucket; empty buckets are closed one by one only while
        # something could still resolve in them, then the engine jumps
        while self._bucket < b:
            if not self._active and not self._hits and not self._found:
                self._bucket = b
                break
            self.close_bucket()

    def _hit(self, alert: Alert | None, resolve_after: int) -> None:
        if alert is None:
            return
        seen = self._hits.get(alert.key)
        if seen is None or alert.value > seen[0].value:
            self._hits[alert.key] = (alert, resolve_after)

    def _grouped(self, alerts: list[Alert], at: datetime) -> list[Notification]:
        by_rule: dict[str, list[Alert]] = {}
        for a in alerts:
            by_rule.setdefault(a.rule, []).append(a)
        out: list[Notification] = []
        for rule, group in by_rule.items():
            firing = group[0].status is Status.FIRING
            if len(group) < self.group_min:
                kind = Kind.FIRING if firing else Kind.RESOLVED
                out += [Notification(kind, _single_title(a), (a,), at) for a in group]
                continue
            titles = sorted({a.title for a in group})
            what = titles[0] if len(titles) == 1 else "alerts"
            hint = " - app or site outage?" if what == "orders dropped" and firing else ""
            verb = "at the same time" if firing else "resolved"
            title = f"{len(group)} x {what} ({rule}) {verb}{hint}"
            out.append(Notification(Kind.GROUP if firing else Kind.GROUP_RESOLVED, title, tuple(group), at))
        return out


def _single_title(a: Alert) -> str:
    state = "RESOLVED: " if a.status is Status.RESOLVED else ""
    return f"{state}{a.title} - {a.where_text()}"

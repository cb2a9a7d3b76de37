"""Alert rules over the watch's output, and delivery that a restart does not repeat.

Two :class:`~commerce_observe.monitor.alerts.AlertEngine` instances share the rule
file: the anomaly and failure-ratio rules run on the series buckets, the audit rules
on the (short) audit buckets, so a lost event pages within seconds while an anomaly
is judged per hour. Both are driven by event time only (bucket starts), so a
backtest and a live run produce the same notifications with the same ids.

Delivery follows Alertmanager's notification log: every notification produced goes
to the :class:`Outbox` (saved with the checkpoint); a :class:`LoggedNotifier` checks
the :class:`NotificationLog` before sending and records each delivery right after
it. A restart replays the input from the last checkpoint and produces the same
notifications again: those already in the log are not sent again, those in the
outbox but not in the log are sent.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from commerce_observe._internal.selfstats import logger
from commerce_observe.monitor.alerts import AlertConfig, AlertEngine, Dispatcher, Notification, Notifier
from commerce_observe.monitor.alerts.notifiers import DeliveryError
from commerce_observe.monitor.alerts.render import payload
from commerce_observe.monitor.alerts.rules import AnomalyRule, AuditRule, FailureRatioRule, Rule
from commerce_observe.monitor.anomaly import Score
from commerce_observe.monitor.audit.findings import Finding, Links
from commerce_observe.monitor.watch.series import BucketValues
from commerce_observe.monitor.watch.settings import WatchSettings
from commerce_observe.monitor.watch.sharing import Claims, Verdict

SENT, GAVE_UP, CLAIMED = "sent", "gave_up", "claimed_elsewhere"


class NotificationLog:
    """Which notification went to which notifier (an SQLite file next to the checkpoint)."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS sent(id TEXT NOT NULL, notifier TEXT NOT NULL, "
                           "outcome TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY(id, notifier)) WITHOUT ROWID")

    def done(self, nid: str, notifier: str, final: bool = False) -> bool:
        """Whether ``nid`` was handled for ``notifier`` (``final``: sent or given up here, not left
        to another member of the group, which may die before it sends)."""
        sql = "SELECT 1 FROM sent WHERE id = ? AND notifier = ?" + (" AND outcome != 'claimed_elsewhere'" if final else "")
        with self._lock:
            return self._conn.execute(sql, (nid, notifier)).fetchone() is not None

    def record(self, nid: str, notifier: str, outcome: str, at: float) -> None:
        with self._lock:  # one autocommit INSERT: durable before the sender moves on
            self._conn.execute("INSERT OR REPLACE INTO sent VALUES(?, ?, ?, ?)" if outcome != CLAIMED else
                               "INSERT OR IGNORE INTO sent VALUES(?, ?, ?, ?)", (nid, notifier, outcome, at))

    def count(self, outcome: str = SENT) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM sent WHERE outcome = ?", (outcome,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class LoggedNotifier:
    """A notifier that sends a notification only if the log has no record of it, and records it.

    With ``claims`` (scale-out) the order is claim, send, mark: the claim (created with the
    notification in it, see :class:`~commerce_observe.monitor.watch.sharing.Claims`) is taken
    or renewed, the notification sent, and the claim marked ``sent`` before the local log says
    so. A member killed after the claim and before the mark leaves a claim whose lease runs
    out; another member then sends the same notification (same id) again."""

    def __init__(self, inner: Notifier, log: NotificationLog, max_attempts: int, now: Callable[[], float],
                 claims: Claims | None = None) -> None:
        self.inner, self.log, self.max_attempts, self.now = inner, log, max_attempts, now
        self.claims = claims
        self.name = inner.name
        self._failures: dict[str, int] = {}
        self.unmarked: list[tuple[str, str]] = []  # (claim key, state) the claims index has not taken yet

    def send(self, n: Notification) -> None:
        if self.log.done(n.id, self.name, final=self.claims is not None):
            return
        key = f"{n.id}:{self.name}"
        if self.claims is not None:
            verdict = self.claims.claim("notification", key, payload(n))
            if verdict is not Verdict.MINE:  # sent by another member, or being sent (its lease will tell)
                self.log.record(n.id, self.name, CLAIMED, self.now())
                return
        try:
            self.inner.send(n)
        except DeliveryError as exc:
            failures = self._failures[n.id] = self._failures.get(n.id, 0) + 1
            if exc.permanent or failures >= self.max_attempts:  # the dispatcher gives it up: so do we
                self._failures.pop(n.id, None)
                self._mark(key, GAVE_UP)
                self.log.record(n.id, self.name, GAVE_UP, self.now())
            raise
        self._failures.pop(n.id, None)
        self._mark(key, SENT)
        self.log.record(n.id, self.name, SENT, self.now())

    def _mark(self, key: str, state: str) -> None:
        if self.claims is None:
            return
        try:
            self.claims.finish("notification", [key], state)
        except Exception as exc:  # the store is away: sent is sent; the mark is retried (retry_marks)
            logger.warning("claim %s not marked %s yet (%s)", key, state, exc)
            self.unmarked.append((key, state))

    def retry_marks(self) -> None:
        todo, self.unmarked = self.unmarked, []
        for key, state in todo:
            self._mark(key, state)


class Outbox:
    """Notifications produced and not yet known delivered; the engines' sink, saved with the checkpoint."""

    def __init__(self) -> None:
        self.pending: dict[str, Notification] = {}
        self.fresh: list[Notification] = []

    def __call__(self, n: Notification) -> None:
        if n.id not in self.pending:
            self.pending[n.id] = n
            self.fresh.append(n)


class AlertState:
    """What the checkpoint keeps of the alerting: both engines and the outbox."""

    def __init__(self, config: AlertConfig | None, settings: WatchSettings, links: Links) -> None:
        rules = config.rules if config else ()
        group_min = config.group_min if config else 5
        self.outbox = Outbox()
        self.series = AlertEngine(series_rules(config), self.outbox,
                                  bucket_s=settings.bucket_s, group_min=group_min, links=links)
        self.audit = AlertEngine([r for r in rules if isinstance(r, AuditRule)], self.outbox,
                                 bucket_s=settings.audit_bucket_s, group_min=group_min, links=links)

    def use_rules(self, config: AlertConfig | None, links: Links) -> None:
        """After a restart: the rule file as it is now (rules are stateless; what fires is in the engines)."""
        rules = config.rules if config else ()
        self.series.rules = tuple(series_rules(config))
        self.audit.rules = tuple(r for r in rules if isinstance(r, AuditRule))
        self.series.links = self.audit.links = links

    def bucket_scored(self, v: BucketValues, scores: Sequence[Score]) -> None:
        """Decide series bucket ``v``: its scores and payment ratios, then close it."""
        decide_series_bucket(self.series, v, scores)

    def findings_released(self, released: Sequence[tuple[int, Sequence[Finding]]], closed_until_ns: int) -> None:
        """Decide the audit buckets just closed (those with findings given) up to ``closed_until_ns``."""
        eng = self.audit
        for start_ns, found in released:
            at = datetime.fromtimestamp(start_ns / 1e9, timezone.utc)
            eng.advance(at)
            eng.observe_findings(found, at=at)
            eng.close_bucket()
        if eng.active:  # quiet buckets since: they count towards resolving
            eng.advance(datetime.fromtimestamp(closed_until_ns / 1e9, timezone.utc))


def series_rules(config: AlertConfig | None) -> list[Rule]:
    return [r for r in (config.rules if config else ()) if isinstance(r, (AnomalyRule, FailureRatioRule))]


def decide_series_bucket(eng: AlertEngine, v: BucketValues, scores: Sequence[Score]) -> None:
    """Series bucket ``v`` into ``eng``: its scores and payment ratios, then close it."""
    ts = datetime.fromtimestamp(v.start_ns / 1e9, timezone.utc)
    eng.advance(ts)
    for s in scores:
        eng.observe_score(s)
    for method in sorted(v.payments):
        failures, attempts = v.payments[method]
        eng.observe_payments(ts, method, failures, attempts)
    eng.close_bucket()


class Delivery:
    """The dispatcher (one sender thread per notifier) behind the notification log."""

    def __init__(self, config: AlertConfig | None, log: NotificationLog, now: Callable[[], float],
                 claims: Claims | None = None) -> None:
        self.log = log
        notifiers = [LoggedNotifier(n, log, config.retry.max_attempts, now, claims)
                     for n in config.notifiers] if config else []
        self.notifiers = notifiers
        self.names = [n.name for n in notifiers]
        self.dispatcher = Dispatcher(notifiers, queue_size=config.queue_size, retry=config.retry,
                                     throttle_max=config.throttle_max,
                                     throttle_interval_s=config.throttle_interval_s) if config else None

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()

    def submit(self, outbox: Outbox, everything: bool = False) -> int:
        """Hand the outbox's new notifications (all pending ones: after a restart) to the senders."""
        todo = list(outbox.pending.values()) if everything else outbox.fresh
        outbox.fresh = []
        if self.dispatcher is None:
            outbox.pending.clear()
            return 0
        for n in todo:
            self.dispatcher.submit(n)
        return len(todo)

    def prune(self, outbox: Outbox) -> None:
        """Forget outbox entries every notifier has sent or given up (before a checkpoint)."""
        for nid in [nid for nid in outbox.pending if all(self.log.done(nid, name) for name in self.names)]:
            del outbox.pending[nid]

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout_s)

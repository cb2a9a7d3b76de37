"""Delivery: throttling into a summary, retries while a real receiver is down, bounds, never blocking."""

from __future__ import annotations

import threading
from datetime import timedelta

from commerce_observe.monitor.alerts import (Alert, DeliveryError, Dispatcher, Kind, ManualClock, Notification, RetryPolicy,
                                     WebhookNotifier)
from commerce_observe.monitor.alerts.throttle import Throttle
from tests.alerts.helpers import T0
from tests.alerts.receivers import HttpReceiver
from tests.support.waiting import wait_for


def note(i: int, kind: Kind = Kind.FIRING) -> Notification:
    a = Alert(key=f"r|sku-{i}", rule="r", title="orders dropped", severity="critical", where=(("product", f"sku-{i}"),),
              since=T0, measure="anomaly score 90/100", value=90.0)
    return Notification(kind, f"orders dropped - product sku-{i}", (a,), T0 + timedelta(seconds=i))


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.fail_with: DeliveryError | None = None

    def send(self, n: Notification) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(n)


def test_throttle_lets_k_through_and_folds_the_rest_into_one_summary() -> None:
    clock, rec = ManualClock(), Recorder()
    d = Dispatcher([rec], clock, throttle_max=3, throttle_interval_s=600)
    for i in range(10):
        d.submit(note(i))
    d.pump()
    assert [n.kind for n in rec.sent] == [Kind.FIRING] * 3
    clock.advance(599)
    d.pump()
    assert len(rec.sent) == 3
    clock.advance(1)
    d.pump()
    summary = rec.sent[3]
    assert summary.kind is Kind.SUMMARY and summary.suppressed == 7
    assert [a.key for a in summary.alerts] == [f"r|sku-{i}" for i in range(3, 10)]
    assert d.channels[0].counts["throttled"] == 7


def test_throttle_window_counts_the_summary() -> None:
    t = Throttle(2, 60)
    assert t.admit(note(0), 0) and t.admit(note(1), 1) and not t.admit(note(2), 2)
    assert t.summary_due(59) is None
    s = t.summary_due(60)
    assert s is not None and s.suppressed == 1
    assert t.admit(note(3), 61) and not t.admit(note(4), 62)  # the summary used one of this window's two


def test_receiver_down_then_up_everything_is_delivered_in_order() -> None:
    receiver = HttpReceiver()  # not started: connection refused
    clock = ManualClock()
    d = Dispatcher([WebhookNotifier(receiver.url)], clock, retry=RetryPolicy(max_attempts=12, base_s=2, max_backoff_s=60),
                   throttle_max=None)
    for i in range(3):
        d.submit(note(i))
    d.pump()
    ch = d.channels[0]
    assert ch.counts["failed_attempts"] == 1 and d.pending() == 3  # the head failed; the rest wait behind it
    for _ in range(4):  # down for a while: backoff 2, 4, 8, 16 s
        clock.advance(ch.retry.delay(ch.counts["failed_attempts"]))
        d.pump()
    assert ch.counts["failed_attempts"] == 5 and ch.counts["sent"] == 0
    receiver.start()
    try:
        d.pump()
        assert d.pending() == 3  # still backing off: no attempt before its time
        clock.advance(32)
        assert d.pump() == 3
        assert [b["title"] for b in receiver.bodies()] == [f"orders dropped - product sku-{i}" for i in range(3)]
        assert ch.counts == {"sent": 3, "failed_attempts": 5, "gave_up": 0, "queue_full": 0, "throttled": 0}
    finally:
        receiver.stop()


def test_given_up_after_the_documented_bound_and_counted() -> None:
    from commerce_observe._internal.selfstats import stats

    clock, rec = ManualClock(), Recorder()
    rec.fail_with = DeliveryError("down")
    before = stats.get("alerts.gave_up")
    d = Dispatcher([rec], clock, retry=RetryPolicy(max_attempts=3, base_s=1), throttle_max=None)
    d.submit(note(0))
    d.submit(note(1))
    for _ in range(10):
        d.pump()
        clock.advance(10)
    assert d.channels[0].counts["gave_up"] == 2 and d.pending() == 0
    assert d.channels[0].counts["failed_attempts"] == 6
    assert stats.get("alerts.gave_up") == before + 2


def test_permanent_failure_is_not_retried() -> None:
    receiver = HttpReceiver().start()
    receiver.status = 400
    try:
        d = Dispatcher([WebhookNotifier(receiver.url)], ManualClock(), throttle_max=None)
        d.submit(note(0))
        d.pump()
        assert d.channels[0].counts["gave_up"] == 1 and d.channels[0].counts["failed_attempts"] == 1
        assert "HTTP 400" in (d.channels[0].last_error or "")
    finally:
        receiver.stop()


def test_server_error_is_retried() -> None:
    receiver = HttpReceiver().start()
    receiver.status = 503
    clock = ManualClock()
    try:
        d = Dispatcher([WebhookNotifier(receiver.url)], clock, throttle_max=None)
        d.submit(note(0))
        d.pump()
        receiver.status = 200
        clock.advance(2)
        d.pump()
        assert d.channels[0].counts["sent"] == 1 and len(receiver.bodies()) == 1
    finally:
        receiver.stop()


def test_full_queue_refuses_newest_and_counts() -> None:
    rec = Recorder()
    d = Dispatcher([rec], ManualClock(), queue_size=2, throttle_max=None)
    for i in range(5):
        d.submit(note(i))
    assert d.pending() == 2 and d.channels[0].counts["queue_full"] == 3


def test_a_hanging_notifier_never_blocks_submit_nor_the_other_notifiers() -> None:
    release = threading.Event()

    class Hanging:
        name = "hanging"

        def send(self, n: Notification) -> None:
            release.wait()

    rec = Recorder()
    d = Dispatcher([Hanging(), rec], throttle_max=None)
    d.start()
    try:
        for i in range(50):
            d.submit(note(i))  # returns at once although the first notifier is stuck
        wait_for("the healthy notifier to receive everything", lambda: len(rec.sent) == 50)
        assert d.channels[0].pending() >= 49
    finally:
        release.set()
        d.stop()


def test_background_sender_delivers_when_the_receiver_comes_back() -> None:
    receiver = HttpReceiver()
    d = Dispatcher([WebhookNotifier(receiver.url, timeout_s=2)], retry=RetryPolicy(max_attempts=1000, base_s=0.02, max_backoff_s=0.05),
                   throttle_max=None)
    d.start()
    try:
        d.submit(note(0))
        wait_for("failed attempts while the receiver is down", lambda: d.channels[0].counts["failed_attempts"] >= 2)
        receiver.start()
        wait_for("delivery after the receiver came back", lambda: len(receiver.bodies()) == 1)
        assert d.channels[0].counts["gave_up"] == 0
    finally:
        d.stop()
        receiver.stop()

"""Alerts people act on: rules over anomaly scores, payment failure ratios and audit findings.

Wiring (see docs/alerts.md)::

    cfg = load_config("alerts.json")
    dispatcher = cfg.dispatcher(); dispatcher.start()        # background senders
    engine = AlertEngine(cfg.rules, dispatcher.submit, bucket_s=cfg.bucket_s, group_min=cfg.group_min)
    engine.observe_score(detector.update("orders:sku-1", ts, 12))
    engine.observe_payments(ts, "card", failures=30, attempts=120)
    engine.observe_findings(auditor.finish())
    engine.close_bucket()

Importing this package does nothing and pulls in neither numpy nor a network client.
"""

from .clock import Clock, ManualClock, SystemClock
from .delivery import Dispatcher, RetryPolicy
from .engine import AlertEngine
from .model import Alert, Kind, Notification, Status
from .notifiers import DeliveryError, EmailNotifier, Notifier, SlackNotifier, WebhookNotifier
from .rulefile import AlertConfig, RuleFileError, load_config, parse_config
from .rules import AnomalyRule, AuditRule, FailureRatioRule, Rule
from .throttle import Throttle

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertEngine",
    "AnomalyRule",
    "AuditRule",
    "Clock",
    "DeliveryError",
    "Dispatcher",
    "EmailNotifier",
    "FailureRatioRule",
    "Kind",
    "ManualClock",
    "Notification",
    "Notifier",
    "RetryPolicy",
    "Rule",
    "RuleFileError",
    "SlackNotifier",
    "Status",
    "SystemClock",
    "Throttle",
    "WebhookNotifier",
    "load_config",
    "parse_config",
]

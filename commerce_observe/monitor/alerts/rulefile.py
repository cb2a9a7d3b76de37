"""The alert configuration file (JSON, so no YAML dependency): rules, notifiers, delivery.

Validation is strict and names the offending place (``rules[2].threshold: ...``)
because a typo in an alert rule fails silently otherwise: the alert that should
have woken someone simply never fires. Secrets are not stored in the file: an
e-mail notifier names the environment variable holding its password
(``password_env``). The format is documented in docs/alerts.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from commerce_observe.monitor.anomaly.severity import CRITICAL

from .delivery import Dispatcher, RetryPolicy
from .notifiers import EmailNotifier, Notifier, SlackNotifier, WebhookNotifier
from .rules import AnomalyRule, AuditRule, FailureRatioRule, Rule

T = TypeVar("T")


class RuleFileError(ValueError):
    """The alert configuration is unusable; the message says where."""


@dataclass(frozen=True)
class AlertConfig:
    rules: tuple[Rule, ...]
    notifiers: tuple[Notifier, ...]
    bucket_s: float = 3600.0
    group_min: int = 5
    throttle_max: int | None = 10
    throttle_interval_s: float = 600.0
    retry: RetryPolicy = RetryPolicy()
    queue_size: int = 1000

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        kw: dict[str, Any] = dict(queue_size=self.queue_size, retry=self.retry, throttle_max=self.throttle_max,
                                  throttle_interval_s=self.throttle_interval_s)
        kw.update(overrides)
        return Dispatcher(self.notifiers, **kw)


def _get(d: Mapping[str, Any], key: str, where: str, typ: Callable[[Any], T], default: T | None = None, *, required: bool = False) -> T:
    if key not in d:
        if required or default is None:
            raise RuleFileError(f"{where}.{key}: required")
        return default
    value = d[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) if typ in (int, float) else isinstance(value, typ)  # type: ignore[arg-type]
    if not ok or (typ is int and isinstance(value, float) and not value.is_integer()):
        raise RuleFileError(f"{where}.{key}: expected {getattr(typ, '__name__', typ)}, got {value!r}")
    return typ(value)


def _rule(d: Any, where: str) -> Rule:
    if not isinstance(d, dict):
        raise RuleFileError(f"{where}: expected an object")
    kind = _get(d, "type", where, str, required=True)
    name = _get(d, "name", where, str, required=True)
    if kind == "anomaly":
        direction = _get(d, "direction", where, str, "any")
        if direction not in ("any", "drop", "spike"):
            raise RuleFileError(f"{where}.direction: expected any, drop or spike")
        threshold = _get(d, "threshold", where, float, CRITICAL)
        if not 0 <= threshold <= 100:
            raise RuleFileError(f"{where}.threshold: an anomaly score is 0..100")
        return AnomalyRule(name, _get(d, "series", where, str, "*"), threshold, direction, _get(d, "resolve_after", where, int, 3))
    if kind == "failure_ratio":
        threshold = _get(d, "threshold", where, float, required=True)
        if not 0 < threshold < 1:
            raise RuleFileError(f"{where}.threshold: a ratio between 0 and 1")
        return FailureRatioRule(name, _get(d, "method", where, str, "*"), threshold, _get(d, "min_attempts", where, int, 20),
                                _get(d, "resolve_after", where, int, 3))
    if kind == "audit":
        from commerce_observe.monitor.audit.findings import Kind  # here: loading alerts does not load the audit package

        known = [k.value for k in Kind]
        kinds = d.get("kinds", ["LOST", "UNDELIVERED", "DUPLICATE", "LATE"])
        if not isinstance(kinds, list) or not kinds or any(k not in known for k in kinds):
            raise RuleFileError(f"{where}.kinds: a non-empty list of {', '.join(known)}")
        return AuditRule(name, tuple(kinds), _get(d, "topic", where, str, "*"), _get(d, "min_count", where, int, 1),
                         _get(d, "resolve_after", where, int, 1), _get(d, "max_links", where, int, 5))
    raise RuleFileError(f"{where}.type: expected anomaly, failure_ratio or audit, got {kind!r}")


def _notifier(d: Any, where: str, env: Mapping[str, str]) -> Notifier:
    if not isinstance(d, dict):
        raise RuleFileError(f"{where}: expected an object")
    kind = _get(d, "type", where, str, required=True)
    name = _get(d, "name", where, str, kind)
    timeout = _get(d, "timeout_seconds", where, float, 10.0)
    if kind in ("webhook", "slack"):
        url = _get(d, "url", where, str, required=True)
        if not url.startswith(("http://", "https://")):
            raise RuleFileError(f"{where}.url: expected an http(s) URL")
        if kind == "slack":
            return SlackNotifier(url, name=name, timeout_s=timeout)
        headers = d.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise RuleFileError(f"{where}.headers: expected an object of strings")
        return WebhookNotifier(url, name=name, timeout_s=timeout, headers=headers)
    if kind == "email":
        to = d.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(x, str) for x in to):
            raise RuleFileError(f"{where}.to: a non-empty list of addresses")
        password_env = d.get("password_env")
        password = env.get(password_env) if isinstance(password_env, str) else None
        if isinstance(password_env, str) and password is None:
            raise RuleFileError(f"{where}.password_env: environment variable {password_env} is not set")
        return EmailNotifier(
            _get(d, "host", where, str, "127.0.0.1"), _get(d, "port", where, int, 25), _get(d, "from", where, str, required=True),
            to, name=name, starttls=_get(d, "starttls", where, bool, False), username=d.get("username"),
            password=password, timeout_s=timeout,
        )
    raise RuleFileError(f"{where}.type: expected webhook, slack or email, got {kind!r}")


def parse_config(doc: Any, env: Mapping[str, str] | None = None) -> AlertConfig:
    if not isinstance(doc, dict):
        raise RuleFileError("alert config: expected a JSON object")
    environ = os.environ if env is None else env
    rules = doc.get("rules", [])
    notifiers = doc.get("notifiers", [])
    if not isinstance(rules, list) or not isinstance(notifiers, list):
        raise RuleFileError("rules and notifiers must be lists")
    names = [r.get("name") for r in rules if isinstance(r, dict)]
    if len(names) != len(set(names)):
        raise RuleFileError("rules: names must be unique (they are part of every alert key)")
    throttle = doc.get("throttle", {"max": 10, "per_seconds": 600})
    retry = doc.get("retry", {})
    if not isinstance(throttle, dict) or not isinstance(retry, dict):
        raise RuleFileError("throttle and retry must be objects")
    t_max = throttle.get("max")
    return AlertConfig(
        rules=tuple(_rule(r, f"rules[{i}]") for i, r in enumerate(rules)),
        notifiers=tuple(_notifier(n, f"notifiers[{i}]", environ) for i, n in enumerate(notifiers)),
        bucket_s=_get(doc, "bucket_seconds", "config", float, 3600.0),
        group_min=_get(doc, "group_min", "config", int, 5),
        throttle_max=None if t_max is None else _get(throttle, "max", "throttle", int),
        throttle_interval_s=_get(throttle, "per_seconds", "throttle", float, 600.0),
        retry=RetryPolicy(_get(retry, "max_attempts", "retry", int, 12), _get(retry, "base_seconds", "retry", float, 2.0),
                          _get(retry, "max_backoff_seconds", "retry", float, 300.0)),
        queue_size=_get(doc, "queue_size", "config", int, 1000),
    )


def load_config(path: str, env: Mapping[str, str] | None = None) -> AlertConfig:
    with open(path, encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise RuleFileError(f"{path}: not valid JSON: {exc}") from None
    return parse_config(doc, env)

"""``commerce-observe alerts`` end to end, and the JSON rule file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from commerce_observe.monitor.alerts import AnomalyRule, AuditRule, FailureRatioRule, RuleFileError, parse_config
from commerce_observe.monitor.cli import main
from tests.alerts.helpers import MIN, T0
from tests.alerts.receivers import HttpReceiver
from testbed.base import free_port


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


def write_inputs(tmp: Path, url: str) -> dict[str, str]:
    config = {
        "bucket_seconds": 60, "group_min": 5,
        "rules": [
            {"type": "anomaly", "name": "orders", "series": "orders:*", "threshold": 75, "resolve_after": 2},
            {"type": "failure_ratio", "name": "payments", "threshold": 0.2, "min_attempts": 50},
            {"type": "audit", "name": "audit", "kinds": ["LOST", "DUPLICATE"]},
        ],
        "notifiers": [{"type": "webhook", "url": url}],
        "throttle": {"max": 100, "per_seconds": 600},
        "retry": {"max_attempts": 2, "base_seconds": 0.01},
    }
    scores = ["timestamp,series,score"]
    for i in range(6):
        ts = (T0 + i * MIN).isoformat()
        scores += [f"{ts},orders:sku-{p},{95 if i == 1 else 5}" for p in range(8)]
    series = ["timestamp,series,value,numerator,denominator", f"{T0.isoformat()},payment_failures:card,,40,100",
              f"{T0.isoformat()},payment_failures:sepa,,40,10", f"{T0.isoformat()},orders:sku-1,3,,"]
    findings = {"findings": [{"kind": "LOST", "event_id": "e1", "destination": "orders", "consumer_group": "billing",
                              "trace_id": "c" * 32, "published_ns": int(T0.timestamp() * 1e9), "links": {}},
                             {"kind": "LATE", "event_id": "e2", "destination": "orders", "published_ns": int(T0.timestamp() * 1e9)}]}
    paths = {"config": tmp / "alerts.json", "scores": tmp / "scores.csv", "series": tmp / "in.csv", "audit": tmp / "audit.json"}
    paths["config"].write_text(json.dumps(config))
    paths["scores"].write_text("\n".join(scores) + "\n")
    paths["series"].write_text("\n".join(series) + "\n")
    paths["audit"].write_text(json.dumps(findings))
    return {k: str(v) for k, v in paths.items()}


def args(p: dict[str, str], *extra: str) -> list[str]:
    return ["alerts", "evaluate", "--config", p["config"], "--scores", p["scores"], "--series", p["series"],
            "--audit", p["audit"], "--zipkin-ui", "http://zipkin.test:9411", *extra]


def test_evaluate_dry_run_prints_every_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_inputs(tmp_path, "http://127.0.0.1:1/never")
    assert main(args(p, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "[commerce-observe CRITICAL] 8 x orders anomalous (orders) at the same time" in out
    assert "payment failures high - payment method card" in out and "sepa" not in out  # sepa: 10 attempts < 50
    assert "events lost - topic orders, consumer group billing" in out
    assert f"zipkin trace {'c' * 32}: http://zipkin.test:9411/zipkin/traces/{'c' * 32}" in out
    assert "8 x orders anomalous (orders) resolved" in out
    assert "LATE" not in out and "late" not in out


def test_evaluate_links_to_the_zipkin_ui_behind_the_configured_endpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMERCE_OBSERVE_ZIPKIN_UI_URL", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://zipkin.test:9411/api/v2/spans")
    argv = args(write_inputs(tmp_path, "http://127.0.0.1:1/never"), "--dry-run")
    del argv[argv.index("--zipkin-ui"):argv.index("--zipkin-ui") + 2]
    assert main(argv) == 0
    assert f"zipkin trace {'c' * 32}: http://zipkin.test:9411/zipkin/traces/{'c' * 32}" in capsys.readouterr().out


def test_evaluate_delivers_to_the_webhook(tmp_path: Path, receiver: HttpReceiver) -> None:
    p = write_inputs(tmp_path, receiver.url)
    assert main(args(p)) == 0
    kinds = [b["kind"] for b in receiver.bodies()]
    assert sorted(kinds) == ["firing", "firing", "group", "group_resolved", "resolved", "resolved"]


def test_evaluate_reports_undelivered_with_exit_code_1(tmp_path: Path) -> None:
    p = write_inputs(tmp_path, f"http://127.0.0.1:{free_port()}/down")
    assert main(args(p)) == 1


def test_test_notify(receiver: HttpReceiver) -> None:
    assert main(["alerts", "test-notify", "--webhook", receiver.url, "--slack", receiver.url]) == 0
    bodies = receiver.bodies()
    webhook = [b for b in bodies if "title" in b]
    slack = [b for b in bodies if "blocks" in b]
    assert [b["title"] for b in webhook] == ["test notification from commerce-observe"] and len(slack) == 1
    assert main(["alerts", "test-notify", "--webhook", f"http://127.0.0.1:{free_port()}/", "--attempts", "1"]) == 1
    assert main(["alerts", "test-notify"]) == 2


def test_config_parses_every_rule_and_notifier() -> None:
    cfg = parse_config({
        "rules": [{"type": "anomaly", "name": "a", "series": "orders:*", "direction": "drop"},
                  {"type": "failure_ratio", "name": "f", "method": "card", "threshold": 0.05, "min_attempts": 30},
                  {"type": "audit", "name": "l", "kinds": ["LOST"], "topic": "payments*"}],
        "notifiers": [{"type": "webhook", "url": "http://h/x", "headers": {"Authorization": "Bearer t"}},
                      {"type": "slack", "url": "https://hooks.example/T"},
                      {"type": "email", "host": "mx", "port": 2525, "from": "a@b", "to": ["c@d"], "username": "u", "password_env": "PW"}],
        "throttle": {"max": 3, "per_seconds": 60}, "retry": {"max_attempts": 5},
    }, env={"PW": "secret"})
    assert cfg.rules == (AnomalyRule("a", "orders:*", 75.0, "drop", 3), FailureRatioRule("f", "card", 0.05, 30, 3),
                         AuditRule("l", ("LOST",), "payments*", 1, 1, 5))
    assert [n.name for n in cfg.notifiers] == ["webhook", "slack", "email"]
    assert cfg.throttle_max == 3 and cfg.retry.max_attempts == 5 and cfg.retry.base_s == 2.0


@pytest.mark.parametrize("doc, message", [
    ({"rules": [{"type": "anomaly", "name": "a", "threshold": 120}]}, "rules[0].threshold: an anomaly score is 0..100"),
    ({"rules": [{"type": "failure_ratio", "name": "f"}]}, "rules[0].threshold: required"),
    ({"rules": [{"type": "audit", "name": "x", "kinds": ["LOSTT"]}]}, "rules[0].kinds"),
    ({"rules": [{"type": "anomaly", "name": "a"}, {"type": "anomaly", "name": "a"}]}, "names must be unique"),
    ({"rules": [{"type": "nope", "name": "a"}]}, "rules[0].type"),
    ({"notifiers": [{"type": "webhook", "url": "ftp://x"}]}, "notifiers[0].url"),
    ({"notifiers": [{"type": "email", "from": "a@b", "to": ["c@d"], "password_env": "MISSING"}]}, "MISSING is not set"),
    ({"rules": [{"type": "anomaly", "name": "a", "resolve_after": "3"}]}, "rules[0].resolve_after: expected int"),
])
def test_config_errors_name_the_place(doc: object, message: str) -> None:
    with pytest.raises(RuleFileError) as err:
        parse_config(doc, env={})
    assert message in str(err.value)


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{not json")
    assert main(["alerts", "evaluate", "--config", str(tmp_path / "c.json"), "--dry-run"]) == 2

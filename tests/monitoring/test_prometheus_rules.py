"""Prometheus: the shipped alert rules pass promtool; the endpoint binds where it is
told and counts the findings and anomalies the monitor reports."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import commerce_observe
from commerce_observe.monitor.anomaly.score import Score, report_to_hub as report_scores
from commerce_observe.monitor.audit.findings import report_to_hub as report_findings
from testbed.base import free_port
from tests.monitoring import dataset
from tests.support.waiting import wait_for

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "commerce-observe.rules.yml"


def test_the_shipped_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/test.sh installs Debian's prometheus package"
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).read()
        return True
    except OSError:
        return False


def _scrape(url: str) -> dict[str, float]:
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return {}
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_the_endpoint_binds_the_given_address_and_counts_findings_and_anomalies() -> None:
    port = free_port()
    commerce_observe.shutdown()
    runtime = commerce_observe.install(env={
        "COMMERCE_OBSERVE_PROMETHEUS_PORT": str(port), "COMMERCE_OBSERVE_PROMETHEUS_HOST": "127.0.0.2",
        "OTEL_TRACES_EXPORTER": "none"})
    try:
        assert runtime is not None and f"commerce metrics at http://127.0.0.2:{port}/metrics" in runtime.destinations
        url = f"http://127.0.0.2:{port}/metrics"
        wait_for("the metrics endpoint", lambda: _answers(url), 20, 0.1)
        report_findings(dataset.findings())
        now = datetime.now(timezone.utc)
        report_scores([Score("orders", now, 90.0, 1.0, alert=True), Score("orders", now, 10.0, 1.0)])
        samples = wait_for("the counts", lambda: _scrape(url), 20, 0.1,
                           until=lambda s: 'commerce_findings_total{kind="LOST"}' in s)
    finally:
        commerce_observe.shutdown()
    assert samples['commerce_findings_total{kind="LOST"}'] == 2
    assert samples['commerce_anomalies_total{alert="true",severity="critical"}'] == 1
    assert not any(k.startswith("commerce_anomalies_total") and 'severity="low"' in k for k in samples)

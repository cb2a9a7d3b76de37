"""The two commands as users run them: ``dashboard`` serving a store, ``ship`` on the real broker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from decimal import Decimal
from typing import Any

import pytest

from commerce_observe.agent.audit.kafka_sink import KafkaSink
from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.reporting.publisher import KafkaEventPublisher
from commerce_observe.monitor.dashboard import Dashboard
from commerce_observe.store.sqlite_store import SqliteStore
from tests.monitoring import contract, dataset
from testbed.base import free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def assert_running(proc: subprocess.Popen[str]) -> None:
    """Fail with the command's stderr once it has exited."""
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""


def summary(url: str, proc: subprocess.Popen[str]) -> dict[str, Any] | None:
    """The dashboard's JSON summary, or None while it does not answer yet."""
    try:
        data: dict[str, Any] = json.load(urllib.request.urlopen(url, timeout=5))
        return data
    except OSError:
        assert_running(proc)
        return None


def command(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "commerce_observe", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_dashboard_command_serves_the_store(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    contract.load(SqliteStore(str(db)))
    port = free_port()
    proc = command("dashboard", "--store", f"sqlite:{db}", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}/api/summary?start_ms={contract.RANGE.start_ms}&end_ms={contract.RANGE.end_ms}"
        data = wait_for("the dashboard's summary", lambda: summary(url, proc), 30, 0.2)
        assert sum(r["orders"] for r in data["per_minute"]) == 60
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


@pytest.mark.kafka
def test_ship_command_stores_the_topic_and_stops_cleanly(kafka_bootstrap: str, unique_topic: str,
                                                         tmp_path: Path) -> None:
    docs = [d for d in dataset.documents() if d["commerce.record"] != "message"]
    publisher = KafkaEventPublisher(kafka_bootstrap, unique_topic)
    publisher(docs)
    publisher.close()
    db = tmp_path / "m.db"
    SqliteStore(str(db)).close()
    proc = command("ship", "--bootstrap", kafka_bootstrap, "--store", f"sqlite:{db}", "--topic", unique_topic,
                   "--group", unique_topic + "-g")
    store = SqliteStore(str(db))

    def orders() -> int:
        assert_running(proc)
        return sum(r.orders for r in store.per_minute(contract.RANGE))

    wait_for("60 orders in the store", orders, 60, 0.3, until=lambda n: n >= 60, describe=lambda n: f"it held {n}")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert f"{len(docs)} written" in (proc.stderr.read() if proc.stderr else "")
    contract.check_subrange(store)


def test_the_demo_and_the_dashboard_mean_the_same_revenue(tmp_path: Path) -> None:
    """Revenue is the value of orders placed: the demo's line and the dashboard's headline agree."""
    db = tmp_path / "m.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMMERCE_OBSERVE_EVENT_STORE": f"sqlite:{db}"}
    done = subprocess.run([sys.executable, "-m", "commerce_observe", "demo", "--orders", "40", "--output",
                           str(tmp_path / "traces.json")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    said = re.search(r"revenue: ([\d.]+) EUR \(value of orders placed.*paid: ([\d.]+) EUR\)", done.stdout)
    assert said, done.stdout
    app = Dashboard(SqliteStore(str(db)), port=0).start()
    try:
        data = json.load(urllib.request.urlopen(app.url + "api/summary?minutes=60", timeout=10))
    finally:
        app.close()
    assert data["headline"]["revenue"] == [{"currency": "EUR", "revenue": f"{Decimal(said.group(1)):.3f}"}]
    assert "value of orders placed" in data["headline"]["revenue_means"]
    assert Decimal(said.group(2)) < Decimal(said.group(1))  # some payments failed: paid is the smaller part


@pytest.mark.kafka
def test_ship_reads_the_audit_topic_the_services_write(kafka_bootstrap: str, unique_topic: str,
                                                       tmp_path: Path) -> None:
    """COMMERCE_OBSERVE_AUDIT_TOPIC names the audit topic for ship as for the services, audit and watch."""
    audit_topic = unique_topic + "-audit"
    sink = KafkaSink(kafka_bootstrap, audit_topic)
    lines = [encode(fact) for fact in dataset.facts()]
    sink.write(lines)
    sink.close()
    db = tmp_path / "m.db"
    SqliteStore(str(db)).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMMERCE_OBSERVE_AUDIT_TOPIC": audit_topic}
    proc = subprocess.Popen([sys.executable, "-m", "commerce_observe", "ship", "--bootstrap", kafka_bootstrap,
                             "--store", f"sqlite:{db}", "--topic", audit_topic, "--group", unique_topic + "-g"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = SqliteStore(str(db))

    def handled() -> int:
        assert_running(proc)
        return store.latency(contract.RANGE).count

    expected = len(dataset.expected()["latency"])
    wait_for("the handled messages in the store", handled, 60, 0.3, until=lambda n: n >= expected,
             describe=lambda n: f"it held {n}")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert f"{len(lines)} written" in (proc.stderr.read() if proc.stderr else "")

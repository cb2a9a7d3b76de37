"""Live metrics: a real Prometheus scrape, and APM metricsets validated by the intake schema."""

from __future__ import annotations

import urllib.request

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from commerce_observe.agent.reporting.apm_metrics import ApmMetricsetExporter
from commerce_observe.agent.reporting.live_metrics import LiveMetrics, prometheus_provider
from tests.monitoring import dataset
from tests.support.apm_intake import IntakeReceiver
from testbed.base import free_port


def feed(live: LiveMetrics) -> None:
    for event in dataset.events():
        live.event(event)
    for fact in dataset.facts():
        live.fact(fact)
    for finding in dataset.findings():
        live.finding(finding)


def test_prometheus_endpoint_serves_the_dataset_counts() -> None:
    port = free_port()
    provider, server = prometheus_provider(port)
    try:
        feed(LiveMetrics(provider))
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
        provider.shutdown()
    exp = dataset.expected()
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    orders = {c: n for c, (n, _) in exp["revenue"].items()}
    for currency, n in orders.items():
        assert samples[f'commerce_orders_total{{currency="{currency}"}}'] == n
    failures = sum(v for k, v in samples.items() if k.startswith("commerce_payment_failures_total"))
    assert failures == sum(n for _, n in exp["reasons"])
    assert samples['commerce_findings_total{kind="LOST"}'] == 2
    assert samples['commerce_message_latency_milliseconds_count{destination="orders"}'] == len(exp["latency"])


def test_apm_metricsets_validate_against_the_intake_schema() -> None:
    with IntakeReceiver() as receiver:
        exporter = ApmMetricsetExporter(receiver.url, "shop")
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(metric_readers=[reader])
        feed(LiveMetrics(provider))
        provider.force_flush()
        metricsets = receiver.wait_for("metricset", 3)
        provider.shutdown()
        assert receiver.problems() == []
    by_tags = {tuple(sorted((m.get("tags") or {}).items())): m["samples"] for m in metricsets}
    eur = by_tags[(("currency", "EUR"),)]
    assert eur["commerce.orders"] == {"type": "counter", "value": 40.0}
    assert eur["commerce.order.value"]["type"] == "histogram"
    assert sum(eur["commerce.order.value"]["counts"]) == 40
    latency = by_tags[(("destination", "orders"),)]["commerce.message.latency"]
    assert sum(latency["counts"]) == 40 and latency["values"] == sorted(latency["values"])

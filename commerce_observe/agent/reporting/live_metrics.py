"""Live OpenTelemetry metrics from the hub: the dashboard's numbers, without a store.

Counters, not gauges: "orders per minute" is ``rate(commerce_orders_total[1m])``
in Prometheus (or a derivative in Kibana), and cumulative counters survive a
missed scrape. Instruments (all attributes low-cardinality):

* ``commerce.orders`` {currency}, ``commerce.revenue`` {currency}
* ``commerce.order.value`` histogram {currency} (average order value = sum/count)
* ``commerce.payments`` {outcome, method}, ``commerce.payment.failures`` {reason, method}
* ``commerce.product.quantity`` {product}: only the first ``max_products`` product
  ids get their own series, the rest are ``other`` (a catalogue must not explode
  the metric store)
* ``commerce.message.latency`` histogram, ms {destination}
* ``commerce.findings`` {kind} (``commerce_findings_total`` in Prometheus): fed by
  :class:`FindingReported` facts, which the monitor emits on the hub for every audit
  finding it releases (``commerce-observe audit`` and ``watch``)
* ``commerce.anomalies`` {severity, alert} (``commerce_anomalies_total``): fed by
  :class:`AnomalyReported` facts, emitted by ``watch`` for every point it scores at or
  above the warning band

The meter provider is the caller's (or :func:`prometheus_provider`'s): this
module never sets the global one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter, MeterProvider

from commerce_observe.agent.events.model import DomainEvent, EventType
from commerce_observe.agent.messaging.facts import MessageFact, Stage

@dataclass(frozen=True, slots=True)
class FindingReported:
    """A hub fact: the monitor released one audit finding of ``kind`` (LOST, DUPLICATE, GAP...)."""

    kind: str


@dataclass(frozen=True, slots=True)
class AnomalyReported:
    """A hub fact: the monitor scored a point at or above the warning band (``severity``
    warning, minor or critical); ``alert`` on the first critical point of an incident."""

    severity: str
    alert: bool = False


LATENCY_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)


class LiveMetrics:
    def __init__(self, meter_provider: MeterProvider, *, max_products: int = 200) -> None:
        meter: Meter = meter_provider.get_meter("commerce_observe.store")
        self.orders = meter.create_counter("commerce.orders", "{order}", "Orders created")
        self.revenue = meter.create_counter("commerce.revenue", "{currency_unit}", "Sum of created orders' totals")
        self.order_value = meter.create_histogram("commerce.order.value", "{currency_unit}", "Order totals")
        self.payments = meter.create_counter("commerce.payments", "{payment}", "Payment attempts (authorized or failed)")
        self.failures = meter.create_counter("commerce.payment.failures", "{payment}", "Failed payments")
        self.quantity = meter.create_counter("commerce.product.quantity", "{item}", "Units ordered per product")
        self.latency = meter.create_histogram(
            "commerce.message.latency", "ms", "Published to handled, per message",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS_MS))
        self.findings = meter.create_counter("commerce.findings", "{finding}", "Audit findings (LOST, DUPLICATE, ...)")
        self.anomalies = meter.create_counter("commerce.anomalies", "{point}",
                                              "Scored points at or above the warning band, by severity")
        self.max_products = max_products
        self._products: set[str] = set()

    def _product(self, product_id: str) -> str:
        if product_id in self._products:
            return product_id
        if len(self._products) < self.max_products:
            self._products.add(product_id)
            return product_id
        return "other"

    def event(self, event: DomainEvent) -> None:
        if event.type is EventType.ORDER_CREATED:
            currency = event.currency or "unknown"
            self.orders.add(1, {"currency": currency})
            total = event.total
            if total is not None:
                self.revenue.add(float(total), {"currency": currency})
                self.order_value.record(float(total), {"currency": currency})
            for item in event.items:
                self.quantity.add(item.quantity, {"product": self._product(item.product_id)})
        elif event.type in (EventType.PAYMENT_AUTHORIZED, EventType.PAYMENT_FAILED):
            failed = event.type is EventType.PAYMENT_FAILED
            method = event.payment_method or "unknown"
            self.payments.add(1, {"outcome": "failure" if failed else "success", "method": method})
            if failed:
                self.failures.add(1, {"reason": event.reason or "unknown", "method": method})

    def fact(self, fact: MessageFact) -> None:
        if fact.stage is Stage.HANDLED and fact.published_ns:
            self.latency.record(max(0, fact.time_ns - fact.published_ns) / 1e6, {"destination": fact.destination})

    def anomaly(self, fact: AnomalyReported) -> None:
        self.anomalies.add(1, {"severity": fact.severity, "alert": "true" if fact.alert else "false"})

    def finding(self, finding: Any) -> None:
        """Count an audit finding: a :class:`FindingReported` fact, or any object with a ``kind``."""
        self.findings.add(1, {"kind": str(getattr(finding.kind, "value", finding.kind))})


def attach_metrics(runtime: Any, meter_provider: MeterProvider, **options: Any) -> tuple[LiveMetrics, Callable[[], None]]:
    """Subscribe live metrics to the runtime's hub; returns them and the detach."""
    live = LiveMetrics(meter_provider, **options)
    offs = [runtime.hub.subscribe(DomainEvent, live.event), runtime.hub.subscribe(MessageFact, live.fact),
            runtime.hub.subscribe(FindingReported, live.finding), runtime.hub.subscribe(AnomalyReported, live.anomaly)]

    def detach() -> None:
        for off in offs:
            off()

    return live, detach


def prometheus_provider(port: int = 9464, addr: str = "127.0.0.1", service_name: str = "commerce") -> tuple[Any, Any]:
    """A MeterProvider whose metrics are scraped at ``http://addr:port/metrics``.

    Uses a registry of its own (not prometheus_client's global), so two providers
    in one process do not collide. Returns ``(meter_provider, http_server)``;
    call ``http_server.shutdown()`` and ``meter_provider.shutdown()`` to stop.
    Needs the ``opentelemetry-exporter-prometheus`` package.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    provider = SdkMeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": service_name}))
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return provider, server

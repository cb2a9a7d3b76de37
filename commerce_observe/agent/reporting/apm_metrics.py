"""The live commerce metrics as Elastic APM metricsets (intake v2), for Kibana's APM views.

An OpenTelemetry ``MetricExporter``: put it in a ``PeriodicExportingMetricReader``
beside (or instead of) the Prometheus reader, and every interval the same
instruments are posted to APM Server as ``metricset`` events: one metricset per
instrument scope and attribute set (APM Server requires one tag set per
metricset), the attributes as ``tags``. Counters are sent as their delta over
the interval (``type: counter``), histograms as ``type: histogram`` with bucket
midpoints in ``values`` and per-bucket ``counts``, as Elastic's own agents do.
Metadata and delivery are the span exporter's (``export.elastic``: the same
metadata line, so the service identity matches the traces, and the same
elastic-apm transport: auth, TLS options, gzip NDJSON, pooled connections).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality, Gauge, MetricExporter, MetricExportResult, MetricsData, Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.elastic.labels import labels_from
from commerce_observe.agent.export.elastic.mapping import event_line
from commerce_observe.agent.export.elastic.metadata import metadata_line
from commerce_observe.agent.export.elastic.transport import make_transport

FAILED = "monitoring.apm_metrics_failed"


def _midpoints(bounds: tuple[float, ...] | list[float], counts: list[int]) -> Iterator[tuple[float, int]]:
    """(representative value, count) per non-empty bucket, ascending: Elastic's histogram shape."""
    for i, n in enumerate(counts):
        if not n:
            continue
        if i == 0:
            value = bounds[0] / 2 if bounds else 0.0
        elif i == len(bounds):
            value = float(bounds[-1])
        else:
            value = (bounds[i - 1] + bounds[i]) / 2
        yield value, n


def to_metricsets(data: MetricsData) -> list[dict[str, Any]]:
    """Intake ``metricset`` bodies for one collection (without the ``{"metricset": ...}`` wrapper)."""
    grouped: dict[tuple[int, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    tags = labels_from(dict(point.attributes or {}))
                    key = (point.time_unix_nano // 1000, tuple(sorted(tags.items())))
                    ms = grouped.setdefault(key, {"timestamp": key[0], "samples": {}, **({"tags": tags} if tags else {})})
                    name = metric.name.replace("*", "_").replace('"', "_")
                    if isinstance(metric.data, HistogramData):
                        pairs = list(_midpoints(list(point.explicit_bounds), list(point.bucket_counts)))  # type: ignore[union-attr]
                        ms["samples"][name] = {"type": "histogram", "values": [v for v, _ in pairs],
                                               "counts": [n for _, n in pairs]}
                    elif isinstance(metric.data, Sum):
                        ms["samples"][name] = {"type": "counter" if metric.data.is_monotonic else "gauge",
                                               "value": float(point.value)}  # type: ignore[union-attr]
                    elif isinstance(metric.data, Gauge):
                        ms["samples"][name] = {"type": "gauge", "value": float(point.value)}  # type: ignore[union-attr]
    return list(grouped.values())


class ApmMetricsetExporter(MetricExporter):
    """Posts metricsets to ``server_url`` + ``/intake/v2/events`` (gzip NDJSON, metadata first).

    A failed request is counted as ``monitoring.apm_metrics_failed`` (and, with its
    reason, by the transport as ``export.elastic_apm.send_failed``).
    """

    def __init__(self, server_url: str, service_name: str, *, secret_token: str | None = None,
                 api_key: str | None = None, environment: str | None = None,
                 resource: Mapping[str, Any] | None = None, timeout_s: float = 10.0,
                 verify_server_cert: bool = True) -> None:
        delta = AggregationTemporality.DELTA
        super().__init__(preferred_temporality={Counter: delta, ObservableCounter: delta, Histogram: delta,
                                                UpDownCounter: AggregationTemporality.CUMULATIVE})
        self.metadata_line = metadata_line(service_name, environment, resource)
        self.transport = make_transport(server_url, secret_token=secret_token, api_key=api_key,
                                        verify_server_cert=verify_server_cert, timeout_s=timeout_s)

    def body(self, metricsets: list[dict[str, Any]]) -> bytes:
        """The NDJSON request body (uncompressed: the transport gzips it)."""
        return "".join([self.metadata_line, *(event_line("metricset", m) for m in metricsets)]).encode()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        metricsets = [m for m in to_metricsets(metrics_data) if m["samples"]]
        if not metricsets:
            return MetricExportResult.SUCCESS
        if self.transport.post(self.body(metricsets)):
            return MetricExportResult.SUCCESS
        stats.incr(FAILED)
        return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.transport.stop()

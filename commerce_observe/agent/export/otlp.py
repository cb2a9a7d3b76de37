"""OTLP exporter: masked span records to an OpenTelemetry Collector, Jaeger, Elastic...

It is one more exporter on the bounded pipeline (its own queue and thread, drops
counted as ``export.otlp.dropped``), so what it sends went through the same masking
as Zipkin and Elastic APM, with the same trace and span ids. Records are encoded by
``otlp_encode`` (a fraction of the CPU of OpenTelemetry's per-span message building)
and delivered by OpenTelemetry's own OTLP exporters, which own the parts worth
sharing with the rest of the ecosystem: for ``http/protobuf`` the HTTP client of
``opentelemetry-exporter-otlp-proto-http`` (session, TLS files, headers, gzip,
retries with back-off and ``Retry-After`` within the timeout); for ``grpc`` the
``opentelemetry-exporter-otlp-proto-grpc`` exporter (channel, credentials,
compression, retryable status codes, reconnection), fed through its
``_translate_data`` hook with the request parsed from our bytes.

Counters: ``export.otlp.exported`` (spans accepted), ``export.otlp.failed``
(batches given up: the pipeline counts their spans as dropped),
``export.otlp.encode_failed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.otlp_encode import OtlpEncoder
from commerce_observe.agent.export.record import SpanRecord

HTTP_DEFAULT = "http://localhost:4318"
GRPC_DEFAULT = "http://localhost:4317"


@dataclass(frozen=True)
class OtlpSettings:
    """Where and how to send, resolved from the ``OTEL_EXPORTER_OTLP_*`` settings."""

    endpoint: str
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict)
    compression: str = "none"
    timeout_s: float = 10.0
    certificate: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None

    @classmethod
    def from_config(cls, config: Any) -> OtlpSettings:
        """The traces-specific setting wins over the general one, as the spec says;
        a general HTTP endpoint is a base URL that gets ``/v1/traces``."""

        def pick(name: str) -> Any:
            specific = getattr(config, f"otlp_traces_{name}")
            return specific if specific not in (None, ()) else getattr(config, f"otlp_{name}")

        protocol = pick("protocol") or "http/protobuf"
        endpoint = config.otlp_traces_endpoint
        if not endpoint:
            base = config.otlp_endpoint or (GRPC_DEFAULT if protocol == "grpc" else HTTP_DEFAULT)
            endpoint = base if protocol == "grpc" else base.rstrip("/") + "/v1/traces"
        timeout_ms = pick("timeout_ms")
        return cls(
            endpoint=endpoint, protocol=protocol, headers=dict(pick("headers") or ()),
            compression=pick("compression") or "none", timeout_s=(timeout_ms or 10_000) / 1000,
            certificate=pick("certificate"), client_certificate=pick("client_certificate"),
            client_key=pick("client_key"),
        )


class _Sender(Protocol):
    def send(self, body: bytes, count: int) -> bool: ...

    def shutdown(self) -> None: ...


def _http_sender(settings: OtlpSettings) -> _Sender:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    class HttpSender(OTLPSpanExporter):
        """OpenTelemetry's HTTP exporter, sending bytes we encoded (its ``_client``
        posts, compresses and retries; ``export`` would re-encode SDK spans)."""

        def send(self, body: bytes, count: int) -> bool:
            return bool(self._client.export(body).success)

    return HttpSender(
        endpoint=settings.endpoint, certificate_file=settings.certificate,
        client_key_file=settings.client_key, client_certificate_file=settings.client_certificate,
        headers=dict(settings.headers), timeout=settings.timeout_s,
        compression=Compression.Gzip if settings.compression == "gzip" else Compression.NoCompression,
    )


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def _grpc_sender(settings: OtlpSettings) -> _Sender:
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace.export import SpanExportResult

    class GrpcSender(OTLPSpanExporter):
        """OpenTelemetry's gRPC exporter; its ``_translate_data`` hook gets our bytes."""

        def _translate_data(self, data: Any) -> ExportTraceServiceRequest:
            request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(data[0])
            return request

        def _count_data(self, data: Any) -> int:
            return int(data[1])

        def send(self, body: bytes, count: int) -> bool:
            # the mixin hands ``data`` to our two hooks above and nowhere else
            return self._export((body, count)) is SpanExportResult.SUCCESS  # type: ignore[arg-type]

    secure = settings.endpoint.startswith("https://")
    credentials = None
    if secure:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(settings.certificate), private_key=_read(settings.client_key),
            certificate_chain=_read(settings.client_certificate),
        )
    return GrpcSender(
        endpoint=settings.endpoint, insecure=not secure, credentials=credentials,
        headers=tuple((k.lower(), v) for k, v in settings.headers.items()), timeout=settings.timeout_s,
        compression=grpc.Compression.Gzip if settings.compression == "gzip" else grpc.Compression.NoCompression,
    )


class OtlpExporter:
    """Sends :class:`SpanRecord` batches as OTLP over HTTP/protobuf or gRPC."""

    name = "otlp"

    def __init__(self, settings: OtlpSettings) -> None:
        self.settings = settings
        self._encoder = OtlpEncoder()
        self._sender = self._new_sender()
        after_fork_in_child(self._after_fork_in_child)

    def _new_sender(self) -> _Sender:
        return _grpc_sender(self.settings) if self.settings.protocol == "grpc" else _http_sender(self.settings)

    def _after_fork_in_child(self) -> None:
        """A child must not share the parent's connection pool or gRPC channel."""
        try:
            self._sender = self._new_sender()
        except Exception as exc:  # keep the parent's sender rather than fail the fork
            stats.record_failure("export.otlp.error", "OTLP sender after fork failed: %r", exc)

    def encode(self, batch: Sequence[SpanRecord]) -> bytes:
        return self._encoder.encode(batch)

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        if not batch:
            return True
        try:
            body = self._encoder.encode(batch)
        except Exception as exc:
            stats.swallow("export.otlp.encode_failed", "OTLP encoding failed: %r", exc)
            return False
        try:
            ok = self._sender.send(body, len(batch))
        except Exception as exc:  # OpenTelemetry's exporters should not raise; count it if they do
            stats.record_failure("export.otlp.error", "OTLP export raised: %r", exc)
            ok = False
        if ok:
            stats.incr("export.otlp.exported", len(batch))
            return True
        stats.record_failure("export.otlp.failed", "OTLP export to %s failed; %d spans dropped",
                             self.settings.endpoint, len(batch))
        return False

    def shutdown(self) -> None:
        try:
            self._sender.shutdown()
        except Exception as exc:
            stats.record_failure("export.otlp.error", "OTLP exporter shutdown failed: %r", exc)

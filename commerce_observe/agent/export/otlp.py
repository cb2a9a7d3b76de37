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
compression, retryable status codes, reconnection). How they are fed our bytes
(their internals, in a checked version range, with public fallbacks) is in
``agent/_compat/otlp_exporters.py``.

Counters: ``export.otlp.exported`` (spans accepted), ``export.otlp.failed``
(batches given up: the pipeline counts their spans as dropped and says why in one
warning, from :attr:`OtlpExporter.failure`: a CA file that does not verify the
receiver reads "TLS certificate verification failed: ...; CA file ..."),
``export.otlp.encode_failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent._compat.otlp_exporters import Sender, grpc_sender, http_sender
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


class OtlpExporter:
    """Sends :class:`SpanRecord` batches as OTLP over HTTP/protobuf or gRPC."""

    name = "otlp"

    def __init__(self, settings: OtlpSettings, *, encoder: str = "lean") -> None:
        if encoder not in ("lean", "protobuf"):
            raise ValueError("encoder must be 'lean' or 'protobuf'")
        self.settings = settings
        #: why the last batch was given up (for the pipeline's warning), else None
        self.failure: str | None = None
        # ``lean``: our byte writer; ``protobuf``: the official message classes (otlp_pb.py)
        self._encode: Callable[[Sequence[SpanRecord]], bytes] = OtlpEncoder().encode
        if encoder == "protobuf":
            from commerce_observe.agent.export import otlp_pb

            self._encode = otlp_pb.encode
        self._sender: Sender = self._new_sender()
        after_fork_in_child(self._after_fork_in_child)

    def _new_sender(self) -> Sender:
        return grpc_sender(self.settings) if self.settings.protocol == "grpc" else http_sender(self.settings)

    def _after_fork_in_child(self) -> None:
        """A child must not share the parent's connection pool or gRPC channel."""
        try:
            self._sender = self._new_sender()
        except Exception as exc:  # keep the parent's sender rather than fail the fork
            stats.record_failure("export.otlp.error", "OTLP sender after fork failed: %r", exc)

    def encode(self, batch: Sequence[SpanRecord]) -> bytes:
        return self._encode(batch)

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        if not batch:
            return True
        self.failure = None
        try:
            body = self._encode(batch)
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
        stats.incr("export.otlp.failed")
        # the pipeline's one warning for the dropped batch carries this
        self.failure = f"sending to {self.settings.endpoint} failed: {self._reason()}"
        return False

    def _reason(self) -> str:
        """Why the last send failed; a TLS verification failure names the CA file in use."""
        reason = getattr(self._sender, "failure", None) or "no reason given"
        if reason.startswith("TLS certificate verification failed"):
            ca = self.settings.certificate
            reason += (f"; CA file {ca} (OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE)" if ca
                       else "; no CA file set (OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE)")
        return reason

    def shutdown(self) -> None:
        try:
            self._sender.shutdown()
        except Exception as exc:
            stats.record_failure("export.otlp.error", "OTLP exporter shutdown failed: %r", exc)

"""OpenTelemetry's OTLP exporters, sending bytes we encoded ourselves.

Their public ``export(spans)`` takes SDK ``ReadableSpan`` objects and encodes them
itself, at several times the CPU of our encoder (``export/otlp_encode.py``). Two
internals let them send our bytes instead, each checked against a version range:

* HTTP (``opentelemetry-exporter-otlp-proto-http`` 1.45.x): the exporter's ``_client``
  (``_OTLPHTTPClient.export(bytes)``: TLS files, headers, compression, retries with
  back-off and ``Retry-After`` within the timeout), on OpenTelemetry's own urllib3
  transport (``_transport``; half the CPU per request of its default, requests);
* gRPC (``opentelemetry-exporter-otlp-proto-grpc`` 1.45.x): the exporter mixin's
  ``_translate_data``/``_count_data`` hooks and its ``_export`` loop (channel,
  credentials, compression, retryable codes, reconnection).

Outside those ranges the public fallbacks send the same bytes themselves: an HTTP
POST with the standard library (same TLS files, headers, gzip; one retry), or a raw
gRPC unary call on a channel of our own. ``install()`` says once which one is used
(``compat.fallback.<distribution>``).
"""

from __future__ import annotations

import gzip
import http.client
import ssl
import urllib.error
import urllib.request
from typing import Any, Protocol

from commerce_observe.agent._compat.versions import Range

HTTP = Range("opentelemetry-exporter-otlp-proto-http", (1, 45), (1, 46))
GRPC = Range("opentelemetry-exporter-otlp-proto-grpc", (1, 45), (1, 46))
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Sender(Protocol):
    def send(self, body: bytes, count: int) -> bool: ...

    def shutdown(self) -> None: ...


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def http_sender(s: Any) -> Sender:
    """A sender for the OTLP/HTTP settings ``s`` (``export.otlp.OtlpSettings``)."""
    if not HTTP.check():
        return _UrllibSender(s)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    class HttpSender(OTLPSpanExporter):
        def send(self, body: bytes, count: int) -> bool:
            return bool(self._client.export(body).success)

    compression = Compression.Gzip if s.compression == "gzip" else Compression.NoCompression
    try:  # its urllib3 transport costs half the CPU per request of the default (requests)
        from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
    except ImportError:
        return HttpSender(endpoint=s.endpoint, certificate_file=s.certificate, client_key_file=s.client_key,
                          client_certificate_file=s.client_certificate, headers=dict(s.headers),
                          timeout=s.timeout_s, compression=compression)
    cert = (s.client_certificate, s.client_key) if s.client_certificate and s.client_key else s.client_certificate
    transport = Urllib3HTTPTransport(verify=s.certificate or True, cert=cert)
    return HttpSender(endpoint=s.endpoint, headers=dict(s.headers), timeout=s.timeout_s, compression=compression,
                      _transport=transport)


class _UrllibSender:
    """The public fallback for HTTP: one POST, retried once on a connection error or
    a 429/502/503/504, within the timeout."""

    def __init__(self, s: Any) -> None:
        self._s = s
        self._context: ssl.SSLContext | None = None
        if s.endpoint.startswith("https://"):
            self._context = ssl.create_default_context(cafile=s.certificate)
            if s.client_certificate:
                self._context.load_cert_chain(s.client_certificate, s.client_key)

    def send(self, body: bytes, count: int) -> bool:
        headers = {"Content-Type": "application/x-protobuf", **dict(self._s.headers)}
        if self._s.compression == "gzip":
            body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
        for _ in range(2):
            request = urllib.request.Request(self._s.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._s.timeout_s, context=self._context) as resp:
                    resp.read()
                    return bool(200 <= resp.status < 300)
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 502, 503, 504):
                    return False
            except (OSError, http.client.HTTPException):
                pass
        return False

    def shutdown(self) -> None:
        pass


def grpc_sender(s: Any) -> Sender:
    """A sender for the OTLP/gRPC settings ``s``."""
    import grpc

    secure = s.endpoint.startswith("https://")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(s.certificate), private_key=_read(s.client_key),
        certificate_chain=_read(s.client_certificate)) if secure else None
    headers = tuple((k.lower(), v) for k, v in s.headers.items())
    compression = grpc.Compression.Gzip if s.compression == "gzip" else grpc.Compression.NoCompression
    if not GRPC.check():
        return _RawGrpcSender(s, credentials, headers, compression)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace.export import SpanExportResult

    class GrpcSender(OTLPSpanExporter):
        def _translate_data(self, data: Any) -> ExportTraceServiceRequest:
            request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(data[0])
            return request

        def _count_data(self, data: Any) -> int:
            return int(data[1])

        def send(self, body: bytes, count: int) -> bool:
            # the mixin hands ``data`` to the two hooks above and nowhere else
            return self._export((body, count)) is SpanExportResult.SUCCESS  # type: ignore[arg-type]

    return GrpcSender(endpoint=s.endpoint, insecure=not secure, credentials=credentials, headers=headers,
                      timeout=s.timeout_s, compression=compression)


class _RawGrpcSender:
    """The public fallback for gRPC: the Export call with our bytes as the request."""

    def __init__(self, s: Any, credentials: Any, headers: tuple[tuple[str, str], ...], compression: Any) -> None:
        import grpc

        target = s.endpoint.split("://", 1)[-1].rstrip("/")
        self._channel = (grpc.secure_channel(target, credentials, compression=compression) if credentials
                         else grpc.insecure_channel(target, compression=compression))
        self._call = self._channel.unary_unary(EXPORT_METHOD)  # bytes in, bytes out
        self._headers, self._timeout = headers, s.timeout_s

    def send(self, body: bytes, count: int) -> bool:
        import grpc

        try:
            self._call(body, metadata=self._headers, timeout=self._timeout)
            return True
        except grpc.RpcError:
            return False

    def shutdown(self) -> None:
        self._channel.close()

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

A failed send leaves one line's worth of reason in ``Sender.failure`` (a wrong CA file
reads "TLS certificate verification failed: ..."), for the exporter's one warning:
what OpenTelemetry's exporters log on our sending thread meanwhile (a warning per
retry, then an error) is kept for that reason instead of being emitted, so a broken
setting costs one clear line, not a burst. Their logging on any other thread (an
application's own OTLP exporter) is left alone.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from commerce_observe.agent._compat.versions import Range

HTTP = Range("opentelemetry-exporter-otlp-proto-http", (1, 45), (1, 46))
GRPC = Range("opentelemetry-exporter-otlp-proto-grpc", (1, 45), (1, 46))
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


#: The loggers OpenTelemetry's OTLP trace exporters (and their shared HTTP client) write to.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.common.http", "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)
_VERIFY_FAILED = re.compile(r"certificate[ _]verify[ _]failed", re.IGNORECASE)
#: what OpenSSL says after it: "...verify failed: unable to get local issuer certificate (_ssl.c:..."
_DETAIL = re.compile(r"[\]\s:]*([^()\[\]'\":\n]*)")
_MAX_REASON = 300


class Sender(Protocol):
    #: why the last send failed, in a few words (None after a success)
    failure: str | None

    def send(self, body: bytes, count: int) -> bool: ...

    def shutdown(self) -> None: ...


class _Held(logging.Filter):
    """Holds back what the exporter loggers log on a thread inside :func:`held_logs`."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        held: list[str] | None = getattr(self._local, "held", None)
        if held is None:
            return True
        held.append(record.getMessage())
        return False

    @contextmanager
    def holding(self) -> Iterator[list[str]]:
        held: list[str] = []
        self._local.held = held
        try:
            yield held
        finally:
            self._local.held = None


_held = _Held()
for _name in EXPORTER_LOGGERS:
    logging.getLogger(_name).addFilter(_held)


def describe(messages: list[str], error: object = None) -> str:
    """A few words on why a send failed: a TLS verification failure said as such,
    else the last thing the exporter said (or the error it returned)."""
    texts = ([str(error)] if error is not None else []) + messages
    for text in texts:
        hits = list(_VERIFY_FAILED.finditer(text))
        if hits:
            found = _DETAIL.match(text, hits[-1].end())
            detail = found.group(1).strip() if found else ""
            return "TLS certificate verification failed" + (f": {detail}" if detail else "")
    said = texts[0] if error is not None else (texts[-1] if texts else "no answer")
    return said if len(said) <= _MAX_REASON else said[:_MAX_REASON] + "..."


def _sending(send: Callable[[], tuple[bool, object]], sender: Any) -> bool:
    """Run one send with the exporters' log lines held back; note the reason on failure."""
    with _held.holding() as messages:
        ok, error = send()
    sender.failure = None if ok else describe(messages, error)
    return ok


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
        failure: str | None = None

        def send(self, body: bytes, count: int) -> bool:
            def once() -> tuple[bool, object]:
                result = self._client.export(body)
                status = getattr(result, "status_code", None)
                error = f"HTTP {status} {result.reason or ''}".strip() if status else getattr(result, "error", None)
                return bool(result.success), error

            return _sending(once, self)

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
        self.failure: str | None = None
        self._context: ssl.SSLContext | None = None
        if s.endpoint.startswith("https://"):
            self._context = ssl.create_default_context(cafile=s.certificate)
            if s.client_certificate:
                self._context.load_cert_chain(s.client_certificate, s.client_key)

    def send(self, body: bytes, count: int) -> bool:
        headers = {"Content-Type": "application/x-protobuf", **dict(self._s.headers)}
        if self._s.compression == "gzip":
            body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
        error: object = None
        for _ in range(2):
            request = urllib.request.Request(self._s.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._s.timeout_s, context=self._context) as resp:
                    resp.read()
                    ok = bool(200 <= resp.status < 300)
                    self.failure = None if ok else f"HTTP {resp.status}"
                    return ok
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
                if exc.code not in (429, 502, 503, 504):
                    break
            except (OSError, http.client.HTTPException) as exc:
                error = exc
        self.failure = describe([], error)
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
        failure: str | None = None

        def _translate_data(self, data: Any) -> ExportTraceServiceRequest:
            request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(data[0])
            return request

        def _count_data(self, data: Any) -> int:
            return int(data[1])

        def send(self, body: bytes, count: int) -> bool:
            # the mixin hands ``data`` to the two hooks above and nowhere else; it says
            # why it failed only in its log lines (held back and described)
            return _sending(lambda: (self._export((body, count)) is SpanExportResult.SUCCESS, None),  # type: ignore[arg-type]
                            self)

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
        self.failure: str | None = None

    def send(self, body: bytes, count: int) -> bool:
        import grpc

        try:
            self._call(body, metadata=self._headers, timeout=self._timeout)
            self.failure = None
            return True
        except grpc.RpcError as exc:
            details = getattr(exc, "details", None)
            self.failure = describe([], details() if callable(details) else exc)
            return False

    def shutdown(self) -> None:
        self._channel.close()

"""elastic-apm's own intake transport, driven without an ``elasticapm.Client``
and without its event queue.

Why not a Client: constructing one registers a process-wide singleton (clobbering
the application's own Elastic agent if it has one, and ``close()`` clears it),
hooks ``atexit`` and the logging record factory, and starts metrics and central
config threads. The transport (``elasticapm.transport.http.Transport``) is the
part we want for delivery: its ``send()`` POSTs to ``/intake/v2/events`` through
urllib3 pooling with its TLS options, the ``Authorization`` header (``ApiKey``
over ``Bearer``) and the NDJSON/gzip content headers, and its ``TransportState``
gives the back-off after failures. It only reads a handful of attributes from its
client; :class:`_TransportOwner` provides exactly those and nothing else.

What we do not use is its per-event pipeline (``queue()`` -> its thread -> one
JSON dump per event through its encoder -> gzip level 5 -> flush handshake):
the exporter builds one NDJSON body per batch itself and calls
:meth:`IntakeTransport.post` (which compresses it once, gzip level 1) from the
pipeline's export worker, which is already off the application thread. So the
transport's thread is never started. The metricset exporter
(``monitoring.apm_metrics``) posts through the same transport.

In a forked child the transport drops its pool (``os.register_at_fork``): no
pooled connection is shared with the parent.

:meth:`IntakeTransport.post` reports each request's outcome through the
transport's own result hooks (so the back-off state stays elastic-apm's) and
reports failures through selfstats (rate-limited) instead of elastic-apm's
one error log line per failed request.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import zlib
from dataclasses import dataclass
from typing import Any

import elasticapm
from elasticapm.conf import constants
from elasticapm.transport.http import Transport

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats

SEND_FAILED = "export.elastic_apm.send_failed"
#: gzip level: 1 is several times cheaper than elastic-apm's 5 and NDJSON of
#: repetitive keys still shrinks about tenfold.
GZIP_LEVEL = 1


def gzip_body(body: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    return compressor.compress(body) + compressor.flush()


@dataclass(frozen=True)
class _TransportConfig:
    """The settings elastic-apm's transport reads from ``client.config``."""

    server_url: str
    secret_token: str | None
    api_key: str | None
    #: Read only by the transport's own queue and thread, which are never used.
    api_request_time: datetime.timedelta = datetime.timedelta(seconds=10)
    api_request_size: int = 768 * 1024
    use_certifi: bool = True
    #: No ``GET /`` server-info probe: we do not gate anything on the server version.
    skip_server_info: bool = True


class _TransportOwner:
    """Stands in for ``elasticapm.Client`` towards the transport, and only that."""

    def __init__(self, config: _TransportConfig) -> None:
        self.config = config
        self.server_version: tuple[Any, ...] | None = None


class IntakeTransport(Transport):
    """The elastic-apm HTTP transport, posting ready-made bodies."""

    def handle_transport_fail(self, exception: BaseException | None = None, **kwargs: Any) -> None:
        # state.set_fail() is what the base hook does besides logging every failure.
        self.state.set_fail()
        stats.record_failure(SEND_FAILED, "Elastic APM intake request failed: %s", exception)

    # Typed doors to the untyped base class, so the exporter stays mypy --strict.

    def in_backoff(self) -> bool:
        """True while elastic-apm's back-off says not to try after recent failures."""
        return not self.state.should_try()  # type: ignore[no-untyped-call]

    def post(self, body: bytes) -> bool:
        """POST one NDJSON body (metadata line first), gzip-compressed here, with
        elastic-apm's ``send()``: its pool, TLS settings, auth and content headers.
        ``True`` on a 2xx/3xx."""
        try:
            self.send(gzip_body(body))  # type: ignore[no-untyped-call]
        except Exception as exc:  # TransportException: connection, timeout, HTTP >= 400
            self.handle_transport_fail(exc)
            return False
        self.handle_transport_success()
        return True

    def stop(self) -> None:
        """Close pooled connections; the transport's own thread is never started."""
        self._closed = True
        pool = self._http
        self._http = None
        if pool is not None:
            pool.clear()


def make_transport(
    server_url: str,
    *,
    secret_token: str | None,
    api_key: str | None,
    verify_server_cert: bool,
    timeout_s: float,
) -> IntakeTransport:
    """A transport posting to ``<server_url>/intake/v2/events``; ``timeout_s`` is the
    HTTP timeout of each request."""
    base = server_url if server_url.endswith("/") else server_url + "/"
    config = _TransportConfig(server_url=server_url, secret_token=secret_token, api_key=api_key)
    transport = IntakeTransport(
        url=base + constants.EVENTS_API_PATH,
        client=_TransportOwner(config),
        verify_server_cert=verify_server_cert,
        headers={"User-Agent": f"commerce-observe/{_own_version()} apm-agent-python/{elasticapm.VERSION}"},
        timeout=timeout_s,
        processors=[],
    )
    after_fork_in_child(transport.handle_fork)  # elastic-apm's own: drops the urllib3 PoolManager
    return transport


def _own_version() -> str:
    try:
        return importlib.metadata.version("commerce-observe")
    except importlib.metadata.PackageNotFoundError:
        return "0"

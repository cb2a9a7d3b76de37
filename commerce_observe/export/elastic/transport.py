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
the exporter builds and compresses one body per batch itself and calls
:meth:`IntakeTransport.post` from the pipeline's export worker, which is already
off the application thread. So the transport's thread is never started.

:meth:`IntakeTransport.post` reports each request's outcome through the
transport's own result hooks (so the back-off state stays elastic-apm's) and
reports failures through selfstats (rate-limited) instead of elastic-apm's
one error log line per failed request.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from elasticapm.conf import constants
from elasticapm.transport.http import Transport

from commerce_observe._internal.selfstats import stats

SEND_FAILED = "export.elastic_apm.send_failed"


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
        """POST one gzip NDJSON body (metadata line first) with elastic-apm's ``send()``:
        its pool, TLS settings, auth and content headers. ``True`` on a 2xx/3xx."""
        try:
            self.send(body)  # type: ignore[no-untyped-call]
        except Exception as exc:  # TransportException: connection, timeout, HTTP >= 400
            self.handle_transport_fail(exc)
            return False
        self.handle_transport_success()
        return True

    def reset_after_fork(self) -> None:
        """In a forked child: no pooled connection may be shared with the parent."""
        self.handle_fork()  # elastic-apm's own: drops the urllib3 PoolManager

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
    user_agent: str,
) -> IntakeTransport:
    """A transport posting to ``<server_url>/intake/v2/events``; ``timeout_s`` is the
    HTTP timeout of each request."""
    base = server_url if server_url.endswith("/") else server_url + "/"
    config = _TransportConfig(server_url=server_url, secret_token=secret_token, api_key=api_key)
    return IntakeTransport(
        url=base + constants.EVENTS_API_PATH,
        client=_TransportOwner(config),
        verify_server_cert=verify_server_cert,
        headers={"User-Agent": user_agent},
        timeout=timeout_s,
        processors=[],
    )

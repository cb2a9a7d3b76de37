"""elastic-apm's own intake transport, driven without an ``elasticapm.Client``.

Why not a Client: constructing one registers a process-wide singleton (clobbering
the application's own Elastic agent if it has one, and ``close()`` clears it),
hooks ``atexit`` and the logging record factory, and starts metrics and central
config threads. The transport (``elasticapm.transport.http.Transport``) is the
part we want: NDJSON framing with the metadata line first, gzip, its bounded event
queue and background thread, urllib3 pooling, TLS options, the ``Authorization``
header (``ApiKey`` over ``Bearer``) and back-off after failures. It only reads a
handful of attributes from its client; :class:`_TransportOwner` provides exactly
those and nothing else.

:class:`IntakeTransport` overrides the transport's two public result hooks to
count outcomes, which is how :class:`ElasticApmExporter` learns whether a flushed
batch arrived, and to report failures through selfstats (rate-limited) instead of
elastic-apm's one error log line per failed request.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elasticapm.conf import constants
from elasticapm.transport.http import Transport

from commerce_observe._internal.selfstats import stats

SEND_FAILED = "export.elastic_apm.send_failed"
#: Extra wait beyond the HTTP timeout before a flush counts as timed out.
FLUSH_GRACE_S = 1.0


@dataclass(frozen=True)
class _TransportConfig:
    """The settings elastic-apm's transport reads from ``client.config``."""

    server_url: str
    secret_token: str | None
    api_key: str | None
    api_request_time: datetime.timedelta
    api_request_size: int
    use_certifi: bool = True
    #: No ``GET /`` server-info probe: we do not gate anything on the server version.
    skip_server_info: bool = True


class _TransportOwner:
    """Stands in for ``elasticapm.Client`` towards the transport, and only that."""

    def __init__(self, config: _TransportConfig, metadata: Callable[[], dict[str, Any]]) -> None:
        self.config = config
        self.server_version: tuple[Any, ...] | None = None
        self._metadata = metadata

    def build_metadata(self) -> dict[str, Any]:
        # Called by the transport thread at (re)start, so a forked child reports its own pid.
        return self._metadata()


class IntakeTransport(Transport):
    """The elastic-apm HTTP transport, counting request outcomes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outcome_lock = threading.Lock()
        self.sent_ok = 0
        self.sent_failed = 0

    def handle_transport_success(self, **kwargs: Any) -> None:
        with self._outcome_lock:
            self.sent_ok += 1
        super().handle_transport_success(**kwargs)

    def handle_transport_fail(self, exception: BaseException | None = None, **kwargs: Any) -> None:
        with self._outcome_lock:
            self.sent_failed += 1
        # state.set_fail() is what the base hook does besides logging every failure.
        self.state.set_fail()
        stats.record_failure(SEND_FAILED, "Elastic APM intake request failed: %s", exception)

    def outcomes(self) -> tuple[int, int]:
        with self._outcome_lock:
            return self.sent_ok, self.sent_failed

    # Typed doors to the untyped base class, so the exporter stays mypy --strict.

    def in_backoff(self) -> bool:
        """True while the transport would drop a flush unsent after recent failures."""
        return not self.state.should_try()  # type: ignore[no-untyped-call]

    def ensure_started(self) -> None:
        """Start the sender thread on first use, and again in a forked child."""
        if not self.is_started():  # type: ignore[no-untyped-call]
            self.start_thread()

    def flush_and_wait(self) -> bool:
        """Send what is queued now; ``False`` if that did not finish in time."""
        try:
            self.flush()  # type: ignore[no-untyped-call]
        except ValueError:  # elastic-apm's "flush timed out"
            return False
        return True

    def stop(self) -> None:
        """Send what is queued, then end the sender thread (no-op if never started)."""
        self.close()  # type: ignore[no-untyped-call]


def make_transport(
    server_url: str,
    *,
    secret_token: str | None,
    api_key: str | None,
    verify_server_cert: bool,
    timeout_s: float,
    user_agent: str,
    metadata: Callable[[], dict[str, Any]],
    max_request_bytes: int = 768 * 1024,
) -> IntakeTransport:
    """A transport posting to ``<server_url>/intake/v2/events``.

    ``api_request_time`` is the transport's periodic flush and also how long its
    ``flush()``/``close()`` wait, so it is tied to ``timeout_s`` (plus a grace for the
    request itself to time out first); the exporter flushes
    explicitly after every batch anyway.
    """
    base = server_url if server_url.endswith("/") else server_url + "/"
    config = _TransportConfig(
        server_url=server_url,
        secret_token=secret_token,
        api_key=api_key,
        api_request_time=datetime.timedelta(seconds=timeout_s + FLUSH_GRACE_S),
        api_request_size=max_request_bytes,
    )
    return IntakeTransport(
        url=base + constants.EVENTS_API_PATH,
        client=_TransportOwner(config, metadata),
        verify_server_cert=verify_server_cert,
        headers={"User-Agent": user_agent},
        timeout=timeout_s,
        processors=[],
    )

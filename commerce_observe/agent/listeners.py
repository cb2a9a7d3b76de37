"""The products that listen to the hub, attached from settings.

Integrations only report facts; here the runtime decides, from the configuration,
which listeners hear them: the audit trail (from the start of the process; its sink
is created when it is chosen, so a service without messaging gets no audit file),
event shipping to the monitoring
store or the Kafka events topic, and live commerce metrics on a Prometheus
endpoint. Each returns a detach callable; the runtime calls them at shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from commerce_observe._internal.selfstats import stats

if TYPE_CHECKING:
    from commerce_observe.agent.runtime import Runtime

Detach = Callable[[], None]
LISTENER_FAILED = "runtime.listener_failed"


def audit_trail(runtime: Runtime) -> Detach | None:
    """The audit trail, from the start of the process: a consumer that dies within a
    second of starting still leaves its records, and the spool of earlier processes
    is replayed. With sink ``auto`` the sink itself is chosen by the first message."""
    if runtime.config.audit_sink == "none":
        return None
    from commerce_observe.agent.audit import attach

    attachment = attach(runtime)
    writer = attachment.writer
    if writer is not None:
        runtime.flushers.append(writer.flush)

    def detach() -> None:
        if writer is not None and writer.flush in runtime.flushers:  # bound methods of one writer compare equal
            runtime.flushers.remove(writer.flush)
        attachment()

    return detach


def event_shipping(runtime: Runtime) -> Detach | None:
    config = runtime.config
    if not (config.event_store or config.events_bootstrap):
        return None
    from commerce_observe.agent.reporting import attach
    from commerce_observe.agent.startup import LazyStore

    # Opened by the reporting thread at the first write: install() never waits for a store.
    store = LazyStore(config.event_store) if config.event_store and not config.events_bootstrap else None
    attachment = attach(runtime, store=store, bootstrap=config.events_bootstrap)
    runtime.destinations.append(
        f"commerce events to Kafka topic at {config.events_bootstrap}" if config.events_bootstrap
        else f"commerce events to {config.event_store}"
    )
    return attachment


def live_metrics(runtime: Runtime) -> Detach | None:
    port = runtime.config.prometheus_port
    if not port:
        return None
    host = runtime.config.prometheus_host
    from commerce_observe._internal.selfstats import logger, stats
    from commerce_observe.agent.reporting import attach_metrics, prometheus_provider
    from commerce_observe.agent.startup import retry_in_background

    lock = threading.Lock()
    started: list[Callable[[], None]] = []
    closed = threading.Event()

    def attempt() -> bool:
        try:
            provider, server = prometheus_provider(port=port, addr=host, service_name=runtime.config.service_name)
        except OSError as exc:  # the port is taken: retried in the background, never fatal
            stats.incr("startup.prometheus_port_busy")
            if not started and not closed.is_set() and stats.get("startup.prometheus_port_busy") == 1:
                logger.warning("commerce_observe: port %d for Prometheus metrics not available (%s), retrying",
                               port, exc.strerror or exc)
            return False
        _, detach_metrics = attach_metrics(runtime, provider)

        def stop_serving() -> None:
            detach_metrics()
            server.shutdown()
            provider.shutdown()

        with lock:
            if closed.is_set():
                stop_serving()
            else:
                started.append(stop_serving)
        return True

    stop_retrying = retry_in_background("prometheus", attempt)
    runtime.destinations.append(f"commerce metrics at http://{host}:{port}/metrics")

    def detach() -> None:
        stop_retrying()
        with lock:
            closed.set()
            for stop_serving in started:
                stop_serving()
            started.clear()

    return detach


def attach_all(runtime: Runtime) -> list[Detach]:
    """Attach every listener the settings ask for; returns their detach callables.

    A listener that fails to start (an unwritable spool folder, say) is left out and
    counted (``runtime.listener_failed``), and one warning names every one that did
    not start (masked like all our warnings: an error may quote a store URL): tracing
    and the other listeners go on without them."""
    found = []
    failed = []
    for name, listener in (("audit trail", audit_trail), ("event shipping", event_shipping),
                           ("live metrics", live_metrics)):
        try:
            found.append(listener(runtime))
        except Exception as exc:
            stats.incr(LISTENER_FAILED)
            failed.append(f"the {name} did not start: {exc}")
    if failed:
        stats.warn(LISTENER_FAILED, "%s; the rest runs without it", "; ".join(failed))
    return [d for d in found if d is not None]

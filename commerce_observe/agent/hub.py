"""The fact hub: integrations report what happened, products listen.

Kafka/RabbitMQ wrappers and the domain event API *emit* facts (a message was
published or handled, an order was paid); the agent's products *subscribe* to the
fact types they care about: the audit trail (``agent/audit/wiring.py``), event
shipping to a store or the events topic (``agent/reporting/attach.py``), live
Prometheus metrics (``agent/reporting/live_metrics.py``) and the test capture
(``commerce_observe.testing``). Spans are not made from facts: the wrappers start
them through ``agent/messaging`` directly, because a span must exist before the
application's code runs, and facts report what already happened. Anomaly
detection listens nowhere in the process: it runs in the monitor, on the stored
events. A listener that raises is counted (``hub.listener_error``) and never affects
the emitter or the other listeners (in strict mode the error propagates, for tests).

Each agent state owns one hub (``AgentState.hub``) and hands it down; the public
face finds the installed one with :func:`commerce_observe.agent.current.hub`.

Dispatch is by the fact's exact type: a dict lookup and a loop over a tuple, so an
emit with no listener costs next to nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from commerce_observe._internal.selfstats import stats

F = TypeVar("F")
Listener = Callable[[Any], None]


class Hub:
    """Type-keyed publish/subscribe, synchronous, copy-on-write listener tuples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[type, tuple[Listener, ...]] = {}

    def subscribe(self, fact_type: type[F], listener: Callable[[F], None]) -> Callable[[], None]:
        """Call ``listener`` for every emitted fact of ``fact_type``; returns the unsubscribe."""
        with self._lock:
            self._listeners[fact_type] = self._listeners.get(fact_type, ()) + (listener,)

        def unsubscribe() -> None:
            with self._lock:
                current = self._listeners.get(fact_type, ())
                self._listeners[fact_type] = tuple(x for x in current if x is not listener)

        return unsubscribe

    def has_listeners(self, fact_type: type) -> bool:
        return bool(self._listeners.get(fact_type))

    def emit(self, fact: object) -> None:
        for listener in self._listeners.get(type(fact), ()):
            try:
                listener(fact)
            except Exception as exc:
                stats.swallow("hub.listener_error", "listener %r failed on %s: %r", listener, type(fact).__name__, exc)

    def clear(self) -> None:
        with self._lock:
            self._listeners.clear()

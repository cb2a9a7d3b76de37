"""The one owner of the agent's mutable state, handed down from ``install()``.

Everything the agent remembers while it runs lives on one :class:`AgentState`:
the hub facts go through, the service name, the propagation policy
(``OTEL_PROPAGATORS``), the Kafka cluster its clients were first configured with,
the registries of producer endpoints, consumer trackers and deliveries still
open, and the tracer message spans start on. ``install()`` builds it; each
instrumentor receives it when it is enabled (as OpenTelemetry contrib's
instrumentors receive ``tracer_provider=``) and hands it to the messaging and
HTTP code it calls, so nothing below the runtime reads a module global, two
agents can live side by side in one process (tests), and ``shutdown()`` leaves
nothing behind: dropping the state drops all of it.

The public face (``record``, ``handling``, ``defer``) finds the installed state
through :mod:`commerce_observe.agent.current`, the one module global left.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from weakref import WeakKeyDictionary, ref

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent._lightspan import LightTracer, light_tracer_for, still_valid
from commerce_observe.agent.hub import Hub
from commerce_observe.agent.messaging.clusters import KafkaClusters
from commerce_observe.agent.propagation.api import ALL, Policy

if TYPE_CHECKING:
    from commerce_observe.agent.messaging.consumer import Delivery, Tracker
    from commerce_observe.agent.messaging.consumer_attributes import ConsumerConstants
    from commerce_observe.agent.messaging.producer import Endpoint

MESSAGING_TRACER = "commerce_observe.agent.messaging"

V = TypeVar("V")


class ClientMap(Generic[V]):
    """An entry per client object (a producer, a consumer, a channel), held as long as
    the client lives (weakly keyed). Entries are only added, never replaced or removed
    but by the client's death, so the entry found last is answered from a weak reference
    to its client: most processes send through one producer and read from one consumer,
    and a ``WeakKeyDictionary`` lookup builds a weak reference each time."""

    __slots__ = ("_entries", "_last")

    def __init__(self) -> None:
        self._entries: WeakKeyDictionary[Any, V] = WeakKeyDictionary()
        self._last: tuple[ref[Any], V] | None = None

    def get(self, client: Any) -> V | None:
        last = self._last
        if last is not None and last[0]() is client:
            return last[1]
        entry = self._entries.get(client)
        if entry is not None:
            self._last = (ref(client), entry)
        return entry

    def setdefault(self, client: Any, entry: V) -> V:
        """``client``'s entry, ``entry`` if it had none."""
        entry = self._entries.setdefault(client, entry)
        self._last = (ref(client), entry)
        return entry

    def __getitem__(self, client: Any) -> V:
        return self._entries[client]

    def __len__(self) -> int:
        return len(self._entries)


class AgentState:
    """All mutable state of one agent (see the module doc).

    ``tracer_provider``/``pipeline`` None: message spans start on OpenTelemetry's
    global tracer provider, as SDK spans (a state built by hand, in tests).
    """

    __slots__ = ("hub", "service_name", "propagation", "kafka", "endpoints", "trackers", "deliveries",
                 "consumer_constants", "tracer_provider", "pipeline", "tracer", "_light", "_light_for")

    def __init__(self, service_name: str | None = None, *, hub: Hub | None = None, propagation: Policy = ALL,
                 tracer_provider: Any = None, pipeline: Any = None) -> None:
        self.hub = hub if hub is not None else Hub()
        self.service_name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "unknown_service"
        self.propagation = propagation
        self.kafka = KafkaClusters()
        #: Producer client -> its :class:`~commerce_observe.agent.messaging.producer.Endpoint`.
        self.endpoints: ClientMap[Endpoint] = ClientMap()
        #: Consumer (or channel) -> its :class:`~commerce_observe.agent.messaging.consumer.Tracker`.
        self.trackers: ClientMap[Tracker] = ClientMap()
        #: Deliveries still open, by ``id(record)`` (bounded by the consumer module).
        self.deliveries: dict[int, Delivery] = {}
        #: Per (system, destination, group, server): a CONSUMER span's name and shared attributes.
        self.consumer_constants: dict[tuple[str, str, str | None, str | None, int | None], ConsumerConstants] = {}
        self.tracer_provider = tracer_provider
        self.pipeline = pipeline
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self.tracer: trace.Tracer = provider.get_tracer(MESSAGING_TRACER)
        self._light: LightTracer | None = None
        self._light_for = False  # whether ``_light`` was looked for

    def light_tracer(self) -> LightTracer | None:
        """The light tracer message spans take when our pipeline is the only processor
        (found once; None as soon as a processor is added or the tracer disabled)."""
        if not self._light_for:
            self._light = light_tracer_for(self.tracer, self.pipeline) if self.pipeline is not None else None
            self._light_for = True
        light = self._light
        if light is None:
            return None
        return light if still_valid(light) else None

"""One owner of state: two agents live side by side, and shutdown() leaves no module state.

No broker: the messaging layer is driven as the client wrappers drive it, each
agent state handed in explicitly, as the instrumentors are handed theirs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import commerce_observe.agent
from commerce_observe.agent import current
from commerce_observe.agent.instrumentation.registry import KNOWN, load
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.consumer import begin_delivery, delivery_of, kafka_consumer_info, tracker_for
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.agent.messaging.producer import begin_publish, endpoint_for
from commerce_observe.agent.propagation import Format, KafkaHeaders, policy_for
from commerce_observe.agent.state import AgentState
from commerce_observe.testing import capture

FORMATS = Format.W3C | Format.B3_SINGLE | Format.ELASTIC_BINARY


class _Client:
    """Stands for a producer or consumer instance."""


class _Agent:
    """An agent state with its own tracer provider, exporter and fact log."""

    def __init__(self, service: str, propagators: tuple[str, ...] | None) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.state = AgentState(service, propagation=policy_for(propagators), tracer_provider=provider)
        self.facts: list[MessageFact] = []
        self.state.hub.subscribe(MessageFact, self.facts.append)

    def send(self, client: object, servers: str) -> list[tuple[str, bytes]]:
        carrier = KafkaHeaders(None)
        publication = begin_publish(endpoint_for(self.state, client, sc.KAFKA, "svc", servers), "orders", carrier,
                                    FORMATS)
        assert publication is not None
        publication.acked(0, 1)
        return carrier.headers or []

    def receive(self, consumer: object, record: object, headers: list[tuple[str, bytes]], servers: str) -> None:
        group, server = kafka_consumer_info(self.state, "g-" + self.state.service_name, servers)
        delivery = begin_delivery(self.state, record, sc.KAFKA, "orders", KafkaHeaders(headers), partition=0,
                                  offset=1, group=group, server=server)
        assert delivery is not None
        tracker_for(self.state, consumer).add(delivery)


def test_two_agents_side_by_side_share_nothing() -> None:
    a = _Agent("orders-svc", ("tracecontext",))
    b = _Agent("billing-svc", None)
    client, consumer = _Client(), _Client()
    record_a, record_b = object(), object()

    a_headers = a.send(client, "a-broker:9092")
    b_headers = b.send(client, "b-broker:9092")  # the same client object: an endpoint per agent
    a.receive(consumer, record_a, b_headers, "a-broker:9092")
    b.receive(consumer, record_b, a_headers, "b-broker:9092")

    # Propagation policy: each agent writes its own formats.
    trace_names = {"traceparent", "b3", "elasticapmtraceparent"}
    assert {n for n, _ in a_headers} & trace_names == {"traceparent"}
    assert {n for n, _ in b_headers} & trace_names == trace_names
    # Service name: each agent's CloudEvents source.
    assert dict(a_headers)["ce_source"].decode().startswith("/orders-svc/")
    assert dict(b_headers)["ce_source"].decode().startswith("/billing-svc/")
    # Kafka cluster seen, endpoints, trackers and open deliveries: one set each.
    assert (a.state.kafka.bootstrap(), b.state.kafka.bootstrap()) == ("a-broker:9092", "b-broker:9092")
    assert a.state.endpoints[client] is not b.state.endpoints[client]
    assert tracker_for(a.state, consumer) is not tracker_for(b.state, consumer)
    assert delivery_of(a.state, record_a) is not None and delivery_of(a.state, record_b) is None
    assert delivery_of(b.state, record_b) is not None and delivery_of(b.state, record_a) is None
    # Hub and tracer: each agent hears and exports only its own messages.
    assert [f.stage for f in a.facts] == [Stage.PUBLISHED, Stage.ACKED]
    assert [f.stage for f in b.facts] == [Stage.PUBLISHED, Stage.ACKED]
    tracker_for(a.state, consumer).settle()
    tracker_for(b.state, consumer).settle()
    assert [f.stage for f in a.facts][-1] is Stage.HANDLED and [f.stage for f in b.facts][-1] is Stage.HANDLED
    assert a.facts[-1].consumer_group == "g-orders-svc" and b.facts[-1].consumer_group == "g-billing-svc"
    assert [s.name for s in a.exporter.get_finished_spans()] == ["send orders", "process orders"]
    assert [s.name for s in b.exporter.get_finished_spans()] == ["send orders", "process orders"]
    # The consumer of each agent continued the trace the other agent's producer started.
    a_send, a_process = a.exporter.get_finished_spans()
    b_send, b_process = b.exporter.get_finished_spans()
    assert a_process.context.trace_id == b_send.context.trace_id
    assert b_process.context.trace_id == a_send.context.trace_id


def _agent_modules() -> list[ModuleType]:
    """Every agent module that imports here (optional libraries may be missing)."""
    found = []
    for info in pkgutil.walk_packages(commerce_observe.agent.__path__, "commerce_observe.agent."):
        try:
            found.append(importlib.import_module(info.name))
        except ImportError:
            continue
    return found


#: Module-level caches of values derived from their keys alone (the same in every
#: agent, bounded), which an agent may fill and need not empty.
CACHES = {
    ("commerce_observe.agent.messaging.producer", "_TYPE_HEADERS"),  # ce_type header tuple per event type
    ("commerce_observe.agent.instrumentation.confluent_kafka", "_subclasses"),  # traced subclass per client class
}
#: Module globals an agent may rebind: the last second formatted and parsed (time
#: text memos), and the process's bindings, made once and kept (OpenTelemetry's
#: global tracer provider can be set only once: ours is a switch that shutdown
#: unbinds; the atexit hook).
REBOUND = {
    ("commerce_observe.agent.messaging.cloudevents", "_second_cache"),
    ("commerce_observe.agent.messaging.cloudevents", "_parsed_second"),
    ("commerce_observe.agent.runtime", "_proxy"),
    ("commerce_observe.agent.runtime", "_atexit_registered"),
}


def _mutable_globals(modules: list[ModuleType]) -> dict[tuple[str, str], tuple[int, int]]:
    """(module, name) -> (identity, size) of every module-level container."""
    out = {}
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, (dict, list, set, WeakKeyDictionary)) and not name.startswith("__"):
                out[(module.__name__, name)] = (id(value), len(value))
    return out


@pytest.fixture
def agent_modules() -> Iterator[list[ModuleType]]:
    yield _agent_modules()


def test_shutdown_leaves_no_module_state_behind(agent_modules: list[ModuleType]) -> None:
    globals_before = {n: vars(m).copy() for m in agent_modules for n in [m.__name__]}
    containers_before = _mutable_globals(agent_modules)
    client, consumer, record = _Client(), _Client(), object()

    with capture(env={"OTEL_PROPAGATORS": "tracecontext"}, service_name="orders-svc") as cap:
        state = cap.runtime.state
        assert current.state() is state
        carrier = KafkaHeaders(None)
        publication = begin_publish(endpoint_for(state, client, sc.KAFKA, "svc", "a-broker:9092"), "orders", carrier,
                                    FORMATS)
        assert publication is not None
        publication.acked(0, 1)
        group, server = kafka_consumer_info(state, "g1", "a-broker:9092")
        delivery = begin_delivery(state, record, sc.KAFKA, "orders", KafkaHeaders(carrier.headers), group=group,
                                  server=server)
        assert delivery is not None
        tracker_for(state, consumer).add(delivery)
        assert state.kafka.bootstrap() == "a-broker:9092" and state.deliveries and state.endpoints
        enabled: list[Any] = list(cap.runtime.instrumentors)
        assert enabled and all(i.state is state for i in enabled)

    assert current.runtime() is None and current.state() is None
    proxy = importlib.import_module("commerce_observe.agent.runtime")._proxy
    assert proxy is not None and proxy.target is None  # the switch is unbound
    for name in KNOWN:  # no instrumentor keeps the agent's state
        instrumentor = load(name)
        assert instrumentor is not None and instrumentor._state is None  # noqa: SLF001
    changed = []
    for module in agent_modules:
        before = globals_before[module.__name__]
        for name, value in vars(module).items():
            if name in before and before[name] is not value and not name.startswith("__") \
                    and (module.__name__, name) not in REBOUND:
                changed.append(f"{module.__name__}.{name} rebound")
            if name not in before and not isinstance(value, ModuleType):
                changed.append(f"{module.__name__}.{name} added")
    for key, (ident, size) in _mutable_globals(agent_modules).items():
        if key in CACHES:
            continue
        if containers_before.get(key) != (ident, size):
            changed.append(f"{key[0]}.{key[1]}: {containers_before.get(key)} -> {(ident, size)}")
    assert changed == []


#: Who may read the installed runtime: the runtime itself and the calls an
#: application makes with no agent object at hand (the public face).
PUBLIC_FACE = {
    "commerce_observe/agent/runtime.py",
    "commerce_observe/agent/distro.py",  # OpenTelemetry's entry point: installs, then asks what is disabled
    "commerce_observe/agent/events/recorder.py",  # record(), order_paid(), ...
    "commerce_observe/agent/messaging/handling.py",  # handling(record), defer(record)
    "commerce_observe/agent/propagation/api.py",  # extract()/inject() called by an application without a policy
}


READS_THE_RUNTIME = ("from commerce_observe.agent.runtime import", "from commerce_observe.agent import runtime",
                     "from commerce_observe.agent import current", "from commerce_observe.agent.current import",
                     "import commerce_observe.agent.runtime")


def test_nothing_below_the_runtime_reads_it() -> None:
    """Only the public face imports the runtime or the current-runtime global; the
    rest of the agent is handed the state."""
    root = Path(commerce_observe.agent.__file__).resolve().parents[2]
    readers = set()
    for path in sorted((root / "commerce_observe" / "agent").rglob("*.py")):
        text = path.read_text()
        relative = path.relative_to(root).as_posix()
        for line in text.splitlines():
            code = line.strip()
            if code.startswith(READS_THE_RUNTIME):
                if "TYPE_CHECKING" not in text or not _under_type_checking(text, line):
                    readers.add(relative)
    assert readers - {"commerce_observe/agent/current.py"} <= PUBLIC_FACE, sorted(readers - PUBLIC_FACE)


def _under_type_checking(text: str, line: str) -> bool:
    """Whether ``line`` sits in an ``if TYPE_CHECKING:`` block (imports for annotations only)."""
    before = text[: text.index(line)]
    block = before.rsplit("\n\n", 1)[-1]
    return "if TYPE_CHECKING:" in block


def test_last_client_shortcut_keeps_each_client_its_own_entry() -> None:
    """``tracker_for`` / ``cached_endpoint`` remember the last client (a weak reference):
    alternating clients still get their own entries, and a client that is gone is
    not answered for a new one."""
    import gc

    from commerce_observe.agent.messaging.producer import cached_endpoint

    state = AgentState("svc")
    a, b = _Client(), _Client()
    ta, tb = tracker_for(state, a), tracker_for(state, b)
    assert ta is not tb
    for _ in range(2):
        assert tracker_for(state, a) is ta and tracker_for(state, b) is tb
    assert cached_endpoint(state, a) is None
    ea = endpoint_for(state, a, sc.KAFKA, "svc", "a-broker:9092")
    eb = endpoint_for(state, b, sc.KAFKA, "svc", "a-broker:9092")
    for _ in range(2):
        assert cached_endpoint(state, a) is ea and cached_endpoint(state, b) is eb
    assert cached_endpoint(state, a) is ea and tracker_for(state, a) is ta  # a is the last one looked up
    del a, ta, ea
    gc.collect()
    c = _Client()
    assert cached_endpoint(state, c) is None and tracker_for(state, c) is not tb
    assert cached_endpoint(state, b) is eb and tracker_for(state, b) is tb

"""Test helpers shipped to users.

``with capture() as cap:`` installs commerce_observe with an in-memory exporter
and nothing else (the environment is ignored, strict mode on), records every domain
event and messaging fact emitted through the hub, and uninstalls on exit::

    from commerce_observe.testing import capture

    def test_checkout_records_payment():
        with capture() as cap:
            checkout(cart)
        assert [e.type.value for e in cap.events] == ["order.created", "payment.captured"]
        assert cap.spans()[0].attributes["commerce.order.id"] == "ord-1"
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.events.model import DomainEvent
from commerce_observe.agent.export.memory import InMemoryExporter
from commerce_observe.agent.export.record import SpanRecord
from commerce_observe.agent.messaging.facts import MessageFact
from commerce_observe.agent.runtime import Runtime, install, shutdown

__all__ = ["Capture", "InMemoryExporter", "capture", "reset"]


@dataclass
class Capture:
    runtime: Runtime
    exporter: InMemoryExporter
    events: list[DomainEvent] = field(default_factory=list)
    facts: list[MessageFact] = field(default_factory=list)

    def spans(self) -> list[SpanRecord]:
        """Every finished span so far, masked as exporters see them (flushes first)."""
        self.runtime.flush()
        return list(self.exporter.get_finished())

    def span(self, name: str) -> SpanRecord:
        """The one finished span called ``name`` (AssertionError when not exactly one)."""
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}: {[s.name for s in self.spans()]}"
        return found[0]

    def clear(self) -> None:
        self.runtime.flush()
        self.exporter.clear()
        self.events.clear()
        self.facts.clear()


@contextmanager
def capture(*, strict: bool = True, env: dict[str, str] | None = None, **overrides: Any) -> Iterator[Capture]:
    """Install with an in-memory exporter for the duration of the block."""
    shutdown()
    exporter = InMemoryExporter()
    settings = {"COMMERCE_OBSERVE_STRICT": "true" if strict else "false", **(env or {})}
    overrides.setdefault("audit_sink", "none")  # no audit files unless a test asks for them
    runtime = install(exporters=[exporter], env=settings, **overrides)
    assert runtime is not None, "commerce_observe is disabled by the given settings"
    cap = Capture(runtime, exporter)
    runtime.hub.subscribe(DomainEvent, cap.events.append)
    runtime.hub.subscribe(MessageFact, cap.facts.append)
    try:
        yield cap
    finally:
        shutdown()


def reset() -> None:
    """Uninstall and zero the self-observability counters."""
    shutdown()
    stats.reset()

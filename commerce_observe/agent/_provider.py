"""A global tracer provider that can be re-bound.

OpenTelemetry's global provider is set-once. The runtime needs install, shutdown
and install again (tests, reloads, ``fork`` followed by a fresh install), so it
registers this proxy once and swaps the SDK provider behind it. Tracers handed out
earlier (module-level ``trace.get_tracer(__name__)`` in user code) follow the swap;
the cost is one integer comparison per span start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from commerce_observe.agent._compat.otel_api import agnostic_contextmanager
from opentelemetry.util.types import Attributes


class SwitchableTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.target: trace.TracerProvider | None = None
        self.generation = 0

    def bind(self, target: trace.TracerProvider | None) -> None:
        self.target = target
        self.generation += 1

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> trace.Tracer:
        return _SwitchableTracer(self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes))


class _SwitchableTracer(trace.Tracer):
    __slots__ = ("_owner", "_args", "_generation", "_real")

    def __init__(self, owner: SwitchableTracerProvider, args: tuple[Any, ...]) -> None:
        self._owner = owner
        self._args = args
        self._generation = -1
        self._real: trace.Tracer = trace.NoOpTracer()

    def _tracer(self) -> trace.Tracer:
        owner = self._owner
        if self._generation != owner.generation:
            target = owner.target
            self._real = target.get_tracer(*self._args) if target is not None else trace.NoOpTracer()
            self._generation = owner.generation
        return self._real

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._tracer().start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    @agnostic_contextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        with self._tracer().start_as_current_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception, end_on_exit
        ) as span:
            yield span

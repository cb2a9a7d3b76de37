"""The same formats as an OpenTelemetry ``TextMapPropagator``.

Set it with ``opentelemetry.propagate.set_global_textmap(CommercePropagator())``
and OpenTelemetry's own instrumentors (flask, requests, …) extract from any
format and inject all text formats, through exactly the parsing and writing code
our own wrappers use. The OTel getter/setter pair is adapted to our
:class:`~commerce_observe.agent.propagation.carriers.Carrier` protocol; nothing is
parsed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Set as AbstractSet
from typing import Generic, TypeVar

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from . import formats as f
from .api import ALL, BAGGAGE_HEADER, Policy, extract, inject

_C = TypeVar("_C")

_FIELDS = frozenset(
    {
        f.TRACEPARENT,
        f.TRACESTATE,
        f.B3,
        f.B3_TRACE_ID,
        f.B3_SPAN_ID,
        f.B3_PARENT_SPAN_ID,
        f.B3_SAMPLED,
        f.B3_FLAGS,
        f.ELASTIC_TRACEPARENT,
        BAGGAGE_HEADER,
    }
)


class _GetterCarrier(Generic[_C]):
    """Read side: lower-case names through the instrumentor's getter."""

    __slots__ = ("_getter", "_carrier")
    default_formats = f.Format.TEXT

    def __init__(self, getter: Getter[_C], carrier: _C) -> None:
        self._getter = getter
        self._carrier = carrier

    def get(self, name: str) -> object:
        return self._getter.get(self._carrier, name)

    def names(self) -> AbstractSet[str]:
        return frozenset()

    def set(self, name: str, value: str | bytes) -> None:  # pragma: no cover - read-only
        raise TypeError("read-only carrier")


class _SetterCarrier(Generic[_C]):
    """Write side: names already present are read from a mapping carrier, so the
    application's own headers are never overwritten."""

    __slots__ = ("_setter", "_carrier", "default_formats")

    def __init__(self, setter: Setter[_C], carrier: _C, formats: f.Format) -> None:
        self._setter = setter
        self._carrier = carrier
        self.default_formats = formats

    def get(self, name: str) -> object:  # pragma: no cover - write-only
        return None

    def names(self) -> AbstractSet[str]:
        carrier = self._carrier
        if isinstance(carrier, Mapping):
            return frozenset(k.lower() for k in carrier if isinstance(k, str))
        return frozenset()

    def set(self, name: str, value: str | bytes) -> None:
        if isinstance(value, str):
            self._setter.set(self._carrier, name, value)


class CommercePropagator(TextMapPropagator):
    """Extract any of W3C, B3 single, B3 multi, Elastic; inject ``formats``
    (default: all text formats) that ``policy`` (the agent's ``OTEL_PROPAGATORS``) allows."""

    def __init__(self, formats: f.Format = f.Format.TEXT, policy: Policy = ALL) -> None:
        self._formats = formats & f.Format.TEXT
        self._policy = policy

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return extract(_GetterCarrier(getter, carrier), context, self._policy)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        inject(_SetterCarrier(setter, carrier, self._formats), context, policy=self._policy)

    @property
    def fields(self) -> set[str]:
        return set(_FIELDS)


class B3SinglePropagator(CommercePropagator):
    """``OTEL_PROPAGATORS=b3`` through OpenTelemetry's own loading (an ``opentelemetry_propagator``
    entry point): writes the single ``b3`` header, reads every format."""

    def __init__(self) -> None:
        super().__init__(f.Format.B3_SINGLE)


class B3MultiPropagator(CommercePropagator):
    """``OTEL_PROPAGATORS=b3multi``: writes ``X-B3-*``, reads every format."""

    def __init__(self) -> None:
        super().__init__(f.Format.B3_MULTI)


class ElasticPropagator(CommercePropagator):
    """``OTEL_PROPAGATORS=elastic``: writes ``elastic-apm-traceparent``, reads every format."""

    def __init__(self) -> None:
        super().__init__(f.Format.ELASTIC)

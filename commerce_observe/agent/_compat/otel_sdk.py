"""The OpenTelemetry SDK internals the light spans and the converter read.

Checked against opentelemetry-sdk 1.42 to 1.45: ``Tracer._instrumentation_scope``,
``Tracer._span_limits``, ``Tracer._is_enabled()``, the synchronous multi span
processor's ``_span_processors`` tuple, ``ReadableSpan._attributes`` and
``BoundedAttributes``' ``_dict``/``_lock``/``_immutable``. Outside that range every
function here answers with the public path's value (or None, meaning "use the SDK's
own spans"), so a new SDK costs speed, never correctness.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes

from commerce_observe.agent._compat.versions import Range

SUPPORTED = Range("opentelemetry-sdk", (1, 42), (1, 46))


def tracer_internals(tracer: Any) -> tuple[Any, Any, tuple[object, ...]] | None:
    """(instrumentation scope, span limits, span processors) of an enabled SDK tracer,
    or None when they cannot be read safely (the caller then uses the SDK's spans)."""
    if not SUPPORTED.fast:
        return None
    try:
        if not tracer._is_enabled():  # noqa: SLF001
            return None
        processors = getattr(tracer.span_processor, "_span_processors", None)
        if type(processors) is not tuple:
            return None
        return tracer._instrumentation_scope, tracer._span_limits, processors  # noqa: SLF001
    except AttributeError:
        return None


def processors_unchanged(tracer: Any, processors: tuple[object, ...]) -> bool:
    """Whether ``tracer`` still has exactly ``processors`` and is still enabled."""
    try:
        return tracer.span_processor._span_processors is processors and bool(tracer._is_enabled())  # noqa: SLF001
    except AttributeError:
        return False


def plain(attributes: object) -> dict[str, Any]:
    """A plain dict copy of finished SDK attributes, much smaller than
    ``BoundedAttributes``. After ``end()`` the SDK marks them immutable, so reading
    the inner dict without its lock is safe; anything unexpected is copied as a mapping."""
    if SUPPORTED.fast:
        inner = getattr(attributes, "_dict", None)
        if type(inner) is dict:
            return inner.copy()
    return dict(attributes) if isinstance(attributes, Mapping) else {}


def plain_attributes(span: Any) -> dict[str, Any]:
    """:func:`plain` of a finished span's attributes (the public property wraps them)."""
    return plain(getattr(span, "_attributes", None) if SUPPORTED.fast else span.attributes)


def add_to_bounded(span: Any, attributes: Mapping[str, Any]) -> bool:
    """Add valid primitive ``attributes`` straight into a live SDK span's attribute
    dict under its lock; False when that is not possible (call ``set_attributes``)."""
    if not SUPPORTED.fast:
        return False
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is not BoundedAttributes or bounded.max_value_len is not None or bounded._immutable:  # noqa: SLF001
        return False
    inner = bounded._dict  # noqa: SLF001
    maxlen = bounded.maxlen
    if type(inner) is not dict or (maxlen is not None and len(inner) + len(attributes) > maxlen):
        return False
    with bounded._lock:  # noqa: SLF001
        inner.update(attributes)
    return True

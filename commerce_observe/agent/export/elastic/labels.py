"""Turn OpenTelemetry attribute keys and values into what Elastic APM accepts.

APM Server stores labels as ``labels.<key>`` in Elasticsearch. A dot in the key
would create an object path, and ``*`` and ``"`` break Kibana queries, so Elastic's
agents replace the three of them with ``_`` (``commerce.order.id`` becomes
``commerce_order_id``). Label values may only be strings (at most 1024
characters: the keyword limit), numbers or booleans; attribute arrays are joined
into one string. Non-finite floats have no JSON form, so they become strings.

Span attributes go out as ``otel.attributes`` (``mapping.attributes_json``,
through :func:`otel_value`); labels are written for metadata, errors and
metricsets. Keys repeat, so sanitised keys are cached in a plain dict (bounded;
a dict lookup is cheaper than an ``lru_cache`` call).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry.util.types import AttributeValue

#: APM Server's keyword limit: longer strings are cut server side anyway.
KEYWORD_MAX = 1024

LabelValue = str | bool | int | float
JsonScalar = str | bool | int | float

_BAD_KEY_CHARS = str.maketrans({".": "_", "*": "_", '"': "_"})


#: Sanitised keys by raw key. Attribute keys come from code, so the set is small;
#: the bound only guards against keys built from data.
_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_MAX = 4096


def sanitize_key(key: str) -> str:
    """``commerce.order.id`` -> ``commerce_order_id``; an empty key becomes ``_``."""
    clean = _KEY_CACHE.get(key)
    if clean is None:
        clean = key.translate(_BAD_KEY_CHARS) or "_"
        if len(_KEY_CACHE) < _KEY_CACHE_MAX:
            _KEY_CACHE[key] = clean
    return clean


def truncate(text: str, limit: int = KEYWORD_MAX) -> str:
    return text if len(text) <= limit else text[:limit]


def _scalar(value: object) -> JsonScalar:
    """One value as a JSON-safe scalar: finite numbers, text cut to the keyword limit."""
    if isinstance(value, str):
        return truncate(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return truncate(value.decode("utf-8", "replace"))
    return truncate(str(value))


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, bool, int, float, bytes)) or not isinstance(value, Iterable)


def label_value(value: AttributeValue) -> LabelValue:
    """An attribute value as a label value: a scalar, arrays joined with commas.

    (OpenTelemetry >= 1.39 also allows bytes, maps and nesting: these become text.)
    """
    if _is_scalar(value):
        return _scalar(value)
    if isinstance(value, Mapping):
        return truncate(str(dict(value)))
    assert isinstance(value, Iterable)
    return truncate(",".join(str(_scalar(v)) if _is_scalar(v) else str(v) for v in value))


def otel_value(value: AttributeValue) -> JsonScalar | list[JsonScalar]:
    """An attribute value for ``otel.attributes``: flat arrays stay arrays (APM Server reads them)."""
    if _is_scalar(value) or isinstance(value, Mapping):
        return label_value(value)
    assert isinstance(value, Iterable)
    return [_scalar(v) for v in value]


def labels_from(attributes: Mapping[str, AttributeValue]) -> dict[str, LabelValue]:
    """``context.tags`` / metadata ``labels`` from attributes; a later colliding key wins."""
    return {sanitize_key(k): label_value(v) for k, v in attributes.items() if v is not None}


def first_str(attributes: Mapping[str, AttributeValue], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` present as a non-empty string (old and new OTel names)."""
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def first_int(attributes: Mapping[str, AttributeValue], keys: Sequence[str]) -> int | None:
    """The first of ``keys`` present as an integer (booleans excluded)."""
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None

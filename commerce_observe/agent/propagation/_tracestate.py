"""W3C ``tracestate`` parsing without log noise, with a small cache.

OpenTelemetry's ``TraceState.from_header`` logs a warning for every malformed
member; on a consumer that would be one log line per bad message. We validate
here (the W3C grammar: at most 32 members, key and value character sets and
lengths, no duplicate keys), count a rejected header once
(``propagation.invalid_tracestate``) and then build the ``TraceState`` from
members already known to be valid.

Producers in one deployment send a handful of distinct tracestate strings, so the
parsed (immutable) ``TraceState`` objects are cached by text; the cache is
bounded and simply cleared when full.
"""

from __future__ import annotations

import re
from typing import Final

from opentelemetry.trace import TraceState

from commerce_observe._internal.selfstats import stats

from ._values import INVALID_TRACESTATE, MAX_TRACESTATE_LEN, OVERSIZED

_KEY: Final = r"(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
_VALUE: Final = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER: Final = re.compile(rf"[ \t]*({_KEY})=({_VALUE})[ \t]*")
_MAX_MEMBERS: Final = 32
_CACHE_MAX: Final = 256

EMPTY: Final = TraceState()
_cache: dict[str, TraceState] = {}


def _text(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, (list, tuple)):
        # HTTP may split tracestate over several header lines: they join with ",".
        parts = [_text(item) for item in raw]
        return ",".join(p for p in parts if p)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            return bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            stats.incr(INVALID_TRACESTATE)
            return None
    if isinstance(raw, str):
        return raw
    stats.incr(INVALID_TRACESTATE)
    return None


def parse_tracestate(raw: object) -> TraceState:
    """Return the ``TraceState`` for a header value, ``EMPTY`` when absent or invalid."""
    text = _text(raw)
    if not text:
        return EMPTY
    cached = _cache.get(text)
    if cached is not None:
        return cached
    if len(text) > MAX_TRACESTATE_LEN:
        stats.incr(OVERSIZED)
        return EMPTY
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for member in text.split(","):
        if not member.strip(" \t"):
            continue  # empty members are allowed and ignored
        m = _MEMBER.fullmatch(member)
        if m is None or m.group(1) in seen or len(pairs) == _MAX_MEMBERS:
            stats.incr(INVALID_TRACESTATE)
            return EMPTY
        seen.add(m.group(1))
        pairs.append((m.group(1), m.group(2)))
    state = TraceState(pairs)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[text] = state
    return state

"""Turning whatever a carrier holds into header text, safely and cheaply.

Carriers hand us ``str`` (AMQP, HTTP), ``bytes`` (Kafka), ``None`` (confluent-kafka
gives ``None`` for an empty header) and, from buggy peers, ints, lists and other
objects. Every trace header we understand is printable ASCII, so anything that is
not short ASCII text is rejected here, counted, and treated as absent: the message
then simply starts a new trace. Nothing in this module raises.
"""

from __future__ import annotations

from commerce_observe._internal.selfstats import stats

#: Longest trace header value we even look at (traceparent is 55 characters, b3
#: at most 68): anything longer is a mistake or an attack, not a trace context.
MAX_HEADER_LEN = 512

#: W3C allows 32 list members of up to 256+1+256 characters each; a tracestate
#: beyond that cannot be valid, so we refuse to parse it at all.
MAX_TRACESTATE_LEN = 32 * 513 + 31

INVALID_TYPE = "propagation.invalid_type"
OVERSIZED = "propagation.oversized_header"
UNDECODABLE = "propagation.undecodable_header"
INVALID = "propagation.invalid_header"
INVALID_TRACESTATE = "propagation.invalid_tracestate"


def as_text(value: object, limit: int = MAX_HEADER_LEN) -> str | None:
    """Return ``value`` as ASCII text without surrounding spaces and tabs, or ``None``
    (counted) when unusable: not text, too long, not ASCII, or holding a control character.

    ``None`` itself means "header absent" and is not counted.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) > limit:
            stats.incr(OVERSIZED)
            return None
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            stats.incr(UNDECODABLE)
            return None
    elif isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (str, bytes)):
        # OTel getters and some frameworks return one-element lists (one level only:
        # a peer's array nested thousands deep must not cost a recursion per level).
        return as_text(value[0], limit)
    else:
        stats.incr(INVALID_TYPE)
        return None
    if len(text) > limit:
        stats.incr(OVERSIZED)
        return None
    if not text.isascii():
        stats.incr(UNDECODABLE)
        return None
    text = text.strip(" \t")  # HTTP's optional whitespace, nothing more
    if not text.isprintable():
        # A CR, LF, NUL or other control character around (or in) a value is not
        # whitespace to strip into a valid header: the value is refused.
        stats.incr(INVALID)
        return None
    return text


def as_bytes(value: object) -> bytes | None:
    """Return a binary header value as ``bytes`` or ``None`` (counted when wrong type)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    stats.incr(INVALID_TYPE)
    return None

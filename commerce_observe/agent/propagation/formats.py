"""The wire formats: W3C trace context, B3 single and multi, Elastic text and binary.

Each format is a pair of pure functions — parse header text into ids, format ids
into header text — with no OpenTelemetry objects and no carrier knowledge, so they
can be tested byte for byte against published vectors and are cheap on the hot
path (one precompiled ``fullmatch`` per header, ``int(..., 16)`` on the slices).

Ids are plain ``int`` (as OpenTelemetry stores them). A parse result is
:class:`Ids`; the B3 "deny-only" header (``b3: 0`` or ``X-B3-Sampled: 0`` alone)
parses to :data:`DENY`.

Strictness follows the writers we interoperate with: W3C ids and B3 ids must be
lower-case hex (the W3C spec and Brave both reject upper case), all-zero ids are
invalid, and 64-bit B3 trace ids are left-padded to 128 bits, as Brave does when
it joins a 128-bit system.

Why not py-zipkin's B3 helpers: they raise ``ValueError`` on bad input, accept
upper case and non-hex, and return string ids inside ``ZipkinAttrs`` — we would
re-validate and convert everything, so parsing here is both safer and faster.
"""

from __future__ import annotations

import enum
import re
import struct
from typing import Final, NamedTuple


class Format(enum.Flag):
    """Which formats :func:`~commerce_observe.agent.propagation.inject` writes."""

    W3C = enum.auto()  #: ``traceparent`` + ``tracestate``
    B3_SINGLE = enum.auto()  #: ``b3``
    B3_MULTI = enum.auto()  #: ``X-B3-TraceId`` … ``X-B3-Flags``
    ELASTIC = enum.auto()  #: ``elastic-apm-traceparent`` (text, HTTP/AMQP)
    ELASTIC_BINARY = enum.auto()  #: ``elasticapmtraceparent`` (29 bytes, Kafka)

    TEXT = W3C | B3_SINGLE | B3_MULTI | ELASTIC  #: every text format
    KAFKA = W3C | B3_SINGLE | B3_MULTI | ELASTIC_BINARY  #: what Kafka carriers get


class Ids(NamedTuple):
    """A parsed remote parent."""

    trace_id: int
    span_id: int
    sampled: bool
    debug: bool = False


#: The B3 deny-only decision: "do not sample", with no ids.
DENY: Final = Ids(0, 0, False)

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
B3: Final = "b3"
B3_TRACE_ID: Final = "X-B3-TraceId"
B3_SPAN_ID: Final = "X-B3-SpanId"
B3_PARENT_SPAN_ID: Final = "X-B3-ParentSpanId"
B3_SAMPLED: Final = "X-B3-Sampled"
B3_FLAGS: Final = "X-B3-Flags"
ELASTIC_TRACEPARENT: Final = "elastic-apm-traceparent"
ELASTIC_BINARY_HEADER: Final = "elasticapmtraceparent"

_TRACEPARENT_RE: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.S)
_B3_RE: Final = re.compile(r"([0-9a-f]{32}|[0-9a-f]{16})-([0-9a-f]{16})(?:-([01d])(?:-([0-9a-f]{16}))?)?")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_HEX_TRACE: Final = re.compile(r"[0-9a-f]{32}|[0-9a-f]{16}")
_MASK64: Final = (1 << 64) - 1


def parse_traceparent(text: str) -> Ids | None:
    """Parse W3C ``traceparent`` (also Elastic's ``elastic-apm-traceparent``).

    Version ``00`` must be exactly 55 characters; higher versions may append
    ``-``-separated fields (forward compatibility per the spec); ``ff`` is invalid.
    """
    m = _TRACEPARENT_RE.fullmatch(text)
    if m is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return Ids(trace_id, span_id, bool(int(flags_hex, 16) & 1))


#: A version-00 ``traceparent`` exactly as writers put it in a Kafka header: 55 bytes.
_TRACEPARENT_00: Final = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_new_ids = tuple.__new__


def parse_traceparent_00(raw: bytes) -> Ids | None:
    """The ids of a version-00 ``traceparent`` given as the raw bytes of a Kafka header,
    or None when it is not exactly that (then :func:`parse_traceparent` decides).

    The consumer's common case, without decoding and checking the text first: a
    match of the byte pattern is already lower-case hex ASCII, and ``int`` reads the
    bytes as they are. Same result as ``parse_traceparent(raw.decode())``.
    """
    if len(raw) != 55 or _TRACEPARENT_00.fullmatch(raw) is None:
        return None
    trace_id = int(raw[3:35], 16)
    span_id = int(raw[36:52], 16)
    if not trace_id or not span_id:
        return None
    # ``Ids(...)`` runs the named tuple's Python ``__new__``; a parse result is a plain 4-tuple.
    return _new_ids(Ids, (trace_id, span_id, raw[54] in b"13579bdf", False))


def format_traceparent(trace_hex: str, span_hex: str, sampled: bool) -> str:
    """``traceparent`` from ids already rendered as 32/16 lower-hex digits (the
    injector renders them once and shares them among all text formats)."""
    return "00-" + trace_hex + "-" + span_hex + ("-01" if sampled else "-00")


def parse_b3_single(text: str) -> Ids | None:
    """Parse ``b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]`` or ``b3: 0``.

    ``b3: 1`` / ``b3: d`` without ids carry no parent; they are treated as absent
    (the local sampler decides), which is what a new trace would do anyway.
    """
    if len(text) == 1:
        return DENY if text == "0" else None
    m = _B3_RE.fullmatch(text)
    if m is None:
        return None
    trace_hex, span_hex, sampling, _parent = m.groups()
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    # An absent sampling state means "undecided": we honour the parent's ids and
    # treat it as sampled so the trace is not broken at this hop.
    return Ids(trace_id, span_id, sampling != "0", sampling == "d")


def format_b3_single(trace_hex: str, span_hex: str, sampled: bool, debug: bool = False) -> str:
    """``b3`` without the parent span id (OpenTelemetry's span context has none),
    which Brave calls ``SINGLE_NO_PARENT`` and reads like any other ``b3``."""
    return trace_hex + "-" + span_hex + ("-d" if debug else "-1" if sampled else "-0")


def parse_b3_multi(
    trace_hex: str | None, span_hex: str | None, parent_hex: str | None, sampled: str | None, flags: str | None
) -> Ids | None:
    """Parse the ``X-B3-*`` headers as Brave reads them.

    ``X-B3-Sampled`` accepts ``1``/``0`` and, like Brave, ``true``/``false``;
    ``X-B3-Flags: 1`` means debug (and implies sampled). Without ids, only a
    deny (``X-B3-Sampled: 0``) is meaningful.
    """
    debug = flags == "1"
    if sampled is None:
        decision: bool | None = True if debug else None
    else:
        low = sampled.lower()
        if low in ("1", "true"):
            decision = True
        elif low in ("0", "false"):
            decision = debug
        else:
            return None
    if trace_hex is None and span_hex is None:
        return DENY if decision is False else None
    if trace_hex is None or span_hex is None:
        return None
    if _HEX_TRACE.fullmatch(trace_hex) is None or _HEX16.fullmatch(span_hex) is None:
        return None
    if parent_hex is not None and _HEX16.fullmatch(parent_hex) is None:
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return Ids(trace_id, span_id, decision is not False, debug)


def format_b3_multi(trace_hex: str, span_hex: str, sampled: bool, debug: bool = False) -> tuple[tuple[str, str], ...]:
    """Headers as Brave writes them: ``X-B3-Flags: 1`` replaces ``X-B3-Sampled`` when debug."""
    if debug:
        return ((B3_TRACE_ID, trace_hex), (B3_SPAN_ID, span_hex), (B3_FLAGS, "1"))
    return ((B3_TRACE_ID, trace_hex), (B3_SPAN_ID, span_hex), (B3_SAMPLED, "1" if sampled else "0"))


# Elastic's binary trace context (Kafka header ``elasticapmtraceparent``), as the
# Elastic Python and Java agents write it: version byte, then field-id/value
# triples — 0: trace id (16 bytes), 1: span id (8 bytes), 2: flags (1 byte).
_BINARY: Final = struct.Struct(">BBQQBQBB")
BINARY_LEN: Final = _BINARY.size  # 29


def parse_elastic_binary(data: bytes) -> Ids | None:
    if len(data) != BINARY_LEN:
        return None
    version, f0, hi, lo, f1, span_id, f2, flags = _BINARY.unpack(data)
    if (f0, f1, f2) != (0, 1, 2) or version == 0xFF:
        return None
    trace_id = (hi << 64) | lo
    if not trace_id or not span_id:
        return None
    return Ids(trace_id, span_id, bool(flags & 1))


def format_elastic_binary(trace_id: int, span_id: int, sampled: bool) -> bytes:
    return _BINARY.pack(0, 0, trace_id >> 64, trace_id & _MASK64, 1, span_id, 2, 1 if sampled else 0)

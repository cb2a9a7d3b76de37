"""Extract from any format, inject all: the two calls every client wrapper makes.

Extraction priority (first valid wins; an invalid header is counted and the next
format is tried): W3C ``traceparent`` → B3 single ``b3`` → B3 multi ``X-B3-*`` →
Elastic ``elastic-apm-traceparent`` → Elastic binary ``elasticapmtraceparent``.
W3C first because every current agent (OTel, Brave 6, Elastic) writes it; B3
before Elastic's legacy header because Zipkin peers that write only B3 are the
common older case. ``tracestate`` is attached when the parent came from a
traceparent-shaped header (W3C or Elastic text).

Both calls run on the application thread per message: no logging, no exceptions,
one carrier index, one regex match in the common case.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Set as AbstractSet
from typing import Final, NamedTuple

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.baggage import get_all
from opentelemetry.context import Context, create_key, get_current, get_value, set_value
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent._compat.otel_api import make_span_context
from commerce_observe.agent import current

from . import formats as f
from ._tracestate import EMPTY, parse_tracestate
from ._values import INVALID, as_bytes, as_text
from .carriers import Carrier

EXTRACT_FAILED = "propagation.extract_failed"
INJECT_FAILED = "propagation.inject_failed"
SKIPPED_EXISTING = "propagation.inject_skipped_existing"

#: Context key marking a B3 debug trace, so it is re-injected as ``d`` /
#: ``X-B3-Flags: 1`` (OpenTelemetry's span context has no debug bit).
B3_DEBUG_KEY: Final = create_key("commerce_observe.b3_debug")

_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED: Final = TraceFlags(TraceFlags.DEFAULT)

_W3C_NAMES: Final = frozenset({"traceparent", "tracestate"})
_B3_MULTI_NAMES: Final = frozenset(
    n.lower() for n in (f.B3_TRACE_ID, f.B3_SPAN_ID, f.B3_PARENT_SPAN_ID, f.B3_SAMPLED, f.B3_FLAGS)
)
_W3C, _B3S, _B3M, _EL, _ELB = (
    f.Format.W3C.value,
    f.Format.B3_SINGLE.value,
    f.Format.B3_MULTI.value,
    f.Format.ELASTIC.value,
    f.Format.ELASTIC_BINARY.value,
)


_ALL_FORMATS: Final = _W3C | _B3S | _B3M | _EL | _ELB
#: OpenTelemetry's own W3C baggage codec (limits, percent-encoding, properties).
_BAGGAGE: Final = W3CBaggagePropagator()
BAGGAGE_HEADER: Final = "baggage"

#: ``OTEL_PROPAGATORS`` names and the formats they allow; ``elastic`` is ours.
_PROPAGATOR_NAMES: Final[dict[str, int]] = {
    "tracecontext": _W3C,
    "b3": _B3S,
    "b3multi": _B3M,
    "elastic": _EL | _ELB,
}


class Policy(NamedTuple):
    """What injection may write (``OTEL_PROPAGATORS``), owned by the agent state and
    handed to every call: ``bits`` the formats allowed, ``baggage`` whether W3C
    ``baggage`` is read and written. Extraction is not limited by ``bits``: we still
    read whatever a peer sends."""

    bits: int
    baggage: bool


#: No ``OTEL_PROPAGATORS``: every format, and baggage.
ALL: Final = Policy(_ALL_FORMATS, True)


def installed_policy() -> Policy:
    """The installed agent's policy (every format when none is installed): what
    :func:`extract` and :func:`inject` use when an application calls them without one."""
    state = current.state()
    return state.propagation if state is not None else ALL


def policy_for(propagators: Iterable[str] | None) -> Policy:
    """The policy of the ``OTEL_PROPAGATORS`` names (as the config checked them);
    None or no name allows all, ``baggage`` and ``none`` add no format."""
    names = tuple(propagators or ())
    if not names:
        return ALL
    bits = 0
    for name in names:
        bits |= _PROPAGATOR_NAMES.get(name, 0)
    return Policy(bits, "baggage" in names)


class _CarrierGetter(Getter[Carrier]):
    """The getter OpenTelemetry's baggage propagator wants, over our carriers."""

    def get(self, carrier: Carrier, key: str) -> list[str] | None:
        text = as_text(carrier.get(key.lower()))
        return [text] if text is not None else None

    def keys(self, carrier: Carrier) -> list[str]:
        return list(carrier.names())


_GETTER: Final = _CarrierGetter()


def baggage_header(context: Context | None = None) -> str | None:
    """The W3C ``baggage`` header value for ``context``'s baggage (None when it has none)."""
    out: dict[str, str] = {}
    _BAGGAGE.inject(out, context)  # returns at once when there is no baggage
    return out.get(BAGGAGE_HEADER)


def _text_ids(carrier: Carrier, name: str, parse: Callable[[str], f.Ids | None]) -> f.Ids | None:
    text = as_text(carrier.get(name))
    if not text:
        return None
    ids = parse(text)
    if ids is None:
        stats.incr(INVALID)
    return ids


def _b3_multi(carrier: Carrier) -> f.Ids | None:
    trace_hex = as_text(carrier.get("x-b3-traceid"))
    sampled = as_text(carrier.get("x-b3-sampled"))
    if trace_hex is None and sampled is None:
        return None
    ids = f.parse_b3_multi(
        trace_hex,
        as_text(carrier.get("x-b3-spanid")),
        as_text(carrier.get("x-b3-parentspanid")),
        sampled,
        as_text(carrier.get("x-b3-flags")),
    )
    if ids is None:
        stats.incr(INVALID)
    return ids


def _find(carrier: Carrier) -> tuple[f.Ids, bool] | None:
    """The first valid parent and whether a tracestate belongs with it."""
    raw = carrier.get("traceparent")
    if type(raw) is bytes:  # Kafka: the exact version-00 header takes a short road
        ids = f.parse_traceparent_00(raw)
        if ids is not None:
            return ids, True
    ids = _text_ids(carrier, "traceparent", f.parse_traceparent)
    if ids is not None:
        return ids, True
    ids = _text_ids(carrier, "b3", f.parse_b3_single)
    if ids is not None:
        return ids, False
    ids = _b3_multi(carrier)
    if ids is not None:
        return ids, False
    ids = _text_ids(carrier, "elastic-apm-traceparent", f.parse_traceparent)
    if ids is not None:
        return ids, True
    data = as_bytes(carrier.get("elasticapmtraceparent"))
    if data is not None:
        ids = f.parse_elastic_binary(data)
        if ids is None:
            stats.incr(INVALID)
            return None
        return ids, False
    return None


def extract(carrier: Carrier, context: Context | None = None, policy: Policy | None = None) -> Context:
    """Return ``context`` (default: an empty one, as OTel does) with the remote
    parent found in ``carrier`` as a non-recording span, or unchanged when there
    is none. A B3 deny (``b3: 0``) yields a fresh, unsampled remote parent so the
    default parent-based sampler drops the trace here and downstream. ``policy``
    (default: the installed agent's) says whether W3C baggage is read.
    """
    ctx = context if context is not None else Context()
    if policy is None:
        policy = installed_policy()
    try:
        if policy.baggage and carrier.get(BAGGAGE_HEADER) is not None:
            ctx = _BAGGAGE.extract(carrier, ctx, getter=_GETTER)
        found = _find(carrier)
        if found is None:
            return ctx
        ids, with_state = found
        ctx = trace.set_span_in_context(NonRecordingSpan(_remote(carrier, ids, with_state)), ctx)
        if ids.debug:
            ctx = set_value(B3_DEBUG_KEY, True, ctx)
        return ctx
    except Exception as exc:
        stats.swallow(EXTRACT_FAILED, "trace context extraction failed: %r", exc)
        return context if context is not None else Context()


def _remote(carrier: Carrier, ids: f.Ids, with_state: bool) -> SpanContext:
    """The remote parent's span context (a B3 deny: a fresh unsampled one)."""
    if ids is f.DENY:
        ids = f.Ids(random.getrandbits(128) or 1, random.getrandbits(64) or 1, False)
    state = parse_tracestate(carrier.get("tracestate")) if with_state else EMPTY
    return make_span_context(ids.trace_id, ids.span_id, True, _SAMPLED if ids.sampled else _NOT_SAMPLED, state)


def extract_parent(carrier: Carrier, get: Callable[[str], object] | None = None) -> SpanContext | None:
    """The remote parent in ``carrier`` as :func:`extract` finds it, as a bare span
    context (None: no usable parent), for a caller that starts a span from it at once
    and reads nothing else from the context: no ``Context`` and no ``NonRecordingSpan``
    are built (a message consumer's hot path). Baggage and the B3 debug flag, which
    only a context carries, are not read: a caller that needs them calls :func:`extract`.

    ``get``: the carrier's own lookup (``lookup()``), when the caller has it: an exact
    version-00 ``traceparent`` (what we and OpenTelemetry write; it comes first in the
    order anyway) and its ``tracestate`` are then read through it, without the
    general search.
    """
    try:
        if get is not None:
            raw = get("traceparent")
            if type(raw) is bytes:
                ids = f.parse_traceparent_00(raw)
                if ids is not None:
                    state = get("tracestate")
                    return make_span_context(ids.trace_id, ids.span_id, True, _SAMPLED if ids.sampled else _NOT_SAMPLED,
                                        EMPTY if state is None else parse_tracestate(state))
        found = _find(carrier)
        return None if found is None else _remote(carrier, found[0], found[1])
    except Exception as exc:
        stats.swallow(EXTRACT_FAILED, "trace context extraction failed: %r", exc)
        return None


def trace_headers(span_context: SpanContext, tid: str, sid: str, bits: int, context: Context | None = None,
                  present: AbstractSet[str] = frozenset(), policy: Policy = ALL) -> list[tuple[str, str | bytes]]:
    """The headers of ``span_context`` in the formats of ``bits`` that ``policy``
    lets through (``OTEL_PROPAGATORS``), in the order they are written: text values
    as ``str``, the Elastic binary one as ``bytes``; then W3C ``baggage`` when the
    context carries baggage and ``baggage`` is allowed.

    ``tid``/``sid`` are its ids as hex, rendered once by the caller. B3 debug is
    read from ``context`` (default: the current one). A format any of whose header
    names is in ``present`` (lower-case names already in the carrier) is skipped
    whole and counted (``propagation.inject_skipped_existing``). The one rule for
    :func:`inject` and the producer's header-list fast path.
    """
    bits &= policy.bits
    sampled = span_context.trace_flags.sampled
    if context is None:  # read once for the B3 debug flag and the baggage
        context = get_current()
    debug = bool(bits & (_B3S | _B3M)) and context.get(B3_DEBUG_KEY) is True
    out: list[tuple[str, str | bytes]] = []
    traceparent = None
    if bits & _W3C:
        if present.isdisjoint(_W3C_NAMES):
            traceparent = f.format_traceparent(tid, sid, sampled)
            out.append((f.TRACEPARENT, traceparent))
            if span_context.trace_state:
                out.append((f.TRACESTATE, span_context.trace_state.to_header()))
        else:
            stats.incr(SKIPPED_EXISTING)
    if bits & _B3S:
        if "b3" not in present:
            out.append((f.B3, f.format_b3_single(tid, sid, sampled, debug)))
        else:
            stats.incr(SKIPPED_EXISTING)
    if bits & _B3M:
        if present.isdisjoint(_B3_MULTI_NAMES):
            out += f.format_b3_multi(tid, sid, sampled, debug)
        else:
            stats.incr(SKIPPED_EXISTING)
    if bits & _EL:
        if "elastic-apm-traceparent" not in present:
            out.append((f.ELASTIC_TRACEPARENT, traceparent or f.format_traceparent(tid, sid, sampled)))
        else:
            stats.incr(SKIPPED_EXISTING)
    if bits & _ELB:
        if "elasticapmtraceparent" not in present:
            out.append((f.ELASTIC_BINARY_HEADER, f.format_elastic_binary(span_context.trace_id,
                                                                          span_context.span_id, sampled)))
        else:
            stats.incr(SKIPPED_EXISTING)
    if policy.baggage and get_all(context):  # the propagator itself only for a context with baggage
        baggage = baggage_header(context)
        if baggage is not None:
            if BAGGAGE_HEADER not in present:
                out.append((BAGGAGE_HEADER, baggage))
            else:
                stats.incr(SKIPPED_EXISTING)
    return out


def inject(carrier: Carrier, context: Context | None = None, formats: f.Format | None = None,
           policy: Policy | None = None) -> None:
    """Write the current (or ``context``'s) span into ``carrier`` in ``formats``
    (default: the carrier's :attr:`~Carrier.default_formats`) that ``policy`` allows
    (default: the installed agent's, for applications that call this themselves).

    A format whose header the application already set is skipped whole
    (``propagation.inject_skipped_existing``): mixing our ids with theirs would
    produce a context no peer can trust.
    """
    try:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        if policy is None:
            policy = installed_policy()
        bits = (carrier.default_formats if formats is None else formats).value
        # Render the ids once; every text format shares the two strings.
        tid = format(span_context.trace_id, "032x")
        sid = format(span_context.span_id, "016x")
        for name, value in trace_headers(span_context, tid, sid, bits, context, carrier.names(), policy):
            carrier.set(name, value)
    except Exception as exc:
        stats.swallow(INJECT_FAILED, "trace context injection failed: %r", exc)

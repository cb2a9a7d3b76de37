"""The private parts of opentelemetry-api we use.

* The context-manager decorator whose managers also work as decorators of coroutine
  functions (as the API's own ``Tracer.start_as_current_span`` does). Outside the
  checked range the standard ``contextlib.contextmanager`` is used: the spans are the
  same, only a decorated ``async def`` then closes its span when the coroutine is
  created, as in older APIs.
* ``SpanContext``'s layout, a tuple of (trace id, span id, is remote, flags, trace
  state, is valid): :func:`make_span_context` builds one from those six values with
  ``tuple.__new__`` (one C call) instead of its Python ``__new__`` (two per consumed
  message: the remote parent and the span). Only in the checked range and when a
  probe built both ways compares equal; else it calls the constructor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from commerce_observe.agent._compat.versions import Range

SUPPORTED = Range("opentelemetry-api", (1, 42), (1, 46))


def _pick() -> Callable[..., Any]:
    if SUPPORTED.fast:
        try:
            from opentelemetry.util._decorator import _agnosticcontextmanager

            return _agnosticcontextmanager
        except ImportError:
            pass
    return contextlib.contextmanager


agnostic_contextmanager: Callable[..., Any] = _pick()


#: Ids a ``SpanContext`` holds as valid: non-zero and within 128 / 64 bits (the
#: constructor's own test, which :func:`make_span_context` repeats for the fast build).
_TRACE_ID_LIMIT = 1 << 128
_SPAN_ID_LIMIT = 1 << 64

_Fields = tuple[int, int, bool, TraceFlags, TraceState, bool]


def _construct(cls: type[SpanContext], fields: _Fields) -> SpanContext:
    return cls(fields[0], fields[1], fields[2], fields[3], fields[4])


def _pick_span_context() -> Callable[[type[SpanContext], _Fields], SpanContext]:
    if not SUPPORTED.fast:
        return _construct
    state = TraceState([("k", "v")])
    for fields in ((0x1F, 0x2E, True, TraceFlags(1), state, True), (0, 7, False, TraceFlags(0), state, False)):
        built = tuple.__new__(SpanContext, fields)
        made = _construct(SpanContext, fields)
        if (tuple(built) != tuple(made) or built.trace_id != made.trace_id or built.span_id != made.span_id
                or built.is_remote is not made.is_remote or built.trace_flags != made.trace_flags
                or built.trace_state is not made.trace_state or built.is_valid is not made.is_valid):
            return _construct
    return tuple.__new__


_new_span_context = _pick_span_context()


def make_span_context(trace_id: int, span_id: int, is_remote: bool, flags: TraceFlags, state: TraceState) -> SpanContext:
    """``SpanContext(trace_id, span_id, is_remote, flags, state)``: one ``tuple.__new__``
    (a C call) instead of its Python ``__new__`` where the probe above allowed it."""
    return _new_span_context(SpanContext, (trace_id, span_id, is_remote, flags, state,
                                           0 < trace_id < _TRACE_ID_LIMIT and 0 < span_id < _SPAN_ID_LIMIT))

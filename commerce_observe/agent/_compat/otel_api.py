"""The one private name of opentelemetry-api we use: the context-manager decorator
whose managers also work as decorators of coroutine functions (as the API's own
``Tracer.start_as_current_span`` does). Outside the checked range the standard
``contextlib.contextmanager`` is used: the spans are the same, only a decorated
``async def`` then closes its span when the coroutine is created, as in older APIs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

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

"""Every integration commerce_observe knows, by setting name.

Each entry names a module ``commerce_observe.agent.instrumentation.<name>`` that defines
``INSTRUMENTOR``, an :class:`~commerce_observe.agent.instrumentation.base.Instrumentor`
subclass. Nothing is imported until :func:`enable_all` runs; the libraries
themselves are patched only when (and if) the application imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.instrumentation.base import Instrumentor

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

KNOWN: tuple[str, ...] = (
    "kafka_python",
    "confluent_kafka",
    "aiokafka",
    "pika",
    "flask",
    "django",
    "starlette",
    "requests",
    "httpx",
)


def load(name: str) -> Instrumentor | None:
    """The instrumentor singleton for ``name``, or None if that integration is not shipped."""
    try:
        module = importlib.import_module(f"commerce_observe.agent.instrumentation.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("commerce_observe."):
            return None
        raise
    cls: type[Instrumentor] = module.INSTRUMENTOR
    return cls()


def enable_all(state: AgentState, disabled: Iterable[str] = ()) -> list[Instrumentor]:
    """Enable every shipped integration not in ``disabled``, handing each ``state``;
    returns those enabled."""
    off = set(disabled)
    unknown = off - set(KNOWN)
    if unknown:
        stats.warn("instrumentation.unknown", "unknown integration name(s) in disabled list: %s", sorted(unknown))
    enabled = []
    for name in KNOWN:
        if name in off:
            continue
        instrumentor = load(name)
        if instrumentor is not None:
            instrumentor.enable(state)
            enabled.append(instrumentor)
    return enabled


def disable_all(instrumentors: Iterable[Instrumentor]) -> None:
    for instrumentor in instrumentors:
        instrumentor.disable()

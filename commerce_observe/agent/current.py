"""The installed runtime: the one module global of the agent, read at the public face.

``install()`` sets it and ``shutdown()`` clears it; everything below the runtime is
handed the :class:`~commerce_observe.agent.state.AgentState` instead of reading
this. The public calls that an application makes with no agent object at hand
(``record``/``order_paid``…, ``handling``, ``defer``, the monitor's reports to
the hub) look here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commerce_observe.agent.hub import Hub

if TYPE_CHECKING:
    from commerce_observe.agent.runtime import Runtime
    from commerce_observe.agent.state import AgentState

_runtime: Runtime | None = None


def runtime() -> Runtime | None:
    """The installed runtime, if any."""
    return _runtime


def state() -> AgentState | None:
    """The installed runtime's state, if any."""
    installed = _runtime
    return installed.state if installed is not None else None


def hub() -> Hub:
    """The installed runtime's hub; before install a new, listener-less one (emitting
    into it is a no-op dispatch, and nothing subscribed to it outlives the call)."""
    installed = _runtime
    return installed.state.hub if installed is not None else Hub()


def _set(new: Runtime | None) -> None:
    """Set by the runtime on install and shutdown only."""
    global _runtime
    _runtime = new

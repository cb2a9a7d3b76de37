"""The one instrumentor contract.

Each instrumented library is one small module with a subclass of
:class:`Instrumentor` that *declares* what it wraps (:meth:`Instrumentor.patches`).
This base, built on OpenTelemetry's ``BaseInstrumentor`` (version-range check,
``opentelemetry-instrument`` compatibility), then:

* patches on import, not at a moment in time: :meth:`enable` registers a wrapt
  post-import hook, so ``import commerce_observe.auto`` may come before or after
  ``import kafka``;
* hands each wrapper the agent state it was enabled with (:meth:`enable`), as
  contrib's instrumentors are handed ``tracer_provider=``: a module's wrappers
  take it as their first argument (:meth:`Instrumentor.bind`);
* makes instrument/uninstrument idempotent;
* restores exactly what it wrapped (the original descriptor, not a re-wrap);
* never lets a wrapper factory failure break the application's import.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import wrapt
from opentelemetry.instrumentation.dependencies import DependencyConflictError
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from commerce_observe._internal.selfstats import stats

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]
#: A wrapper that is handed the agent state first: ``(state, wrapped, instance, args, kwargs)``.
StateWrapper = Callable[["AgentState", Any, Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class Patch:
    """Wrap ``module.path`` (``"Class.method"`` or ``"function"``) with ``wrapper``.

    ``wrapper`` has wrapt's signature ``(wrapped, instance, args, kwargs)``.
    ``optional``: a library internal that may be missing in some version; when it
    is, that patch is skipped (and counted) instead of failing the whole library.
    """

    module: str
    path: str
    wrapper: Wrapper
    optional: bool = False


class Instrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base for every commerce_observe integration.

    Subclasses set ``name`` (the key in ``COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS``),
    ``module`` (the import that triggers patching) and ``requirements`` (pip
    requirement strings with the supported version range), and implement
    :meth:`patches`.
    """

    name: ClassVar[str]
    module: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        # BaseInstrumentor is a per-class singleton: __init__ runs on every call.
        if hasattr(self, "_applied"):
            return
        self._applied: list[tuple[Any, str, Any]] = []
        self._lock = threading.RLock()
        self._wanted = False
        self._hooked = False
        #: The agent state the wrappers report to, handed in by :meth:`enable`.
        self._state: AgentState | None = None

    # -- OpenTelemetry's contract ---------------------------------------------------

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.requirements

    def patches(self) -> Sequence[Patch]:
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        with self._lock:
            try:
                for patch in self.patches():
                    try:
                        parent, attribute, original = wrapt.resolve_path(patch.module, patch.path)
                    except (AttributeError, ImportError):
                        if not patch.optional:
                            raise
                        stats.incr("instrumentation.optional_patch_missing")
                        continue
                    wrapt.apply_patch(parent, attribute, wrapt.FunctionWrapper(original, patch.wrapper))
                    self._applied.append((parent, attribute, original))
            except Exception:
                self._uninstrument()  # all or nothing
                raise

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            while self._applied:
                parent, attribute, original = self._applied.pop()
                setattr(parent, attribute, original)

    # -- ours --------------------------------------------------------------------------

    @property
    def is_instrumented(self) -> bool:
        return bool(self._is_instrumented_by_opentelemetry)

    @property
    def state(self) -> AgentState:
        """The agent state the wrappers report to (a detached one of its own when
        enabled without: a listener-less hub, spans on the global provider)."""
        with self._lock:
            if self._state is None:
                from commerce_observe.agent.state import AgentState

                self._state = AgentState()
            return self._state

    def bind(self, wrapper: StateWrapper) -> Wrapper:
        """``wrapper`` with this instrumentor's agent state as its first argument."""
        return partial(wrapper, self.state)

    def enable(self, state: AgentState | None = None) -> None:
        """Instrument now if the library is imported, else as soon as it is, reporting
        to ``state`` (the installed agent's; see :attr:`state` when None)."""
        with self._lock:
            if state is not None and state is not self._state:
                if self.is_instrumented:  # wrappers bound to another state: re-bind
                    self.uninstrument()
                self._state = state
            self._wanted = True
            if not self._hooked:
                self._hooked = True
                wrapt.register_post_import_hook(self._on_import, self.module)
            elif self.module in sys.modules:
                self._on_import(sys.modules[self.module])

    def disable(self) -> None:
        """Undo every patch; a later import of the library patches nothing."""
        with self._lock:
            self._wanted = False
            if self.is_instrumented:
                self.uninstrument()
            self._state = None  # the agent's state is not kept past it

    def _on_import(self, _module: object) -> None:
        with self._lock:
            if not self._wanted or self.is_instrumented:
                return
            try:
                self.instrument(raise_exception_on_conflict=True)
            except DependencyConflictError as exc:
                stats.record_failure("instrumentation.unsupported", "%s not instrumented: %s", self.name, exc)
                return
            except Exception as exc:
                stats.swallow("instrumentation.failed", "instrumenting %s failed: %r", self.name, exc)

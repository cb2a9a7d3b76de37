"""structlog: the same correlation fields and masking as stdlib records.

A structlog processor adds ``trace.id``, ``transaction.id``, ``span.id`` and
``service.name`` to the event dict (keeping keys the caller set) and masks its
values. While installed it is put in front of the last processor (the renderer)
of structlog's configuration, and ``structlog.configure`` is wrapped so that an
application configuring structlog after ``import commerce_observe.auto`` gets it
too. Uninstall takes it out again and restores ``configure``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import MutableMapping
from typing import Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.logs.correlation import Correlation

FAILED = "logs.structlog_failed"


class StructlogCorrelation:
    """The processor (callable as structlog wants it) and its installation."""

    def __init__(self, correlation: Correlation, masker: Any | None) -> None:
        self._correlation = correlation
        self._masker = masker
        self._configure: Any = None

    def __call__(self, logger: object, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        try:
            masker = self._masker
            if masker is not None:
                for key, value in event_dict.items():
                    if isinstance(value, (str, int, float, bool, list, tuple)):
                        event_dict[key] = masker.mask_value(key, value)
                    elif masker.is_sensitive_key(key):
                        event_dict[key] = "[REDACTED]"
            for key, value in self._correlation.fields().items():  # after masking, as for stdlib
                if value is not None:
                    event_dict.setdefault(key, value)
        except Exception as exc:
            stats.swallow(FAILED, "structlog correlation failed: %r", exc)
        return event_dict

    def _with_me(self, processors: Any) -> list[Any]:
        chain = [p for p in (processors or []) if p is not self]
        chain.insert(max(0, len(chain) - 1), self)  # before the renderer
        return chain

    def install(self) -> bool:
        """Wire into structlog if it is installed."""
        if importlib.util.find_spec("structlog") is None:
            return False
        import structlog

        configure = structlog.configure
        me = self

        def configure_with_correlation(*args: Any, **kwargs: Any) -> None:
            if kwargs.get("processors") is not None:
                kwargs["processors"] = me._with_me(kwargs["processors"])
            configure(*args, **kwargs)

        self._configure = configure
        setattr(structlog, "configure", configure_with_correlation)
        configure(processors=self._with_me(structlog.get_config()["processors"]))
        return True

    def uninstall(self) -> None:
        structlog = sys.modules.get("structlog")
        if structlog is None or self._configure is None:
            return
        setattr(structlog, "configure", self._configure)
        self._configure = None
        processors = [p for p in structlog.get_config()["processors"] if p is not self]
        structlog.configure(processors=processors)

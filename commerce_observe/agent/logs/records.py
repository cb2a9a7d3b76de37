"""Every stdlib log record, whoever configured its handler and when: correlated and masked.

The hook is ``logging.Logger.makeRecord``, wrapped while installed. A record factory
(``logging.setLogRecordFactory``) would miss ``extra={...}`` fields, which the logger
adds after the factory returns, and filters on handlers miss every handler the
application configures after ``import commerce_observe.auto`` (the usual order:
``logging.basicConfig`` or ``dictConfig`` runs in ``main()``). ``makeRecord`` sees the
finished record before any handler, whatever handlers exist now or later, so:

* inside a span the record gets ``trace.id``, ``transaction.id``, ``span.id``, and
  always ``service.name`` (as record attributes: ``%(trace.id)s`` in a format string,
  nested ECS fields with ``ecs_logging.StdlibFormatter``); fields the caller passed
  in ``extra`` are kept;
* the masking filter (message, args, extras, exception and stack text) runs on it.

A ``Logger`` subclass that overrides ``makeRecord`` itself is not covered, nor is a
record built by hand with ``logging.LogRecord(...)``. Uninstall restores the original
method when ours is still the one in place, and otherwise turns ours into a
pass-through, so whoever wrapped it after us keeps working.
"""

from __future__ import annotations

import logging
from typing import Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.logs.correlation import Correlation

FAILED = "logs.correlation_failed"


class LogRecords:
    """Owns the ``makeRecord`` wrap for one runtime."""

    def __init__(self, correlation: Correlation | None, mask: logging.Filter | None) -> None:
        self._correlation = correlation
        self._mask = mask
        self._active = False
        self._original: Any = None
        self._wrapper: Any = None

    def install(self) -> None:
        original = logging.Logger.makeRecord
        correlation, mask, owner = self._correlation, self._mask, self

        def make_record(logger: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
            record = original(logger, *args, **kwargs)
            if owner._active:
                try:
                    if mask is not None:
                        mask.filter(record)
                    if correlation is not None:  # after masking: an id is never mistaken for a card
                        extras, fields = record.__dict__, correlation.fields()
                        if extras.keys().isdisjoint(fields):
                            extras.update(fields)
                        else:  # the caller's extra={...} named one of them: keep theirs
                            for key, value in fields.items():
                                extras.setdefault(key, value)
                except Exception as exc:
                    stats.swallow(FAILED, "log record correlation failed: %r", exc)
            return record

        self._original, self._wrapper = original, make_record
        logging.Logger.makeRecord = make_record  # type: ignore[method-assign,assignment]
        self._active = True

    def uninstall(self) -> None:
        self._active = False
        if self._wrapper is not None and logging.Logger.makeRecord is self._wrapper:
            logging.Logger.makeRecord = self._original  # type: ignore[method-assign]
        self._wrapper = None

"""Masking log records before any handler formats them.

The message is rendered once with its args (``record.getMessage()``), masked, and
stored back with ``args`` cleared: masking args one by one cannot be done safely —
a card number masked inside an ``%d`` argument would turn it into a string and
break formatting, and an object's ``str()`` may contain an e-mail. Extra fields
(``logger.info(..., extra={"email": ...})``) go through the same key and value
rules as span attributes, and a traceback is pre-rendered and masked into
``exc_text``, which standard formatters print instead of re-rendering.

The filter never drops a record and never raises; if masking fails the message is
replaced by a placeholder (fail closed) and ``privacy.log_filter_failed`` counts it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from commerce_observe._internal.selfstats import stats

if TYPE_CHECKING:
    from .masker import Masker

_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_WITHHELD: Final = "[log message withheld: masking failed]"
_FORMATTER: Final = logging.Formatter()


class MaskingFilter(logging.Filter):
    """Attach to handlers (covers every logger) or to a logger (its own records)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self._masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            masked = self._masker.mask_text(message)
            if masked is not message or record.args:
                record.msg = masked
                record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._masker.mask_text(record.exc_text)
            if record.stack_info:
                record.stack_info = self._masker.mask_text(record.stack_info)
            extras = record.__dict__
            for key in [k for k in extras if k not in _STANDARD]:
                value = extras[key]
                if isinstance(value, (str, int, float, bool, list, tuple)):
                    extras[key] = self._masker.mask_value(key, value)
                elif self._masker.is_sensitive_key(key):
                    extras[key] = "[REDACTED]"
        except Exception as exc:
            stats.swallow("privacy.log_filter_failed", "log masking failed: %r", exc)
            record.msg = _WITHHELD
            record.args = None
        return True


"""Privacy: card numbers, CVV/CVC, e-mail and phone never leave the process.

``Masker`` is applied by the export pipeline to every span's attributes, events and
status, and its ``log_filter()`` to log records. See ``docs/privacy.md``.
"""

from __future__ import annotations

from .detect import is_card_number, luhn_ok
from .keys import DEFAULT_SENSITIVE_KEYS, normalise_key
from .logfilter import MaskingFilter
from .masker import REDACTED, Masker

__all__ = [
    "DEFAULT_SENSITIVE_KEYS",
    "Masker",
    "MaskingFilter",
    "REDACTED",
    "is_card_number",
    "luhn_ok",
    "normalise_key",
]

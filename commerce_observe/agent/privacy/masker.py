"""The masker applied to every exported span, event and log record.

It is built once by the runtime and called from the export thread for span
attributes (and, through :meth:`Masker.log_filter`, on the logging thread), so it
is tuned for the case where nothing needs masking: key decisions are cached,
strings without a digit or ``@`` are returned untouched at the cost of one regex
search, and :meth:`Masker.mask_attributes` returns its input dict itself when no
value changed.

Failing closed: if masking itself fails (a bug), the value is replaced by
``[REDACTED]`` rather than passed through, and the failure is counted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Final
from urllib.parse import unquote_plus

from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import stats

from .detect import card_label, is_card_number, mask_text
from .keys import DEFAULT_SENSITIVE_KEYS, KeyPolicy

REDACTED: Final = "[REDACTED]"
_CARD_MIN: Final = 10**11
_CARD_MAX: Final = 10**19
#: Clean-string memo bounds: span attributes repeat (system, destination, group,
#: source, type, server), so a value scanned clean once is not scanned again.
_CLEAN_MAX: Final = 4096
_CLEAN_LEN: Final = 256
#: ``name=value`` in a query, a form body or a log line (``?email=..&card_number=..``,
#: ``charge card=... failed``): a value under a sensitive name goes, whatever it looks like.
_PAIR_RE: Final = re.compile(r"(?:(?<=[?&;,\s])|^)([^=&?#;,\s]+)=([^&#;,\s]+)")


def _mask_int(value: int) -> int | str:
    if _CARD_MIN <= value < _CARD_MAX:
        digits = str(value)
        if is_card_number(digits):
            stats.incr("privacy.masked.card")
            return card_label(digits)
    return value


class Masker:
    """Redacts sensitive keys and masks card numbers, e-mails and phones in values."""

    def __init__(self, sensitive_keys: Iterable[str] = DEFAULT_SENSITIVE_KEYS) -> None:
        self._keys = KeyPolicy(sensitive_keys)
        #: Strings :func:`mask_text` returned unchanged. ``mask_text`` is a pure
        #: function of the text, so membership means "clean"; key sensitivity is
        #: still checked per attribute. Cleared when full (bounded memory; set
        #: operations are atomic under the GIL, so threads may share it).
        self._clean: set[str] = set()

    @property
    def clean_memo(self) -> Container[str]:
        """The strings :meth:`mask_text` is known to leave unchanged (read-only: membership
        is the whole contract; :meth:`mask_shared_text` adds to it)."""
        return self._clean

    @property
    def sensitive_keys(self) -> frozenset[str]:
        """The normalised names in force."""
        return self._keys.names

    def is_sensitive_key(self, key: str) -> bool:
        return self._keys.is_sensitive(key)

    def mask_text(self, s: str) -> str:
        """``s`` with card numbers, e-mails, phone numbers and URL credentials replaced, and
        values under sensitive names in ``name=value`` pairs redacted (same object if none)."""
        masked = mask_text(s)
        return self._pairs(masked) if "=" in masked else masked

    def mask_shared_text(self, s: str) -> str:
        """:meth:`mask_text` for a value that other exits mask too (a message id: in its
        span's attributes and in each of its audit records): a value :meth:`mask_attributes`
        or an earlier call found clean is returned unscanned, and a clean result is
        remembered for them (the same memo; it holds only what ``mask_text`` left unchanged)."""
        clean = self._clean
        if s in clean:
            return s
        masked = self.mask_text(s)
        if masked is s and len(s) <= _CLEAN_LEN:
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(s)
        return masked

    def vetted_attributes(self, attrs: Mapping[str, AttributeValue]) -> bool:
        """Whether :meth:`mask_attributes` would return ``attrs`` unchanged (keys and values),
        for attribute sets built once and reused (a consumer's constant attributes)."""
        return self.mask_attributes(attrs) is attrs and type(attrs) is dict

    def _pairs(self, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            if not self._keys.is_sensitive(unquote_plus(m.group(1))) or m.group(2) == REDACTED:
                return m.group(0)
            stats.incr("privacy.masked.key")
            return m.group(1) + "=" + REDACTED

        out = _PAIR_RE.sub(one, text)
        return text if out == text else out

    def mask_value(self, key: str, value: AttributeValue) -> AttributeValue:
        """Mask one attribute value. Returns ``value`` itself when nothing changed.

        Sequences are returned as-is when unchanged; a sequence of ints in which a
        card number was found becomes a tuple of strings (attribute sequences must
        be homogeneous). Nested mappings (OTel ``AnyValue``) are masked like
        attributes, keys included; bytes are scanned as latin-1 text.
        """
        try:
            if self._keys.is_sensitive(key):
                stats.incr("privacy.masked.key")
                return REDACTED
            return self._scan(value)
        except Exception as exc:  # fail closed
            stats.swallow("privacy.mask_failed", "masking %r failed: %r", key, exc)
            return REDACTED

    def _scan(self, value: AttributeValue) -> AttributeValue:
        if isinstance(value, str):
            return self.mask_text(value)
        if value is None or isinstance(value, (bool, float)):
            return value
        if isinstance(value, int):
            return _mask_int(value)
        if isinstance(value, (bytes, bytearray)):
            # OTel log bodies may be bytes; latin-1 maps every byte, so text found
            # in them is masked and the rest round-trips unchanged.
            text = bytes(value).decode("latin-1")
            masked = mask_text(text)
            return value if masked is text else masked.encode("latin-1", "replace")
        if isinstance(value, Mapping):
            return self.mask_attributes(value)
        if isinstance(value, Sequence):
            return self._scan_sequence(value)
        stats.incr("privacy.unsupported_value")
        return REDACTED

    def _scan_sequence(self, values: Sequence[AttributeValue]) -> AttributeValue:
        out = [self._scan(item) for item in values]
        if all(new is old for new, old in zip(out, values)):
            return values
        if all(isinstance(x, (str, int, float, bool)) for x in out):
            # A card became a string; attribute sequences must stay homogeneous.
            return tuple(x if isinstance(x, str) else str(x) for x in out)
        return tuple(out)

    def mask_attributes(self, attrs: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
        """Masked copy of ``attrs`` — or ``attrs`` itself (when it is a dict) if nothing
        needed masking. Callers must treat the result as read-only."""
        out: dict[str, AttributeValue] | None = None
        decide = self._keys.is_sensitive
        decided = self._keys.decided
        clean = self._clean
        for key, value in attrs.items():
            # Inlined fast paths for the common clean str/number attribute.
            sensitive = decided.get(key)
            if sensitive is None:
                sensitive = decide(key)
            kind = type(value)
            if sensitive:
                new: AttributeValue = self.mask_value(key, value)
            elif kind is str:
                if value in clean:
                    continue
                new = self.mask_text(value)  # type: ignore[arg-type]
                if new is value and len(value) <= _CLEAN_LEN:
                    if len(clean) >= _CLEAN_MAX:
                        clean.clear()
                    clean.add(value)
                    continue
            elif kind is float or kind is bool or (kind is int and not _CARD_MIN <= value < _CARD_MAX):  # type: ignore[operator]
                continue  # an int this small cannot be a card number
            else:
                new = self.mask_value(key, value)
            if new is not value:
                if out is None:
                    out = dict(attrs)
                out[key] = new
        if out is not None:
            return out
        return attrs if type(attrs) is dict else dict(attrs)

    def log_filter(self) -> logging.Filter:
        """A filter masking log records' message, args, extras and exception text."""
        from .logfilter import MaskingFilter

        return MaskingFilter(self)

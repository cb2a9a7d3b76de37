"""Which attribute and field names are sensitive by name alone.

A value under ``payment.card_number`` must go whatever it looks like (a test card,
a token the regexes do not recognise, a partially typed number), so names are
checked before values are scanned. Names are compared after normalisation —
lower case, ``-`` and spaces to ``_`` — on the whole key (dots also to ``_``) and
on its last dotted segment, so ``payment.Card-Number``, ``customer.email`` and
``E-Mail`` all match while ``card_brand`` or ``email_verified`` do not.

Decisions are cached per raw key: span attribute keys repeat endlessly, so the
normalisation runs once per distinct key. The cache is bounded (cleared when full)
so programs that generate keys cannot grow it without limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

DEFAULT_SENSITIVE_KEYS: Final[tuple[str, ...]] = (
    "card_number", "cardnumber", "card_no", "card_num", "pan", "card", "credit_card",
    "creditcard", "cc_number", "ccnumber", "account_number",
    "cvv", "cvc", "cvv2", "cvc2", "cvn", "csc", "security_code", "card_security_code",
    "email", "e_mail", "email_address", "mail",
    "phone", "phone_number", "phonenumber", "telephone", "tel", "msisdn", "mobile",
    "mobile_number", "mobile_phone", "cell", "cellphone",
    "iban", "password",
)  # fmt: skip

_CACHE_MAX: Final = 4096


def normalise_key(key: str) -> str:
    """Lower case, ``-``/``.``/space → ``_``."""
    return key.lower().replace("-", "_").replace(".", "_").replace(" ", "_")


class KeyPolicy:
    """``is_sensitive(key)``: whole normalised key or its last dotted segment is listed."""

    __slots__ = ("_names", "_cache")

    def __init__(self, names: Iterable[str]) -> None:
        self._names = frozenset(normalise_key(n) for n in names if n and n.strip())
        self._cache: dict[str, bool] = {}

    @property
    def names(self) -> frozenset[str]:
        return self._names

    @property
    def decided(self) -> dict[str, bool]:
        """The decisions made so far, by key (read-only for callers; one lookup
        instead of a method call on the masker's hot loop)."""
        return self._cache

    def is_sensitive(self, key: str) -> bool:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        whole = normalise_key(key)
        last = normalise_key(key.rsplit(".", 1)[-1])
        hit = whole in self._names or last in self._names
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = hit
        return hit

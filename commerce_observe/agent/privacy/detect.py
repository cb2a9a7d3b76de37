"""Finding card numbers, e-mail addresses and phone numbers in free text.

Three passes, each one precompiled regex whose ``sub`` returns the very same string
object when nothing matches (so the common case allocates nothing):

* **e-mail** (only when the text contains ``@``): local part in RFC 5322 atom
  characters, a domain with at least one dot → ``[EMAIL]``.
* **card**: a run of digit groups separated by single spaces or dashes with at
  least 12 digits, not glued to a letter, digit or ``+``, not starting in a decimal
  fraction (``12.34``) and never inside or into a UUID (UUIDs are matched first and
  kept). Inside the run every window of whole groups totalling 12-19
  digits is tried, longest first (groups of more than 8 digits only stand alone),
  and masked when it passes the Luhn check — and,
  for 12-14 digits, also a card-issuer prefix (IIN) check → ``[CARD ****1234]``.
* **CVV**: 3-4 digits right after ``cvv``/``cvc``/``cvn``/``csc``/``security code``
  (``cvv: 123`` → ``cvv: [REDACTED]``); elsewhere three digits are just three digits.
* **phone**: E.164 (``+`` and 7-15 digits, with spaces, dots, dashes or
  parentheses between) and three common national shapes: ``(555) 123-4567``,
  ``555-123-4567`` / ``555.123.4567`` / ``555 123 4567``, and trunk-``0`` forms such
  as ``020 7946 0958`` (at least 11 characters, so ``2024-01-15`` is never one)
  → ``[PHONE]``.

Why these boundaries: trace and span ids are hex, so any digit run inside them
touches a letter; UUIDs are recognised whole; ISO timestamps, amounts
(``1234.56``), order ids (``ord-000123``) and offsets are short runs or broken by
``:``/``.``/``T``. Epoch milliseconds are 13 digits starting with ``1``, which no
13-digit card (Visa ``4``, Maestro ``50``/``56``-``69``) does — hence the IIN check
for short lengths. The residual risk is documented in ``docs/privacy.md``.

We keep the last four digits of a card (as PCI DSS allows for display) because
"which card" is the first question in a payment incident; the other digits are gone.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_plus

from commerce_observe._internal.redact import redact_credentials
from commerce_observe._internal.selfstats import stats

EMAIL: Final = "[EMAIL]"
PHONE: Final = "[PHONE]"

#: Unicode letters and digits too (``\w``): internationalised addresses (RFC 6531) and
#: domains (``josé@exämple.de``, ``用户@例子.广告``) are addresses all the same.
_EMAIL_RE: Final = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]+@[\w-]+(?:\.[\w-]+)+")
#: In a URL or a query, ``/``, ``?``, ``&`` and ``=`` before the address delimit it
#: (``https://shop/x?email=ann@example.com``): the part before the last of them is kept.
_EMAIL_CUT_RE: Final = re.compile(r".*[/?&=](?=[^@]*[^/?&=@][^@]*@)")
_UUID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])"
#: A UUID is consumed whole (and returned unchanged) so no digit run starts inside
#: one; a run may not step into one either, nor start in a decimal fraction.
_CARD_RUN_RE: Final = re.compile(
    rf"(?<![0-9A-Za-z])(?P<u>{_UUID})"
    rf"|(?<![0-9A-Za-z+])(?<!\d\.)\d(?:(?:[ -](?!{_UUID}))?\d){{11,}}(?![0-9A-Za-z])"
)
_SEP_RE: Final = re.compile(r"([ -])")
_MAX_GROUP: Final = 8
_FRACTION_RE: Final = re.compile(r"\.\d")
_PHONE_RE: Final = re.compile(
    r"(?<![0-9A-Za-z+])\+\d(?:[ .()-]{0,2}\d){6,14}(?!\d)"
    r"|(?<![0-9A-Za-z+:-])(?<!\d\.)(?:"  # after a word and a dot ("shop.010-..."), not in a number
    r"\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|\d{3}([-. ])\d{3}\1\d{4}"
    r"|00[1-9](?:[ .()-]{0,2}\d){6,13}"  # international prefix instead of +: 0082 10 1234 5678
    r"|0[1-9]\d{0,3}([ .-])\d{3,4}\2\d{4}"  # trunk 0: 02-1234-5678, 010.1234.5678
    r"|0[1-9]\d{0,3}[ -]\d{3,4}[ -]?\d{3,4}"  # 020 7946 0958, 010-12345678
    r"|0[1-9]\d{7,10}"  # trunk 0, bare: 01012345678, 0212345678
    r")(?![0-9A-Za-z]|[.-]\d)"
)
#: Cards printed with dots, underscores or slashes: whole groups of four only, so an
#: amount (``1234.56``), a version or a date is never read as one.
_CARD_ALT_RE: Final = re.compile(r"(?<![0-9A-Za-z])(?<![._/]\d)\d{4}([._/])\d{4}\1\d{4}\1\d{1,7}(?![0-9A-Za-z]|[._/]\d)")
_ANY_DIGIT: Final = re.compile(r"\d")
# Gates: single character-class repetitions, which the regex engine runs much
# faster than the full patterns' lookarounds and nested groups.
_CARD_GATE: Final = re.compile(r"\d[\d -]{10,}\d")
#: Every phone shape starts with ``+``, ``(``, a ``0`` and 9+ characters, or is 12+
#: characters long (``555-123-4567``): ``2024-01-15`` and times pass no alternative.
_PHONE_GATE: Final = re.compile(r"\+\d|\(\d|0[\d .-]{7,}\d|\d[\d .-]{10,}\d")
_UUID_ONLY: Final = re.compile(_UUID)
#: Hex text with at least one letter (ids): nothing in it can be masked.
_HEX_WORD: Final = re.compile(r"(?=[0-9]*[a-fA-F])[0-9a-fA-F]+")
#: A CVV cannot be recognised by its digits, only by the word in front of it.
_CVV_RE: Final = re.compile(
    r"(?i)(?<![0-9a-z])(cvv2?|cvc2?|cvn|csc|security[ _-]?code)([ \t]*[:=#]?[ \t]*)\d{3,4}(?!\d)"
)

_MAESTRO: Final = ("50", "56", "57", "58", "59", "6")
#: Issuer prefixes that exist at 12-14 digits: Maestro (12-19), Visa (13),
#: Diners Club (14). Epoch milliseconds (13 digits, ``1``-``3`` until 2096) never match.
_SHORT_IIN: Final = {
    12: _MAESTRO,
    13: ("4",) + _MAESTRO,
    14: ("300", "301", "302", "303", "304", "305", "36", "38", "39") + _MAESTRO,
}


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of an all-digit string."""
    total = 0
    double = False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """12-19 digits, not starting with 0 (nor with 1 unless 15 long: UATP), Luhn-valid,
    and for 12-14 digits an issuer prefix we know."""
    n = len(digits)
    if n < 12 or n > 19 or digits[0] == "0":
        return False  # no issuer number starts with 0 (and all zeros is Luhn-valid)
    if digits[0] == "1" and n != 15:
        return False  # only UATP (15 digits) starts with 1; epoch micro/nanoseconds (16, 19) do too
    if n <= 14 and not digits.startswith(_SHORT_IIN[n]):
        return False
    return luhn_ok(digits)


def card_label(digits: str) -> str:
    return "[CARD ****" + digits[-4:] + "]"


def _mask_run(m: re.Match[str]) -> str:
    run = m.group(0)
    if m.group("u") is not None:
        return run
    parts = _SEP_RE.split(run)  # digits, sep, digits, sep, ...
    groups = parts[0::2]
    tail = ""
    if len(groups) > 1 and _FRACTION_RE.match(m.string, m.end()):
        # "... 24.00": the last group is an amount's integer part, not card digits.
        tail = parts[-2] + parts[-1]
        del parts[-2:]
        groups.pop()
    out: list[str] = []
    i = 0
    changed = False
    n = len(groups)
    while i < n:
        hit = -1
        total = 0
        lengths: list[tuple[int, int]] = []
        for j in range(i, n):
            size = len(groups[j])
            # Printed cards group 4-6 digits; a group longer than 8 stands alone
            # (an epoch-millis value next to "27.00" is not one number).
            if j > i and (size > _MAX_GROUP or len(groups[i]) > _MAX_GROUP):
                break
            total += size
            if total > 19:
                break
            lengths.append((j, total))
        for j, total in reversed(lengths):
            if total >= 12 and is_card_number("".join(groups[i : j + 1])):
                hit = j
                break
        if hit < 0:
            out.append(groups[i])
            if i + 1 < n:
                out.append(parts[2 * i + 1])
            i += 1
            continue
        out.append(card_label("".join(groups[i : hit + 1])))
        if hit + 1 < n:
            out.append(parts[2 * hit + 1])
        changed = True
        i = hit + 1
    if not changed:
        return run
    stats.incr("privacy.masked.card")
    return "".join(out) + tail


def _mask_email(m: re.Match[str]) -> str:
    stats.incr("privacy.masked.email")
    cut = _EMAIL_CUT_RE.match(m.group(0))
    return EMAIL if cut is None else cut.group(0) + EMAIL


def _mask_cvv(m: re.Match[str]) -> str:
    stats.incr("privacy.masked.cvv")
    return m.group(1) + m.group(2) + "[REDACTED]"


def _mask_phone(m: re.Match[str]) -> str:
    stats.incr("privacy.masked.phone")
    return PHONE


def mask_text(text: str) -> str:
    """Mask every card number, e-mail address and phone number in ``text``.

    Returns ``text`` itself (same object) when nothing was found.
    """
    if len(text) == 36 and _UUID_ONLY.match(text) is not None:
        return text  # message and event ids: the most common long value
    if _HEX_WORD.fullmatch(text) is not None:
        # Trace, span and CloudEvents ids: every digit run touches a letter or is
        # the whole string, which holds a letter — so no card; no ``@``, ``+``,
        # separator or CVV word either.
        return text
    return _mask_full(text)


def _mask_alt_card(m: re.Match[str]) -> str:
    digits = m.group(0).replace(m.group(1), "")
    if not is_card_number(digits):
        return m.group(0)
    stats.incr("privacy.masked.card")
    return card_label(digits)


def _mask_full(text: str) -> str:
    """:func:`mask_text` without its id shortcuts (the property tests check they agree)."""
    masked = _mask_plain(text)
    if "%" in text or "+" in text:
        # URL-encoded text (a query, a form body, requests' params=): what it says
        # decoded is what it carries. When the decoded form holds something to mask,
        # the masked decoded form is returned (twice: double encoding).
        for _ in range(2):
            decoded = unquote_plus(masked)
            if decoded == masked:
                break
            again = _mask_plain(decoded)
            if again is decoded:
                break
            masked = again
    return masked


def _mask_plain(text: str) -> str:
    original = text
    if "@" in text:
        text = redact_credentials(text)
        text = _EMAIL_RE.sub(_mask_email, text)
    if _ANY_DIGIT.search(text) is None:
        return text
    # Cheap gates keep the full patterns off most strings: order ids, amounts and
    # ISO timestamps fail the card gate, and most fail the phone and CVV gates.
    if _CARD_GATE.search(text) is not None:
        text = _CARD_RUN_RE.sub(_mask_run, text)
    if "." in text or "_" in text or "/" in text:
        text = _CARD_ALT_RE.sub(_mask_alt_card, text)
    lower = text.lower()
    if "cv" in lower or "cs" in lower or "secur" in lower:
        text = _CVV_RE.sub(_mask_cvv, text)
    if _PHONE_GATE.search(text) is not None:
        text = _PHONE_RE.sub(_mask_phone, text)
    # A candidate that turned out not to be a card still makes ``sub`` build a new
    # string; hand back the original so callers can test ``is`` for "unchanged".
    return original if text == original else text

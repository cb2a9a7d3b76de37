"""Property tests: what must never survive, what must always pass unchanged."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from commerce_observe.agent.privacy import Masker, luhn_ok
from commerce_observe.agent.privacy.detect import is_card_number

M = Masker()

MAESTRO = ["50", "56", "57", "58", "59", "6"]
SHORT_PREFIXES = {12: MAESTRO, 13: ["4", *MAESTRO], 14: ["300", "305", "36", "38", "39", *MAESTRO]}


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """Luhn-valid 12-19 digit numbers; 12-14 digits carry an issuer prefix, and only
    15-digit ones (UATP) start with 1 (see docs)."""
    length = draw(st.integers(12, 19))
    prefix = draw(st.sampled_from(SHORT_PREFIXES[length])) if length <= 14 else str(draw(st.integers(1 if length == 15 else 2, 9)))
    body = prefix + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1)))
    check = next(d for d in "0123456789" if luhn_ok(body + d))
    return body + check


@st.composite
def grouped(draw: st.DrawFn, card: str) -> str:
    """The number bare, or in groups of 1-8 digits (as printed cards are) joined by
    single spaces or dashes, mixed freely."""
    if draw(st.booleans()):
        return card
    out = []
    i = 0
    while i < len(card):
        size = draw(st.integers(1, 8))
        out.append(card[i : i + size])
        i += size
    seps = draw(st.lists(st.sampled_from([" ", "-"]), min_size=len(out) - 1, max_size=len(out) - 1))
    text = out[0]
    for sep, part in zip(seps, out[1:]):
        text += sep + part
    return text


# Surrounding text: anything, joined to the number by a separator that is not a
# letter, digit, '+', space or dash (a number glued to letters or digits is part of
# a bigger identifier, which we deliberately leave alone — see docs/privacy.md).
boundary = st.sampled_from([" | ", ", ", ": ", "=", "\n", "(", ")", "; ", "\t", "/"])
filler = st.text(max_size=40)


@settings(max_examples=300)
@given(card_numbers().flatmap(lambda c: st.tuples(st.just(c), grouped(c))), filler, boundary, boundary, filler)
def test_cards_never_survive(card_and_text: tuple[str, str], before: str, b1: str, b2: str, after: str) -> None:
    card, text = card_and_text
    assert is_card_number(card)
    out = M.mask_text(before + b1 + text + b2 + after)
    digits_only = "".join(ch for ch in out if ch.isdigit())
    assert card[:-4] not in digits_only.replace(" ", "") or card[:-4] in "".join(c for c in before + after if c.isdigit())


@given(card_numbers())
def test_card_ints_are_masked(card: str) -> None:
    assert M.mask_value("amount_or_whatever", int(card)) == f"[CARD ****{card[-4:]}]"


@settings(max_examples=300)
@given(st.emails(), filler, boundary, boundary, filler)
def test_emails_never_survive(email: str, before: str, b1: str, b2: str, after: str) -> None:
    assume(email not in before + after)
    out = M.mask_text(before + b1 + email + b2 + after)
    assert email not in out
    assert email.split("@", 1)[1] not in out or email.split("@", 1)[1] in before + after


@given(st.text(max_size=60))
def test_idempotent(text: str) -> None:
    once = M.mask_text(text)
    assert M.mask_text(once) == once


@given(card_numbers(), st.emails())
def test_idempotent_on_masked_output(card: str, email: str) -> None:
    once = M.mask_text(f"{card} {email} +44 20 7946 0958")
    assert M.mask_text(once) is once


hex_ids = st.one_of(
    st.integers(1, (1 << 128) - 1).map(lambda v: f"{v:032x}"),
    st.integers(1, (1 << 64) - 1).map(lambda v: f"{v:016x}").filter(lambda s: not s.isdigit()),
    st.uuids().map(str),
    st.builds(lambda u: str(uuid.UUID(int=u)), st.integers(0, (1 << 128) - 1)),
)
timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=timezone.utc).isoformat()
)
amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False).map(str)
order_ids = st.integers(0, 10**6).map(lambda n: f"ord-{n:06d}")
# Epoch millis start with 1-3 until 2096; from then on they look like 13-digit Visa (docs).
epoch_ms = st.integers(946684800000, 3999999999999).map(str)
offsets = st.integers(0, 10**11).map(str)


@settings(max_examples=500)
@given(st.lists(st.one_of(hex_ids, timestamps, amounts, order_ids, epoch_ms, offsets), min_size=1, max_size=5))
def test_domain_values_pass_unchanged(values: list[str]) -> None:
    for value in values:
        assert M.mask_text(value) is value
    # In free text, fields are delimited (single spaces between bare numbers are
    # ambiguous with card grouping: see docs/privacy.md).
    text = " | ".join(values)
    assert M.mask_text(text) is text
    assert M.mask_text(f"order {values[0]} at {values[-1]}") == f"order {values[0]} at {values[-1]}"
    attrs = {f"k{i}": v for i, v in enumerate(values)}
    assert M.mask_attributes(attrs) is attrs


def test_epoch_range_ints_pass() -> None:
    now = int(datetime(2024, 6, 1, tzinfo=timezone.utc).timestamp() * 1000)
    for step in range(0, 10_000, 7):
        v = now + step * int(timedelta(hours=1).total_seconds() * 1000)
        assert M.mask_value("ts", v) == v


hex_words = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=64).filter(
    lambda t: any(c.isalpha() for c in t))


@settings(max_examples=500)
@given(st.one_of(hex_words, card_numbers().flatmap(
    lambda c: st.tuples(hex_words, hex_words).map(lambda hw: hw[0] + c + hw[1]))))
def test_id_shortcut_agrees_with_full_scan(text: str) -> None:
    """``mask_text`` returns hex ids (with a letter) without scanning: the full scan must
    leave them unchanged too, even with a valid card number glued inside."""
    from commerce_observe.agent.privacy.detect import _mask_full, mask_text

    assert mask_text(text) is text
    assert _mask_full(text) == text


@settings(max_examples=200)
@given(card_numbers())
def test_all_digit_card_is_not_taken_for_an_id(card: str) -> None:
    from commerce_observe.agent.privacy.detect import mask_text

    assert card not in mask_text(card)


def test_clean_memo_does_not_bypass_sensitive_keys() -> None:
    """A value first seen clean under a harmless key is still redacted under a sensitive one."""
    masker = Masker()
    assert masker.mask_attributes({"note": "hello"}) == {"note": "hello"}
    assert masker.mask_attributes({"note": "hello", "card.cvv": "hello"})["card.cvv"] == "[REDACTED]"

"""Masker behaviour on the values a commerce service really carries."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.util.types import AttributeValue

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.privacy import REDACTED, Masker, is_card_number, luhn_ok

M = Masker()

# Published test card numbers (Visa, Mastercard, Amex, Discover, JCB, Diners, Maestro).
CARDS = [
    "4111111111111111", "4012888888881881", "5555555555554444", "2223003122003222",
    "378282246310005", "6011111111111117", "3530111333300000", "30569309025904",
    "6759649826438453", "4222222222222",
]  # fmt: skip


@pytest.mark.parametrize("card", CARDS)
def test_published_test_cards_are_masked_keeping_last_four(card: str) -> None:
    assert is_card_number(card)
    assert M.mask_text(f"paid with {card}.") == f"paid with [CARD ****{card[-4:]}]."
    grouped = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    assert card[:-4] not in M.mask_text(grouped).replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1234-1234-1234-123456789012",
        "2024-01-15T12:30:45.123456+00:00",
        "2024-01-15 12:30:45",
        "amount 1234.56 EUR",
        "9999999999.99",
        "ord-000123",
        "offset 123456789012",
        "1718000000000",  # epoch millis (Luhn-valid? irrelevant: prefix 1)
        "1718000000007",
        "4111111111111112",  # Luhn-invalid
        "1234567890123456789012",  # too long for a card
        "v1.2.3",
        "10.0.0.1:9092",
        "orders-v2@3",
    ],
)
def test_no_false_positives(text: str) -> None:
    assert M.mask_text(text) is text


def test_epoch_millis_luhn_valid_is_kept_by_iin_rule() -> None:
    # find a Luhn-valid 13-digit epoch-millis value: it is not a card by IIN
    ms = next(str(v) for v in range(1718000000000, 1718000000100) if luhn_ok(str(v)))
    assert not is_card_number(ms)
    assert M.mask_text(ms) == ms
    assert M.mask_value("ts", int(ms)) == int(ms)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob.smith+tag@shop.example.com now", "mail [EMAIL] now"),
        ("call +44 20 7946 0958", "call [PHONE]"),
        ("call +1 (555) 123-4567.", "call [PHONE]."),
        ("+4915123456789", "[PHONE]"),
        ("tel (555) 123-4567", "tel [PHONE]"),
        ("tel 555-123-4567", "tel [PHONE]"),
        ("tel 555.123.4567", "tel [PHONE]"),
        ("tel 020 7946 0958", "tel [PHONE]"),
        ("bad cvv: 123", "bad cvv: [REDACTED]"),
        ("CVC2=4567", "CVC2=[REDACTED]"),
    ],
)
def test_emails_phones_cvv(text: str, expected: str) -> None:
    assert M.mask_text(text) == expected


@pytest.mark.parametrize(
    "key",
    ["card_number", "payment.card_number", "Card-Number", "customer.E-Mail", "billing.phone", "CVV", "payment.cvc2", "security code", "pan"],
)
def test_sensitive_keys(key: str) -> None:
    assert M.mask_value(key, "anything at all") == REDACTED
    assert M.mask_value(key, 42) == REDACTED


@pytest.mark.parametrize("key", ["card_brand", "email_verified", "phone_country", "payment.method", "pan_id_x", "order.id"])
def test_non_sensitive_keys(key: str) -> None:
    assert M.mask_value(key, "visa") == "visa"


def test_custom_keys_replace_defaults() -> None:
    m = Masker(["loyalty.Member-Id"])
    assert m.mask_value("loyalty.member-id", "x") == REDACTED
    assert m.mask_value("member_id", "x") == "x"
    assert m.mask_value("email", "plain") == "plain"
    assert m.sensitive_keys == frozenset({"loyalty_member_id"})


def test_integers_and_sequences() -> None:
    assert M.mask_value("n", 4111111111111111) == "[CARD ****1111]"
    assert M.mask_value("n", 123456) == 123456
    assert M.mask_value("b", True) is True
    assert M.mask_value("f", 4111111111111111.0) == 4111111111111111.0
    seq = ("ok", "a@b.io")
    assert M.mask_value("s", seq) == ("ok", "[EMAIL]")
    ints = [1, 4111111111111111]
    assert M.mask_value("s", ints) == ("1", "[CARD ****1111]")
    clean = [1, 2]
    assert M.mask_value("s", clean) is clean


def test_mask_attributes_returns_input_when_clean() -> None:
    attrs: dict[str, AttributeValue] = {"order.id": "ord-000123", "amount": 1234.56, "messaging.kafka.offset": 42, "trace": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert M.mask_attributes(attrs) is attrs
    dirty = {**attrs, "customer.email": "a@b.io", "note": "card 4111 1111 1111 1111"}
    out = M.mask_attributes(dirty)
    assert out is not dirty and dirty["customer.email"] == "a@b.io"  # input untouched
    assert out["customer.email"] == REDACTED and out["note"] == "card [CARD ****1111]"
    assert out["order.id"] == "ord-000123"
    assert stats.get("privacy.masked.key") == 1 and stats.get("privacy.masked.card") == 1


def test_unsupported_value_fails_closed() -> None:
    assert M.mask_value("x", object()) == REDACTED  # type: ignore[arg-type]
    assert stats.get("privacy.unsupported_value") == 1


def test_any_value_shapes() -> None:
    assert M.mask_value("x", None) is None
    assert M.mask_value("body", b"to a@b.io") == b"to [EMAIL]"
    raw = b"\xff\x00 plain"
    assert M.mask_value("body", raw) is raw
    assert M.mask_value("m", {"email": "x", "n": {"note": "4111111111111111"}}) == {"email": REDACTED, "n": {"note": "[CARD ****1111]"}}


def test_log_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.privacy.filter")
    f = M.log_filter()
    logger.addFilter(f)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("order %s paid by %s with %d", "ord-1", "bob@shop.io", 4111111111111111)
            logger.info("amount %d", 1234)
            logger.info("x", extra={"email": "bob@shop.io", "customer_email": "bob@shop.io", "note": "+44 20 7946 0958", "obj": object()})
            try:
                raise ValueError("card 4111111111111111 declined")
            except ValueError:
                logger.exception("failed for %s", "bob@shop.io")
    finally:
        logger.removeFilter(f)
    r = caplog.records
    assert r[0].getMessage() == "order ord-1 paid by [EMAIL] with [CARD ****1111]"
    assert r[1].getMessage() == "amount 1234"
    assert r[2].__dict__["email"] == REDACTED and r[2].__dict__["customer_email"] == "[EMAIL]" and r[2].__dict__["note"] == "[PHONE]"
    assert "4111111111111111" not in caplog.text and "bob@shop.io" not in caplog.text
    assert "[CARD ****1111]" in (r[3].exc_text or "")

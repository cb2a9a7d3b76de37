"""A consumer span vetted as it starts skips the masker's attribute pass at conversion
(``LightSpan.vetted``): what it exports must be exactly what the full pass gives for the
same attributes, whatever a peer wrote into its ``ce_*`` headers and key, and any later
attribute write, a sensitive key or a number in the card range must turn vetting off."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_observe.agent import current
from commerce_observe.agent._lightspan import LightSpan
from commerce_observe.agent.messaging import semconv as sc
from commerce_observe.agent.messaging.consumer import begin_delivery
from commerce_observe.agent.propagation import KafkaHeaders
from commerce_observe.testing import Capture, capture
from tests.privacy.test_every_exit import SECRETS, benign, cards, phones
from tests.privacy.test_masking_properties import card_numbers

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
#: What a peer may put in ce_id, ce_source, ce_type or the key: ids, secrets, benign values, anything.
VALUES = st.one_of(st.builds(lambda: uuid.uuid4().hex), SECRETS.map(lambda kv: kv[1]), card_numbers(), cards(),
                   phones(), benign().map(lambda d: d["epoch_ms"]), st.sampled_from(["cvv 123", "cvc: 4567",
                   "https://ann:pw-secret@shop.example/x", "card_number=4111111111111111", "/shop/orders", ""]), TEXT)


def _consume(headers: list[tuple[str, bytes]], key: bytes | None = None, offset: int = 7) -> Any:
    delivery = begin_delivery(current.state(), object(), sc.KAFKA, "orders", KafkaHeaders(headers), partition=0,
                              offset=offset, key=key, group="g1", server=("127.0.0.1", 9092))
    assert delivery is not None
    return delivery


def _headers(ce_id: str, source: str, ce_type: str, sequence: int | None) -> list[tuple[str, bytes]]:
    headers = [("traceparent", TRACEPARENT), ("ce_id", ce_id.encode()), ("ce_source", source.encode()),
               ("ce_type", ce_type.encode()), ("ce_time", b"2026-12-07T06:00:00.000000Z")]
    if sequence is not None:
        headers.append(("ce_sequence", b"%020d" % sequence))
    return headers


def _exported_and_expected(cap: Capture, delivery: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    delivery.finish()
    raw = dict(delivery.span.attributes)  # as the span ended, before any masking
    (record,) = cap.spans()
    cap.clear()
    return dict(record.attributes), dict(cap.runtime.masker.mask_attributes(raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, VALUES, VALUES, VALUES, st.one_of(st.none(), st.integers(0, 10**20 - 1)), st.integers(0, 10**15))
def test_a_vetted_span_exports_what_the_full_masking_pass_gives(ce_id: str, source: str, ce_type: str, key: str,
                                                               sequence: int | None, offset: int) -> None:
    with capture() as cap:
        delivery = _consume(_headers(ce_id, source, ce_type, sequence), key.encode(), offset)
        exported, expected = _exported_and_expected(cap, delivery)
        assert exported == expected


def test_our_own_messages_are_vetted_and_export_unchanged() -> None:
    with capture() as cap:
        for i in range(3):
            delivery = _consume(_headers(uuid.uuid4().hex, "/shop/orders", "commerce.order.created", i), b"k1")
            assert type(delivery.span) is LightSpan and delivery.span.vetted  # the fast road is taken
            exported, expected = _exported_and_expected(cap, delivery)
            assert exported == expected
            assert exported[sc.MESSAGE_ID] == delivery.event_id and exported[sc.SEQUENCE] == i


def test_what_vetting_cannot_vouch_for_takes_the_full_pass() -> None:
    card = "4111111111111111"
    with capture() as cap:
        secret = _consume(_headers(f"ord {card}", "/shop/orders", "commerce.order.created", 1))
        assert not secret.span.vetted
        exported, _ = _exported_and_expected(cap, secret)
        assert card not in exported[sc.MESSAGE_ID] and "[CARD ****1111]" in exported[sc.MESSAGE_ID]

        big = _consume(_headers(uuid.uuid4().hex, "/shop/orders", "t", int(card)))  # a sequence in the card range
        assert not big.span.vetted
        exported, _ = _exported_and_expected(cap, big)
        assert exported[sc.SEQUENCE] == "[CARD ****1111]"

        later = _consume(_headers(uuid.uuid4().hex, "/shop/orders", "t", 2))
        assert later.span.vetted
        later.span.set_attribute("customer.note", f"card {card}")  # the application writes after the start
        assert not later.span.vetted
        exported, _ = _exported_and_expected(cap, later)
        assert card not in str(exported["customer.note"])


def test_a_configured_sensitive_key_among_the_message_keys_is_redacted() -> None:
    with capture(sensitive_fields=["latency_ms", "key"]) as cap:
        delivery = _consume(_headers(uuid.uuid4().hex, "/shop/orders", "t", 1), b"k1")
        assert not delivery.span.vetted
        exported, expected = _exported_and_expected(cap, delivery)
        assert exported == expected
        assert exported[sc.LATENCY_MS] == "[REDACTED]" and exported[sc.KAFKA_KEY] == "[REDACTED]"

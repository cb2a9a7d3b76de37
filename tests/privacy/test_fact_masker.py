"""``FactMasker`` (the audit writer's masker of records) masks exactly what
``mask_fact`` masks, whichever field holds the sensitive text and whether the record
takes its fast path (only an event id of its own) or the generic one."""

from __future__ import annotations

from dataclasses import dataclass, fields

from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_observe.agent.messaging.facts import MessageFact, Stage, message_fact
from commerce_observe.agent.privacy import Masker
from commerce_observe.agent.privacy.records import FACT_TEXT_FIELDS, FactMasker, mask_fact

MASKER = Masker()
SENSITIVE = ("4111 1111 1111 1111", "ann@example.com", "+44 20 7946 0958", "cvv: 123",
             "https://bob:s3cret@shop.example/x", "card=4111111111111111", "b8e193f919ad120ca7d6cf7b1f4f32de")
#: What must not survive in any field of a masked record.
SECRETS = ("4111 1111 1111 1111", "4111111111111111", "ann@example.com", "7946 0958", "cvv: 123", "s3cret")
BENIGN = ("orders.paid", "/shop/kafka-python-producer-1", "b-6f1d", "com.shop.order.paid",
          "b8e193f919ad120ca7d6cf7b1f4f32de", "ord-000123", "")


def _fact(**text: str | None) -> MessageFact:
    base: dict[str, object] = dict(stage=Stage.HANDLED, system="kafka", destination="orders.paid",
                                   event_id="b8e193f919ad120ca7d6cf7b1f4f32de", event_type=None,
                                   source="/shop/p-1", sequence=7, trace_id="ab" * 16, span_id="cd" * 8,
                                   time_ns=1_700_000_000_000_000_000, partition=0, offset=5, consumer_group="g")
    base.update(text)
    return message_fact(**base)  # type: ignore[arg-type]


def _same(a: object, b: object) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(a))  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.fixed_dictionaries({name: st.sampled_from(SENSITIVE + BENIGN + (None,)) for name in FACT_TEXT_FIELDS
                              if name != "destination"}),
       st.sampled_from(SENSITIVE + BENIGN))
def test_fact_masker_agrees_with_mask_fact(text: dict[str, str | None], destination: str) -> None:
    fact = _fact(destination=destination, **text)
    masker = FactMasker(MASKER)
    for _ in range(2):  # the second time the repeated fields come from the cache
        got = masker(fact)
        assert _same(got, mask_fact(MASKER, fact))
        for name in FACT_TEXT_FIELDS:
            value = getattr(got, name)
            for secret in SECRETS:
                assert value is None or secret not in value


def test_clean_record_comes_back_itself() -> None:
    fact = _fact()
    assert FactMasker(MASKER)(fact) is fact


def test_event_id_masked_on_the_fast_path_with_cached_stable_changes() -> None:
    masker = FactMasker(MASKER)
    first = masker(_fact(source="ann@example.com"))
    second = masker(_fact(source="ann@example.com", event_id="4111-1111-1111-1111"))
    assert first.source == second.source == "[EMAIL]"
    assert second.event_id == "[CARD ****1111]"
    assert second.destination == "orders.paid" and second.offset == 5


@dataclass
class _Partial:
    """A fact type without most of the fields: masked through the generic path."""

    event_id: str
    error: str


def test_fact_type_without_the_fields_takes_the_generic_path() -> None:
    got = FactMasker(MASKER)(_Partial("ann@example.com", "declined 4111 1111 1111 1111"))
    assert got == _Partial("[EMAIL]", "declined [CARD ****1111]")


@settings(max_examples=300)
@given(st.one_of(st.sampled_from(SENSITIVE + BENIGN), st.text(max_size=40)))
def test_shared_memo_masks_as_mask_text_does(text: str) -> None:
    """``mask_shared_text`` (the event id's memo, shared with span attributes) gives what
    ``mask_text`` gives, the first time and from the memo."""
    masker = Masker()
    expected = masker.mask_text(text)
    assert masker.mask_shared_text(text) == expected
    assert masker.mask_shared_text(text) == expected
    assert masker.mask_attributes({"messaging.message.id": text}).get("messaging.message.id") == expected


def test_shared_memo_does_not_bypass_sensitive_keys_or_mask_a_secret_once_seen() -> None:
    masker = Masker()
    fact_masker = FactMasker(masker)
    fact_masker(_fact(event_id="hello-id-1"))
    assert masker.mask_attributes({"payment.cvv": "hello-id-1"})["payment.cvv"] == "[REDACTED]"
    for _ in range(2):
        assert fact_masker(_fact(event_id="4111 1111 1111 1111")).event_id == "[CARD ****1111]"
        assert masker.mask_attributes({"messaging.message.id": "4111 1111 1111 1111"}) == {
            "messaging.message.id": "[CARD ****1111]"}

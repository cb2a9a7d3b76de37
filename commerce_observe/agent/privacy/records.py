"""Masking what leaves outside spans: audit facts and event-store documents.

The audit trail stores what the message headers said (``ce_id``, ``ce_source``,
``ce_type``, the order and payment ids) and the handler's error text; the event
store gets documents whose ids the application chose. Any of them may hold a card
number, a phone number or an e-mail (an order id that is a phone number, an
exception quoting the card). Both are masked on their background threads, with
the same masker as spans, so the masked value of an id is the same on every exit
and records still match one another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from opentelemetry.util.types import AttributeValue

#: The text fields of a :class:`~commerce_observe.agent.messaging.facts.MessageFact`.
FACT_TEXT_FIELDS = ("event_id", "event_type", "source", "destination", "consumer_group", "order_id", "payment_id",
                    "error")

F = TypeVar("F")


class TextMasker(Protocol):
    def mask_text(self, s: str) -> str: ...

    def mask_attributes(self, attributes: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]: ...


def mask_fact(masker: TextMasker, fact: F) -> F:
    """``fact`` itself when nothing needed masking, else a masked copy."""
    changes: dict[str, str] = {}
    for name in FACT_TEXT_FIELDS:
        value = getattr(fact, name, None)
        if isinstance(value, str) and value:
            masked = masker.mask_text(value)
            if masked is not value:
                changes[name] = masked
    return dataclasses.replace(fact, **changes) if changes else fact  # type: ignore[type-var]


def mask_facts(masker: TextMasker | None, facts: Sequence[F]) -> Sequence[F]:
    return facts if masker is None else [mask_fact(masker, f) for f in facts]


def mask_documents(masker: TextMasker | None, docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event-store documents masked like span attributes (key rules and value scan)."""
    if masker is None:
        return list(docs)
    out: list[dict[str, Any]] = []
    for doc in docs:
        masked = masker.mask_attributes(doc)
        out.append(masked if isinstance(masked, dict) else dict(masked))
    return out

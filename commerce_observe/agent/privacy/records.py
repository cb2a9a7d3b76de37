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
from collections.abc import Callable, Mapping, Sequence
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


class FactMasker:
    """:func:`mask_fact` for a stream of facts: the fields every record of a stream
    repeats (type, source, destination, consumer group) are masked once per distinct
    combination (a bounded cache), so a record pays the text scan only for its own
    ids and error. The audit journal masks on the consuming thread, where scanning
    the repeated fields cost more than the rest of the record."""

    STABLE = ("event_type", "source", "destination", "consumer_group")
    OWN = ("event_id", "order_id", "payment_id", "error")

    def __init__(self, masker: TextMasker, size: int = 4096) -> None:
        self.masker = masker
        self.size = size
        self._cache: dict[tuple[Any, ...], dict[str, str]] = {}
        #: The event id is masked through the masker's shared memo when it has one
        #: (``Masker.mask_shared_text``): the span of the message scans the same id.
        self._mask_id: Callable[[str], str] = getattr(masker, "mask_shared_text", None) or masker.mask_text

    def _stable(self, key: tuple[Any, ...]) -> dict[str, str]:
        changes: dict[str, str] = {}
        for name, value in zip(self.STABLE, key):
            if isinstance(value, str) and value:
                masked = self.masker.mask_text(value)
                if masked != value:
                    changes[name] = masked
        if len(self._cache) < self.size:
            self._cache[key] = changes
        return changes

    def __call__(self, fact: F) -> F:
        """The record as :func:`mask_fact` would return it. Reads the fields directly
        (a :class:`MessageFact` has them all); a fact type without some of them takes
        :meth:`_generic`. The usual record carries only its event id of its own: one
        ``mask_text`` call, and the record itself back when nothing changed."""
        try:
            key = (fact.event_type, fact.source, fact.destination, fact.consumer_group)  # type: ignore[attr-defined]
            event_id = fact.event_id  # type: ignore[attr-defined]
            others = fact.order_id or fact.payment_id or fact.error  # type: ignore[attr-defined]
        except AttributeError:
            return self._generic(fact)
        if others:
            return self._generic(fact)
        stable = self._cache.get(key)
        if stable is None:
            stable = self._stable(key)
        if event_id and isinstance(event_id, str):
            masked = self._mask_id(event_id)
            if masked is not event_id and masked != event_id:
                return dataclasses.replace(fact, **stable, event_id=masked)  # type: ignore[type-var]
        return dataclasses.replace(fact, **stable) if stable else fact  # type: ignore[type-var]

    def _generic(self, fact: F) -> F:
        get = getattr
        key = (get(fact, "event_type", None), get(fact, "source", None), get(fact, "destination", None),
               get(fact, "consumer_group", None))
        stable = self._cache.get(key)
        if stable is None:
            stable = self._stable(key)
        changes = dict(stable) if stable else None
        mask = self.masker.mask_text
        for name in self.OWN:
            value = get(fact, name, None)
            if value and isinstance(value, str):
                masked = mask(value)
                if masked is not value and masked != value:
                    if changes is None:
                        changes = {}
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

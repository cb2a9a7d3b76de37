"""A CONSUMER span's attributes: the ones all records of a (system, destination, group,
server) share, built once, and the check that lets a light span skip the masker's
attribute pass at conversion (``LightSpan.vetted``).

Why the check is made where the span starts: conversion masked every attribute of every
consumer span (~19,000 instructions for a Kafka record's sixteen, a Python iteration
each), though most are the same strings message after message and the rest numbers; by
name, where ``consumer._begin`` has them, it is a handful of memo look-ups, and the one
new value, the event id, is scanned once for the span and the audit record alike.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from commerce_observe.agent._lightspan import LightSpan
from commerce_observe.agent.messaging import semconv as sc

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState


class ConsumerConstants:
    """Per (system, destination, group, server): the CONSUMER span's name, the attributes
    all its records share, and whether those and every per-message key are clean under
    the pipeline's masker (``vetted``: None until the first light span asks, see :func:`vet`;
    then ``clean`` and ``mask_text`` are that masker's clean memo and memoising scan)."""

    __slots__ = ("name", "attrs", "vetted", "clean", "mask_text")

    def __init__(self, name: str, attrs: dict[str, AttributeValue]) -> None:
        self.name = name
        self.attrs = attrs
        self.vetted: bool | None = None
        self.clean: Container[str] = ()
        self.mask_text: Callable[[str], str] = str


#: The keys a consumer span gets besides its constant ones (``LATENCY_MS`` at finish).
_MESSAGE_KEYS = (sc.MESSAGE_ID, sc.CE_EVENT_SOURCE, sc.CE_EVENT_TYPE, sc.SEQUENCE, sc.PARTITION, sc.KAFKA_OFFSET,
                 sc.KAFKA_KEY, sc.RECEIVE_LATENCY_MS, sc.LATENCY_MS)
#: Integers from here up may be card numbers (the masker's range): a span holding one is not vetted.
_CARD_MIN = 10**11


def constant_attributes(state: AgentState, system: str, destination: str, group: str | None,
                         server: tuple[str | None, int | None]) -> ConsumerConstants:
    """The :class:`ConsumerConstants` of (system, destination, group, server), built once
    per agent state (bounded)."""
    constants = state.consumer_constants
    key = (system, destination, group, server[0], server[1])
    found = constants.get(key)
    if found is None:
        attrs: dict[str, AttributeValue] = {
            sc.SYSTEM: system,
            sc.DESTINATION: destination,
            sc.OPERATION_TYPE: "process",
            sc.OPERATION: "process",
        }
        if group:
            attrs[sc.CONSUMER_GROUP] = str(group)
        if server[0] is not None:
            attrs[sc.SERVER_ADDRESS] = server[0]
            if server[1] is not None:
                attrs[sc.SERVER_PORT] = server[1]
        found = ConsumerConstants(f"process {destination}", attrs)
        if len(constants) < 4096:
            constants[key] = found
    return found


def vet(span: LightSpan, constants: ConsumerConstants, event_id: str | None, source: str | None,
        type_header: str | None, key: str | None, partition: str | None, sequence: int | None,
        offset: int | None) -> bool:
    """Whether a consumer span's attributes, as ``consumer._begin`` built them, are clean
    under the pipeline's masker: the constant ones and the per-message keys (decided once
    per :class:`ConsumerConstants`), the per-message texts (each found in the masker's
    clean memo, or scanned once into it, where the audit record's masking of the same
    event id then finds it), integers below the card range (floats are never masked).
    This is the check ``Masker.mask_attributes`` makes at conversion, made here where the
    values are at hand by name; a vetted span skips it there. Whatever writes an attribute
    later clears ``vetted``. A state's light spans all convert through one pipeline, so
    one masker per :class:`ConsumerConstants` (which belongs to one state)."""
    verdict = constants.vetted
    if verdict is None:
        verdict = _decide(span.masker, constants)
    if not verdict:
        return False
    if (sequence is not None and sequence >= _CARD_MIN) or (offset is not None and offset >= _CARD_MIN):
        return False
    clean, mask_text = constants.clean, constants.mask_text
    for text in (event_id, source, type_header, key, partition):
        if text and text not in clean and mask_text(text) is not text:
            return False
    return True


def _decide(masker: Any, constants: ConsumerConstants) -> bool:
    """``constants.vetted`` under ``masker`` (None: no masking, nothing to skip)."""
    vet_attrs = getattr(masker, "vetted_attributes", None)
    is_sensitive = getattr(masker, "is_sensitive_key", None)
    mask_text = getattr(masker, "mask_shared_text", None)
    clean = getattr(masker, "clean_memo", None)
    constants.vetted = False
    if vet_attrs is None or is_sensitive is None or mask_text is None or clean is None:
        return False
    if not vet_attrs(constants.attrs) or any(is_sensitive(k) for k in _MESSAGE_KEYS):
        return False
    constants.clean, constants.mask_text = clean, mask_text
    constants.vetted = True
    return True

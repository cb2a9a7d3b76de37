"""The KRaft cluster id the test bed formats Kafka's storage with.

CI once failed before any test ran: the random id began with "-", and
kafka-storage's parser took it for an option. One id in 64 does.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from testbed import kafka


def test_a_cluster_id_that_would_start_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # 0b111110.. is "-" in URL-safe base64
    plain = uuid.UUID(bytes=bytes(range(16)))
    draws = iter([dashed, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))

    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    cluster_id = kafka.new_cluster_id()

    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_cluster_ids_are_22_url_safe_characters_and_differ() -> None:
    ids = {kafka.new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for i in ids)

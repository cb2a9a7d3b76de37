"""Shared fixture for the messaging integrations: an installed runtime with an
in-memory exporter (strict mode)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commerce_observe.testing import Capture, capture


@pytest.fixture
def obs() -> Iterator[Capture]:
    with capture() as cap:
        yield cap

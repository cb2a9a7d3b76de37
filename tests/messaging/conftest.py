"""Shared fixtures for the messaging integrations: an installed runtime with an
in-memory exporter (strict mode), and small waits that fail instead of skipping."""

from __future__ import annotations

from collections.abc import Iterator
import pytest

from commerce_observe.testing import Capture, capture
from tests.support.waiting import wait_for  # noqa: F401  (the messaging tests import it from here)

@pytest.fixture
def obs() -> Iterator[Capture]:
    with capture() as cap:
        yield cap

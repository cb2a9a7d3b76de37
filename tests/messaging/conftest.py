"""Shared fixtures for the messaging integrations: an installed runtime with an
in-memory exporter (strict mode), and small waits that fail instead of skipping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from commerce_observe.testing import Capture, capture

T = TypeVar("T")


@pytest.fixture
def obs() -> Iterator[Capture]:
    with capture() as cap:
        yield cap


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail (never skip) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)

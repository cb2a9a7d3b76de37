"""The one readiness wait of the test suite (a wait, not a timed assertion)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy and return that; fail (never
    skip) when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)

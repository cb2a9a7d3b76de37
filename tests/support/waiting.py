"""The one readiness wait of the test suite (a wait, not a timed assertion)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, *,
             until: Callable[[T], object] = bool, describe: Callable[[T], str] | None = None) -> T:
    """Poll ``probe`` until ``until`` holds for its answer (by default: the answer is
    truthy) and return that answer; fail (never skip) when ``timeout`` seconds pass
    first, with ``describe(last answer)`` in the message when given."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"; {describe(value)}" if describe else ""))
        time.sleep(interval)

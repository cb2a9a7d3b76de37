"""One strict-mode guard: swallow() counts and warns, and in strict mode re-raises the handled error."""

from __future__ import annotations

import pathlib
import re

import pytest

from commerce_observe._internal.selfstats import SelfStats

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "commerce_observe"


def _fail(stats: SelfStats, exc: Exception) -> str:
    try:
        raise exc
    except ValueError as caught:
        stats.swallow("t.failed", "it failed: %r", caught)
        return "swallowed"


def test_swallow_counts_and_returns_when_not_strict() -> None:
    stats = SelfStats()
    assert _fail(stats, ValueError("x")) == "swallowed"
    assert stats.get("t.failed") == 1


def test_swallow_reraises_the_same_exception_in_strict_mode() -> None:
    stats = SelfStats()
    stats.strict = True
    exc = ValueError("x")
    with pytest.raises(ValueError) as info:
        _fail(stats, exc)
    assert info.value is exc
    assert stats.get("t.failed") == 1


def test_no_hand_written_strict_checks_remain() -> None:
    hand_written = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py") if p.name != "selfstats.py"
                    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                    if re.search(r"if\s+stats\.strict\b", line)]
    assert hand_written == []

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commerce_observe._internal.selfstats import stats


@pytest.fixture(autouse=True)
def _strict_stats() -> Iterator[None]:
    """Strict mode: any internal error reaches the test; counters start at zero."""
    stats.reset()
    old = stats.strict
    stats.strict = True
    yield
    stats.strict = old

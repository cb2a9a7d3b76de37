"""CloudEvents header pieces: thread-safe per-destination sequences, RFC 3339 times."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from commerce_observe.agent.messaging import cloudevents as ce


def test_sequence_is_gapless_per_destination_under_threads() -> None:
    sequencer = ce.Sequencer()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    lock = threading.Lock()

    def work(destination: str) -> None:
        mine = [sequencer.next(destination) for _ in range(2000)]
        with lock:
            seen[destination].extend(mine)

    threads = [threading.Thread(target=work, args=("a" if i % 2 else "b",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen["a"]) == list(range(1, 8001)) and sorted(seen["b"]) == list(range(1, 8001))


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_sequence_text_sorts_like_the_number(n: int) -> None:
    assert ce.parse_sequence(ce.format_sequence(n)) == n
    assert (ce.format_sequence(n) < ce.format_sequence(n + 1))


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_time_round_trips_to_the_microsecond(ns: int) -> None:
    text = ce.format_time(ns)
    assert ce.parse_time(text) == ns - ns % 1000
    assert datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo == timezone.utc


def test_bad_values_are_none() -> None:
    assert ce.parse_sequence("-1") is None and ce.parse_sequence("x") is None and ce.parse_sequence(None) is None
    assert ce.parse_time("yesterday") is None and ce.parse_time("2024-01-01T00:00:00") is None

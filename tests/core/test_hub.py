"""The fact hub: dispatch by type, listener isolation, counting."""

import pytest

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.hub import Hub


class Fact:
    pass


def test_listeners_receive_their_fact_type_only() -> None:
    hub = Hub()
    got: list[object] = []
    unsubscribe = hub.subscribe(Fact, got.append)
    hub.emit(Fact())
    hub.emit("not a fact")
    assert len(got) == 1
    unsubscribe()
    hub.emit(Fact())
    assert len(got) == 1


def test_a_failing_listener_is_counted_and_does_not_stop_others() -> None:
    hub = Hub()
    got: list[object] = []

    def broken(_: Fact) -> None:
        raise RuntimeError("boom")

    hub.subscribe(Fact, broken)
    hub.subscribe(Fact, got.append)
    before = stats.get("hub.listener_error")
    stats.strict = False
    try:
        hub.emit(Fact())
    finally:
        stats.strict = True
    assert stats.get("hub.listener_error") == before + 1
    assert len(got) == 1
    with pytest.raises(RuntimeError):
        hub.emit(Fact())  # strict mode (tests) lets the error through

"""Commits and acks: what they cover is handled, and the trail is durable before they go.

A duplicate is born when a consumer handles a record and dies before committing it;
a loss when it commits and dies before handling. The audit trail can only tell
them apart if, whatever the client commits, the records of the messages it covers
are durable first. The client wrappers call three things here:

* :func:`settle_covered` when the *application* commits or acks: the implicit
  deliveries the commit covers are handled (the application says it is done with
  them, as it does by asking for more). An application that commits *before* its
  work (at-most-once) wraps the work in :class:`~commerce_observe.agent.messaging.handling`
  after :func:`~commerce_observe.agent.messaging.defer`, to stay exact.
* :func:`cap_offsets` when the *client* commits on its own (auto-commit, before a
  rebalance): it never commits past a record still being handled implicitly, so
  no commit covers a record whose outcome is not recorded yet.
* :func:`checkpoint` right before the commit, ack or producer flush is sent: a
  :class:`~commerce_observe.agent.messaging.facts.Checkpoint` fact, to which the
  audit trail answers by making everything reported so far durable (bounded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from typing import TYPE_CHECKING

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.messaging.consumer import Delivery, Tracker
from commerce_observe.agent.messaging.facts import Checkpoint

if TYPE_CHECKING:
    from commerce_observe.agent.state import AgentState

#: (topic, partition) -> the first offset a commit does not cover.
Covered = Mapping[tuple[str, int], int]

FAILED = "messaging.commit_hook_failed"


def checkpoint(state: AgentState, system: str) -> None:
    """Before a commit / ack / flush: ``state``'s listeners make every record reported so far durable."""
    the_hub = state.hub
    if the_hub.has_listeners(Checkpoint):
        the_hub.emit(Checkpoint(system))


def durable_later(state: AgentState, system: str) -> Callable[[], bool] | None:
    """A test that turns true once every record reported so far is durable; None
    when nobody keeps records (then there is nothing to wait for)."""
    the_hub = state.hub
    if not the_hub.has_listeners(Checkpoint):
        return None
    cp = Checkpoint(system, wait=False)
    the_hub.emit(cp)
    return cp.durable


def keeps_records(state: AgentState) -> bool:
    """True when some listener of ``state`` (the audit trail) answers checkpoints."""
    return state.hub.has_listeners(Checkpoint)


def settle_covered(tracker: Tracker, covered: Covered | None,
                   covers: Callable[[Delivery], bool] | None = None) -> None:
    """The application committed or acked: its implicit deliveries that the commit
    covers (all of them when ``covered`` is None; ``covers`` decides instead when
    given) are handled. Never raises."""
    try:
        for delivery in list(tracker.pending):
            if delivery.done or delivery.explicit or delivery.deferred:
                continue
            if covers(delivery) if covers is not None else _covers(covered, delivery):
                delivery.finish()
    except Exception as exc:
        stats.record_failure(FAILED, "settling committed records failed: %r", exc)


def _covers(covered: Covered | None, delivery: Delivery) -> bool:
    if covered is None:
        return True
    end = covered.get((delivery.stream, delivery.partition if delivery.partition is not None else -1))
    return end is not None and delivery.offset is not None and delivery.offset < end


def first_unhandled(state: AgentState, group: str | None,
                    topics: Iterable[tuple[str, int]] | None = None) -> dict[tuple[str, int], int]:
    """Per (topic, partition): the lowest offset of a record of ``group`` still being
    handled implicitly (handed out, not settled, not deferred, not in a ``handling`` block)."""
    lowest: dict[tuple[str, int], int] = {}
    wanted = set(topics) if topics is not None else None
    for delivery in list(state.deliveries.values()):
        if delivery.done or delivery.deferred or delivery.explicit or delivery.group != group:
            continue
        if delivery.partition is None or delivery.offset is None:
            continue
        key = (delivery.stream, delivery.partition)
        if wanted is not None and key not in wanted:
            continue
        if key not in lowest or delivery.offset < lowest[key]:
            lowest[key] = delivery.offset
    return lowest


def cap_offsets(state: AgentState, group: str | None,
                offsets: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """``offsets`` (the next offset to commit per partition) lowered so that none
    covers a record still being handled implicitly; unchanged ones included."""
    lowest = first_unhandled(state, group, offsets.keys())
    if not lowest:
        return dict(offsets)
    return {key: min(end, lowest[key]) if key in lowest else end for key, end in offsets.items()}

"""The reporting batcher after fork: a live one restarts its thread in the child, a closed one does not."""

from __future__ import annotations

import gc
from collections.abc import Callable
import os
import threading
import weakref

from commerce_observe.agent.reporting.batcher import BackgroundBatcher


def _in_child(check: Callable[[], bool]) -> int:
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        os._exit(0 if check() else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_a_live_batcher_restarts_in_the_child_and_a_closed_one_stays_closed() -> None:
    seen: list[object] = []
    live = BackgroundBatcher(seen.extend, name="batcher-live")
    closed = BackgroundBatcher(seen.extend, name="batcher-closed")
    closed.close(timeout_s=5)

    def child() -> bool:
        names = _names()
        ok = "batcher-live" in names and "batcher-closed" not in names
        return ok and live.offer(1) and live.flush(5)

    try:
        assert _in_child(child) == 0
    finally:
        live.close(timeout_s=5)


def test_the_fork_hook_does_not_keep_a_batcher_alive() -> None:
    batcher = BackgroundBatcher(lambda items: None, name="batcher-gone")
    batcher.close(timeout_s=5)
    ref = weakref.ref(batcher)
    del batcher
    gc.collect()
    assert ref() is None

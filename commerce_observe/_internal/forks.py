"""Work to redo in a forked child, registered without keeping its object alive.

``os.register_at_fork`` keeps its hooks for the life of the process and cannot
unregister them. A hook holding its exporter, pipeline or transport strongly would
keep every discarded one (and its queues, threads' state, connection pool) alive
forever, so the hook holds the bound method weakly and does nothing once the
object is gone. It runs in the child only: the parent's state stays as it is.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable


def after_fork_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every forked child while its object is alive."""
    ref = weakref.WeakMethod(method)

    def hook() -> None:
        live = ref()
        if live is not None:
            live()

    os.register_at_fork(after_in_child=hook)

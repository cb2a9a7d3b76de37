"""The shared fork hook: it runs in the child only, and only while its object lives;
the Zipkin exporter and the Elastic APM transport use it to drop the parent's
connections in a child."""

from __future__ import annotations

import gc
import http.client
import os
import weakref
from collections.abc import Callable

import pytest

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe.agent.export.elastic.transport import make_transport
from commerce_observe.agent.export.zipkin import ZipkinExporter

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


class _Counter:
    def __init__(self) -> None:
        self.calls = 0
        after_fork_in_child(self.bump)

    def bump(self) -> None:
        self.calls += 1


def _in_child(check: Callable[[], bool]) -> int:
    """Fork, run ``check`` in the child, and return the child's exit code (0: True)."""
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            code = 0 if check() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_hook_runs_in_the_child_only() -> None:
    counter = _Counter()
    assert _in_child(lambda: counter.calls == 1) == 0
    assert counter.calls == 0


def test_hook_does_not_keep_its_object_alive() -> None:
    counter = _Counter()
    ref = weakref.ref(counter)
    del counter
    gc.collect()
    assert ref() is None
    assert _in_child(lambda: True) == 0  # the dead object's hook is a no-op in the child


def test_zipkin_child_opens_its_own_connection() -> None:
    exporter = ZipkinExporter("http://127.0.0.1:9/api/v2/spans")
    parents = exporter._conn = http.client.HTTPConnection("127.0.0.1", 9)  # never connected
    exporter._closing.set()
    closing = exporter._closing
    assert _in_child(lambda: exporter._conn is None and not exporter._closing.is_set()) == 0
    assert exporter._conn is parents and exporter._closing is closing


def test_transport_child_drops_the_parents_pool() -> None:
    transport = make_transport("http://127.0.0.1:9", secret_token=None, api_key=None,
                               verify_server_cert=True, timeout_s=1.0)
    pool = transport.http  # elastic-apm creates its urllib3 PoolManager on first use
    assert _in_child(lambda: transport._http is None) == 0
    assert transport._http is pool
    transport.stop()

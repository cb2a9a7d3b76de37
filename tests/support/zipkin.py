"""Reading traces back from the real Zipkin server, shared by every test that does.

Zipkin is eventually consistent from the test's point of view (our exporter
batches, Zipkin indexes asynchronously), so every read polls until what the test
needs is there and fails with what *was* there on timeout: never a skip.
"""

from __future__ import annotations

import json
import os
import random
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import commerce_observe
from commerce_observe.agent.runtime import Runtime
from tests.support.waiting import wait_for

Span = dict[str, Any]


def new_trace_id() -> str:
    return f"{random.getrandbits(128):032x}"


def traceparent(trace_id: str, span_id: str | None = None) -> str:
    return f"00-{trace_id}-{span_id or f'{random.getrandbits(64):016x}'}-01"


def unique_service(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def trace(zipkin_url: str, trace_id: str, until: Callable[[list[Span]], bool], timeout: float = 20.0) -> list[Span]:
    """The spans of ``trace_id`` once ``until(spans)`` holds; on timeout, fail with what Zipkin held."""
    url = f"{zipkin_url}/api/v2/trace/{trace_id}"
    spans: list[Span] = wait_for(f"trace {trace_id} in Zipkin to satisfy the test", lambda: _get(url) or [],
                                 timeout, 0.2, until=until,
                                 describe=lambda found: "it held:\n" + json.dumps(found, indent=1)[:6000])
    return spans


def by_kind(spans: list[Span], kind: str) -> list[Span]:
    return [s for s in spans if s.get("kind") == kind]


def server_span(zipkin_url: str, trace_id: str, timeout: float = 20.0) -> Span:
    """The one SERVER span of ``trace_id``, once Zipkin holds a SERVER span for it."""
    spans = trace(zipkin_url, trace_id, lambda s: bool(by_kind(s, "SERVER")), timeout)
    (server,) = by_kind(spans, "SERVER")
    return server


def named(spans: list[Span], name: str) -> list[Span]:
    """Zipkin lower-cases span names; compare the same way."""
    return [s for s in spans if s.get("name") == name.lower()]


def zipkin_env(zipkin_url: str, service: str, **extra: str) -> dict[str, str]:
    """The environment that points commerce_observe at the test bed's Zipkin."""
    env = {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{zipkin_url}/api/v2/spans",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "COMMERCE_OBSERVE_STRICT": "true",
    }
    env.update(extra)
    return env


@contextmanager
def installed(zipkin_url: str, service: str, **extra: str) -> Iterator[Runtime]:
    """commerce_observe installed against real Zipkin for the block, then flushed and removed."""
    commerce_observe.shutdown()
    runtime = commerce_observe.install(env=zipkin_env(zipkin_url, service, **extra))
    assert runtime is not None
    try:
        yield runtime
    finally:
        runtime.flush()
        commerce_observe.shutdown()


def subprocess_env(zipkin_url: str, service: str, **extra: str) -> dict[str, str]:
    """``os.environ`` plus :func:`zipkin_env`, for servers started as subprocesses."""
    env = dict(os.environ)
    env.update(zipkin_env(zipkin_url, service, **extra))
    env.pop("COMMERCE_OBSERVE_DISABLED_INSTRUMENTATIONS", None)
    return env


def read_trace(zipkin_url: str, trace_id: str, expect: int, timeout: float = 30.0) -> list[Span]:
    """The spans of ``trace_id`` once Zipkin holds at least ``expect`` of them."""
    return trace(zipkin_url, trace_id, lambda spans: len(spans) >= expect, timeout)

"""Reading spans back from the test bed's OTLP receiver (Jaeger v2's query API)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.support.waiting import wait_for

Span = dict[str, Any]


def _spans(query_url: str, trace_id: str) -> list[Span]:
    try:
        with urllib.request.urlopen(f"{query_url}/api/traces/{trace_id}", timeout=5) as resp:
            data = json.load(resp).get("data") or []
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    return [span for trace in data for span in trace.get("spans", [])]


def trace(query_url: str, trace_id: str, until: Callable[[list[Span]], bool], timeout: float = 20.0) -> list[Span]:
    """The spans Jaeger holds for ``trace_id`` once ``until(spans)``; fails with what it held."""
    spans: list[Span] = wait_for(f"trace {trace_id} in the OTLP receiver", lambda: _spans(query_url, trace_id),
                                 timeout, 0.2, until=until,
                                 describe=lambda found: "it held:\n" + json.dumps(found, indent=1)[:6000])
    return spans


def tags(span: Span) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}

"""Private reads of other libraries happen only inside a checked version range, with a public fallback."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent._compat import check_all, otel_sdk
from commerce_observe.agent._compat.versions import Range, _release

PACKAGE = Path(__file__).resolve().parents[2] / "commerce_observe"
FOREIGN = ("opentelemetry", "py_zipkin", "elasticapm")
#: The SDK internals agent/_compat/otel_sdk.py reads (``self._x`` is our own).
_SDK_PRIVATE = re.compile(r"(?<!self)\.(_span_processors|_instrumentation_scope|_span_limits|_is_enabled|"
                          r"_attributes|_dict|_immutable)\b")


def test_release_numbers() -> None:
    assert _release("1.45.1") == (1, 45, 1)
    assert _release("0.66b1") == (0, 66)
    assert _release("2.0.0rc1") == (2, 0, 0)
    assert _release("1.2.8+local") == (1, 2, 8)


def test_installed_versions_are_inside_the_checked_ranges() -> None:
    # The versions this suite runs against must take the fast paths it measures.
    assert check_all() == {"opentelemetry-api": True, "opentelemetry-sdk": True, "py-zipkin": True}


def test_out_of_range_logs_once_counts_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    stats.reset()
    monkeypatch.setattr(otel_sdk, "SUPPORTED", Range("opentelemetry-sdk", (0, 1), (0, 2)))
    assert otel_sdk.SUPPORTED.check() is False
    assert stats.get("compat.fallback.opentelemetry-sdk") == 1
    tracer = TracerProvider().get_tracer("t")
    assert otel_sdk.tracer_internals(tracer) is None  # the caller then uses the SDK's own spans
    with tracer.start_as_current_span("s") as span:
        assert otel_sdk.add_to_bounded(span, {"a": 1}) is False
        span.set_attribute("b", 2)
    assert otel_sdk.plain_attributes(span) == {"b": 2}


def test_fast_and_public_paths_agree() -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        assert otel_sdk.add_to_bounded(span, {"a": 1, "s": "x"}) is True
    assert otel_sdk.plain_attributes(span) == dict(span.attributes) == {"a": 1, "s": "x"}
    internals = otel_sdk.tracer_internals(tracer)
    assert internals is not None and internals[0].name == "t"


def _private_reads(path: Path) -> list[str]:
    """Imports of private modules of other libraries, and ``# noqa: SLF001`` reads."""
    found: list[str] = []
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(FOREIGN):
            if any(part.startswith("_") for part in node.module.split(".")) or any(
                    a.name.startswith("_") for a in node.names):
                found.append(f"{path.name}:{node.lineno} from {node.module}")
    found += [f"{path.name}:{n} {m.group(0)}" for n, line in enumerate(source.splitlines(), 1)
              for m in _SDK_PRIVATE.finditer(line.split("#")[0])]
    return found


def test_private_internals_of_otel_and_zipkin_are_read_only_in_compat() -> None:
    compat = PACKAGE / "agent" / "_compat"
    outside = {str(p.relative_to(PACKAGE)): r for p in PACKAGE.rglob("*.py")
               if compat not in p.parents and (r := _private_reads(p))}
    # Client-library internals (aiokafka, pika, starlette) are read by their own
    # instrumentor module, which is that library's one module and checks its range.
    allowed = {k for k in outside if k.startswith("agent/instrumentation/")}
    assert {k: v for k, v in outside.items() if k not in allowed} == {}

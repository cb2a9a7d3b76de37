"""The one place that wires: install/shutdown, idempotence, threads, fork, settings."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from opentelemetry import trace

import commerce_observe
from commerce_observe.config import ConfigError
from commerce_observe.testing import InMemoryExporter, capture

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELASTIC_APM_", "COMMERCE_OBSERVE_"))}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_has_no_side_effects() -> None:
    result = _run(
        "import threading, commerce_observe\n"
        "from opentelemetry import trace\n"
        "assert commerce_observe.current() is None\n"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
        "assert threading.active_count() == 1\n"
        "import sys; assert 'kafka' not in sys.modules\n",
        {}, ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_auto_import_uses_the_embedded_default_and_says_where(tmp_path: Path) -> None:
    result = _run(
        "import commerce_observe.auto\n"
        "from opentelemetry import trace\n"
        "with trace.get_tracer('t').start_as_current_span('hello'): pass\n",
        {"OTEL_SERVICE_NAME": "svc-auto"}, tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "commerce-observe-traces.json"
    assert str(out) in result.stderr
    import json

    spans = json.loads(out.read_text())
    assert [s["name"] for s in spans] == ["hello"]
    assert spans[0]["localEndpoint"]["serviceName"] == "svc-auto"


def test_invalid_setting_gives_one_clear_line_and_fails_fast_only_in_code(tmp_path: Path) -> None:
    result = _run("import commerce_observe.auto\nassert commerce_observe.auto.runtime is not None",
                  {"OTEL_TRACES_SAMPLER": "sometimes"}, tmp_path)
    assert result.returncode == 0, result.stderr  # the auto import never stops the application
    assert result.stderr.count("OTEL_TRACES_SAMPLER='sometimes' is invalid") == 1
    with pytest.raises(ConfigError):
        commerce_observe.install(env={"OTEL_TRACES_SAMPLER_ARG": "-1"})
    assert commerce_observe.current() is None


def test_install_is_idempotent_and_thread_safe() -> None:
    results: list[object] = []
    exporter = InMemoryExporter()

    def go() -> None:
        results.append(commerce_observe.install(exporters=[exporter], env={}))

    threads = [threading.Thread(target=go) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(r) for r in results}) == 1 and results[0] is not None
    finally:
        commerce_observe.shutdown()
    commerce_observe.shutdown()  # twice is fine
    assert commerce_observe.current() is None


def test_tracers_taken_before_install_follow_reinstall() -> None:
    tracer = trace.get_tracer("early")
    with capture() as first:
        with tracer.start_as_current_span("one"):
            pass
        assert [s.name for s in first.spans()] == ["one"]
    with tracer.start_as_current_span("nowhere") as span:
        assert not span.is_recording()
    with capture() as second:
        with tracer.start_as_current_span("two"):
            pass
        assert [s.name for s in second.spans()] == ["two"]


def test_disabled_switch_makes_install_a_no_op() -> None:
    assert commerce_observe.install(env={"COMMERCE_OBSERVE_ENABLED": "false"}) is None


def test_sampler_from_environment() -> None:
    with capture(env={"OTEL_TRACES_SAMPLER": "always_off"}) as cap:
        with trace.get_tracer("t").start_as_current_span("dropped") as span:
            assert not span.is_recording()
        assert cap.spans() == []


def test_child_exports_after_fork(tmp_path: Path) -> None:
    """A pre-fork server's worker (forked after install) still exports its spans."""
    code = (
        "import os, json, commerce_observe\n"
        "from opentelemetry import trace\n"
        "commerce_observe.install()\n"
        "with trace.get_tracer('t').start_as_current_span('parent-before-fork'): pass\n"
        "commerce_observe.current().flush()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    with trace.get_tracer('t').start_as_current_span('in-child'): pass\n"
        "    commerce_observe.current().flush()\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    result = _run(code, {"COMMERCE_OBSERVE_OUTPUT_FILE": str(tmp_path / "t.json")}, tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    names = {s["name"] for s in json.loads((tmp_path / "t.json").read_text())}
    assert "in-child" in names

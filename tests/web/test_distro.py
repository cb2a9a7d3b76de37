"""The distro and configurator entry points, and the real ``opentelemetry-instrument``.

The entry points come from the installed distribution's metadata (``pip install -e .``
after the ``[project.entry-points.*]`` lines are in pyproject.toml): the first test
says so plainly when they are missing instead of letting the second one time out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from commerce_observe.agent.distro import REPLACED, CommerceObserveConfigurator, CommerceObserveDistro
from tests.support import zipkin as z
from tests.web.servers import REPO

pytestmark = pytest.mark.zipkin

EXPECTED = {
    "opentelemetry_distro": "commerce_observe.agent.distro:CommerceObserveDistro",
    "opentelemetry_configurator": "commerce_observe.agent.distro:CommerceObserveConfigurator",
}


@pytest.mark.parametrize("group", sorted(EXPECTED))
def test_entry_points_are_registered(group: str) -> None:
    found = {ep.name: ep.value for ep in entry_points(group=group)}
    assert found.get("commerce_observe") == EXPECTED[group], (
        f"entry point group {group} has {found}; add to pyproject.toml\n"
        f'[project.entry-points.{group}]\ncommerce_observe = "{EXPECTED[group]}"\nand run pip install -e .'
    )
    loaded = next(ep for ep in entry_points(group=group) if ep.name == "commerce_observe").load()
    assert loaded in (CommerceObserveDistro, CommerceObserveConfigurator)


def test_opentelemetry_instrument_brings_up_commerce_observe(zipkin_url: str) -> None:
    command = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert command, "opentelemetry-instrument is not installed next to this Python"
    service = z.unique_service("auto")
    trace_id = z.new_trace_id()
    env = z.subprocess_env(zipkin_url, service, OTEL_PYTHON_DISTRO="commerce_observe",
                           OTEL_PYTHON_CONFIGURATOR="commerce_observe")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run([command, sys.executable, "-m", "tests.web.apps.plain_flask", trace_id],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "commerce_observe installed: True" in done.stdout, done.stdout + done.stderr
    server = z.server_span(zipkin_url, trace_id)
    assert server["localEndpoint"]["serviceName"] == service
    assert server["tags"]["commerce.order.id"] == "ord-auto"
    assert server["tags"]["otel.scope.name"] == "commerce_observe.web", "not our Flask integration"


class _EntryPoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.loaded = False

    def load(self) -> type:
        self.loaded = True
        raise AssertionError(f"contrib instrumentor {self.name} must not be loaded")


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_distro_skips_contrib_instrumentors_we_replace(name: str) -> None:
    entry_point = _EntryPoint(name)
    CommerceObserveDistro().load_instrumentor(entry_point)
    assert not entry_point.loaded

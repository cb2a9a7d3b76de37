"""One lifecycle test for every shipped instrumentor.

Instrument twice, uninstrument, re-instrument, and both import orders: whatever
the integration, the base contract must hold, and the originals come back exactly.
"""

import importlib
import subprocess
import sys
from typing import Any

import pytest
import wrapt

from commerce_observe.agent.instrumentation.base import Instrumentor
from commerce_observe.agent.instrumentation.registry import KNOWN, load

SHIPPED = [name for name in KNOWN if load(name) is not None]


def _targets(instrumentor: Instrumentor) -> list[tuple[Any, str]]:
    out = []
    for patch in instrumentor.patches():
        parent, attribute, _ = wrapt.resolve_path(patch.module, patch.path)
        out.append((parent, attribute))
    return out


def _raw(parent: Any, attribute: str) -> Any:
    return vars(parent)[attribute] if attribute in vars(parent) else getattr(parent, attribute)


def test_some_integrations_are_shipped() -> None:
    assert SHIPPED, "no instrumentor module is shipped"


@pytest.mark.parametrize("name", SHIPPED)
def test_instrument_twice_uninstrument_and_again(name: str) -> None:
    instrumentor = load(name)
    assert instrumentor is not None
    importlib.import_module(instrumentor.module)
    instrumentor.disable()
    originals = {(id(p), a): _raw(p, a) for p, a in _targets(instrumentor)}
    assert originals, f"{name} declares no patches"

    instrumentor.enable()
    instrumentor.enable()
    assert instrumentor.is_instrumented
    for parent, attribute in _targets(instrumentor):
        current = _raw(parent, attribute)
        assert isinstance(current, wrapt.FunctionWrapper), f"{attribute} not wrapped"
        assert current.__wrapped__ is originals[(id(parent), attribute)], "wrapped twice"

    instrumentor.disable()
    assert not instrumentor.is_instrumented
    for parent, attribute in _targets(instrumentor):
        assert _raw(parent, attribute) is originals[(id(parent), attribute)]

    instrumentor.enable()
    assert instrumentor.is_instrumented
    instrumentor.disable()


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("order", ["enable-then-import", "import-then-enable"])
def test_import_order_does_not_matter(name: str, order: str) -> None:
    code = f"""
import importlib, wrapt
from commerce_observe.agent.instrumentation.registry import load
inst = load({name!r})
if {order!r} == "import-then-enable":
    importlib.import_module(inst.module)
inst.enable()
importlib.import_module(inst.module)
assert inst.is_instrumented, "not instrumented"
for patch in inst.patches():
    parent, attribute, current = wrapt.resolve_path(patch.module, patch.path)
    assert isinstance(current, wrapt.FunctionWrapper), attribute
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

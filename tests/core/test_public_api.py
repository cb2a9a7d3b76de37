"""The public surface: ``__all__`` matches what the package exports, nothing more."""

import commerce_observe


def test_all_lists_exactly_the_public_names() -> None:
    # dir(): the names loaded on first use (the agent's runtime and events) are listed too
    public = {name for name in dir(commerce_observe) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(commerce_observe, name)).__name__ == "module"}
    assert set(commerce_observe.__all__) - {"__version__"} == public - modules


def test_every_exported_name_resolves() -> None:
    for name in commerce_observe.__all__:
        assert getattr(commerce_observe, name) is not None


def test_importing_the_package_leaves_the_agent_unloaded_until_a_name_of_it_is_used() -> None:
    """The monitoring commands import the package; the agent's runtime (OpenTelemetry SDK,
    wrapt, the integrations) loads only when ``install`` or an event name is first used."""
    import subprocess
    import sys

    code = ("import sys, commerce_observe.monitor.cli, commerce_observe as c; "
            "print('commerce_observe.agent.runtime' in sys.modules, 'commerce_observe.agent.events' in sys.modules); "
            "c.install; c.order_created; "
            "print('commerce_observe.agent.runtime' in sys.modules, 'commerce_observe.agent.events' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        commerce_observe.no_such_name  # noqa: B018

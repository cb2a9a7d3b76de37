"""The public surface: ``__all__`` matches what the package exports, nothing more."""

import commerce_observe


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(commerce_observe) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(commerce_observe, name)).__name__ == "module"}
    assert set(commerce_observe.__all__) - {"__version__"} == public - modules


def test_every_exported_name_resolves() -> None:
    for name in commerce_observe.__all__:
        assert getattr(commerce_observe, name) is not None

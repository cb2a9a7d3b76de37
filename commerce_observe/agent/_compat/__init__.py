"""Every read of another library's private internals, one module per library.

Each module states the version range its private reads were checked against
(``SUPPORTED``) and answers through it: the fast path only when the installed
version is inside that range. Outside it, the callers take the library's public
path, which is slower but cannot break on a refactor; :func:`check_all` (run once
by ``install()``) logs that once per library and counts it
(``compat.fallback.<library>``). Importing this package imports none of them (a
plain ``import commerce_observe`` must not load py-zipkin).
"""

from __future__ import annotations

import importlib

from commerce_observe.agent._compat.versions import Range

MODULES: tuple[str, ...] = ("otel_api", "otel_sdk", "py_zipkin")


def check_all() -> dict[str, bool]:
    """Whether each library's fast path is on; logs and counts each fallback once."""
    ranges: list[Range] = [importlib.import_module(f"{__name__}.{name}").SUPPORTED for name in MODULES]
    return {r.distribution: r.check() for r in ranges}


__all__ = ["MODULES", "Range", "check_all"]

"""Every read of another library's private internals, one module per library.

Each module states the version range its private reads were checked against
(``SUPPORTED``) and answers ``fast_path()``: true only when the installed version is
inside that range. Outside it, the callers take the library's public path, which is
slower but cannot break on a refactor; :func:`check_all` (run once by ``install()``)
logs that once per library and counts it (``compat.fallback.<library>``).
"""

from __future__ import annotations

from commerce_observe.agent._compat import otel_api, otel_sdk, py_zipkin
from commerce_observe.agent._compat.versions import Range

LIBRARIES: tuple[Range, ...] = (otel_api.SUPPORTED, otel_sdk.SUPPORTED, py_zipkin.SUPPORTED)


def check_all() -> dict[str, bool]:
    """Whether each library's fast path is on; logs and counts each fallback once."""
    return {r.distribution: r.check() for r in LIBRARIES}


__all__ = ["LIBRARIES", "Range", "check_all"]

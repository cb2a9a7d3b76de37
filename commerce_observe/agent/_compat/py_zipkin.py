"""py-zipkin's span model and JSON encoder.

They live in py-zipkin's private ``encoding._encoders``/``_helpers``/``_types``
modules (re-exported, but not declared public, by ``py_zipkin.encoding``). Only this
module imports them; ``SUPPORTED`` is the range whose field rules
:mod:`commerce_observe.agent.export.zipkin_encode` was checked against (1.2.x), and
``install()`` says once when another version is installed.
"""

from __future__ import annotations

from py_zipkin.encoding._encoders import get_encoder
from py_zipkin.encoding._helpers import Endpoint, Span, create_endpoint
from py_zipkin.encoding._types import Encoding, Kind

from commerce_observe.agent._compat.versions import Range

SUPPORTED = Range("py-zipkin", (1, 2), (2, 0))

__all__ = ["SUPPORTED", "Encoding", "Endpoint", "Kind", "Span", "create_endpoint", "get_encoder"]

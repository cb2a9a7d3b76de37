"""``OTEL_TRACES_EXPORTER=console``: one Zipkin v2 JSON object per line on stdout.

For a quick look while developing: the records are the masked ones every exporter
gets, in the same JSON shape the Zipkin exporter posts and the embedded file holds.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from commerce_observe.agent.export.record import SpanRecord
from commerce_observe.agent.export.zipkin_encode import EndpointCache, to_json_dict


class ConsoleExporter:
    name = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._endpoints = EndpointCache()
        self._lock = threading.Lock()

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        text = "".join(json.dumps(to_json_dict(r, self._endpoints), separators=(",", ":")) + "\n" for r in batch)
        out = self._out or sys.stdout  # looked up late: tests and apps swap sys.stdout
        try:
            with self._lock:
                out.write(text)
                out.flush()
        except (OSError, ValueError):  # a closed stdout must not break the pipeline
            return False
        return True

    def shutdown(self) -> None:
        pass

"""A progress bar on the terminal, and nothing anywhere else.

Shown only when stderr is a terminal: in a pipe, a log file or CI the carriage
returns would only be noise, so there the command prints just its summary
lines. Redrawn at most five times a second, so its cost does not show in the
rows per second it reports. Our own dozen lines rather than a dependency: the
package is also what every instrumented service installs.
"""

from __future__ import annotations

import shutil
import time
from typing import IO


class Progress:
    """``label [#####.....]  45%  210,000 rows  52,000 rows/s`` on one line, redrawn in place."""

    def __init__(self, label: str, total_bytes: int, stream: IO[str], *, enabled: bool | None = None,
                 interval_s: float = 0.2) -> None:
        self.label, self.total, self.stream = label, max(total_bytes, 1), stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.interval_s = interval_s
        self.started = time.monotonic()
        self._next = self.started
        self._drawn = False

    def update(self, done_bytes: int, rows: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        fraction = min(done_bytes / self.total, 1.0)
        rate = rows / max(now - self.started, 1e-9)
        width = shutil.get_terminal_size((80, 20)).columns
        tail = f" {fraction:4.0%}  {rows:,} rows  {rate:,.0f} rows/s"
        bar_width = max(10, min(30, width - len(self.label) - len(tail) - 4))
        filled = int(bar_width * fraction)
        line = f"{self.label} [{'#' * filled}{'.' * (bar_width - filled)}]{tail}"
        self.stream.write("\r" + line[: width - 1])
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """Erase the bar (the summary line takes its place)."""
        if self.enabled and self._drawn:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
            self.stream.flush()

"""The CLI's own output passes the privacy masker, whatever a command prints.

A command prints ids, error texts from servers, URLs the user typed and rows read
from files; any of them may hold a card number, an e-mail, a phone number or a
URL's credentials. Rather than trusting every ``print``, :func:`masked_output`
puts a masking wrapper in front of ``sys.stdout`` and ``sys.stderr`` while the
command runs. It masks whole lines (a value split over two ``write`` calls is
still seen whole) and passes ``isatty``/``fileno`` through, so progress bars and
pipes behave as before.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from commerce_observe.agent.privacy import Masker


class MaskingStream(io.TextIOBase):
    """Line-buffered text stream that masks each complete line before passing it on."""

    def __init__(self, target: TextIO, masker: Masker) -> None:
        super().__init__()
        self._target = target
        self._mask = masker.mask_text
        self._pending = ""

    def write(self, text: str) -> int:
        data = self._pending + text
        cut = max(data.rfind("\n"), data.rfind("\r")) + 1
        if cut:
            self._target.write(self._mask(data[:cut]))
        self._pending = data[cut:]
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._target.write(self._mask(self._pending))
            self._pending = ""
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    @property
    def target(self) -> TextIO:
        return self._target


@contextmanager
def masked_output() -> Iterator[None]:
    """Mask ``sys.stdout`` and ``sys.stderr`` for the duration (restored and flushed after)."""
    masker = Masker()
    saved = sys.stdout, sys.stderr
    out, err = MaskingStream(saved[0], masker), MaskingStream(saved[1], masker)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        for stream in (out, err):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed pipe: nothing more can be said
        sys.stdout, sys.stderr = saved

"""The contract between the export pipeline and each backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from commerce_observe.agent.export.record import SpanRecord


class Exporter(Protocol):
    """A backend that encodes and delivers batches of finished spans.

    The pipeline calls :meth:`export` from that exporter's own worker thread, never
    from the application's, so an exporter may block on its network I/O (bounded
    by its timeout). It returns ``True`` once the batch was accepted, ``False`` when
    delivery failed after its own bounded retries; the pipeline then counts the
    batch's spans as dropped. It must not raise for backend failures. An exporter
    may also set a ``failure`` attribute (a few words on why) before returning
    ``False``: the pipeline's warning about the dropped batch then says it, so one
    line tells the whole story.
    """

    name: str

    def export(self, batch: Sequence[SpanRecord]) -> bool: ...

    def shutdown(self) -> None: ...

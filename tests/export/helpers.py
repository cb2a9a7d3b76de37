"""Shared helpers for the export pipeline tests (not the Elastic APM ones)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.pipeline import ExportPipeline
from commerce_observe.agent.export.record import SpanRecord

SERVICE = "checkout"


class RedactingMasker:
    """A trivial stand-in for commerce_observe.agent.privacy.Masker: redacts by key and
    any value containing a 16-digit card-like number."""

    def __init__(self, keys: Sequence[str] = ("card_number", "email")) -> None:
        self.keys = frozenset(keys)

    def mask_attributes(self, attributes: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]:
        out: dict[str, AttributeValue] = {}
        for key, value in attributes.items():
            if key in self.keys or (isinstance(value, str) and "4111111111111111" in value):
                out[key] = "[REDACTED]"
            else:
                out[key] = value
        return out


class GatedExporter:
    """An in-process exporter whose ``export`` blocks until the gate opens, recording
    which threads called it. Stands in for 'a backend that does not answer'."""

    def __init__(self, name: str = "gated") -> None:
        self.name = name
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.threads: set[int] = set()
        self.received: list[SpanRecord] = []

    def export(self, batch: Sequence[SpanRecord]) -> bool:
        self.threads.add(threading.get_ident())
        self.entered.set()
        self.gate.wait()
        self.received.extend(batch)
        return True

    def shutdown(self) -> None:
        self.gate.set()


def provider(pipeline: ExportPipeline, service: str = SERVICE) -> tuple[TracerProvider, Tracer]:
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(pipeline)
    return tp, tp.get_tracer("tests.export")


def accounted(pipeline: ExportPipeline, exporter: str) -> int:
    """Every span the pipeline was handed, by where it is now (see ExportPipeline.stats)."""
    s = pipeline.stats()
    p, e = s["pipeline"], s[exporter]
    return (p["dropped"] + p["convert_failed"] + p["queued"] + p["in_flight"]
            + e["queued"] + e["in_flight"] + e["exported"] + e["failed"] + e["dropped"])



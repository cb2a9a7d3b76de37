"""Logs: trace ids on every record made inside a span, masking, ECS JSON one setting away."""

from __future__ import annotations

from .correlation import FIELDS, Correlation
from .records import LogRecords
from .structlog_processor import StructlogCorrelation
from .wiring import attach_logs

__all__ = ["FIELDS", "Correlation", "LogRecords", "StructlogCorrelation", "attach_logs"]

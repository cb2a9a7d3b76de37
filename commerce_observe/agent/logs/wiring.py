"""What ``install()`` does for logs, and the undo list ``shutdown()`` runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.logs.correlation import Correlation
from commerce_observe.agent.logs.records import LogRecords
from commerce_observe.agent.logs.structlog_processor import StructlogCorrelation


def _ecs_formatters() -> Callable[[], None]:
    """``COMMERCE_OBSERVE_LOG_FORMAT=ecs``: ECS JSON (``ecs-logging``) on the root
    logger's handlers, or on a new stderr handler when it has none."""
    from ecs_logging import StdlibFormatter

    root = logging.getLogger()
    added: logging.Handler | None = None
    if not root.handlers:
        added = logging.StreamHandler()
        root.addHandler(added)
    previous = [(h, h.formatter) for h in root.handlers]
    for handler, _ in previous:
        handler.setFormatter(StdlibFormatter())

    def undo() -> None:
        for handler, formatter in previous:
            handler.setFormatter(formatter)
        if added is not None:
            root.removeHandler(added)

    return undo


def attach_logs(config: Any, masker: Any) -> list[Callable[[], None]]:
    """Masking (always), correlation (``COMMERCE_OBSERVE_LOG_CORRELATION``) and the
    ECS formatter (``COMMERCE_OBSERVE_LOG_FORMAT=ecs``); returns the undo steps."""
    undo: list[Callable[[], None]] = []
    correlation = Correlation(config.service_name) if config.log_correlation else None
    records = LogRecords(correlation, masker.log_filter())
    records.install()
    undo.append(records.uninstall)
    if correlation is not None:
        structlog = StructlogCorrelation(correlation, masker)
        if structlog.install():
            undo.append(structlog.uninstall)
    if config.log_format == "ecs":
        try:
            undo.append(_ecs_formatters())
        except ImportError as exc:
            stats.warn("logs.ecs_unavailable", "COMMERCE_OBSERVE_LOG_FORMAT=ecs needs ecs-logging: %s", exc)
    return undo

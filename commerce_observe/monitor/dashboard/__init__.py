"""The local commerce dashboard (``commerce-observe dashboard``): page, script and JSON API."""

from commerce_observe.monitor.dashboard.server import Dashboard

__all__ = ["Dashboard"]

"""Settings attach the products that listen: event shipping and live metrics."""

import urllib.request
from decimal import Decimal
from pathlib import Path

from opentelemetry import trace

import commerce_observe
from commerce_observe.store import TimeRange, open_store
from commerce_observe.testing import capture
from testbed.base import free_port


def test_event_store_setting_ships_recorded_events(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'events.db'}"
    with capture(event_store=spec) as cap:
        commerce_observe.order_created("ord-1", amount=Decimal("12.50"), currency="EUR", items=[("sku-1", 1, Decimal("12.50"))])
        commerce_observe.payment_failed("pay-1", order_id="ord-1", reason="declined", method="card")
        assert any(spec in d for d in cap.runtime.destinations)
    store = open_store(spec)
    try:
        window = TimeRange.last(60)
        revenue = store.revenue(window)  # type: ignore[attr-defined]
        assert [(r.currency, r.orders, r.revenue) for r in revenue] == [("EUR", 1, Decimal("12.50"))]
        reasons = store.failures_by_reason(window)  # type: ignore[attr-defined]
        assert [(r.key, r.count) for r in reasons] == [("declined", 1)]
    finally:
        store.close()


def test_prometheus_port_setting_serves_live_commerce_metrics() -> None:
    port = free_port()
    with capture(prometheus_port=port):
        commerce_observe.order_created("ord-2", amount=Decimal("3.00"), currency="EUR")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            body = resp.read().decode()
    assert "commerce" in body and "ord-2" not in body
    metric_lines = [line for line in body.splitlines() if line.startswith("commerce") and "order" in line]
    assert metric_lines and any(float(line.rsplit(" ", 1)[1]) >= 1 for line in metric_lines)


def test_a_listener_that_cannot_start_leaves_tracing_and_the_others_running(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A spool folder that cannot be made costs the audit trail, not the install: before,
    the exception left install() half done (integrations off, no flush at exit)."""
    from commerce_observe._internal.selfstats import stats

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    spec = f"sqlite:{tmp_path / 'events.db'}"
    before = stats.get("runtime.listener_failed")
    with capture(audit_sink="sqlite", audit_path=str(tmp_path / "audit.sqlite"), spool_dir=str(blocker / "spool"),
                 event_store=spec) as cap:
        with trace.get_tracer("t").start_as_current_span("checkout"):
            commerce_observe.order_created("ord-3", amount=Decimal("1.00"), currency="EUR")
        assert cap.span("checkout") and cap.runtime.instrumentors is not None and any(spec in d for d in cap.runtime.destinations)
        assert cap.events, "the hub still reports to the listeners that started"
    assert stats.get("runtime.listener_failed") == before + 1
    assert [r.getMessage() for r in caplog.records if "did not start" in r.getMessage()] == [
        f"the audit trail did not start: [Errno 20] Not a directory: '{blocker / 'spool'}'; "
        f"the rest runs without it (counter runtime.listener_failed={before + 1})"]

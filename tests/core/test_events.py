"""Domain events: validation, recording on spans, strict and lenient modes."""

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import commerce_observe
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.events import DomainEvent, EventType, InvalidEventError, LineItem
from commerce_observe.testing import capture
from opentelemetry import trace


def test_event_recorded_on_the_current_span_and_reported_to_the_hub() -> None:
    with capture() as cap:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("checkout") as span:
            event = commerce_observe.order_created(
                "ord-1", currency="EUR", items=[("sku-1", 2, Decimal("9.95")), LineItem("sku-2", 1, Decimal("5"))],
                customer_ref="cust-7",
            )
        assert event is not None
        assert event.trace_id == format(span.get_span_context().trace_id, "032x")
        record = cap.span("checkout")
        assert record.attributes["commerce.order.id"] == "ord-1"
        assert record.attributes["commerce.amount"] == "24.90"
        assert list(record.attributes["commerce.order.product_ids"]) == ["sku-1", "sku-2"]
        assert [e.name for e in record.events] == ["commerce.order.created"]
        assert record.events[0].attributes["commerce.event.id"] == event.event_id
        assert cap.events == [event]


def test_event_without_a_span_gets_a_span_of_its_own() -> None:
    with capture() as cap:
        event = commerce_observe.payment_failed(
            "pay-9", order_id="ord-9", reason="insufficient_funds", amount=Decimal("10.00"), currency="USD", method="card"
        )
        assert event is not None
        record = cap.span("commerce payment.failed")
        assert record.attributes["commerce.payment.failure_reason"] == "insufficient_funds"
        assert record.attributes["commerce.payment.method"] == "card"
        assert record.trace_id_hex == event.trace_id


@pytest.mark.parametrize(
    "build",
    [
        lambda: DomainEvent(EventType.ORDER_CREATED, order_id=""),
        lambda: DomainEvent(EventType.ORDER_PAID, order_id="o1", amount=Decimal("-1"), currency="EUR"),
        lambda: DomainEvent(EventType.ORDER_PAID, order_id="o1", amount=Decimal("NaN"), currency="EUR"),
        lambda: DomainEvent(EventType.ORDER_PAID, order_id="o1", amount=1.5, currency="EUR"),  # type: ignore[arg-type]
        lambda: DomainEvent(EventType.ORDER_PAID, order_id="o1", amount=Decimal("1"), currency="EURO"),
        lambda: DomainEvent(EventType.ORDER_PAID, order_id="o1", amount=Decimal("1")),
        lambda: DomainEvent(EventType.PAYMENT_FAILED, payment_id="p1"),
        lambda: DomainEvent(EventType.PAYMENT_FAILED, payment_id="p1", reason="Card Declined!"),
        lambda: DomainEvent(EventType.ORDER_CREATED, order_id="o1", occurred_at=datetime(2026, 1, 1)),
        lambda: LineItem("sku", 0, Decimal("1")),
        lambda: LineItem("sku", True, Decimal("1")),  # type: ignore[arg-type]
    ],
)
def test_invalid_events_raise_a_clear_error(build: object) -> None:
    with pytest.raises(InvalidEventError):
        build()  # type: ignore[operator]


def test_invalid_event_in_strict_mode_reaches_the_caller() -> None:
    with capture(strict=True):
        with pytest.raises(InvalidEventError, match="currency"):
            commerce_observe.order_paid("ord-1", amount=Decimal("5"), currency="XXX")


def test_invalid_event_outside_strict_mode_is_dropped_and_counted() -> None:
    with capture(strict=False) as cap:
        before = stats.get("events.invalid")
        assert commerce_observe.order_paid("ord-1", amount=Decimal("5"), currency="XXX") is None
        assert stats.get("events.invalid") == before + 1
        assert cap.events == []
    stats.strict = True


@given(
    amount=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    currency=st.sampled_from(["EUR", "USD", "JPY", "KRW"]),
)
def test_valid_amounts_round_trip_exactly(amount: Decimal, currency: str) -> None:
    event = DomainEvent(EventType.ORDER_REFUNDED, order_id="o-1", amount=amount, currency=currency)
    assert event.total == amount

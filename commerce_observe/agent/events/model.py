"""Typed order and payment lifecycle events, and their validation.

A :class:`DomainEvent` is immutable and validated on construction: money is a
finite, non-negative ``Decimal`` (never a float), the currency an active ISO-4217
code, items carry a product id, a positive quantity and a unit price. Validation
raises :class:`InvalidEventError`; whether that reaches business code is decided by
the recorder (strict mode) rather than here.
"""

from __future__ import annotations

import enum
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

# Active ISO-4217 alphabetic codes (funds and precious metals left out).
_ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
    BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV
    WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class InvalidEventError(ValueError):
    """A domain event failed validation; the message says which field and why."""


class EventType(str, enum.Enum):
    ORDER_CREATED = "order.created"
    ORDER_PAID = "order.paid"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_SHIPPED = "order.shipped"
    ORDER_DELIVERED = "order.delivered"
    ORDER_REFUNDED = "order.refunded"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CAPTURED = "payment.captured"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"

    @property
    def is_payment(self) -> bool:
        return self.value.startswith("payment.")


class FailureReason(str, enum.Enum):
    """Well-known payment failure reasons; any other lower_snake code is accepted too."""

    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    FRAUD_SUSPECTED = "fraud_suspected"
    GATEWAY_TIMEOUT = "gateway_timeout"
    CARD_EXPIRED = "card_expired"
    INVALID_CARD = "invalid_card"
    AUTHENTICATION_FAILED = "authentication_failed"
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class LineItem:
    product_id: str
    quantity: int
    unit_price: Decimal

    def __post_init__(self) -> None:
        _check_id("items.product_id", self.product_id)
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise InvalidEventError(f"items.quantity must be a positive int, got {self.quantity!r}")
        _check_money("items.unit_price", self.unit_price)


def new_event_id() -> str:
    """A fresh event id: 32 hex digits (also the ``ce_id`` of a message sent outside any event).

    ``random.getrandbits`` (seeded from the OS and re-seeded after fork by the
    stdlib, as OpenTelemetry's span ids are) rather than ``os.urandom``: ids must
    be unique, not secret, and a getrandom syscall per message measured tens of
    microseconds on small VMs.
    """
    return "%032x" % random.getrandbits(128)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One step of an order's or a payment's life.

    ``trace_id``/``span_id``/``trace_flags`` are filled in by the recorder with the
    span the event was recorded on, so stores and alerts can link back to the trace
    and :class:`~commerce_observe.agent.messaging.publishing` can continue it (the
    flags say whether that span was sampled).
    """

    type: EventType
    order_id: str | None = None
    payment_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    items: tuple[LineItem, ...] = ()
    customer_ref: str | None = None
    payment_method: str | None = None
    reason: str | None = None
    event_id: str = field(default_factory=new_event_id)
    occurred_at: datetime = field(default_factory=_now)
    trace_id: str | None = None
    span_id: str | None = None
    trace_flags: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, EventType):
            raise InvalidEventError(f"type must be an EventType, got {self.type!r}")
        if self.type.is_payment:
            _check_id("payment_id", self.payment_id)
        else:
            _check_id("order_id", self.order_id)
        for name in ("order_id", "payment_id", "customer_ref"):
            value = getattr(self, name)
            if value is not None:
                _check_id(name, value)
        if self.amount is not None:
            _check_money("amount", self.amount)
            if self.currency is None:
                raise InvalidEventError("currency is required with an amount")
        if self.currency is not None and self.currency not in _ISO_4217:
            raise InvalidEventError(f"currency must be an ISO-4217 code, got {self.currency!r}")
        if not isinstance(self.items, tuple) or not all(isinstance(i, LineItem) for i in self.items):
            raise InvalidEventError("items must be a tuple of LineItem")
        if self.type is EventType.PAYMENT_FAILED and self.reason is None:
            raise InvalidEventError("payment.failed needs a reason code")
        for name in ("reason", "payment_method"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _CODE.fullmatch(value)):
                raise InvalidEventError(f"{name} must be a lower_snake code, got {value!r}")
        if self.occurred_at.tzinfo is None:
            raise InvalidEventError("occurred_at must be timezone-aware")

    @property
    def total(self) -> Decimal | None:
        """The amount, or the items' sum when no amount was given."""
        if self.amount is not None:
            return self.amount
        if self.items:
            return sum((i.unit_price * i.quantity for i in self.items), Decimal(0))
        return None


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidEventError(f"{name} must be an id of 1-128 letters, digits or ._:/-, got {value!r}")


def _check_money(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise InvalidEventError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise InvalidEventError(f"{name} must be finite and non-negative, got {value}")

"""The ``commerce.*`` attribute namespace (documented in docs/semantic-conventions.md).

Names live here once; the recorder, the exporters' label mapping, the audit trail
and the monitoring store all import them instead of spelling strings again.
"""

from __future__ import annotations

from typing import Final

EVENT_TYPE: Final = "commerce.event.type"
EVENT_ID: Final = "commerce.event.id"
ORDER_ID: Final = "commerce.order.id"
PAYMENT_ID: Final = "commerce.payment.id"
AMOUNT: Final = "commerce.amount"
CURRENCY: Final = "commerce.currency"
CUSTOMER_REF: Final = "commerce.customer.ref"
ITEM_COUNT: Final = "commerce.order.item_count"
PRODUCT_IDS: Final = "commerce.order.product_ids"
QUANTITIES: Final = "commerce.order.quantities"
PAYMENT_METHOD: Final = "commerce.payment.method"
FAILURE_REASON: Final = "commerce.payment.failure_reason"
REASON: Final = "commerce.reason"
OUTCOME: Final = "commerce.outcome"

#: Span event names are the event type with this prefix: ``commerce.payment.failed``.
SPAN_EVENT_PREFIX: Final = "commerce."

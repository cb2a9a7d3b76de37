"""Aggregate documents: "N events of one kind, in one bucket" for imported history.

A shop's history usually exists only as a warehouse export (orders per product per
hour, payment attempts and failures per method per hour), not as our events. Rather
than inventing N fake events per row, an aggregate document *stands for* ``count``
events of one ``event.action`` (``order.created``, ``payment.authorized``,
``payment.failed``) with the same dimensions in one bucket starting at
``@timestamp``. Every store query counts an event document as 1 and an aggregate as
its ``count`` (Elasticsearch: ``sum`` of ``commerce.aggregate.count`` with
``missing: 1``; SQLite: triggers add ``count`` to the same rollups events feed), so a
dashboard over imported history shows the history.

Why the id is a hash of (action, bucket start, dimensions) and not of the values:
importing the same file twice, or a second file overlapping the first, is then
recognised by ``event.id`` and counted once (the first import wins; a corrected
export of an already imported bucket is reported as duplicates, not applied).
"""

from __future__ import annotations

import json
from hashlib import sha1
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from commerce_observe.agent.events import conventions as cv
from commerce_observe.store import documents as d

AGGREGATE: Final = "aggregate"
COUNT: Final = "commerce.aggregate.count"
BUCKET_S: Final = "commerce.aggregate.bucket_s"
#: The actions an aggregate may stand for (what the queries count).
ACTIONS: Final = ("order.created", "payment.authorized", "payment.failed")


class Aggregate(NamedTuple):
    """``n`` events of ``action`` in the bucket ``[ts_ms, ts_ms + bucket_s)``.

    A NamedTuple, not a dataclass: the importer makes millions of them and the
    SQLite store turns them into rows without touching a dict.
    """

    id: str
    ts_ms: int
    bucket_s: int
    action: str
    n: int  # how many events it stands for (``count`` is taken by tuple)
    amount_milli: int | None = None  # orders: revenue in thousandths of the currency unit
    product_id: str | None = None
    quantity: int | None = None  # orders: units sold (defaults to the order count)
    currency: str | None = None
    method: str | None = None
    reason: str | None = None  # payment.failed: the failure reason, None when not broken down


def aggregate_id(action: str, ts_ms: int, *key: str | None) -> str:
    """``g:`` + the bucket start in hex + a hash of what identifies the figure (never of the figure itself).

    The time prefix makes ids of a time-ordered export ascend, so both stores
    append to their id index instead of inserting at random places in it
    (SQLite: over twice the rows per second; Elasticsearch recommends such ids too).
    """
    return _id(ts_ms, "|".join((action, str(ts_ms), *("" if k is None else k for k in key))))


def _id(ts_ms: int, raw: str) -> str:
    return f"g:{ts_ms:011x}" + sha1(raw.encode()).hexdigest()[:16]


def order_aggregate(ts_ms: int, bucket_s: int, product_id: str, orders: int, revenue_milli: int | None,
                    currency: str | None, quantity: int | None = None) -> Aggregate:
    """``aggregate_id("order.created", ts_ms, product_id, currency)``, spelled out: the importer's hot path."""
    return Aggregate(_id(ts_ms, f"order.created|{ts_ms}|{product_id}|{currency or ''}"), ts_ms, bucket_s,
                     "order.created", orders, revenue_milli, product_id, orders if quantity is None else quantity,
                     currency)


def payment_aggregate(ts_ms: int, bucket_s: int, method: str, action: str, count: int,
                      reason: str | None = None) -> Aggregate:
    """``aggregate_id(action, ts_ms, method, reason)``, spelled out like :func:`order_aggregate`."""
    return Aggregate(_id(ts_ms, f"{action}|{ts_ms}|{method}|{reason or ''}"), ts_ms, bucket_s, action, count,
                     method=method, reason=reason)


def payment_row(ts_ms: int, bucket_s: int, method: str, authorized: int,
                failed: list[tuple[str | None, int]]) -> list[Aggregate]:
    """The aggregates of one payments row at once: ``authorized`` (if any), then each ``(reason, failures)``.

    The same ids as :func:`payment_aggregate`, built with the row's shared parts
    computed once: a payments row is up to one aggregate per reason, and this is
    the importer's hottest loop.
    """
    head, tail = f"g:{ts_ms:011x}", f"|{ts_ms}|{method}|"
    out = []
    if authorized:
        out.append(Aggregate(head + sha1(f"payment.authorized{tail}".encode()).hexdigest()[:16], ts_ms, bucket_s,
                             "payment.authorized", authorized, None, None, None, None, method, None))
    for reason, n in failed:
        out.append(Aggregate(head + sha1(f"payment.failed{tail}{reason or ''}".encode()).hexdigest()[:16], ts_ms,
                             bucket_s, "payment.failed", n, None, None, None, None, method, reason))
    return out


class PaymentBucket(NamedTuple):
    """One payments CSV row as the embedded store keeps it: a method's payment outcomes in one bucket.

    Why not its aggregates (``payment.authorized``, one ``payment.failed`` per reason, one
    for failures without a reason): SQLite stored five rows a payments row, each with its
    trigger, and the import ran at 0.57 M rows a minute. One row holding the reasons as a
    JSON object (columnar for the reasons; the store adds each to the same rollups, a batch
    at a time) costs SQLite a third of the time and the reader less than half.
    Elasticsearch still gets the aggregate documents (:func:`expand`). The id, like an
    aggregate's, is of the bucket start and the method, never of the figures: the first
    import of a method's bucket wins.
    """

    id: str
    ts_ms: int
    bucket_s: int
    method: str
    authorized: int  # attempts - failures
    unexplained: int  # failures with no reason (``failures`` minus the reason columns' sum)
    reasons: str  # JSON object of reason -> failures, reasons with failures only (``{}``: none)
    aggregates: int  # how many aggregates the row stands for (what the import report counts)


def payment_bucket_id(ts_ms: int, method: str) -> str:
    """Like :func:`aggregate_id`, of the bucket start and the method."""
    return _id(ts_ms, f"payments|{ts_ms}|{method}")


def payment_bucket(ts_ms: int, bucket_s: int, method: str, authorized: int, reasons: Mapping[str, int],
                   unexplained: int = 0) -> PaymentBucket:
    """A :class:`PaymentBucket` from its figures (the importer builds the same inline, its JSON by hand)."""
    failed = {reason: k for reason, k in reasons.items() if k}
    return PaymentBucket(payment_bucket_id(ts_ms, method), ts_ms, bucket_s, method, authorized, unexplained,
                         json.dumps(failed, separators=(",", ":")), (authorized > 0) + (unexplained > 0) + len(failed))


def expand(bucket: PaymentBucket) -> list[Aggregate]:
    """The aggregates a :class:`PaymentBucket` stands for, with their own ids (:func:`payment_row`)."""
    failed: list[tuple[str | None, int]] = list(json.loads(bucket.reasons).items())
    if bucket.unexplained:
        failed.append((None, bucket.unexplained))
    return payment_row(bucket.ts_ms, bucket.bucket_s, bucket.method, bucket.authorized, failed)


def to_document(agg: Aggregate, service: str | None = None) -> d.Document:
    """The aggregate as a store document (what Elasticsearch and NDJSON files hold)."""
    doc: d.Document = {"@timestamp": d.iso_ns(agg.ts_ms * 1_000_000), "event.id": agg.id, "event.kind": "metric",
                       "event.dataset": d.DATASET, "event.action": agg.action, d.RECORD: AGGREGATE,
                       COUNT: agg.n, BUCKET_S: agg.bucket_s}
    if service:
        doc["service.name"] = service
    if agg.action == "payment.failed":
        doc["event.outcome"] = "failure"
    for key, value in ((cv.CURRENCY, agg.currency), (d.PRODUCT_ID, agg.product_id), (d.PRODUCT_QUANTITY, agg.quantity),
                       (cv.PAYMENT_METHOD, agg.method), (cv.FAILURE_REASON, agg.reason)):
        if value is not None:
            doc[key] = value
    if agg.amount_milli is not None:
        doc[cv.AMOUNT] = agg.amount_milli / 1000
        doc[d.PRODUCT_REVENUE] = agg.amount_milli / 1000
    return doc


def from_document(doc: Mapping[str, Any]) -> Aggregate:
    """An aggregate document back as an :class:`Aggregate` (KeyError/ValueError/TypeError when it is not one)."""
    action = doc["event.action"]
    if action not in ACTIONS:
        raise ValueError(f"an aggregate stands for one of {', '.join(ACTIONS)}, not {action!r}")
    count = doc[COUNT]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{COUNT} must be a whole number >= 0")
    amount = doc.get(cv.AMOUNT)
    quantity = doc.get(d.PRODUCT_QUANTITY)
    return Aggregate(str(doc["event.id"]), d.timestamp_ms(doc), int(doc.get(BUCKET_S) or 0), action, count,
                     None if amount is None else round(float(amount) * 1000), doc.get(d.PRODUCT_ID),
                     None if quantity is None else int(quantity), doc.get(cv.CURRENCY), doc.get(cv.PAYMENT_METHOD),
                     doc.get(cv.FAILURE_REASON))

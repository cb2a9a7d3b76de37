"""The two warehouse CSV layouts, recognised by their header.

* orders:   ``timestamp,product_id,orders,revenue`` per bucket, optional
  ``currency`` (else ``--currency``) and ``quantity`` (units; else the order count);
  other columns are ignored and named in the report;
* payments: ``timestamp,method,attempts,failures`` per bucket; every other column
  is a failure reason, its name the reason and its cells the failures of that
  reason (empty = 0).

Header names are matched without case or surrounding spaces, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from commerce_observe.monitor.importer.validation import BadInput

ORDERS = "orders"
PAYMENTS = "payments"
REQUIRED = {ORDERS: ("timestamp", "product_id", "orders", "revenue"),
            PAYMENTS: ("timestamp", "method", "attempts", "failures")}
OPTIONAL = {ORDERS: ("currency", "quantity"), PAYMENTS: ()}


@dataclass(frozen=True)
class Layout:
    kind: str
    width: int
    index: dict[str, int]
    #: payments: (column, reason) for every reason column
    reasons: tuple[tuple[int, str], ...] = ()
    ignored: tuple[str, ...] = field(default=())


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def kind_of(names: list[str]) -> str | None:
    have = set(names)
    if {"product_id", "orders"} <= have:
        return ORDERS
    if {"method", "attempts"} <= have:
        return PAYMENTS
    return None


def layout_of(path: str, header: list[str], want: str | None = None) -> Layout:
    """The layout the header describes (``want``: the kind the user named), or BadInput naming what is wrong."""
    names = [h.strip().lower() for h in header]
    kind = want or kind_of(names)
    if kind is None:
        raise BadInput(f"{path} line 1: not a history CSV header ({','.join(header)[:80]!r}); expected "
                       f"{','.join(REQUIRED[ORDERS])} (orders) or {','.join(REQUIRED[PAYMENTS])}[,reason...] (payments)")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInput(f"{path} line 1, field {name!r}: named twice in the header")
        if not name:
            raise BadInput(f"{path} line 1: a header column has no name")
        seen.add(name)
    for name in REQUIRED[kind]:
        if name not in seen:
            raise BadInput(f"{path} line 1, field {name!r}: missing from the header of {_a(kind)} CSV "
                           f"(expected {','.join(REQUIRED[kind])})")
    index = {name: i for i, name in enumerate(names) if name in REQUIRED[kind] or name in OPTIONAL[kind]}
    rest = [(i, header[i].strip()) for i, name in enumerate(names) if name not in index]
    if kind == PAYMENTS:
        return Layout(kind, len(names), index, reasons=tuple(rest))
    return Layout(kind, len(names), index, ignored=tuple(name for _, name in rest))

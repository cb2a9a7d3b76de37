"""Small history files written by the tests, and a way to run the command in this process."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from commerce_observe.monitor.cli import main

ORDERS_HEADER = "timestamp,product_id,orders,revenue"
PAYMENTS_HEADER = "timestamp,method,attempts,failures,declined,fraud_suspected"

#: The same instant written three ways (offset, Z, no offset = UTC), then the next hours.
ORDERS_ROWS = [
    "2024-03-04T01:00:00+01:00,sku-a,3,30.00",
    "2024-03-04T00:00:00Z,sku-b,1,5.50",
    "2024-03-04T02:00:00+01:00,sku-a,2,20",
    "2024-03-04 03:00:00,sku-b,4,22.00",
    "2024-03-04T08:30:00+05:30,sku-c,7,1.001",
]
PAYMENTS_ROWS = [
    "2024-03-04T00:00:00Z,card,10,3,2,",
    "2024-03-04T01:00:00+01:00,paypal,4,0,,",
    "2024-03-03T23:00:00-03:00,card,5,5,1,4",
    "2024-03-04T01:00:00Z,sepa,0,0,,",  # nothing to count, but it says the bucket is an hour
]


def write(path: Path, header: str, rows: Iterable[str]) -> str:
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def write_ndjson(path: Path, docs: Iterable[Mapping[str, Any]]) -> str:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """Exit code and the stderr lines of ``commerce-observe import ARGV``."""
    capsys.readouterr()
    code = main(["import", *argv])
    return code, capsys.readouterr().err.splitlines()

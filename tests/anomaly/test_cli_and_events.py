"""CLI end to end on a small CSV, and the domain-event bucketiser."""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from commerce_observe.monitor.anomaly import AnomalyDetector, Settings
from commerce_observe.monitor.anomaly.from_events import Bucketiser
from commerce_observe.monitor.cli import anomaly as cli
from commerce_observe.monitor.cli import main

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def _write_csv(path: Path) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "series", "value", "numerator", "denominator"])
        for i in range(24 * 10):
            ts = (T0 + i * H).isoformat()
            v = int(rng.poisson(20))
            if i == 24 * 9 + 5:
                v = 150  # a spike after training
            w.writerow([ts, "orders:sku-1", v, "", ""])
            n = 200
            k = int(rng.binomial(n, 0.03)) if i != 24 * 9 + 7 else 90
            w.writerow([ts, "payment_failures:card", "", k, n])
            if i == 24 * 9 + 8:
                w.writerow([ts, "orders:sku-2", "nan", "", ""])  # bad input, ignored and counted


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    cli.register(sub)
    return ap.parse_args(argv)


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out, state = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "model.npz"
    _write_csv(src)
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps([{"start": (T0 + 24 * 9 * H + 10 * H).isoformat(), "end": (T0 + 24 * 9 * H + 12 * H).isoformat(), "scope": "orders:*", "name": "promo"}]))
    args = _parse(["anomaly", str(src), "-o", str(out), "--calendar", str(cal),
                   "--train-until", (T0 + 24 * 9 * H).isoformat(), "--state", str(state)])
    assert args.func is cli.run
    assert args.func(args) == 0
    err = capsys.readouterr().err
    assert "ignored 1 invalid" in err and "%" not in err  # no progress bar: stderr is not a terminal
    rows = list(csv.DictReader(open(out)))
    assert rows and all(list(r) == ["timestamp", "series", "score", "actual", "expected", "lower", "upper", "alert"] for r in rows)
    assert min(datetime.fromisoformat(r["timestamp"]) for r in rows) >= T0 + 24 * 9 * H
    by = {(r["timestamp"], r["series"]): float(r["score"]) for r in rows}
    assert by[((T0 + (24 * 9 + 5) * H).isoformat(), "orders:sku-1")] >= 75
    assert by[((T0 + (24 * 9 + 7) * H).isoformat(), "payment_failures:card")] >= 75
    assert ((T0 + (24 * 9 + 10) * H).isoformat(), "orders:sku-1") not in by  # calendar-excluded
    spike = next(r for r in rows if r["timestamp"] == (T0 + (24 * 9 + 5) * H).isoformat() and r["series"] == "orders:sku-1")
    assert spike["actual"] == "150" and spike["alert"] == "1"
    assert 10 < float(spike["expected"]) < 40 and float(spike["lower"]) < float(spike["expected"]) < float(spike["upper"]) < 150
    assert state.exists() and len(AnomalyDetector.load(state)) == 3


def test_cli_buckets_warnings_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    rng = np.random.default_rng(1)
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "series", "value"])
        for i in range(24 * 4 * 12):  # 5-minute rows, scored on 15-minute buckets
            ts = (T0 + i * timedelta(minutes=5)).isoformat()
            w.writerow([ts, "orders:busy", int(rng.poisson(8))])
            if i % 24 == 0:  # a quiet product written only when it sold: zero rows missing
                w.writerow([ts, "orders:quiet", 1])
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps([{"start": T0.isoformat(), "end": (T0 + H).isoformat(), "scope": "orders:nope-*", "name": "typo"}]))
    args = _parse(["anomaly", str(src), "-o", str(out), "--bucket", "15m", "--calendar", str(cal), "--min-history", "24"])
    assert args.func(args) == 0
    err = capsys.readouterr().err
    assert "1 count series have buckets without a row (orders:quiet misses" in err
    assert "calendar event typo (scope orders:nope-*) matches no series" in err
    rows = [r for r in csv.DictReader(open(out)) if r["series"] == "orders:busy"]
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    assert all(b - a == timedelta(minutes=15) for a, b in zip(stamps, stamps[1:]))
    assert 12 <= float(rows[-1]["actual"]) <= 40  # three 5-minute rows summed
    for bad, message in ((["--bucket", "7m"], "divide a day"), (["--bucket", "2d"], "1 minute to 1 day"),
                         (["--timezone", "Mars/Olympus"], "unknown time zone")):
        assert main(["anomaly", str(src), "-o", str(out), *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    src.write_text("timestamp,series,value\n2024-01-01T00:00Z,orders:a,1\nyesterday,orders:a,1\n")
    assert main(["anomaly", str(src)]) == 2
    assert "input row 3: not a timestamp: 'yesterday'" in capsys.readouterr().err


@dataclass
class Item:
    product_id: str
    quantity: int = 1
    unit_price: Decimal = Decimal("9.99")


@dataclass
class Event:
    type: str
    event_id: str
    occurred_at: datetime
    order_id: str | None = None
    payment_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    items: tuple[Item, ...] = field(default_factory=tuple)
    payment_method: str | None = None
    reason: str | None = None


def test_bucketiser_turns_events_into_series() -> None:
    b = Bucketiser()
    evs = [
        Event("order.created", "e1", T0 + timedelta(minutes=5), "o1", amount=Decimal("20"), currency="EUR", items=(Item("a"), Item("b"))),
        Event("order.created", "e1", T0 + timedelta(minutes=5), "o1", amount=Decimal("20"), currency="EUR", items=(Item("a"),)),  # duplicate
        Event("order.created", "e2", T0 + timedelta(minutes=50), "o2", amount=Decimal("5.5"), currency="EUR", items=(Item("a"),)),
        Event("payment.authorized", "e3", T0 + timedelta(minutes=51), payment_method="card"),
        Event("payment.failed", "e4", T0 + timedelta(minutes=52), payment_method="card", reason="declined"),
        Event("order.created", "e5", T0 + timedelta(hours=2, minutes=1), "o3", amount=Decimal("1"), currency="EUR", items=(Item("b"),)),
    ]
    b.add_all(evs)
    rows = list(b.flush())
    first = {(s): (v, d) for ts, s, v, d in rows if ts == T0}
    assert first["orders:a"] == (2.0, None) and first["orders:b"] == (1.0, None)
    assert first["orders:__all__"] == (2.0, None)
    assert first["revenue:EUR"] == (25.5, None)
    assert first["payment_failures:card"] == (1.0, 2.0)
    # the empty middle bucket still has zero rows for known products
    middle = {s: v for ts, s, v, d in rows if ts == T0 + H}
    assert middle["orders:a"] == 0.0 and "payment_failures:card" not in middle
    det = AnomalyDetector(Settings())
    for ts, s, v, d in rows:
        det.update(s, ts, v if d is None else (v, d))
    assert len(det) == 5

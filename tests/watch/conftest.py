"""Fixtures of the watch tests: a shop's data dated in the future, receivers, the store read back.

Why the future: a live watch moves its watermark to the wall clock once it has read
everything (so buckets close when nothing comes). With data dated hours ahead, the
records' own times stay ahead of the wall clock, so a live run is driven by event
time alone: the test decides when a bucket closes by writing the next minute, and
can stop or kill the watch between any two minutes. The live minutes start ten minutes
into a half hour (:func:`~tests.watch.shop.live_start` says why).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.alerts.receivers import HttpReceiver
from tests.watch.shop import MINUTE, Shop, live_start

HISTORY_MINUTES = 150


@dataclass
class ShopData:
    dir: Path
    shop: Shop
    t1: int  # first live minute

    @property
    def store(self) -> str:
        return str(self.dir / "store.db")

    @property
    def audit(self) -> str:
        return str(self.dir / "audit.sqlite")

    def at(self, minute: int) -> int:
        return self.t1 + minute * MINUTE

    def args(self, *extra: str) -> list[str]:
        """The options every watch in these tests runs with: minute buckets, short windows."""
        return ["--store", f"sqlite:{self.store}", "--audit-sqlite", self.audit, "--bucket", "1m",
                "--grace", "5s", "--lateness", "1s", "--audit-bucket", "10s", "--min-history", "30", *extra]

    def docs(self, path: str | None = None, record: str | None = None) -> dict[str, str]:
        """Finding and anomaly documents in a store: id -> message."""
        conn = sqlite3.connect(path or self.store)
        try:
            where = "record IN ('finding', 'anomaly')" if record is None else f"record = '{record}'"
            return dict(conn.execute(f"SELECT id, message FROM docs WHERE {where}").fetchall())
        finally:
            conn.close()

    def scores(self, series: str) -> list[str]:
        """The stored scores of one series, in time order (what a missing anomaly alert is explained by)."""
        return [v for k, v in sorted(self.docs(record="anomaly").items()) if k.startswith(f"a:{series}:")]

    def copy_without_outputs(self, name: str) -> str:
        """The store as the services left it (no findings or scores): the input of a second run."""
        path = str(self.dir / name)
        src, conn = sqlite3.connect(self.store), sqlite3.connect(path)
        src.backup(conn)  # a file copy would miss what is still in the write-ahead log
        src.close()
        conn.execute("DELETE FROM docs WHERE record IN ('finding', 'anomaly')")
        conn.commit()
        conn.close()
        return path

    def backtest_equals_live(self, minutes: int, live_bodies: list[dict[str, object]]) -> list[dict[str, object]]:
        """Backtest the live minutes ``0..minutes`` on the services' data alone and check it
        equals the live run: the same findings and scores, the same notification ids.
        Returns the backtest's notifications."""
        from tests.watch.runner import rule_file, run_backtest

        copy = self.copy_without_outputs("backtest.db")
        until = self.at(minutes)
        replay = HttpReceiver().start()
        try:
            code, err = run_backtest("--store", f"sqlite:{copy}", *self.args(
                "--rules", rule_file(str(self.dir / "rules2.json"), replay.url))[2:],
                "--from", iso(self.t1), "--until", iso(until))
            assert code == 0, err
            assert _upto(self.docs(copy), until) == _upto(self.docs(), until)
            assert sent_ids(replay.bodies(), until) == sent_ids(live_bodies, until)
            return replay.bodies()
        finally:
            replay.stop()


def iso(ns: int) -> str:
    from commerce_observe.store.documents import iso_ns

    return iso_ns(ns)


def _upto(docs: dict[str, str], until_ns: int) -> dict[str, str]:
    """Scores of buckets before ``until_ns`` and every finding (both runs judged the same events)."""
    out = {}
    for k, v in docs.items():
        if k.startswith("a:"):
            when = datetime.fromisoformat(":".join(k.rsplit(":", 3)[-3:]).replace("Z", "+00:00"))
            if when.timestamp() * 1e9 >= until_ns - MINUTE:
                continue
        out[k] = v
    return out


def sent_ids(bodies: list[dict[str, object]], until_ns: int) -> set[str]:
    """Notification ids sent before ``until_ns`` (less the last ten seconds, still in flight)."""
    return {str(b["id"]) for b in bodies if datetime.fromisoformat(str(b["at"])).timestamp() * 1e9 <= until_ns - 10 * 1e9}


@pytest.fixture
def shop_data(tmp_path: Path) -> Iterator[ShopData]:
    t1 = live_start(time.time_ns(), 3 * 60)
    shop = Shop(str(tmp_path / "store.db"), str(tmp_path / "audit.sqlite"))
    shop.minutes(t1 - HISTORY_MINUTES * MINUTE, HISTORY_MINUTES, audit=False)
    yield ShopData(tmp_path, shop, t1)
    shop.close()


@pytest.fixture
def webhook() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()

"""A restart mid-stream repeats and misses nothing: stopped (SIGTERM) or killed (SIGKILL)
right after it sent an alert, the watch goes on from its checkpoint without relearning;
every bucket is scored once, every finding and alert comes once, and the result equals
a backtest of the same period that never stopped."""

from __future__ import annotations

import signal

import pytest

from tests.alerts.receivers import HttpReceiver
from tests.support.waiting import wait_for
from tests.watch.conftest import ShopData, iso
from tests.watch.runner import WatchProcess, assert_no_repeat, firing, rule_file

MINUTES = 8


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_repeats_and_misses_nothing(shop_data: ShopData, webhook: HttpReceiver, sig: int) -> None:
    rules = rule_file(str(shop_data.dir / "rules.json"), webhook.url)
    args = shop_data.args("--rules", rules, "--state", str(shop_data.dir / "live"), "--start", iso(shop_data.t1))
    for m in range(3):
        shop_data.shop.minute(shop_data.at(m), lose=1 if m == 1 else 0)
    first = WatchProcess(*args)
    assert "learned 150 buckets" in first.stderr
    wait_for("the lost-event alert", lambda: firing(webhook.bodies()).get("lost-events"), timeout=60)
    code = first.stop(sig)  # at once after the alert went out: its checkpoint may well be older
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)

    for m in range(3, 6):  # written while the watch is down; minute 3 sells 8x of sku-b
        shop_data.shop.minute(shop_data.at(m), spike="sku-b" if m == 3 else None)
    second = WatchProcess(*args)
    assert "resumed from checkpoint" in second.stderr and "learned" not in second.stderr
    for m in range(6, MINUTES + 1):
        shop_data.shop.minute(shop_data.at(m))
    metrics = second.wait_metric("commerce_observe_watch_next_bucket_seconds", shop_data.at(MINUTES) / 1e9)
    wait_for("the spike alert", lambda: firing(webhook.bodies()).get("product-spike"), timeout=60,
             describe=lambda _: f"sku-b scores {shop_data.scores('orders:sku-b')}; {second.metrics()}")
    assert second.stop(signal.SIGTERM) == 0, second.stderr

    bodies = webhook.bodies()
    assert firing(bodies) == {"lost-events": 1, "product-spike": 1}
    assert_no_repeat(bodies, killed=sig == signal.SIGKILL)
    assert metrics["commerce_observe_watch_buckets_scored_total"] == MINUTES  # replays recount nothing
    assert metrics['commerce_observe_watch_findings_total{kind="LOST"}'] == 1
    assert list(shop_data.docs(record="finding")) == [f"f:LOST:{shop_data.shop.lost[0]}:billing"]

    # the same period in one go: same findings, scores (so no bucket skipped or learned twice), alerts
    shop_data.backtest_equals_live(MINUTES, bodies)

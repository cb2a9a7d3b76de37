"""End to end: the services' data in, one alert per injected fault out, to a real webhook
receiver and a real MTA (Exim); and a backtest of the same period gives the same
findings, scores and notifications as the live run."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.alerts.receivers import Exim, HttpReceiver
from tests.support.waiting import wait_for
from tests.watch.conftest import ShopData, iso
from tests.watch.runner import WatchProcess, firing, rule_file

LIVE_MINUTES = 7


@pytest.fixture
def exim() -> Iterator[Exim]:
    mta = Exim().start()
    yield mta
    mta.stop()


def _write_incident(data: ShopData) -> None:
    """Minute 1 loses an event, minute 3 sells 8x of sku-b; minutes after move time on."""
    for m in range(LIVE_MINUTES + 1):
        data.shop.minute(data.at(m), lose=1 if m == 1 else 0, spike="sku-b" if m == 3 else None)


def test_loss_and_anomaly_one_alert_each_and_backtest_equals_live(
        shop_data: ShopData, webhook: HttpReceiver, exim: Exim) -> None:
    rules = rule_file(str(shop_data.dir / "rules.json"), webhook.url, exim.port)
    _write_incident(shop_data)
    live = WatchProcess(*shop_data.args("--rules", rules, "--state", str(shop_data.dir / "live"),
                                        "--start", iso(shop_data.t1)))
    live.wait_metric("commerce_observe_watch_next_bucket_seconds", shop_data.at(LIVE_MINUTES) / 1e9)
    wait_for("both alerts by webhook", lambda: firing(webhook.bodies()), until=lambda f: len(f) == 2, timeout=60)
    assert live.health() == 200
    metrics = live.metrics()
    assert live.stop(signal.SIGTERM) == 0, live.stderr

    # exactly one alert per fault, by webhook and by e-mail
    assert firing(webhook.bodies()) == {"lost-events": 1, "product-spike": 1}
    lost_alert = next(a for b in webhook.bodies() for a in b["alerts"] if a["rule"] == "lost-events")
    assert any(shop_data.shop.lost[0] in line for line in lost_alert["details"])
    assert any(b["kind"] == "resolved" and b["alerts"][0]["rule"] == "lost-events" for b in webhook.bodies())
    subjects = [str(m["Subject"]) for m in wait_for("two alert mails", exim.messages, until=lambda ms: len(ms) >= 2)]
    assert sum("RESOLVED" not in s for s in subjects) == 2, subjects
    assert any("events lost" in s for s in subjects) and any("orders spiked" in s for s in subjects)

    # the finding and the scores are in the store, and counted
    findings = shop_data.docs(record="finding")
    assert list(findings) == [f"f:LOST:{shop_data.shop.lost[0]}:billing"]
    assert metrics['commerce_observe_watch_findings_total{kind="LOST"}'] == 1
    assert metrics["commerce_observe_watch_buckets_scored_total"] >= LIVE_MINUTES
    scores = shop_data.docs(record="anomaly")
    assert any(k.startswith("a:orders:sku-b:") and "score 100" in v for k, v in scores.items())

    # backtest the same period on the services' data alone: same findings, scores, notifications
    replayed = shop_data.backtest_equals_live(LIVE_MINUTES, webhook.bodies())
    assert firing(replayed) == {"lost-events": 1, "product-spike": 1}


"""The alerts ``commerce-observe watch`` sends are the open alerts the dashboard lists.

A shop's minutes with a lost event (minute 1) and a product selling 8x (minute 3)
go through a backtest of ``watch`` with a webhook rule for each; the store must then
hold one firing document per alert sent and one resolved document per resolve sent,
the dashboard must list an alert as open exactly while it was firing, and the page
must show it.
"""

from __future__ import annotations

import json
from datetime import datetime

from commerce_observe.monitor.dashboard import Dashboard
from commerce_observe.store import documents as d
from commerce_observe.store.queries import TimeRange
from commerce_observe.store.sqlite_store import SqliteStore
from tests.alerts.receivers import HttpReceiver
from tests.dashboard.browser import Page, run_chromium
from tests.watch.conftest import ShopData, shop_data, webhook  # noqa: F401 (fixtures)
from tests.watch.runner import rule_file, run_backtest

MINUTES = 9


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_sent_alerts_are_stored_and_listed_open_while_firing(shop_data: ShopData, webhook: HttpReceiver) -> None:  # noqa: F811
    for m in range(MINUTES + 1):
        shop_data.shop.minute(shop_data.at(m), lose=1 if m == 1 else 0, spike="sku-b" if m == 3 else None)
    code, err = run_backtest(*shop_data.args("--rules", rule_file(str(shop_data.dir / "rules.json"), webhook.url)),
                             "--from", d.iso_ns(shop_data.t1), "--until", d.iso_ns(shop_data.at(MINUTES)))
    assert code == 0, err

    sent = {(a["rule"], a["status"]) for b in webhook.bodies() for a in b["alerts"]}
    assert ("lost-events", "firing") in sent and ("product-spike", "firing") in sent
    store = SqliteStore(shop_data.store)
    rows = store._conn().execute(f"SELECT body FROM docs WHERE record = '{d.ALERT}'").fetchall()
    states = [json.loads(body) for body, in rows]
    assert {(s["commerce.alert.rule"], s[d.ALERT_STATUS]) for s in states} == sent

    # open exactly between the firing and the resolved document
    for s in (s for s in states if s[d.ALERT_STATUS] == "firing"):
        since = _ms(s["commerce.alert.since"])
        ended = next((_ms(x["@timestamp"]) for x in states
                      if x[d.ALERT_ID] == s[d.ALERT_ID] and x[d.ALERT_STATUS] == "resolved"), None)
        assert ended is None or ended > since
        just_after = TimeRange(since - 60_000, since + 1)  # open alerts: those firing at the range's end
        assert s[d.ALERT_ID] in {a.id for a in store.open_alerts(just_after)}, s["message"]
        if ended is not None:
            after = TimeRange(ended, ended + 60_000)
            assert s[d.ALERT_ID] not in {a.id for a in store.open_alerts(after)}, s["message"]

    # the page, at the minute the spike fired, lists it in the open alerts panel
    spike = next(s for s in states if s["commerce.alert.rule"] == "product-spike" and s[d.ALERT_STATUS] == "firing")
    since = _ms(spike["commerce.alert.since"])
    app = Dashboard(store, port=0).start()
    try:
        page = Page(run_chromium(f"{app.url}?start_ms={since - 600_000}&end_ms={since + 60_000}", "--dump-dom"))
    finally:
        app.close()
    assert spike[d.ALERT_ID] in [a["data-id"] for a in page.find("open-alerts", "data-id")]
    assert "orders spiked" in page.text["open-alerts"]
    store.close()

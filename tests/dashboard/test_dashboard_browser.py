"""The dashboard in headless Chromium at 1400x1000, on a SQLite store and on Elasticsearch.

The store holds ``tests.dashboard.scene``: orders, payments, findings, anomaly
scores and alert states with hand-computed figures. The page must show the
headline numbers, open alerts, anomalies (actual against the band, score, since
when) and findings with trace links, with the urgent panels above the fold.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from commerce_observe.monitor.dashboard import Dashboard
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.sqlite_store import SqliteStore
from commerce_observe.store.store import EventStore
from tests.dashboard import scene
from tests.dashboard.browser import WINDOW, Page, run_chromium, screenshot
from tests.monitoring import contract, dataset

#: What must be visible without scrolling: the headline, what is firing, and what went wrong.
ABOVE_THE_FOLD = ("headline", "open-alerts", "anomalies", "findings", "failure-reasons", "failure-methods")


def open_store(kind: str, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> EventStore:
    if kind == "sqlite":
        return SqliteStore(str(tmp.mktemp("dash") / "m.db"))
    url: str = request.getfixturevalue("elasticsearch_url")
    return ElasticsearchStore(url, data_stream=f"logs-commerce.events-d{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def dashboard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    store = open_store(request.param, request, tmp_path_factory)
    result = store.write(scene.documents())
    assert result.written == len(scene.documents()) and not result.rejected
    if isinstance(store, ElasticsearchStore):
        store.refresh()
    app = Dashboard(store, port=0, zipkin_url="http://zipkin.test:9411", kibana_url="http://kibana.test:5601",
                    refresh_s=2).start()
    yield app
    app.close()
    store.close()


def page_url(app: Dashboard) -> str:
    return f"{app.url}?start_ms={contract.RANGE.start_ms}&end_ms={contract.RANGE.end_ms}"


@pytest.fixture(scope="module")
def page(dashboard: Dashboard) -> Page:
    return Page(run_chromium(page_url(dashboard), "--dump-dom"))


def test_headline_numbers(page: Page) -> None:
    tiles = {a["data-key"]: a for a in page.find("headline", "data-key")}
    exp = scene.expected()
    assert tiles["orders"]["data-value"] == str(exp["orders"])
    assert tiles["failure-rate"]["data-value"] == exp["failure_rate"]
    assert (tiles["lost"]["data-value"], tiles["duplicate"]["data-value"]) == ("2", "1")
    assert tiles["open-alerts"]["data-value"] == "1"
    revenue = {c: t for c, (_, t) in dataset.expected()["revenue"].items()}
    assert tiles["revenue"]["data-value"].split("\n") == [f"{revenue[c]:,.2f} {c}" for c in sorted(revenue)]
    assert "value of orders placed" in " ".join(page.text["headline"])


def test_open_alerts_anomalies_and_findings(page: Page) -> None:
    exp = scene.expected()
    assert [a["data-id"] for a in page.find("open-alerts", "data-id")] == exp["open_alerts"]
    assert "orders dropped" in page.text["open-alerts"] and "product sku-cheese" in page.text["open-alerts"]

    def number(raw: str) -> float | None:
        return None if raw == "" else float(raw)

    rows = [{"series": a["data-series"], "score": float(a["data-score"]), "actual": float(a["data-actual"]),
             "expected": number(a["data-expected"]), "lower": number(a["data-lower"]),
             "upper": number(a["data-upper"]), "since": int(a["data-since"]), "ongoing": a["data-ongoing"] == "true"}
            for a in page.find("anomalies", "data-series", "tr")]
    assert rows == exp["anomalies"]
    assert len(page.find("anomalies", "class", "rect")) >= 2  # the expected bands are drawn

    assert [a["data-kind"] for a in page.find("findings", "data-kind", "tr")] == exp["findings"]
    links = [a["href"] for a in page.find("findings", "href")]
    assert f"http://zipkin.test:9411/zipkin/traces/{10:032x}" in links
    assert f"http://kibana.test:5601/app/apm/link-to/trace/{10:032x}" in links
    stats = page.find("findings", "data-lost")[0]
    assert (stats["data-lost"], stats["data-duplicate"]) == ("2", "1")
    assert page.bars("failure-reasons") == dataset.expected()["reasons"]
    assert page.bars("failure-methods") == dataset.expected()["methods"]


def test_findings_and_failures_are_above_the_fold(page: Page) -> None:
    width, height = page.viewport()
    assert width == WINDOW[0]
    fold = min(height, WINDOW[1])
    low = {panel: page.bottom(panel) for panel in ABOVE_THE_FOLD if page.bottom(panel) > fold}
    assert not low, f"below the fold of {fold}px: {low}"


def test_charts_show_the_data_sets_numbers(page: Page) -> None:
    exp = dataset.expected()
    per = exp["per_minute"].values()
    assert page.series("per-minute") == {"orders": sum(v[0] for v in per), "payments": sum(v[1] for v in per),
                                         "payment failures": sum(v[2] for v in per)}
    assert page.bars("top-products") == [(k, q) for k, q, _ in exp["top_products"]]
    revenue = {a["data-currency"]: (int(a["data-orders"]), a["data-revenue"]) for a in page.find("revenue", "data-currency")}
    assert revenue == {c: (n, str(t.quantize(Decimal("0.001")))) for c, (n, t) in exp["revenue"].items()}
    assert {c: round(v, 3) for c, v in page.series("sales-trend").items()} == \
        {c: float(t) for c, (_, t) in exp["revenue"].items()}
    assert int(page.find("latency", "data-count")[0]["data-count"]) == len(exp["latency"])


def test_orders_stay_visible_when_they_equal_payments(page: Page) -> None:
    """In the data set orders equal payments in total: the orders line is dashed, thinner, drawn on top."""
    drawn = [a for a in page.find("per-minute", "data-series", "g")]
    names = [a["data-series"] for a in drawn]
    orders, payments = (next(a for a in drawn if a["data-series"] == n) for n in ("orders", "payments"))
    assert names.index("orders") > names.index("payments")
    assert orders["data-dash"] and not payments["data-dash"]
    assert float(orders["data-width"]) < float(payments["data-width"])


def test_screenshot_is_kept_as_an_artifact(dashboard: Dashboard, request: pytest.FixtureRequest) -> None:
    screenshot(page_url(dashboard), f"dashboard-{request.node.callspec.id}.png")


def test_api_answers_json_and_unknown_paths_404(dashboard: Dashboard) -> None:
    with urllib.request.urlopen(dashboard.url + "api/summary?minutes=15") as resp:
        data = json.load(resp)
    assert set(data) >= {"headline", "per_minute", "anomalies", "open_alerts", "finding_list", "alerts", "grid"}
    assert len(data["per_minute"]) in (15, 16)  # whole minutes: the current one is included
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(dashboard.url + "nope")
    assert err.value.code == 404

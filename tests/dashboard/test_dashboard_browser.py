"""The dashboard in headless Chromium: the page loads, and the charts show the data set's numbers.

Chromium comes from Debian's ``chromium`` package (installed by the test command,
never by this test). Numbers are read from the rendered DOM (``--dump-dom`` after
the page's fetches ran, under a virtual-time budget); screenshots are kept in
``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from commerce_observe.monitor.dashboard import Dashboard
from commerce_observe.store.sqlite_store import SqliteStore
from tests.monitoring import contract, dataset

ROOT = Path(__file__).resolve().parents[2]

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,2200", "--virtual-time-budget=8000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is missing: install Debian's 'chromium' package (apt-get install -y chromium)")


def run_chromium(url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Panels(HTMLParser):
    """Every element's attributes, grouped by the id of the <section> panel it is in."""

    def __init__(self) -> None:
        super().__init__()
        self.panel: str | None = None
        self.elements: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
        self.text: dict[str, list[str]] = defaultdict(list)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.panel = a.get("id")
        if self.panel:
            self.elements[self.panel].append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.panel = None

    def handle_data(self, data: str) -> None:
        if self.panel and data.strip():
            self.text[self.panel].append(data.strip())

    def find(self, panel: str, attr: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements[panel] if attr in a]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = SqliteStore(str(tmp_path_factory.mktemp("dash") / "m.db"))
    contract.load(store)
    app = Dashboard(store, port=0, zipkin_url="http://zipkin.test:9411", kibana_url="http://kibana.test:5601",
                    refresh_s=2).start()
    yield app
    app.close()


def page_url(app: Dashboard) -> str:
    return f"{app.url}?start_ms={contract.RANGE.start_ms}&end_ms={contract.RANGE.end_ms}"


def test_page_shows_the_known_numbers(dashboard: Dashboard) -> None:
    dom = run_chromium(page_url(dashboard), "--dump-dom")
    p = Panels()
    p.feed(dom)
    exp = dataset.expected()
    assert 'data-state="ok"' in dom, dom[:3000]
    totals = {a["data-series"]: float(a["data-total"]) for a in p.find("per-minute", "data-series")}
    assert totals == {"orders": sum(v[0] for v in exp["per_minute"].values()),
                      "payments": sum(v[1] for v in exp["per_minute"].values()),
                      "payment failures": sum(v[2] for v in exp["per_minute"].values())}
    points = [a for a in p.find("per-minute", "data-x") if a.get("data-value") != "0"]
    assert len(points) > 0
    bars = [(a["data-key"], int(a["data-value"])) for a in p.find("top-products", "data-key")]
    assert bars == [(k, q) for k, q, _ in exp["top_products"]]
    assert [(a["data-key"], int(a["data-value"])) for a in p.find("failure-reasons", "data-key")] == exp["reasons"]
    assert [(a["data-key"], int(a["data-value"])) for a in p.find("failure-methods", "data-key")] == exp["methods"]
    revenue = {a["data-currency"]: (int(a["data-orders"]), a["data-revenue"]) for a in p.find("revenue", "data-currency")}
    assert revenue == {c: (n, str(t.quantize(contract.Decimal("0.001")))) for c, (n, t) in exp["revenue"].items()}
    trend = {a["data-series"]: round(float(a["data-total"]), 3) for a in p.find("sales-trend", "data-series")}
    assert trend == {c: float(t) for c, (_, t) in exp["revenue"].items()}
    findings = p.find("findings", "data-lost")[0]
    assert (findings["data-lost"], findings["data-duplicate"]) == ("2", "1")
    rows = p.find("alerts", "data-kind")
    assert [r["data-kind"] for r in rows] == ["ANOMALY", "LOST", "DUPLICATE", "LOST"]
    links = [a["href"] for a in p.find("alerts", "href")]
    assert f"http://zipkin.test:9411/zipkin/traces/{10:032x}" in links
    assert f"http://kibana.test:5601/app/apm/link-to/trace/{10:032x}" in links
    latency = p.find("latency", "data-count")[0]
    assert int(latency["data-count"]) == len(exp["latency"])


def test_screenshot_is_kept_as_an_artifact(dashboard: Dashboard) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    run_chromium(page_url(dashboard), f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 20_000


def test_api_answers_json_and_unknown_paths_404(dashboard: Dashboard) -> None:
    with urllib.request.urlopen(dashboard.url + "api/summary?minutes=15") as resp:
        data = json.load(resp)
    assert set(data) >= {"per_minute", "revenue", "top_products", "failures_by_reason", "alerts", "latency"}
    assert len(data["per_minute"]) in (15, 16)  # whole minutes: the current one is included
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(dashboard.url + "nope")
    assert err.value.code == 404

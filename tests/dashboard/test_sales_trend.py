"""The sales trend over 6 h, 24 h and 7 d, as the page draws it, on both stores.

The bug this guards against: the page laid its points on a grid starting at the
range's first minute while the stores bucket on the Unix epoch, so no stored
bucket matched a point and the trend read 0 everywhere in every view with buckets
longer than a minute. Orders here sit at known times before now; each view must
draw every order's revenue, in the bucket (epoch-aligned) that holds it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from commerce_observe.agent.events.model import DomainEvent, EventType, LineItem
from commerce_observe.monitor.dashboard import Dashboard
from commerce_observe.store import documents as d
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.sqlite_store import SqliteStore
from commerce_observe.store.store import EventStore
from tests.dashboard.browser import Page, run_chromium

#: Minutes before now of each order: inside every view, away from the views' edges.
AGO = (3, 17, 52, 128, 301, 333, 700, 1299, 3000, 6001, 9876)
#: The view (minutes) and the bucket the page uses for it.
VIEWS = {360: 5, 1440: 15, 10080: 60}


def orders(now: datetime) -> list[DomainEvent]:
    out = []
    for n, ago in enumerate(AGO):
        price = Decimal(10 + n) + Decimal("0.25")
        out.append(DomainEvent(EventType.ORDER_CREATED, order_id=f"trend-{n}", currency="EUR" if n % 4 else "USD",
                               items=(LineItem("sku-trend", 1 + n % 3, price),), occurred_at=now - timedelta(minutes=ago),
                               event_id=f"trend-evt-{n}"))
    return out


@pytest.fixture(scope="module", params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, list[DomainEvent]]]:
    store: EventStore
    if request.param == "sqlite":
        store = SqliteStore(str(tmp_path_factory.mktemp("trend") / "m.db"))
    else:
        store = ElasticsearchStore(request.getfixturevalue("elasticsearch_url"),
                                   data_stream=f"logs-commerce.events-tr{uuid.uuid4().hex[:10]}")
    events = orders(datetime.now(timezone.utc))
    assert store.write([doc for e in events for doc in d.event_documents(e)]).written == 2 * len(events)
    if isinstance(store, ElasticsearchStore):
        store.refresh()
    app = Dashboard(store, port=0).start()
    yield app, events
    app.close()
    store.close()


@pytest.mark.parametrize("minutes", sorted(VIEWS))
def test_the_trend_draws_every_order_in_its_bucket(served: tuple[Dashboard, list[DomainEvent]], minutes: int) -> None:
    app, events = served
    page = Page(run_chromium(f"{app.url}?minutes={minutes}", "--dump-dom"))
    step = VIEWS[minutes] * 60_000
    want: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    now = datetime.now(timezone.utc)
    for e in events:
        if e.occurred_at > now - timedelta(minutes=minutes) and e.currency and e.total is not None:
            at = int(e.occurred_at.timestamp() * 1000)
            want[e.currency][at // step * step] += e.total
    drawn: dict[str, dict[int, Decimal]] = defaultdict(dict)
    series = None
    for tag, a in page.elements["sales-trend"]:
        if tag == "g" and "data-series" in a:
            series = a["data-series"]
        elif series and "data-x" in a and a["data-value"] != "0":
            drawn[series][int(a["data-x"])] = Decimal(a["data-value"])
    assert drawn == {c: dict(b) for c, b in want.items()}, f"{minutes} min view"
    assert {c: round(v, 3) for c, v in page.series("sales-trend").items()} == \
        {c: float(sum(b.values())) for c, b in want.items()}
